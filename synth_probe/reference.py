"""Probe tables and reference folders: patches with their notes, labels and (optionally) recorded audio.

A *probe table* is a CSV with one row per probe: an id column (``probe_id`` or
``id``), optional ``set``, ``note`` and ``velocity`` columns, one column per
parameter name (unit values in [0, 1]; missing parameters take the synth's
defaults), and any number of text columns that are not parameters (a program
name, a bank), kept as labels. A *reference folder* is a probe table
``probes.csv`` whose ``file`` column names an audio file per probe, relative to
the folder, plus an optional ``settings.json`` that documents how the audio was
rendered::

    {"sample_rate": 44100, "note_length": 1.0, "render_length": 2.0}

Without it the folder is read as the calibration data is documented: the note
starts at 0 and is released at 1.0 s, the render length is the files' common
length (2.0 s when they differ), the sample rate is the files' own. Multi-channel
files are mixed to mono as the mean of their channels.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.dataset import read_patch_table
from synth_probe.errors import PatchFileError, ReferenceDataError, SamplerError, SynthProbeError, closest_names
from synth_probe.fileio import read_json
from synth_probe.sampling import sample_patches
from synth_probe.synths.base import Synth

__all__ = [
    "ProbeTable",
    "ReferenceFolder",
    "read_probe_table",
    "probes_from_vectors",
    "sampled_probes",
    "patch_table_probes",
    "open_reference_folder",
    "load_mono",
    "is_reference_folder",
    "SETTINGS_KEYS",
    "DEFAULT_NOTE_LENGTH",
    "DEFAULT_RENDER_LENGTH",
]

ID_COLUMNS = ("probe_id", "id")
META_COLUMNS = ("set", "note", "velocity", "file")
#: keys a reference folder's settings.json may hold
SETTINGS_KEYS = ("sample_rate", "note_length", "render_length", "note_on", "channels", "description")
DEFAULT_NOTE_LENGTH = 1.0
DEFAULT_RENDER_LENGTH = 2.0


@dataclass
class ProbeTable:
    """Patches to compare, one row per probe.

    Attributes
    ----------
    ids : list of str [length n]
    names : list of str [length n_params]
        Parameter names of ``vectors``' columns (the synth's host order).
    vectors : np.ndarray [shape=(n, n_params)]
        Validated unit values.
    notes, velocities : np.ndarray [shape=(n,), dtype=int64]
    sets : list of str or None
        The ``set`` column, when the table has one.
    labels : dict of str to list of str
        Text columns that are not parameters, in table order.
    files : list of str or None
        The ``file`` column (paths relative to the table's folder).
    source : str
        Where the probes came from (a path or a sampler description).
    """

    ids: list[str]
    names: list[str]
    vectors: np.ndarray
    notes: np.ndarray
    velocities: np.ndarray
    sets: list[str] | None = None
    labels: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    def patch_keys(self) -> np.ndarray:
        """One key per probe; probes with equal keys play the same patch on the same note and velocity.

        Returns
        -------
        keys : np.ndarray [shape=(n,), dtype=object]
        """
        out = np.empty(len(self), dtype=object)
        q = np.round(self.vectors, 9)
        for i in range(len(self)):
            h = hashlib.sha1(q[i].tobytes())
            h.update(f"{int(self.notes[i])}/{int(self.velocities[i])}".encode())
            out[i] = h.hexdigest()
        return out

    def patch(self, i: int) -> dict[str, float]:
        """Probe ``i`` as a patch dict of every parameter name."""
        return dict(zip(self.names, map(float, self.vectors[i])))


def probes_from_vectors(vectors: np.ndarray, names: list[str], *, note: int = 60, velocity: int = 100,
                        source: str = "", ids: list[str] | None = None) -> ProbeTable:
    """A probe table of given unit vectors, all on one note and velocity.

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, len(names))]
    names : list of str
    note, velocity : int
    source : str
    ids : list of str, optional
        Default: the row numbers.

    Returns
    -------
    probes : ProbeTable
    """
    v = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n = len(v)
    return ProbeTable(ids=list(ids) if ids is not None else [str(i) for i in range(n)], names=list(names),
                      vectors=v, notes=np.full(n, int(note), np.int64),
                      velocities=np.full(n, int(velocity), np.int64), source=source)


def sampled_probes(synth: Synth, n: int, *, sampler: str | None = None, seed: int = 0, note: int = 60,
                   velocity: int = 100) -> ProbeTable:
    """``n`` random patches of a sampler (:func:`synth_probe.sampling.sample_patches`) as probes.

    Parameters
    ----------
    synth : Synth
    n : int
    sampler : str, optional
        Default: ``timbral``, or ``all`` for a synth without TAL-NoiseMaker's names.
    seed : int
    note, velocity : int

    Returns
    -------
    probes : ProbeTable
        Ids are the row numbers of the sampler's stream.
    """
    name = sampler or "timbral"
    try:
        df = sample_patches(synth, int(n), sampler=name, seed=int(seed))
    except SamplerError:
        if sampler is not None:
            raise
        name = "all"
        df = sample_patches(synth, int(n), sampler=name, seed=int(seed))
    return probes_from_vectors(df[list(synth.param_names)].to_numpy(dtype=np.float64), list(synth.param_names),
                               note=note, velocity=velocity, source=f"sampler {name}, n {int(n)}, seed {int(seed)}")


def patch_table_probes(path: str | os.PathLike, synth: Synth, *, note: int = 60, velocity: int = 100) -> ProbeTable:
    """Probes from a patch table: a CSV probe table, or a JSON table of :func:`synth_probe.dataset.read_patch_table`.

    ``note`` and ``velocity`` apply where the table has no such columns.
    """
    if Path(path).suffix.lower() != ".json":
        return read_probe_table(path, synth, note=note, velocity=velocity)
    df = read_patch_table(path, synth)
    return probes_from_vectors(df.to_numpy(dtype=np.float64), list(synth.param_names), note=note, velocity=velocity,
                               source=str(path))


def _int_column(df: pd.DataFrame, col: str, lo: int, hi: int, default: int, where: str,
                error: type[SynthProbeError]) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), default, np.int64)
    vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(vals) | (vals != np.round(vals)) | (vals < lo) | (vals > hi))
    if len(bad):
        r = int(bad[0])
        raise error(f"{where}, row {r + 1}: {col} {df[col].iloc[r]!r} is not a whole number in {lo}..{hi}")
    return vals.astype(np.int64)


def _split_columns(df: pd.DataFrame, synth: Synth, where: str, error: type[SynthProbeError]
                   ) -> tuple[list[str], list[str]]:
    """Parameter columns and label columns; a numeric column that names no parameter is refused."""
    names = set(synth.param_names)
    params, labels = [], []
    for col in df.columns:
        if col in ID_COLUMNS or col in META_COLUMNS:
            continue
        if col in names:
            params.append(col)
        elif pd.api.types.is_numeric_dtype(df[col]) and df[col].notna().any():
            hint = closest_names(str(col), synth.param_names)
            did = f" Did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
            raise error(
                f"{where}: column {col!r} names no parameter of {synth.name} and holds numbers.{did} "
                f"Columns of text (a program name, a bank) are kept as labels; the reserved columns are "
                f"{', '.join(ID_COLUMNS + META_COLUMNS)}."
            )
        else:
            labels.append(col)
    return params, labels


def _param_vectors(df: pd.DataFrame, params: list[str], synth: Synth, ids: list[str], where: str,
                   error: type[SynthProbeError]) -> np.ndarray:
    vecs = np.tile(synth.patch_vector(), (len(df), 1))
    index = {n: i for i, n in enumerate(synth.param_names)}
    for col in params:
        vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(vals) | (vals < 0.0) | (vals > 1.0))
        if len(bad):
            r = int(bad[0])
            raise error(f"{where}, row {r + 1} (id {ids[r]}): parameter {col!r} has value {df[col].iloc[r]!r}; "
                        "unit values are numbers in [0, 1]")
        vecs[:, index[col]] = vals
    # discrete values are checked and kept as given, as patch_vector would
    return vecs


def read_probe_table(path: str | os.PathLike, synth: Synth, *, require_file: bool = False, note: int = 60,
                     velocity: int = 100) -> ProbeTable:
    """Read a probe table (CSV) against ``synth``'s parameter names.

    Parameters
    ----------
    path : path
        A ``.csv`` table; see the module docstring for its columns.
    synth : Synth
        The synth whose parameter names the columns must use.
    require_file : bool
        Whether a ``file`` column is required (a reference folder's ``probes.csv``).
    note, velocity : int
        For a table without ``note`` or ``velocity`` columns.

    Returns
    -------
    probes : ProbeTable

    Raises
    ------
    ReferenceDataError
        With ``require_file``: a table that cannot be read or used.
    PatchFileError
        Otherwise.
    """
    p = Path(path)
    error: type[SynthProbeError] = ReferenceDataError if require_file else PatchFileError
    where = str(p)
    if not p.is_file():
        raise error(f"probe table {where!r} does not exist")
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise error(f"probe table {where!r} cannot be read as CSV: {e}") from None
    if df.empty:
        raise error(f"probe table {where!r} holds no rows")
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    ids = [str(x) for x in df[id_col]] if id_col else [str(i) for i in range(len(df))]
    if id_col:
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].unique()
        if len(dup):
            raise error(f"{where}: ids must be unique; repeated: {', '.join(map(str, dup[:5]))}")
    if require_file and "file" not in df.columns:
        raise error(f"{where} has no 'file' column: a reference folder's probes.csv names each probe's audio file "
                    "(relative to the folder) in a column 'file'")
    params, label_cols = _split_columns(df, synth, where, error)
    if not params:
        raise error(f"{where}: no column names a parameter of {synth.name} (e.g. {', '.join(synth.param_names[:4])})")
    notes = _int_column(df, "note", 0, 127, int(note), where, error)
    vels = _int_column(df, "velocity", 1, 127, int(velocity), where, error)
    vecs = _param_vectors(df, params, synth, ids, where, error)
    sets = [("" if pd.isna(x) else str(x)) for x in df["set"]] if "set" in df.columns else None
    labels = {c: [("" if pd.isna(x) else str(x)) for x in df[c]] for c in label_cols}
    files = None
    if "file" in df.columns:
        files = [("" if pd.isna(x) else str(x)) for x in df["file"]]
    return ProbeTable(ids=ids, names=list(synth.param_names), vectors=vecs, notes=notes, velocities=vels,
                      sets=sets, labels=labels, files=files, source=where)


@dataclass
class ReferenceFolder:
    """A folder of reference audio with its patches (see the module docstring).

    Attributes
    ----------
    path : Path
    probes : ProbeTable
        With ``files`` resolved against the folder.
    sample_rate : int
    note_length, render_length : float
        Seconds.
    settings_source : str
        ``"settings.json"`` or ``"defaults"`` (per key: which keys the file gave).
    documented : dict
        The keys that settings.json gave.
    n_adjusted : int
        Files whose length differs from the render length (zero-padded or cut).
    channels : int
        The most channels any file has.
    """

    path: Path
    probes: ProbeTable
    sample_rate: int
    note_length: float
    render_length: float
    settings_source: str
    documented: dict[str, Any]
    n_adjusted: int
    channels: int

    @property
    def n_samples(self) -> int:
        return int(round(self.render_length * self.sample_rate))

    def paths(self) -> list[Path]:
        """Absolute paths of the probes' audio files, in probe order."""
        return [self.path / f for f in self.probes.files or []]

    def describe(self) -> dict[str, Any]:
        """Plain description for reports."""
        return {"folder": str(self.path), "probes": len(self.probes), "sample_rate": self.sample_rate,
                "note_length": self.note_length, "render_length": self.render_length,
                "settings": self.settings_source, "documented": dict(self.documented),
                "files_adjusted": self.n_adjusted, "channels": self.channels,
                "labels": list(self.probes.labels), "sets": sorted(set(self.probes.sets or []))}


def is_reference_folder(path: str | os.PathLike) -> bool:
    """True for a folder holding ``probes.csv`` (a VST3 bundle is a folder too, but holds none)."""
    p = Path(path)
    return p.is_dir() and (p / "probes.csv").is_file()


def _read_settings(folder: Path) -> dict[str, Any]:
    p = folder / "settings.json"
    if not p.exists():
        return {}
    data = read_json(p, error=ReferenceDataError, what="reference settings",
                     hint='expected an object such as {"sample_rate": 44100, "note_length": 1.0, "render_length": 2.0}')
    for k in data:
        if k not in SETTINGS_KEYS:
            hint = closest_names(str(k), SETTINGS_KEYS)
            did = f" Did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
            raise ReferenceDataError(f"{p}: unknown key {k!r}.{did} Valid keys: {', '.join(SETTINGS_KEYS)}")
    for k in ("sample_rate", "note_length", "render_length", "note_on"):
        if k in data and not (isinstance(data[k], (int, float)) and not isinstance(data[k], bool)
                              and math.isfinite(data[k]) and data[k] >= 0):
            raise ReferenceDataError(f"{p}: {k} must be a number >= 0, got {data[k]!r}")
    if data.get("note_on", 0) != 0:
        raise ReferenceDataError(f"{p}: note_on {data['note_on']!r} is not supported; the note must start at 0 s")
    if data.get("channels", "mean") != "mean":
        raise ReferenceDataError(f"{p}: channels {data['channels']!r} is not supported; files are mixed to mono "
                                   "as the mean of their channels ('mean')")
    if "render_length" in data and data["render_length"] <= 0:
        raise ReferenceDataError(f"{p}: render_length must be > 0 s")
    return data


def _resolve_files(folder: Path, probes: ProbeTable) -> list[Path]:
    root = folder.resolve()
    paths, missing = [], []
    for i, f in enumerate(probes.files or []):
        rel = Path(f)
        if not f or rel.is_absolute() or ".." in rel.parts:
            raise ReferenceDataError(
                f"{folder / 'probes.csv'}, row {i + 1} (id {probes.ids[i]}): file {f!r} must be a path relative to "
                "the folder, inside it")
        p = folder / rel
        if not p.is_file():
            missing.append((i, f))
        paths.append(p)
    if missing:
        present = sorted(str(x.relative_to(root)) for x in root.rglob("*") if x.is_file()
                         and x.suffix.lower() in (".flac", ".wav", ".ogg", ".aiff", ".aif"))[:20000]
        lines = []
        for i, f in missing[:5]:
            hint = closest_names(f, present)
            close = f" (closest: {', '.join(hint)})" if hint else ""
            lines.append(f"row {i + 1} (id {probes.ids[i]}): {f!r}{close}")
        more = f"; and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ReferenceDataError(f"{len(missing)} audio file(s) named in {folder / 'probes.csv'} do not exist: "
                                   + "; ".join(lines) + more)
    return paths


