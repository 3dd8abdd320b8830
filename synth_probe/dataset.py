"""Datasets: sharded, resumable, reproducible generation and memory-mapped loading.

Layout of a dataset folder::

    manifest.json               synth identity (with DSP/binary hash), parameter specs,
                                render settings, sampler settings, storage, library
                                versions, n, and every shard with its checksums
    shards/shard-00000.audio.npy  int16 (m, n_samples): audio / row peak * 32767
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
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import pickle
import platform
import socket
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import (
    DatasetError,
    DatasetMismatchError,
    ParameterValueError,
    PatchFileError,
    RenderError,
)
from synth_probe.fileio import read_json
from synth_probe.render import Task, TaskFailure, WorkerPool, get_pool
from synth_probe.sampling import SamplePlan, make_plan, render_seeds
from synth_probe.synths.base import ParamSpec, RenderSettings, Synth
from synth_probe.synths.registry import get_synth

__all__ = [
    "Dataset",
    "GenerateResult",
    "generate",
    "load_dataset",
    "read_patch_table",
    "encode_audio",
    "decode_audio",
]

FORMAT = "synth_probe.dataset"
VERSION = 1
AUDIO_DTYPE = "int16"
FULL_SCALE = 32767.0
DEFAULT_SHARD_SIZE = 500
MANIFEST = "manifest.json"
SHARDS = "shards"


# ----------------------------------------------------------------------------- storage codec


def encode_audio(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize float audio to int16 with one scale per row (the row's peak maps to 32767).

    Parameters
    ----------
    audio : np.ndarray [shape=(m, n_samples)]

    Returns
    -------
    q : np.ndarray [shape=(m, n_samples), dtype=int16]
    scale : np.ndarray [shape=(m,), dtype=float32]
        ``audio ≈ q * scale[:, None]``.
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    peak = np.abs(audio).max(axis=1) if audio.shape[1] else np.zeros(len(audio), np.float32)
    scale = (peak / FULL_SCALE).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    q = np.clip(np.rint(audio / safe[:, None]), -FULL_SCALE, FULL_SCALE).astype(np.int16)
    return q, scale


def decode_audio(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_audio`: float32 ``(m, n_samples)``."""
    q = np.asarray(q)
    scale = np.asarray(scale, dtype=np.float32)
    if q.ndim == 1:
        return q.astype(np.float32) * scale
    return q.astype(np.float32) * scale[:, None]


def _rows_dtype(n_params: int) -> np.dtype:
    return np.dtype([("index", "<i8"), ("seed", "<i8"), ("scale", "<f4"), ("params", "<f8", (n_params,))])


# ----------------------------------------------------------------------------- files


class _HashingWriter:
    """A file wrapper that feeds everything written to sha256."""

    def __init__(self, f: io.BufferedWriter) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b: bytes | memoryview) -> int:
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def _atomic_write(path: Path, write) -> dict[str, Any]:
    """Write ``path`` through ``write(fileobj)`` to a temporary file, fsync, rename."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as f:
            hw = _HashingWriter(f)
            write(hw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return {"name": path.name, "sha256": hw.h.hexdigest(), "bytes": hw.n}


def _atomic_json(path: Path, obj: Any) -> None:
    data = (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()
    _atomic_write(path, lambda f: f.write(data))


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _shard_paths(out: Path, k: int) -> dict[str, Path]:
    base = out / SHARDS / f"shard-{k:05d}"
    return {"audio": Path(f"{base}.audio.npy"), "rows": Path(f"{base}.rows.npy"), "record": Path(f"{base}.json")}


@contextlib.contextmanager
def _locked(out: Path):
    with open(out / ".lock", "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _clean_stale_tmp(out: Path) -> None:
    """Remove temporary files that this host's dead processes left behind."""
    host = socket.gethostname()
    for p in list((out / SHARDS).glob(".*.tmp")) + list(out.glob(".*.tmp")):
        parts = p.name.rsplit(".", 3)
        if len(parts) != 4 or parts[1] != host:
            continue
        try:
            pid = int(parts[2])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                p.unlink()
        except PermissionError:  # pragma: no cover - another user's live process
            continue


# ----------------------------------------------------------------------------- the shard task (runs in a worker)


