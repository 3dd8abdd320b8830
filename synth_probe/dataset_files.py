"""Files of a dataset folder: atomic writes, checksums, the folder's locks, stale temporary files,
and reading the manifest and the shard commit records with their structure checked.

Used by :mod:`synth_probe.dataset`; see its docstring for the layout. Two lock files live in the
folder: ``.lock`` is held for a whole ``generate`` run (exclusively, or shared by the parts of a
``--shard I/N`` array) and holds a line per holder (host, pid, start, what it runs) so that a
refused run can say who has the folder; ``.manifest.lock`` is held exclusively for the moment of
reading and rewriting ``manifest.json``. Both are ``flock`` locks: the kernel (or the NFS lock
manager) drops them when their process dies, so a killed run never leaves the folder locked.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.synths.base import RenderSettings
from synth_probe.util import atomic_json, atomic_write, file_lock

__all__ = [
    "FORMAT",
    "VERSION",
    "encode_audio",
    "decode_audio",
    "rows_dtype",
    "check_shard",
    "shard_bounds",
    "MANIFEST",
    "SHARDS",
    "LOCK",
    "MANIFEST_LOCK",
    "atomic_write",
    "atomic_json",
    "sha256_file",
    "shard_paths",
    "parse_tmp_name",
    "clean_stale_tmp",
    "read_manifest",
    "read_record",
    "list_records",
    "foreign_entries",
    "run_lock",
    "manifest_lock",
]

FORMAT = "synth_probe.dataset"
VERSION = 1
AUDIO_DTYPE = "int16"
FULL_SCALE = 32767.0
MANIFEST = "manifest.json"
SHARDS = "shards"
LOCK = ".lock"
MANIFEST_LOCK = ".manifest.lock"

_SHARD_NAME = r"shard-\d{5,}\.(?:audio\.npy|rows\.npy|json)"
_SHARD_FILE = re.compile(_SHARD_NAME)
_RECORD_FILE = re.compile(r"shard-(\d{5,})\.json")
# ".NAME.HOST.PID.tmp" where NAME is one of the files the dataset writes; HOST may hold dots (FQDNs)
_TMP_FILE = re.compile(rf"\.(?P<name>{re.escape(MANIFEST)}|{_SHARD_NAME})\.(?P<host>.+)\.(?P<pid>\d+)\.tmp")


# ----------------------------------------------------------------------------- storage codec


def encode_audio(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantize float audio to int16 with one scale per row (the row's peak maps to 32767).

    Parameters
    ----------
    audio : np.ndarray [shape=(m, n_samples) or (m, n_renders, n_samples)]
        A row is one patch: with a probe, the peak is taken over all of its renders.

    Returns
    -------
    q : np.ndarray [shape=audio.shape, dtype=int16]
    scale : np.ndarray [shape=(m,), dtype=float32]
        ``audio ≈ q * scale[:, None]`` (``scale[:, None, None]`` with renders).
    """
    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    flat = audio.reshape(len(audio), -1)
    peak = np.abs(flat).max(axis=1) if flat.shape[1] else np.zeros(len(audio), np.float32)
    scale = (peak / FULL_SCALE).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32).reshape((-1,) + (1,) * (audio.ndim - 1))
    q = np.clip(np.rint(audio / safe), -FULL_SCALE, FULL_SCALE).astype(np.int16)
    return q, scale


