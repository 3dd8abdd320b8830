"""Datasets: sharded, resumable, reproducible generation and memory-mapped loading.

Layout of a dataset folder::

    manifest.json               synth identity (with DSP/binary hash), parameter specs,
                                render settings, sampler settings, storage, library
                                versions, n, and every shard with its checksums
    shards/shard-00000.audio.npy  int16 (m, n_samples): audio / row peak * 32767; with a probe
                                of several renders (m, n_renders, n_samples), one scale per patch
    shards/shard-00000.rows.npy   structured (m,): index, seed, scale, params (n_params,)
    shards/shard-00000.json       the shard's commit record: rows, files, sha256, failed patches

Shard *k* holds patches ``k*S .. min((k+1)*S, n)-1`` (``S`` = shard size)
minus the patches that failed (non-finite or erroring twice, listed in its
record and in the manifest, never stored). Every file is written to a
temporary name, flushed and renamed; the record is renamed last, so a shard
without a record, or whose files do not match the record's sha256, does not
exist and is rendered again. Patch *i* depends only on ``(seed, i)``
(:mod:`synth_probe.sampling`), so the bytes of a dataset do not depend on the
number of jobs, the backend or the order in which shards were made.

One run writes a folder at a time (it holds ``.lock`` from start to end; the
parts of a ``--shard I/N`` array share it), and every manifest write takes the
largest ``n`` that the manifest and the records know of, so no run shrinks a
dataset. A manifest that is missing or damaged is rebuilt from the records by
a rerun with the same settings. Files, checksums and locks are in
:mod:`synth_probe.dataset_files`, loading in :mod:`synth_probe.dataset_load`,
patch tables (with their metadata columns) in :mod:`synth_probe.patch_table`.

A probe (:mod:`synth_probe.probe`) of several renders stores a patch's renders together, in the
order of :meth:`~synth_probe.probe.Probe.renders`, scaled by the peak over all of them (so the
level ratio between velocities is kept); the manifest records it under ``probe`` and
``storage.n_renders``, and a folder made with another probe is refused. The default probe (one
note) adds neither, so its datasets and identities are those made before probes existed.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.dataset_files import (
    AUDIO_DTYPE,
    FORMAT,
    MANIFEST,
    SHARDS,
    VERSION,
    atomic_json,
    atomic_write,
    check_shard,
    clean_stale_tmp,
    decode_audio,
    encode_audio,
    foreign_entries,
    list_records,
    manifest_lock,
    read_manifest,
    rows_dtype,
    run_lock,
    shard_bounds,
    shard_paths,
)
from synth_probe.dataset_load import Dataset, load_dataset
from synth_probe.errors import (
    DatasetError,
    DatasetMismatchError,
    ParameterValueError,
    RenderError,
)
from synth_probe.patch_table import meta_identity, read_patch_table, split_patch_records
from synth_probe.probe import DEFAULT_PROBE, Probe, parse_probe, render_probe
from synth_probe.progress import Progress
from synth_probe.render import LocalContext, Task, TaskFailure, WorkerContext, run_tasks
from synth_probe.sampling import SamplePlan, make_plan, render_seeds
from synth_probe.synths.base import RenderSettings, Synth
from synth_probe.synths.registry import get_synth
from synth_probe.util import library_versions

__all__ = [
    "Dataset",
    "GenerateOptions",
    "GenerateResult",
    "generate",
    "load_dataset",
    "read_patch_table",
    "encode_audio",
    "decode_audio",
]

DEFAULT_SHARD_SIZE = 500


# ----------------------------------------------------------------------------- the shard task (runs in a worker)


def render_shard(ctx: WorkerContext | LocalContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Render shard ``spec["id"]`` in a worker and write it; return its record.

    A render that raises or comes back non-finite re-creates the synth
    instance and is retried once; a patch that fails twice is listed in the
    record and not stored.
    """
    start, stop = int(spec["start"]), int(spec["stop"])
    settings: RenderSettings = spec["settings"]
    renders: list[RenderSettings] | None = spec.get("renders")
    plan: SamplePlan | None = spec.get("plan")
    if plan is not None:
        vectors, seeds = plan.rows(spec["seed"], start, stop)
    else:
        vectors = np.asarray(spec["vectors"], dtype=np.float64)
        seeds = render_seeds(spec["seed"], start, stop - start)
    m = stop - start
    row_shape = (settings.n_samples,) if renders is None else (len(renders), settings.n_samples)
    q = np.empty((m, *row_shape), dtype=np.int16)
    rows = np.zeros(m, dtype=rows_dtype(vectors.shape[1]))
    failed: list[dict[str, Any]] = []
    kept = 0
    for r in range(m):
        i = start + r
        ctx.start(i)
        audio, reasons = None, []
        for attempt in range(2):
            try:
                if renders is None:
                    x = ctx.synth.render_vector(vectors[r], settings, seed=int(seeds[r]))
                else:
                    x = render_probe(ctx.synth, vectors[r], renders, seed=int(seeds[r]))
                if x.shape != row_shape:
                    raise RenderError(f"render returned shape {x.shape}, expected {row_shape}")
                if np.isfinite(x).all():
                    audio = x
                    break
                reasons.append(f"non-finite audio ({int((~np.isfinite(x)).sum())} samples)")
            except Exception as e:  # noqa: BLE001 - recorded with the patch
                reasons.append(f"{type(e).__name__}: {e}")
            ctx.recreate()  # a blown-up instance stays broken until it is loaded anew
        if audio is None:
            failed.append({"index": i, "reason": "; then ".join(reasons) + " (instance re-created in between)"})
        else:
            qq, sc = encode_audio(audio[None, :])
            q[kept] = qq[0]
            rows[kept] = (i, int(seeds[r]), float(sc[0]), vectors[r])
            kept += 1
        ctx.done(i)
    q, rows = q[:kept], rows[:kept]
    out = Path(spec["out"])
    paths = shard_paths(out, int(spec["id"]))
    try:
        files = {
            "audio": atomic_write(paths["audio"], lambda f: np.save(f, q, allow_pickle=False)),
            "rows": atomic_write(paths["rows"], lambda f: np.save(f, rows, allow_pickle=False)),
        }
        record = {
            "id": int(spec["id"]), "start": start, "stop": stop, "n_stored": int(kept),
            "identity": spec["identity_sha256"], "files": files, "failed": failed,
        }
        if spec.get("meta"):
            record["meta"] = spec["meta"]
        atomic_json(paths["record"], record)
    except OSError as e:
        raise DatasetError(
            f"cannot write shard {spec['id']} (patches {start}..{stop - 1}) to {out}: {e}"
        ) from None
    return record