def _render_shard(ctx, spec: dict[str, Any]) -> dict[str, Any]:
    """Render shard ``spec["id"]`` in a worker and write it; return its record.

    A render that raises or comes back non-finite re-creates the synth
    instance and is retried once; a patch that fails twice is listed in the
    record and not stored.
    """
    start, stop = int(spec["start"]), int(spec["stop"])
    settings: RenderSettings = spec["settings"]
    plan: SamplePlan | None = spec.get("plan")
    if plan is not None:
        vectors, seeds = plan.rows(spec["seed"], start, stop)
    else:
        vectors = np.asarray(spec["vectors"], dtype=np.float64)
        seeds = render_seeds(spec["seed"], start, stop - start)
    m = stop - start
    q = np.empty((m, settings.n_samples), dtype=np.int16)
    rows = np.zeros(m, dtype=_rows_dtype(vectors.shape[1]))
    failed: list[dict[str, Any]] = []
    kept = 0
    for r in range(m):
        i = start + r
        ctx.start(i)
        audio, reasons = None, []
        for attempt in range(2):
            try:
                x = ctx.synth.render_vector(vectors[r], settings, seed=int(seeds[r]))
                if x.shape[-1] != settings.n_samples or x.ndim != 1:
                    raise RenderError(f"render returned shape {x.shape}, expected ({settings.n_samples},)")
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
    paths = _shard_paths(out, int(spec["id"]))
    try:
        files = {
            "audio": _atomic_write(paths["audio"], lambda f: np.save(f, q, allow_pickle=False)),
            "rows": _atomic_write(paths["rows"], lambda f: np.save(f, rows, allow_pickle=False)),
        }
        record = {
            "id": int(spec["id"]), "start": start, "stop": stop, "n_stored": int(kept),
            "identity": spec["identity_sha256"], "files": files, "failed": failed,
        }
        _atomic_json(paths["record"], record)
    except OSError as e:
        raise DatasetError(
            f"cannot write shard {spec['id']} (patches {start}..{stop - 1}) to {out}: {e}"
        ) from None
    return record


# ----------------------------------------------------------------------------- manifest


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a dataset's bytes."""
    from importlib import metadata

    from synth_probe import __version__

    out = {"python": platform.python_version(), "synth_probe": __version__}
    for lib in ("numpy", "pandas", "dawdreamer"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:  # pragma: no cover
            out[lib] = "absent"
    return out


def _identity(synth: Synth, settings: RenderSettings, sampling: dict, shard_size: int) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "synth": synth.identity(),
        "params": [s.to_dict() for s in synth.specs],
        "render": settings.to_dict(),
        "sampling": sampling,
        "storage": {"audio": AUDIO_DTYPE, "scale": "per-row peak / 32767", "shard_size": int(shard_size),
                    "n_samples": settings.n_samples},
    }


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


def _read_manifest(out: Path) -> dict[str, Any] | None:
    p = out / MANIFEST
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{p} is not a readable dataset manifest: {e}") from None


def _read_record(out: Path, k: int) -> dict[str, Any] | None:
    p = _shard_paths(out, k)["record"]
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _check_shard(out: Path, k: int, start: int, stop: int, ident: str, verify: bool) -> tuple[dict | None, str]:
    """The shard's record if the shard is complete and intact; else None and why."""
    rec = _read_record(out, k)
    if rec is None:
        return None, "missing"
    if rec.get("start") != start or rec.get("stop") != stop or rec.get("identity") != ident:
        return None, f"stale (holds patches {rec.get('start')}..{rec.get('stop', 0) - 1})"
    paths = _shard_paths(out, k)
    for part in ("audio", "rows"):
        info = rec["files"][part]
        p = paths[part]
        if not p.exists():
            return None, f"{p.name} is missing"
        if p.stat().st_size != info["bytes"]:
            return None, f"{p.name} has {p.stat().st_size} bytes, its record says {info['bytes']}"
        if verify and _sha256_file(p) != info["sha256"]:
            return None, f"{p.name} fails its sha256 checksum (corrupted)"
    return rec, "ok"


def _shard_bounds(n: int, shard_size: int) -> list[tuple[int, int, int]]:
    return [(k, k * shard_size, min((k + 1) * shard_size, n)) for k in range(math.ceil(n / shard_size))]