def open_reference_folder(path: str | os.PathLike, synth: Synth, *, note_length: float | None = None,
                          render_length: float | None = None) -> ReferenceFolder:
    """Read a reference folder's probes, check its audio files and settle its render settings.

    Parameters
    ----------
    path : path
        The folder (``probes.csv``, audio files, optional ``settings.json``).
    synth : Synth
        Whose parameter names ``probes.csv`` uses.
    note_length, render_length : float, optional
        Seconds, for a folder whose settings.json does not document them; a value that contradicts
        settings.json is refused.

    Returns
    -------
    folder : ReferenceFolder

    Raises
    ------
    ReferenceDataError
        No probes.csv, a missing or unreadable audio file, mixed sample rates, a bad settings.json.
    """
    import soundfile as sf

    folder = Path(path)
    if not folder.is_dir():
        raise ReferenceDataError(f"reference folder {str(folder)!r} does not exist")
    if not (folder / "probes.csv").is_file():
        raise ReferenceDataError(f"{str(folder)!r} holds no probes.csv: a reference folder lists its probes "
                                   "(id, parameters, file) in probes.csv")
    doc = _read_settings(folder)
    probes = read_probe_table(folder / "probes.csv", synth, require_file=True)
    paths = _resolve_files(folder, probes)
    rates, frames, chans = np.empty(len(paths), np.int64), np.empty(len(paths), np.int64), 1
    for i, p in enumerate(paths):
        try:
            info = sf.info(str(p))
        except (RuntimeError, OSError, sf.LibsndfileError) as e:
            raise ReferenceDataError(f"audio file {str(p)!r} (id {probes.ids[i]}) cannot be read: {e}") from None
        rates[i], frames[i], chans = info.samplerate, info.frames, max(chans, info.channels)
    if len(set(rates.tolist())) > 1:
        vals, counts = np.unique(rates, return_counts=True)
        raise ReferenceDataError(f"the audio files of {folder} have different sample rates: "
                                   + ", ".join(f"{c} at {v} Hz" for v, c in zip(vals, counts)))
    sr = int(rates[0])
    if "sample_rate" in doc and int(doc["sample_rate"]) != sr:
        raise ReferenceDataError(f"{folder / 'settings.json'} says sample_rate {doc['sample_rate']}, "
                                   f"but the audio files are at {sr} Hz")
    for key, given in (("note_length", note_length), ("render_length", render_length)):
        if given is not None and key in doc and not math.isclose(float(given), float(doc[key])):
            raise ReferenceDataError(f"{key} {given:g} s contradicts {folder / 'settings.json'} ({doc[key]:g} s)")
    common = frames[0] / sr if len(set(frames.tolist())) == 1 else DEFAULT_RENDER_LENGTH
    rl = float(doc.get("render_length", render_length if render_length is not None else common))
    nl = float(doc.get("note_length", note_length if note_length is not None else DEFAULT_NOTE_LENGTH))
    n_samples = int(round(rl * sr))
    probes.files = [str(p.relative_to(folder)) for p in paths]
    return ReferenceFolder(path=folder, probes=probes, sample_rate=sr, note_length=nl, render_length=rl,
                           settings_source="settings.json" if doc else "defaults", documented=doc,
                           n_adjusted=int(np.sum(frames != n_samples)), channels=int(chans))


def load_mono(paths: list[Path] | list[str], n_samples: int) -> np.ndarray:
    """Audio files as mono float32 (mean of the channels), zero-padded or cut to ``n_samples``.

    Returns
    -------
    audio : np.ndarray [shape=(len(paths), n_samples), dtype=float32]
    """
    import soundfile as sf

    out = np.zeros((len(paths), int(n_samples)), dtype=np.float32)
    for i, p in enumerate(paths):
        try:
            x, _ = sf.read(str(p), dtype="float32", always_2d=True, frames=int(n_samples))
        except (RuntimeError, OSError, sf.LibsndfileError) as e:
            raise ReferenceDataError(f"audio file {str(p)!r} cannot be read: {e}") from None
        m = x.mean(axis=1)
        if not np.all(np.isfinite(m)):
            raise ReferenceDataError(f"audio file {str(p)!r} holds non-finite samples")
        out[i, : len(m)] = m
    return out