# ----------------------------------------------------------------------------- manifest


def _identity(synth: Synth, settings: RenderSettings, sampling: dict, shard_size: int,
              probe: Probe = DEFAULT_PROBE) -> dict[str, Any]:
    ident = {
        "format": FORMAT,
        "version": VERSION,
        "synth": synth.identity(),
        "params": [s.to_dict() for s in synth.specs],
        "render": settings.to_dict(),
        "sampling": sampling,
        "storage": {"audio": AUDIO_DTYPE, "scale": "per-row peak / 32767", "shard_size": int(shard_size),
                    "n_samples": settings.n_samples},
    }
    if not probe.is_default:  # the default probe adds nothing: one-note identities stay as they were
        ident["probe"] = {"text": probe.text(), **probe.to_dict(),
                          "renders": [r.to_dict() for r in probe.renders(settings)]}
        ident["storage"]["n_renders"] = probe.n_renders()
    return ident


def _identity_hash(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in list(a) + [k for k in b if k not in a]:
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and prefix != "params":
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += _diff(x, y, f"{prefix}[{i}]")
        return out
    if prefix == "params" and a != b:
        na = [p.get("name") for p in a or []]
        nb = [p.get("name") for p in b or []]
        if na != nb:
            return [(prefix, f"{len(na)} parameters {na[:4]}...", f"{len(nb)} parameters {nb[:4]}...")]
        return [(f"params[{p['name']}]", "spec", "other spec") for p, q in zip(a, b) if p != q]
    return [] if a == b else [(prefix, a, b)]


def _committed_n(out: Path, ident: str, old: dict | None) -> int:
    """The largest ``n`` any run asked of this dataset: from the manifest and the shard records."""
    n = int(old["n"]) if old is not None and old.get("identity_sha256") == ident else 0
    return max([n] + [r["stop"] for r in list_records(out) if r["identity"] == ident])


def _write_manifest(out: Path, identity: dict, n: int, errors: list[dict], verify: bool = False) -> dict:
    """Rebuild manifest.json from the shard records (the records are the source of truth).

    Call it holding :func:`~synth_probe.dataset_files.manifest_lock`. The ``n`` written is the
    largest of ``n``, the current manifest's and the last row of any committed shard record of
    this dataset, so a run (or a ``--shard`` part) that finishes last never lowers ``n`` or drops
    a shard that another one committed.

    Raises
    ------
    DatasetError
        The manifest cannot be written (a full disk): the previous one is left as it was.
    """
    shards, missing, failed = [], [], []
    ident = _identity_hash(identity)
    size = identity["storage"]["shard_size"]
    n = max(int(n), _committed_n(out, ident, read_manifest(out)[0]))
    for k, a, b in shard_bounds(n, size):
        rec, why = check_shard(out, k, a, b, ident, verify=verify)
        if rec is None:
            missing.append({"id": k, "start": a, "stop": b, "why": why})
            continue
        shards.append({"id": k, "start": a, "stop": b, "n_stored": rec["n_stored"],
                       "sha256": {p: rec["files"][p]["sha256"] for p in ("audio", "rows")},
                       "bytes": {p: rec["files"][p]["bytes"] for p in ("audio", "rows")}})
        failed += rec["failed"]
    manifest = dict(identity)
    manifest.update({
        "identity_sha256": ident, "n": int(n), "libraries": library_versions(),
        "complete": not missing, "n_stored": int(sum(s["n_stored"] for s in shards)),
        "shards": shards, "missing_shards": missing, "failed_patches": failed, "errors": errors,
    })
    try:
        atomic_json(out / MANIFEST, manifest)
    except OSError as e:
        raise DatasetError(
            f"cannot write {out / MANIFEST}: {e.strerror or e}. Nothing is lost: the previous manifest and every "
            f"shard committed so far ({len(shards)} of {len(shards) + len(missing)}) are kept; free space (or "
            "fix the cause) and rerun the same command: it renders only what is missing and rebuilds the "
            "manifest from the shard records"
        ) from None
    return manifest


# ----------------------------------------------------------------------------- generation


@dataclass
class GenerateResult:
    """What a :func:`generate` call did."""

    out: Path
    n: int
    shards_total: int
    shards_in_part: int
    shards_rendered: int
    shards_reused: int
    renders: int
    seconds: float
    failed_shards: list[dict[str, Any]] = field(default_factory=list)
    failed_patches: list[dict[str, Any]] = field(default_factory=list)
    missing_shards: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    @property
    def ok(self) -> bool:
        """True when every shard of this part is complete."""
        return not self.failed_shards

    def summary(self) -> str:
        rate = self.renders / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"{self.out}: {self.shards_rendered} shard(s) rendered, {self.shards_reused} already complete, "
            f"{self.renders} renders in {self.seconds:.1f} s ({rate:.1f} renders/s); "
            f"dataset n={self.n}, {self.shards_total - len(self.missing_shards)}/{self.shards_total} shards present"
        ]
        if self.note:
            lines.append(f"  {self.note}")
        for r in self.repaired:
            lines.append(f"  re-rendered shard {r['id']}: {r['why']}")
        if self.failed_patches:
            idx = ", ".join(str(f["index"]) for f in self.failed_patches[:10])
            more = " ..." if len(self.failed_patches) > 10 else ""
            lines.append(f"  {len(self.failed_patches)} patch(es) failed twice and are not stored: {idx}{more}")
        for f in self.failed_shards:
            lines.append(f"  FAILED shard {f['id']} (patches {f['start']}..{f['stop'] - 1}): {f['message']}")
        if self.failed_shards:
            lines.append("  rerun the same command to render the missing shards")
        return "\n".join(lines)


