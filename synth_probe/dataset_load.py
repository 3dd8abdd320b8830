"""Loading a dataset folder: memory-mapped audio, parameters, metadata, verified against the checksums.

See :mod:`synth_probe.dataset` for the layout and :func:`load_dataset` for the checks.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.dataset_files import (
    MANIFEST,
    VERSION,
    check_shard,
    decode_audio,
    list_records,
    read_manifest,
    rows_dtype,
    shard_bounds,
    shard_paths,
)
from synth_probe.errors import DatasetError, ParameterValueError
from synth_probe.probe import Probe
from synth_probe.synths.base import ParamSpec, RenderSettings
from synth_probe.synths.registry import builtin_specs

__all__ = ["Dataset", "ShardedAudio", "load_dataset"]


class ShardedAudio:
    """Audio of a dataset as one ``(n, n_samples)`` float32 array, read lazily from memory-mapped shards.

    With a probe of several renders the array is ``(n, n_renders, n_samples)`` (``n_renders``
    given). Indexing (an int, a slice or an integer array) reads only the rows asked
    for and returns float32; nothing is loaded up front.
    """

    def __init__(self, files: Sequence[Path], scales: np.ndarray, n_samples: int,
                 n_renders: int | None = None) -> None:
        self._maps = [np.load(f, mmap_mode="r") for f in files]
        counts = np.array([len(m) for m in self._maps], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self._scales = np.asarray(scales, dtype=np.float32)
        self.n_samples = int(n_samples)
        self.row_shape = (self.n_samples,) if n_renders is None else (int(n_renders), self.n_samples)

    @property
    def shape(self) -> tuple[int, ...]:
        return (int(self._offsets[-1]), *self.row_shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

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
        out = np.empty((len(rows), *self.row_shape), dtype=np.float32)
        if not len(rows):
            return out
        shard, local = self._locate(rows)
        for s in np.unique(shard):
            sel = shard == s
            out[sel] = self._maps[s][local[sel]].astype(np.float32)
        out *= self._scales[rows].reshape((-1,) + (1,) * len(self.row_shape))
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[:]
        return a if dtype is None else a.astype(dtype)


class Dataset:
    """A dataset folder opened by :func:`load_dataset`.

    Attributes
    ----------
    audio : ShardedAudio [shape=(n_stored, n_samples) or (n_stored, n_renders, n_samples)]
        float32 audio, memory-mapped (read on indexing); the second form for a probe of several renders.
    probe : Probe
        The renders taken of each patch (:mod:`synth_probe.probe`; the default: one note).
    params : pd.DataFrame [shape=(n_stored, n_params)]
        Unit values, one column per parameter in host order, indexed by patch index.
    seeds : np.ndarray [shape=(n_stored,)]
        Render seed of each row.
    specs : list of ParamSpec
    meta : dict
        The manifest.
    patch_info : pd.DataFrame [shape=(n_stored, n_meta)]
        Metadata of each row, indexed like ``params``: the text columns of the patch table the
        dataset was rendered from (program name, bank...); no columns for a sampled dataset or
        one made before metadata was kept.
    failed : list of dict
        Patches that failed twice (index, reason) and are not stored.
    """

    def __init__(self, path: Path, meta: dict, records: list[dict]) -> None:
        self.path = path
        self.meta = meta
        self.settings = RenderSettings(**meta["render"])
        paths = [shard_paths(path, r["id"]) for r in records]
        rows = [np.load(p["rows"]) for p in paths]
        n_params = len(meta["params"])
        allrows = np.concatenate(rows) if rows else np.zeros(0, dtype=rows_dtype(n_params))
        names = [p["name"] for p in meta["params"]]
        self.params = pd.DataFrame(allrows["params"].reshape(-1, n_params), columns=names,
                                   index=pd.Index(allrows["index"], name="index"))
        self.seeds = allrows["seed"].copy()
        self.probe = Probe.from_dict(meta.get("probe"))
        self.audio = ShardedAudio([p["audio"] for p in paths], allrows["scale"], self.settings.n_samples,
                                  None if self.probe.is_default else self.probe.n_renders())
        self.failed = [f for r in records for f in r["failed"]]
        self.specs = _specs_from_meta(meta)
        self.patch_info = _patch_info(meta, records, self.params.index)

    def __len__(self) -> int:
        return len(self.params)

    @property
    def sample_rate(self) -> int:
        return int(self.settings.sample_rate)

    def __repr__(self) -> str:
        return (f"Dataset({str(self.path)!r}, n={len(self)}, synth={self.meta['synth'].get('synth')!r}, "
                f"n_samples={self.settings.n_samples}, sample_rate={self.sample_rate})")

    def labels(self, index: Sequence[int] | np.ndarray) -> list[str]:
        """Short names of rows for reports: the program name where the dataset has one, else "".

        Parameters
        ----------
        index : sequence of int [shape=(k,)]
            Patch indices (values of ``params.index``, as reports show them).

        Returns
        -------
        list of str [length k]
            The first metadata column named like a program (name, program, preset, patch, title),
            else the first metadata column; "" for a row without metadata.
        """
        info = self.patch_info
        if info.shape[1] == 0:
            return ["" for _ in index]
        names = {str(c).lower(): c for c in info.columns}
        col = next((names[k] for k in ("name", "program", "preset", "patch", "title") if k in names), info.columns[0])
        values = info[col]
        return ["" if (v := values.get(int(i))) is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                for i in index]

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


def _patch_info(meta: dict, records: list[dict], index: pd.Index) -> pd.DataFrame:
    """The metadata columns of the stored rows (from the shard records), aligned with ``index``."""
    desc = (meta.get("sampling") or {}).get("patches") or {}
    columns = list((desc.get("meta") or {}).get("columns") or [])
    if not columns:
        return pd.DataFrame(index=index.copy())
    by_index: dict[int, list] = {}
    for r in records:
        m = r.get("meta")
        if isinstance(m, dict) and m.get("columns") == columns:
            by_index.update(zip(m.get("index", []), m.get("values", [])))
    empty = [None] * len(columns)
    return pd.DataFrame([by_index.get(int(i), empty) for i in index], columns=columns, index=index.copy(),
                        dtype=object)


def _specs_from_meta(meta: dict) -> list[ParamSpec]:
    dicts = meta["params"]
    builtin = builtin_specs(str(meta["synth"].get("synth")))
    if builtin is not None and [s.to_dict() for s in builtin] == dicts:
        return list(builtin)
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
    meta, problem = read_manifest(p)
    if meta is None:
        n_records = len(list_records(p))
        if problem == "missing" and not n_records:
            raise DatasetError(f"{p} holds no synth_probe dataset ({MANIFEST} is missing); make one with "
                               "synth-probe generate")
        state = "missing" if problem == "missing" else f"damaged ({problem})"
        found = (f"its {n_records} shard records are there: rerun the generate command that made the dataset, "
                 "with the same settings (any --n), to rebuild the manifest from the shard records"
                 if n_records else "it has no shard records: rerun the generate command that made the dataset")
        raise DatasetError(f"{p}: {MANIFEST} is {state}; {found}")
    if meta.get("version") != VERSION:
        raise DatasetError(f"{p} has dataset format version {meta.get('version')}; this synth_probe reads {VERSION}")
    ident = meta["identity_sha256"]
    records, missing, corrupt = [], [], []
    for k, a, b in shard_bounds(int(meta["n"]), int(meta["storage"]["shard_size"])):
        rec, why = check_shard(p, k, a, b, ident, verify=verify)
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
    try:
        return Dataset(p, meta, records)
    except (KeyError, TypeError, ValueError) as e:  # what the manifest's structure check cannot see
        raise DatasetError(f"{p} cannot be opened ({type(e).__name__}: {e}): its {MANIFEST} or a shard file is "
                           "damaged. If the manifest was edited, restore it, or delete it and rerun the generate "
                           "command that made the dataset, with the same settings: it rebuilds the manifest from "
                           "the shard records and re-renders any shard that fails its checksum") from None