def _write_manifest(out: Path, identity: dict, n: int, errors: list[dict], verify: bool = False) -> dict:
    """Rebuild manifest.json from the shard records (the records are the source of truth)."""
    shards, missing, failed = [], [], []
    ident = _identity_hash(identity)
    size = identity["storage"]["shard_size"]
    for k, a, b in _shard_bounds(n, size):
        rec, why = _check_shard(out, k, a, b, ident, verify=verify)
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
    _atomic_json(out / MANIFEST, manifest)
    return manifest


# ----------------------------------------------------------------------------- patch tables


def read_patch_table(path: str | os.PathLike, synth: Synth) -> pd.DataFrame:
    """Read patches to render from a ``.csv`` (one column per parameter) or ``.json`` file.

    JSON may be a list of ``{name: value}`` objects (or ``{"params": {...}}``
    objects), ``{"patches": [...]}``, or an object of columns ``{name: [values]}``.
    Missing parameters take their defaults.

    Returns
    -------
    patches : pd.DataFrame [shape=(n, n_params)]
        Validated unit values in host order.
    """
    p = Path(path)
    if not p.exists():
        raise PatchFileError(f"patch table {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            table = pd.read_csv(p)
            records = table.to_dict(orient="records")
        elif suffix == ".json":
            data = read_json(p, error=PatchFileError, what="patch table", expect=(dict, list))
            if isinstance(data, dict) and isinstance(data.get("patches"), list):
                data = data["patches"]
            if isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
                records = pd.DataFrame(data).to_dict(orient="records")
            elif isinstance(data, list):
                records = [r["params"] if isinstance(r, dict) and isinstance(r.get("params"), dict) else r
                           for r in data]
            else:
                raise PatchFileError(
                    f"patch table {str(p)!r} holds a JSON {type(data).__name__}; expected a list of "
                    'patches such as [{"cutoff": 0.5}, ...] or columns such as {"cutoff": [0.5, 0.7]}'
                )
        else:
            raise PatchFileError(f"patch table {str(p)!r}: unsupported format {suffix!r}; use .csv or .json")
    except (OSError, ValueError, pd.errors.ParserError) as e:
        if isinstance(e, PatchFileError):
            raise
        raise PatchFileError(f"patch table {str(p)!r} cannot be read: {e}") from None
    if not records:
        raise PatchFileError(f"patch table {str(p)!r} holds no patches")
    vecs = np.empty((len(records), len(synth.specs)), dtype=np.float64)
    for r, rec in enumerate(records):
        try:
            vecs[r] = synth.patch_vector(rec)
        except (ParameterValueError, PatchFileError) as e:
            raise type(e)(f"patch table {str(p)!r}, row {r}: {e}") from None
    return pd.DataFrame(vecs, columns=synth.param_names)


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


def generate(
    synth: Synth | str,
    out: str | os.PathLike,
    n: int | None = None,
    *,
    sampler: str = "all",
    seed: int = 0,
    fix: Mapping[str, float] | None = None,
    vary: Sequence[str] | None = None,
    grid: int | None = None,
    patches: str | os.PathLike | pd.DataFrame | None = None,
    settings: RenderSettings | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    jobs: int = 1,
    part: str | tuple[int, int] | None = None,
    backend: str = "process",
    scheduler: str | None = None,
    timeout: float | None = 120.0,
    progress: bool = False,
) -> GenerateResult:
    """Render a dataset into ``out``, completing or extending what is there.

    Parameters
    ----------
    synth : Synth or str
    out : path
        Dataset folder (created if missing).
    n : int, optional
        Number of patches (required unless ``patches`` is given). A larger
        ``n`` than the folder holds extends it along the same seed stream.
    sampler, seed, fix, vary, grid
        See :func:`synth_probe.sampling.make_plan`.
    patches : path or DataFrame, optional
        Render these patches (rows of unit values) instead of sampling.
    settings : RenderSettings, optional
        Note, velocity, lengths and sample rate (default ``RenderSettings()``).
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

    Returns
    -------
    GenerateResult

    Raises
    ------
    DatasetMismatchError
        ``out`` holds a dataset made with another synth or other settings.
    """
    t0 = time.perf_counter()
    if isinstance(synth, str):
        synth = get_synth(synth)
    settings = settings or RenderSettings()
    shard_size = int(shard_size)
    if shard_size < 1:
        raise ParameterValueError(f"shard_size must be >= 1, got {shard_size}")
    if int(seed) < 0:
        raise ParameterValueError(f"seed must be >= 0, got {seed}")
    if backend not in ("process", "loky", "dask"):
        raise ParameterValueError(f"unknown backend {backend!r}; use process (alias loky) or dask")
    if backend == "dask" and not scheduler:
        raise ParameterValueError("backend dask needs the scheduler's address (--scheduler tcp://HOST:8786)")
    part_t = _parse_part(part)

    plan: SamplePlan | None = None
    table: np.ndarray | None = None
    if patches is not None:
        if fix or vary or grid or sampler not in ("all", None):
            raise ParameterValueError("--patches renders the given patches; it cannot be combined with "
                                      "--sampler, --fix, --vary or --grid")
        df = patches if isinstance(patches, pd.DataFrame) else read_patch_table(patches, synth)
        if isinstance(patches, pd.DataFrame):
            df = pd.DataFrame([synth.patch_vector(r) for r in df.to_dict(orient="records")],
                              columns=synth.param_names)
        table = np.ascontiguousarray(df[synth.param_names].to_numpy(dtype=np.float64))
        if n is None:
            n = len(table)
        if int(n) > len(table):
            raise ParameterValueError(f"--n {n} is more than the {len(table)} patches in the table")
        sampling = {"patches": {"rows": int(len(table)),
                                "sha256": hashlib.sha256(table.tobytes()).hexdigest(),
                                "file": None if isinstance(patches, pd.DataFrame) else Path(patches).name},
                    "seed": int(seed)}
    else:
        if n is None:
            raise ParameterValueError("give the number of patches (--n) or a patch table (--patches)")
        plan = make_plan(synth, sampler, fix=fix, vary=vary, grid=grid)
        sampling = dict(plan.settings, seed=int(seed))
    n = int(n)
    if n < 1:
        raise ParameterValueError(f"n must be >= 1, got {n}")

    out = Path(out)
    identity = _identity(synth, settings, sampling, shard_size)
    ident = _identity_hash(identity)
    out.mkdir(parents=True, exist_ok=True)
    (out / SHARDS).mkdir(exist_ok=True)
    with _locked(out):
        old = _read_manifest(out)
        if old is None:
            others = [p.name for p in out.iterdir() if p.name not in (SHARDS, ".lock")]
            if others or any((out / SHARDS).iterdir()):
                raise DatasetError(f"{out} is not empty and holds no {MANIFEST}; choose an empty or new folder")
        else:
            old_id = {k: old.get(k) for k in identity}
            diffs = _diff(old_id, identity)
            if diffs:
                lines = "; ".join(f"{f}: folder has {a!r}, this run asks for {b!r}" for f, a, b in diffs[:8])
                raise DatasetMismatchError(
                    f"{out} holds a dataset made with other settings ({lines}). "
                    "Use another --out folder, or repeat the original settings to complete or extend it.",
                    diffs,
                )
            n = max(n, int(old.get("n", 0)))
        _clean_stale_tmp(out)
        _write_manifest(out, identity, n, errors=[])

    bounds = _shard_bounds(n, shard_size)
    mine = [b for b in bounds if part_t is None or b[0] % part_t[1] == part_t[0]]
    todo, repaired, reused = [], [], 0
    for k, a, b in mine:
        rec, why = _check_shard(out, k, a, b, ident, verify=True)
        if rec is None:
            todo.append((k, a, b))
            if why != "missing":
                repaired.append({"id": k, "why": why})
        else:
            reused += 1

    def spec(k: int, a: int, b: int) -> dict[str, Any]:
        s = {"id": k, "start": a, "stop": b, "out": str(out.resolve()), "seed": int(seed), "settings": settings,
             "identity_sha256": ident}
        if plan is not None:
            s["plan"] = plan
        else:
            s["vectors"] = table[a:b]
        return s

    failed_shards: list[dict[str, Any]] = []
    renders = 0
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(b - a for _, a, b in todo), desc=f"generate {out.name}", unit="render",
                   smoothing=0.05, dynamic_ncols=True)
    by_key = {k: (a, b) for k, a, b in todo}
    try:
        if backend == "dask":
            results = _run_dask(synth, [spec(*t) for t in todo], scheduler, timeout, bar)
        else:
            results = _run_local(synth, [spec(*t) for t in todo], jobs, timeout, bar)
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
        with _locked(out):
            manifest = _write_manifest(out, identity, n, errors=failed_shards)
    return GenerateResult(
        out=out, n=n, shards_total=len(bounds), shards_in_part=len(mine), shards_rendered=len(todo) - len(failed_shards),
        shards_reused=reused, renders=renders, seconds=time.perf_counter() - t0, failed_shards=failed_shards,
        failed_patches=manifest["failed_patches"], missing_shards=manifest["missing_shards"], repaired=repaired,
    )