def _parse_part(part: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if part is None:
        return None
    if isinstance(part, str):
        try:
            a, b = part.split("/")
            part = (int(a), int(b))
        except ValueError:
            raise ParameterValueError(f"--shard must be I/N with 0 <= I < N (e.g. 3/16), got {part!r}") from None
    i, n = int(part[0]), int(part[1])
    if not (n >= 1 and 0 <= i < n):
        raise ParameterValueError(f"--shard must be I/N with 0 <= I < N (e.g. 3/16), got {i}/{n}")
    return i, n


@dataclass(frozen=True)
class GenerateOptions:
    """How a :func:`generate` run samples, renders and stores; every field is also a keyword of ``generate``.

    Parameters
    ----------
    sampler, seed, fix, vary, grid
        See :func:`synth_probe.sampling.make_plan`.
    patches : path or DataFrame, optional
        Render these patches (rows of unit values) instead of sampling. Columns that are not
        parameters are kept as metadata (see :mod:`synth_probe.patch_table`).
    settings : RenderSettings, optional
        Note, velocity, lengths and sample rate (default ``RenderSettings()``).
    probe : Probe or str, optional
        The renders taken of each patch (:func:`synth_probe.probe.parse_probe`; default: the one
        note of ``settings``). With several, each patch's audio is ``(n_renders, n_samples)``.
    shard_size : int, default=500
        Patches per shard file.
    jobs : int, default=1
        Worker processes (``backend="process"``; "loky" is accepted as a synonym).
    part : "I/N" or (I, N), optional
        Render only shards ``k`` with ``k % N == I`` (Slurm array task ``I`` of ``N``).
    backend : {"process", "loky", "dask"}
    scheduler : str, optional
        Address of a running dask.distributed scheduler (``backend="dask"``);
        its workers must see ``out`` at the same path.
    timeout : float or None, default=120
        Seconds one render may take before its worker is stopped and its shard failed.
    progress : bool
        Show a progress bar (renders/s, time left).
    wait : bool, default=False
        Wait for another run holding the folder instead of refusing.
    on_wait : callable, optional
        Called with a message (who holds the folder) when this run starts to wait.
    """

    sampler: str = "all"
    seed: int = 0
    fix: Mapping[str, float] | None = None
    vary: Sequence[str] | None = None
    grid: int | None = None
    patches: str | os.PathLike | pd.DataFrame | None = None
    settings: RenderSettings | None = None
    probe: Probe | str | None = None
    shard_size: int = DEFAULT_SHARD_SIZE
    jobs: int = 1
    part: str | tuple[int, int] | None = None
    backend: str = "process"
    scheduler: str | None = None
    timeout: float | None = 120.0
    progress: bool = False
    wait: bool = False
    on_wait: Callable[[str], None] | None = None


def generate(
    synth: Synth | str,
    out: str | os.PathLike,
    n: int | None = None,
    options: GenerateOptions | None = None,
    **changes: Any,
) -> GenerateResult:
    """Render a dataset into ``out``, completing or extending what is there.

    One run writes a folder at a time: it holds the folder's lock from start to end, and a
    second run is refused naming the holder (host, pid), or waits with ``wait=True``. The parts
    of a ``part="I/N"`` array share the lock with each other (never with a whole run).

    Parameters
    ----------
    synth : Synth or str
    out : path
        Dataset folder (created if missing). A folder that holds anything else is refused
        before anything is written into it.
    n : int, optional
        Number of patches (required unless ``patches`` is given). A larger
        ``n`` than the folder holds extends it along the same seed stream; a smaller
        one never shrinks it.
    options : GenerateOptions, optional
        Sampling, rendering and storage (default ``GenerateOptions()``).
    **changes
        Fields of :class:`GenerateOptions` given as keywords (``jobs=4, seed=1``); they
        override ``options``.

    Returns
    -------
    GenerateResult

    Raises
    ------
    DatasetMismatchError
        ``out`` holds a dataset made with another synth or other settings.
    DatasetError
        ``out`` holds something else, is being written by another run, or cannot be written.
    TypeError
        A keyword that is not a field of :class:`GenerateOptions`.
    """
    t0 = time.perf_counter()
    opts = dataclasses.replace(options or GenerateOptions(), **changes)
    if isinstance(synth, str):
        synth = get_synth(synth)
    settings = opts.settings or RenderSettings()
    probe = parse_probe(opts.probe)
    seed, shard_size = int(opts.seed), int(opts.shard_size)
    _check_run_args(shard_size, seed, opts.backend, opts.scheduler)
    part_t = _parse_part(opts.part)
    n, plan, table, info, sampling = _patch_source(synth, n, opts, seed)
    out = Path(out)
    job = _Job(synth=synth, out=out, identity=_identity(synth, settings, sampling, shard_size, probe), seed=seed,
               settings=settings, plan=plan, table=table, info=info, part=part_t,
               renders=None if probe.is_default else probe.renders(settings))
    _check_out(out, job.identity)  # before anything is written into it
    try:
        (out / SHARDS).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DatasetError(f"cannot create the dataset folder {out}: {e.strerror or e}") from None
    what = f"generate n={n}" + (f", --shard {part_t[0]}/{part_t[1]}" if part_t else "")
    with run_lock(out, shared=part_t is not None, wait=opts.wait, what=what, on_wait=opts.on_wait):
        with manifest_lock(out):
            n, note = _open_folder(out, job.identity, n)
            clean_stale_tmp(out)
            n = _write_manifest(out, job.identity, n, errors=[])["n"]
        return _render_missing(job, opts, n, t0, note)


def _check_run_args(shard_size: int, seed: int, backend: str, scheduler: str | None) -> None:
    if shard_size < 1:
        raise ParameterValueError(f"shard_size must be >= 1, got {shard_size}")
    if seed < 0:
        raise ParameterValueError(f"seed must be >= 0, got {seed}")
    if backend not in ("process", "loky", "dask"):
        raise ParameterValueError(f"unknown backend {backend!r}; use process (alias loky) or dask")
    if backend == "dask" and not scheduler:
        raise ParameterValueError("backend dask needs the scheduler's address (--scheduler tcp://HOST:8786)")


@dataclass
class _Job:
    """What every shard of one generate run shares."""

    synth: Synth
    out: Path
    identity: dict[str, Any]
    seed: int
    settings: RenderSettings
    plan: SamplePlan | None
    table: np.ndarray | None
    info: pd.DataFrame | None
    part: tuple[int, int] | None
    renders: list[RenderSettings] | None = None

    @functools.cached_property
    def ident(self) -> str:
        return _identity_hash(self.identity)

    def spec(self, k: int, a: int, b: int) -> dict[str, Any]:
        """The task of shard ``k`` (patches ``a .. b-1``)."""
        s = {"id": k, "start": a, "stop": b, "out": str(self.out.resolve()), "seed": self.seed,
             "settings": self.settings, "identity_sha256": self.ident}
        if self.renders is not None:
            s["renders"] = self.renders
        if self.plan is not None:
            s["plan"] = self.plan
        else:
            s["vectors"] = self.table[a:b]
        if self.info is not None and self.info.shape[1]:
            s["meta"] = {"columns": list(self.info.columns), "index": list(range(a, b)),
                         "values": self.info.iloc[a:b].to_numpy().tolist()}
        return s


def _patch_source(synth: Synth, n: int | None, opts: GenerateOptions,
                  seed: int) -> tuple[int, SamplePlan | None, np.ndarray | None, pd.DataFrame | None, dict]:
    """``(n, plan, table, info, sampling settings)`` of a sampled or a given (table) dataset."""
    patches, sampler, fix, vary, grid = opts.patches, opts.sampler, opts.fix, opts.vary, opts.grid
    if patches is None:
        if n is None:
            raise ParameterValueError("give the number of patches (--n) or a patch table (--patches)")
        plan = make_plan(synth, sampler, fix=fix, vary=vary, grid=grid)
        sampling = dict(plan.settings, seed=seed)
        table = info = None
    else:
        if fix or vary or grid or sampler not in ("all", None):
            raise ParameterValueError("--patches renders the given patches; it cannot be combined with "
                                      "--sampler, --fix, --vary or --grid")
        if isinstance(patches, pd.DataFrame):
            df, info = split_patch_records(patches.to_dict(orient="records"), synth, "patches")
        else:
            df, info = read_patch_table(patches, synth, meta=True)
        plan, table = None, np.ascontiguousarray(df[synth.param_names].to_numpy(dtype=np.float64))
        if n is None:
            n = len(table)
        if int(n) > len(table):
            raise ParameterValueError(f"--n {n} is more than the {len(table)} patches in the table")
        desc = {"rows": int(len(table)), "sha256": hashlib.sha256(table.tobytes()).hexdigest(),
                "file": None if isinstance(patches, pd.DataFrame) else Path(patches).name}
        if (mi := meta_identity(info)) is not None:  # absent without metadata: older datasets keep their identity
            desc["meta"] = mi
        sampling = {"patches": desc, "seed": seed}
    if int(n) < 1:
        raise ParameterValueError(f"n must be >= 1, got {n}")
    return int(n), plan, table, info, sampling


def _mismatch(out: Path, old: dict, identity: dict) -> DatasetMismatchError | None:
    diffs = _diff({k: old.get(k) for k in identity}, identity)
    was, now = (d.get("probe", {}).get("text", "default") for d in (old, identity))
    if was != now:
        return DatasetMismatchError(
            f"{out} holds a dataset made with the probe {was!r}; this run asks for the probe {now!r}. Use another "
            "--out folder, or repeat the original probe to complete or extend it.",
            [("probe", was, now)] + diffs)
    if not diffs:
        return None
    lines = "; ".join(f"{f}: folder has {a!r}, this run asks for {b!r}" for f, a, b in diffs[:8])
    return DatasetMismatchError(
        f"{out} holds a dataset made with other settings ({lines}). "
        "Use another --out folder, or repeat the original settings to complete or extend it.",
        diffs,
    )


def _check_out(out: Path, identity: dict) -> None:
    """Refuse an output folder that is a file, holds something else, or another dataset; writes nothing."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DatasetError(f"{out} is a file, not a folder; choose an empty or new folder for the dataset")
    old, problem = read_manifest(out)
    if old is not None:
        if (e := _mismatch(out, old, identity)) is not None:
            raise e
        return
    foreign = foreign_entries(out)
    if foreign:
        raise DatasetError(f"{out} is not empty and holds no {MANIFEST} (it holds {', '.join(foreign[:5])}"
                           f"{' ...' if len(foreign) > 5 else ''}); choose an empty or new folder")
    if problem != "missing" and not (out / SHARDS).is_dir():
        raise DatasetError(f"{out} holds a {MANIFEST} that is not a synth_probe dataset manifest ({problem}); "
                           "choose an empty or new folder")


def _open_folder(out: Path, identity: dict, n: int) -> tuple[int, str | None]:
    """Check the folder against this run under the locks: ``(n, note)``.

    A manifest that is missing or damaged while shard records are there is rebuilt from the
    records when they all belong to this run's settings (``note`` says so); records of other
    settings are refused, since their settings cannot be read back without the manifest.
    """
    old, problem = read_manifest(out)
    if old is not None:
        if (e := _mismatch(out, old, identity)) is not None:
            raise e
        return max(n, int(old["n"])), None
    records = list_records(out)
    if problem == "missing" and not records:
        return n, None
    ident = _identity_hash(identity)
    other = [r["id"] for r in records if r["identity"] != ident]
    state = "missing" if problem == "missing" else f"damaged ({problem})"
    if other:
        raise DatasetMismatchError(
            f"{out}: {MANIFEST} is {state}, and {len(other)} of its {len(records)} shard records were made with "
            "other settings than this run's. Rerun the generate command that made the dataset, with the same "
            "settings (any --n), to rebuild the manifest from the shard records; or use another --out folder")
    return n, f"{MANIFEST} was {state}; rebuilt from {len(records)} shard record(s) (each shard this run covers is checked against its sha256)"


def _render_missing(job: _Job, opts: GenerateOptions, n: int, t0: float, note: str | None) -> GenerateResult:
    """Verify the shards of this part, render the missing or corrupted ones, rewrite the manifest."""
    out, ident, size = job.out, job.ident, job.identity["storage"]["shard_size"]
    bounds = shard_bounds(n, size)
    mine = [b for b in bounds if job.part is None or b[0] % job.part[1] == job.part[0]]
    todo, repaired, reused = [], [], 0
    for k, a, b in mine:
        rec, why = check_shard(out, k, a, b, ident, verify=True)
        if rec is None:
            todo.append((k, a, b))
            if why != "missing":
                repaired.append({"id": k, "why": why})
        else:
            reused += 1
    failed_shards: list[dict[str, Any]] = []
    renders = 0
    bar = None
    if opts.progress and todo:
        bar = Progress(sum(b - a for _, a, b in todo), f"generate {out.name}")
    by_key = {k: (a, b) for k, a, b in todo}
    specs = [job.spec(*t) for t in todo]
    try:
        if opts.backend == "dask":
            results = _run_dask(job.synth, specs, opts.scheduler, opts.timeout, bar)
        else:
            results = _run_local(job.synth, specs, opts.jobs, opts.timeout, bar)
        for key, res in results:
            a, b = by_key[key]
            if isinstance(res, TaskFailure):
                failed_shards.append({"id": key, "start": a, "stop": b, "kind": res.kind,
                                      "message": res.message, "patch_index": res.patch_index})
            else:
                renders += b - a
    finally:
        if bar is not None:
            bar.close()
        with manifest_lock(out):
            try:
                manifest = _write_manifest(out, job.identity, n, errors=failed_shards)
            except DatasetError as e:
                if not failed_shards:
                    raise
                f = failed_shards[0]
                raise DatasetError(f"{e} ({len(failed_shards)} shard(s) of this run failed too, e.g. shard "
                                   f"{f['id']}: {f['message']})") from None
    return GenerateResult(
        out=out, n=int(manifest["n"]), shards_total=len(shard_bounds(int(manifest["n"]), size)),
        shards_in_part=len(mine), shards_rendered=len(todo) - len(failed_shards), shards_reused=reused,
        renders=renders, seconds=time.perf_counter() - t0, failed_shards=failed_shards,
        failed_patches=manifest["failed_patches"], missing_shards=manifest["missing_shards"], repaired=repaired,
        note=note,
    )


def _run_local(synth: Synth, specs: list[dict], jobs: int, timeout: float | None, bar) -> Iterator[tuple[int, Any]]:
    """The shards on the worker pool (even at ``jobs=1``: a crash fails one shard); failures are collected.

    An interrupted run stops the workers mid-shard; their temporary files never count.
    """
    tasks = [Task(key=s["id"], func=render_shard, args=(s,)) for s in specs]
    on_done = (lambda i: bar.update(1)) if bar is not None else None
    return run_tasks(synth, tasks, jobs=jobs, on_failure="collect", timeout=timeout, on_done=on_done)


def _dask_shard(blob: bytes, spec: dict, timeout: float | None) -> Any:
    """A dask task: render one shard in a child process of the dask worker (engines never live in threads)."""
    synth = pickle.loads(blob)
    (key, res), = list(run_tasks(synth, [Task(key=spec["id"], func=render_shard, args=(spec,))],
                                 on_failure="collect", timeout=timeout))
    return res


def _run_dask(synth: Synth, specs: list[dict], scheduler: str, timeout: float | None, bar) -> Iterator[tuple[int, Any]]:
    if not specs:
        return
    try:
        from dask.distributed import Client, as_completed
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise DatasetError(f"the dask backend needs dask.distributed: {e}") from None
    try:
        client = Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise DatasetError(f"cannot reach the dask scheduler at {scheduler}: {e}") from None
    blob = pickle.dumps(synth)
    try:
        futures = {}
        for s in specs:
            f = client.submit(_dask_shard, blob, s, timeout, pure=False, key=f"synth-probe-shard-{s['id']}-{s['identity_sha256'][:12]}-{time.time_ns()}")
            futures[f] = s
        for f in as_completed(list(futures), loop=client.loop):
            s = futures[f]
            try:
                res = f.result()
            except Exception as e:  # noqa: BLE001 - the dask worker itself died or the task errored
                res = TaskFailure(s["id"], "error", f"dask task failed: {type(e).__name__}: {e}")
            if bar is not None:
                bar.update(s["stop"] - s["start"])
            yield s["id"], res
    finally:
        client.close()


if __name__ == "__main__":  # pragma: no cover
    print("use: synth-probe generate ...", file=sys.stderr)