def decode_audio(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_audio`: float32 of ``q``'s shape; a scalar ``scale`` decodes one row."""
    q = np.asarray(q)
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 0:
        return q.astype(np.float32) * scale
    return q.astype(np.float32) * scale.reshape((-1,) + (1,) * (q.ndim - 1))


def rows_dtype(n_params: int) -> np.dtype:
    """The structured dtype of a shard's rows file: index, render seed, scale, unit values."""
    return np.dtype([("index", "<i8"), ("seed", "<i8"), ("scale", "<f4"), ("params", "<f8", (n_params,))])


# ----------------------------------------------------------------------------- writing


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def shard_paths(out: Path, k: int) -> dict[str, Path]:
    """The audio, rows and record files of shard ``k``."""
    base = out / SHARDS / f"shard-{k:05d}"
    return {"audio": Path(f"{base}.audio.npy"), "rows": Path(f"{base}.rows.npy"), "record": Path(f"{base}.json")}


# ----------------------------------------------------------------------------- stale temporary files


def parse_tmp_name(name: str) -> tuple[str, str, int] | None:
    """``(file name, host, pid)`` of a temporary file name written by :func:`synth_probe.util.tmp_name`, else None.

    The file name is matched against the names a dataset writes, so a host name with dots
    (``node07.cluster.example.org``) is read whole.
    """
    m = _TMP_FILE.fullmatch(name)
    return (m["name"], m["host"], int(m["pid"])) if m else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's live process
        return True
    return True


def clean_stale_tmp(out: Path) -> list[Path]:
    """Remove temporary files that dead processes of this host left behind; return them."""
    host = socket.gethostname()
    removed = []
    for p in list((out / SHARDS).glob(".*.tmp")) + list(out.glob(".*.tmp")):
        parsed = parse_tmp_name(p.name)
        if parsed is None or parsed[1] != host or _alive(parsed[2]):
            continue
        with contextlib.suppress(OSError):
            p.unlink()
            removed.append(p)
    return removed


# ----------------------------------------------------------------------------- reading


def _manifest_problem(m: Any) -> str | None:
    """What is structurally wrong with a parsed manifest, or None."""
    if not isinstance(m, dict):
        return f"it holds a JSON {type(m).__name__}, not an object"
    if m.get("format") != FORMAT:
        return f"its format is {m.get('format')!r}, not {FORMAT!r}"
    checks = [
        ("version", lambda v: isinstance(v, int)),
        ("n", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0),
        ("identity_sha256", lambda v: isinstance(v, str) and len(v) == 64),
        ("synth", lambda v: isinstance(v, dict)),
        ("render", lambda v: isinstance(v, dict)),
        ("sampling", lambda v: isinstance(v, dict)),
        ("params", lambda v: isinstance(v, list) and all(isinstance(p, dict) and "name" in p for p in v)),
        ("storage", lambda v: isinstance(v, dict) and isinstance(v.get("shard_size"), int) and v["shard_size"] >= 1),
        ("shards", lambda v: isinstance(v, list)),
    ]
    for key, ok in checks:
        if key not in m:
            return f"it has no {key!r} field"
        if not ok(m[key]):
            return f"its {key!r} field is malformed ({str(m[key])[:60]!r})"
    try:
        RenderSettings(**m["render"])
    except (TypeError, ValueError) as e:
        return f"its 'render' field is malformed ({e})"
    return None


def read_manifest(out: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Read ``out/manifest.json``.

    Returns
    -------
    manifest : dict or None
        The manifest when it is readable and well formed.
    problem : str or None
        None for a good manifest, ``"missing"``, or what is wrong with it (empty,
        truncated, not an object, a field missing or malformed).
    """
    p = out / MANIFEST
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        return None, "missing"
    except OSError as e:
        return None, f"unreadable ({e.strerror or e})"
    if not text.strip():
        return None, "empty"
    try:
        m = json.loads(text)
    except (ValueError, RecursionError) as e:
        return None, f"not valid JSON, e.g. truncated ({str(e)[:80]})"
    problem = _manifest_problem(m)
    return (None, problem) if problem else (m, None)


def _record_ok(rec: Any) -> bool:
    if not isinstance(rec, dict) or not isinstance(rec.get("files"), dict):
        return False
    for part in ("audio", "rows"):
        f = rec["files"].get(part)
        if not (isinstance(f, dict) and isinstance(f.get("sha256"), str) and isinstance(f.get("bytes"), int)):
            return False
    return (all(isinstance(rec.get(k), int) for k in ("id", "start", "stop", "n_stored"))
            and isinstance(rec.get("identity"), str) and isinstance(rec.get("failed"), list))


def read_record(out: Path, k: int) -> dict[str, Any] | None:
    """The commit record of shard ``k``, or None when it is missing, unreadable or malformed."""
    p = shard_paths(out, k)["record"]
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    return rec if _record_ok(rec) and rec["id"] == k else None


def list_records(out: Path) -> list[dict[str, Any]]:
    """Every well-formed shard commit record in ``out/shards``, by shard id."""
    d = out / SHARDS
    if not d.is_dir():
        return []
    ids = sorted(int(m[1]) for p in d.iterdir() if (m := _RECORD_FILE.fullmatch(p.name)))
    return [r for k in ids if (r := read_record(out, k)) is not None]


def foreign_entries(out: Path) -> list[str]:
    """Entries of ``out`` that a dataset folder never holds (``out`` and ``shards/`` are looked at)."""
    if not out.is_dir():
        return []
    own = {MANIFEST, SHARDS, LOCK, MANIFEST_LOCK}
    bad = [p.name for p in out.iterdir()
           if p.name not in own and not parse_tmp_name(p.name)]
    s = out / SHARDS
    if s.exists() and not s.is_dir():
        bad.append(SHARDS)
    elif s.is_dir():
        bad += [f"{SHARDS}/{p.name}" for p in s.iterdir()
                if not _SHARD_FILE.fullmatch(p.name) and not parse_tmp_name(p.name)]
    return sorted(bad)


def check_shard(out: Path, k: int, start: int, stop: int, ident: str, verify: bool) -> tuple[dict | None, str]:
    """The shard's record if the shard is complete and intact; else None and why."""
    rec = read_record(out, k)
    if rec is None:
        return None, "missing"
    if rec.get("start") != start or rec.get("stop") != stop or rec.get("identity") != ident:
        return None, f"stale (holds patches {rec.get('start')}..{rec.get('stop', 0) - 1})"
    paths = shard_paths(out, k)
    for part in ("audio", "rows"):
        info = rec["files"][part]
        p = paths[part]
        if not p.exists():
            return None, f"{p.name} is missing"
        if p.stat().st_size != info["bytes"]:
            return None, f"{p.name} has {p.stat().st_size} bytes, its record says {info['bytes']}"
        if verify and sha256_file(p) != info["sha256"]:
            return None, f"{p.name} fails its sha256 checksum (corrupted)"
    return rec, "ok"


def shard_bounds(n: int, shard_size: int) -> list[tuple[int, int, int]]:
    """``(k, start, stop)`` of every shard of a dataset of ``n`` patches."""
    return [(k, k * shard_size, min((k + 1) * shard_size, n)) for k in range(math.ceil(n / shard_size))]


# ----------------------------------------------------------------------------- locks


def _holders(fd: int) -> list[str]:
    """Live holders recorded in the run lock file, as phrases."""
    try:
        text = os.pread(fd, 1 << 16, 0).decode("utf-8", "replace")
    except OSError:
        return []
    host = socket.gethostname()
    out = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 5 or not parts[1].isdigit():
            continue
        h, pid, mode, since, what = parts[0], int(parts[1]), parts[2], parts[3], parts[4]
        if h == host and not _alive(pid):
            continue
        out.append(f"pid {pid} on host {h} ({what}, {mode}, since {since})")
    return out[-3:]


def _record_holder(fd: int, shared: bool, what: str) -> None:
    """Add this process to the lock file (best effort: it is information, not the lock)."""
    line = "\t".join([socket.gethostname(), str(os.getpid()), "shared by --shard parts" if shared else "alone",
                      time.strftime("%Y-%m-%d %H:%M:%S"), what.replace("\t", " ").replace("\n", " ")]) + "\n"
    with contextlib.suppress(OSError):
        if not shared:
            os.ftruncate(fd, 0)
        os.write(fd, line.encode())


@contextlib.contextmanager
def run_lock(out: Path, *, shared: bool, wait: bool, what: str,
             on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold ``out/.lock`` for a whole generate run.

    Parameters
    ----------
    out : Path
        An existing dataset folder.
    shared : bool
        A ``--shard I/N`` part: other parts may hold the lock at the same time, a whole run may not.
    wait : bool
        Wait for the holders to finish instead of refusing.
    what : str
        What this run does, recorded for the message another run would print.
    on_wait : callable, optional
        Called with a message when this run starts to wait.

    Raises
    ------
    DatasetError
        The folder is held by another run (and ``wait`` is False), or it cannot be locked.
    """
    path = out / LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as e:
        raise DatasetError(f"cannot open the lock file {path}: {e.strerror or e}") from None
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            who = "; ".join(_holders(fd)) or "a process that did not record itself"
            kind = ("a run without --shard" if shared else
                    "another generate run (a run without --shard needs the folder to itself; only the parts of "
                    "a --shard I/N array run together)")
            msg = f"{out} is being written by {kind}: {who}"
            if not wait:
                raise DatasetError(f"{msg}. Wait for it to finish and rerun this command (it completes what is "
                                   "missing), or add --wait to queue behind it; a killed holder releases the "
                                   "folder at once") from None
            if on_wait is not None:
                on_wait(f"{msg}; waiting for it to finish")
            fcntl.flock(fd, mode)
        except OSError as e:
            raise DatasetError(f"cannot lock {path}: {e.strerror or e} (the filesystem must support "
                               "flock locks)") from None
        _record_holder(fd, shared, what)
        try:
            yield
        finally:
            if not shared:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def manifest_lock(out: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``out/.manifest.lock`` exclusively while the manifest is read and rewritten."""
    return file_lock(out / MANIFEST_LOCK, error=DatasetError)