def _run_local(synth: Synth, specs: list[dict], jobs: int, timeout: float | None, bar) -> Iterator[tuple[int, Any]]:
    if not specs:
        return
    pool = get_pool(synth, jobs, timeout=timeout)
    tasks = [Task(key=s["id"], func="synth_probe.dataset:_render_shard", args=(s,)) for s in specs]
    on_done = (lambda i: bar.update(1)) if bar is not None else None
    ok = False
    try:
        yield from pool.run(tasks, jobs=jobs, on_done=on_done)
        ok = True
    finally:
        if not ok:  # interrupted: workers may be mid-shard; stop them (their temporary files never count)
            from synth_probe.render import discard_pool

            discard_pool(pool)


def _dask_shard(blob: bytes, spec: dict, timeout: float | None) -> Any:
    """A dask task: render one shard in a child process of the dask worker (engines never live in threads)."""
    synth = pickle.loads(blob)
    pool = get_pool(synth, 1, timeout=timeout)
    (key, res), = list(pool.run([Task(key=spec["id"], func="synth_probe.dataset:_render_shard", args=(spec,))]))
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


# ----------------------------------------------------------------------------- loading


class ShardedAudio:
    """Audio of a dataset as one ``(n, n_samples)`` float32 array, read lazily from memory-mapped shards.

    Indexing (an int, a slice or an integer array) reads only the rows asked
    for and returns float32; nothing is loaded up front.
    """

    def __init__(self, files: Sequence[Path], scales: np.ndarray, n_samples: int) -> None:
        self._maps = [np.load(f, mmap_mode="r") for f in files]
        counts = np.array([len(m) for m in self._maps], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._scales = np.asarray(scales, dtype=np.float32)
        self.n_samples = int(n_samples)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self._offsets[-1]), self.n_samples)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _locate(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shard = np.searchsorted(self._offsets, rows, side="right") - 1
        return shard, rows - self._offsets[shard]

    def raw(self, shard: int) -> np.ndarray:
        """The int16 memory map of one shard (no copy)."""
        return self._maps[shard]

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        if isinstance(key, tuple):
            row_key, rest = key[0], key[1:]
            return self[row_key][(slice(None),) * (0 if np.isscalar(row_key) or isinstance(row_key, (int, np.integer)) else 1) + rest]
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -n <= i < n:
                raise IndexError(f"row {i} is out of range for {n} rows")
            i %= n
            s, r = self._locate(np.array([i]))
            return decode_audio(self._maps[s[0]][r[0]], self._scales[i])
        if isinstance(key, slice):
            rows = np.arange(n)[key]
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            rows = np.where(rows < 0, rows + n, rows).astype(np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= n):
                raise IndexError(f"row index out of range for {n} rows")
        out = np.empty((len(rows), self.n_samples), dtype=np.float32)
        if not len(rows):
            return out
        shard, local = self._locate(rows)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self._maps[s][local[sel]].astype(np.float32)
        out *= self._scales[rows][:, None]
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[:]
        return a if dtype is None else a.astype(dtype)


class Dataset:
    """A dataset folder opened by :func:`load_dataset`.

    Attributes
    ----------
    audio : ShardedAudio [shape=(n_stored, n_samples)]
        float32 audio, memory-mapped (read on indexing).
    params : pd.DataFrame [shape=(n_stored, n_params)]
        Unit values, one column per parameter in host order, indexed by patch index.
    seeds : np.ndarray [shape=(n_stored,)]
        Render seed of each row.
    specs : list of ParamSpec
    meta : dict
        The manifest.
    failed : list of dict
        Patches that failed twice (index, reason) and are not stored.
    """

    def __init__(self, path: Path, meta: dict, records: list[dict]) -> None:
        self.path = path
        self.meta = meta
        self.settings = RenderSettings(**meta["render"])
        paths = [_shard_paths(path, r["id"]) for r in records]
        rows = [np.load(p["rows"]) for p in paths]
        n_params = len(meta["params"])
        allrows = np.concatenate(rows) if rows else np.zeros(0, dtype=_rows_dtype(n_params))
        names = [p["name"] for p in meta["params"]]
        self.params = pd.DataFrame(allrows["params"].reshape(-1, n_params), columns=names,
                                   index=pd.Index(allrows["index"], name="index"))
        self.seeds = allrows["seed"].copy()
        self.audio = ShardedAudio([p["audio"] for p in paths], allrows["scale"], self.settings.n_samples)
        self.failed = [f for r in records for f in r["failed"]]
        self.specs = _specs_from_meta(meta)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def sample_rate(self) -> int:
        return int(self.settings.sample_rate)

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, n={len(self)}, synth={self.meta['synth'].get('synth')!r}, "
                f"n_samples={self.settings.n_samples}, sample_rate={self.sample_rate})")

    def iter_batches(self, batch_size: int = 256, *, shuffle: bool = False, seed: int = 0
                     ) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """Yield ``(audio (b, n_samples) float32, params (b, n_params) DataFrame)`` batches.

        Memory holds one batch at a time. With ``shuffle``, shards are visited in
        a random order and rows are shuffled within each shard (reads stay local).
        """
        batch_size = int(batch_size)
        if batch_size < 1:
            raise ParameterValueError(f"batch_size must be >= 1, got {batch_size}")
        offs = self.audio._offsets
        order = np.arange(len(offs) - 1)
        rng = np.random.default_rng(seed)
        if shuffle:
            rng.shuffle(order)
        rows = [np.arange(offs[s], offs[s + 1]) for s in order]
        if shuffle:
            rows = [rng.permutation(r) for r in rows]
        flat = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        for a in range(0, len(flat), batch_size):
            idx = flat[a:a + batch_size]
            yield self.audio[idx], self.params.iloc[idx]


def _specs_from_meta(meta: dict) -> list[ParamSpec]:
    dicts = meta["params"]
    if meta["synth"].get("synth") == "noisemaker":
        from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

        if [s.to_dict() for s in NOISEMAKER_SPECS] == dicts:
            return list(NOISEMAKER_SPECS)
    out = []
    for d in dicts:
        d = dict(d)
        d.pop("range", None)
        d["choices"] = tuple(d.get("choices", ()))
        d["choice_values"] = tuple(d.get("choice_values", ()))
        out.append(ParamSpec(**d))
    return out


def load_dataset(path: str | os.PathLike, *, verify: bool = True, allow_incomplete: bool = False) -> Dataset:
    """Open a dataset folder without loading its audio.

    Parameters
    ----------
    path : path
        The folder ``synth-probe generate --out`` wrote.
    verify : bool, default=True
        Check every shard file against its sha256 (reads the files once);
        ``False`` checks sizes only.
    allow_incomplete : bool, default=False
        Open a dataset with missing shards (they are left out) instead of raising.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        Not a dataset, a shard missing (unless ``allow_incomplete``) or corrupted.
    """
    p = Path(path)
    if not p.is_dir():
        raise DatasetError(f"dataset folder {str(p)!r} does not exist")
    meta = _read_manifest(p)
    if meta is None or meta.get("format") != FORMAT:
        raise DatasetError(f"{p} holds no synth_probe dataset ({MANIFEST} is missing); make one with synth-probe generate")
    if meta.get("version") != VERSION:
        raise DatasetError(f"{p} has dataset format version {meta.get('version')}; this synth_probe reads {VERSION}")
    ident = meta["identity_sha256"]
    records, missing, corrupt = [], [], []
    for k, a, b in _shard_bounds(int(meta["n"]), int(meta["storage"]["shard_size"])):
        rec, why = _check_shard(p, k, a, b, ident, verify=verify)
        if rec is None:
            (corrupt if "checksum" in why or "bytes" in why else missing).append(f"shard {k} ({why})")
        else:
            records.append(rec)
    if corrupt:
        raise DatasetError(f"{p}: corrupted shard(s): {'; '.join(corrupt)}. Rerun the generate command that made "
                           "the dataset to re-render them.")
    if missing and not allow_incomplete:
        raise DatasetError(f"{p} is incomplete: {len(missing)} shard(s) missing ({'; '.join(missing[:5])}). "
                           "Rerun the generate command to complete it, or pass allow_incomplete=True.")
    return Dataset(p, meta, records)


if __name__ == "__main__":  # pragma: no cover
    print("use: synth-probe generate ...", file=sys.stderr)
