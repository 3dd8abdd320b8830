"""Plumbing every module shares: atomic writes, JSON-safe values, library versions, file locks.

* :func:`atomic_write` / :func:`atomic_text` / :func:`atomic_json`: a file is written
  under a temporary name beside its destination (:func:`tmp_name`), flushed, fsynced
  and renamed into place, so a reader sees the old file or the new one and a failed
  write (a full disk, an interruption) leaves the old file and no temporary.
* :func:`json_clean`: a JSON-safe copy of a result (NumPy scalars and arrays to Python
  values, non-finite floats to ``null``).
* :func:`library_versions`: the environment one run recorded (datasets' manifests,
  result files, model headers all use it, so they all name the same libraries).
* :func:`file_lock`: an exclusive ``flock`` on a lock file, released by the kernel when
  its process dies.

Reading user-supplied JSON is :func:`synth_probe.fileio.read_json`.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import platform
import socket
from collections.abc import Callable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe._version import __version__
from synth_probe.errors import SynthProbeError

__all__ = [
    "LIBRARIES",
    "tmp_name",
    "atomic_replace",
    "atomic_write",
    "atomic_text",
    "atomic_json",
    "json_clean",
    "library_versions",
    "file_lock",
]

#: the distributions :func:`library_versions` records (besides Python, the platform and synth_probe)
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "lightgbm", "skops", "torch", "librosa",
             "dawdreamer", "matplotlib", "jinja2")


class _HashingWriter:
    """A binary file wrapper that counts and hashes what passes through it."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def write(self, b: bytes | memoryview) -> int:
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)


def tmp_name(path: str | os.PathLike) -> Path:
    """``.NAME.HOST.PID.tmp`` beside ``path``: the name a file is written under before its rename."""
    path = Path(path)
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def atomic_replace(path: str | os.PathLike, fill: Callable[[Path], Any]) -> Path:
    """Make ``path`` by ``fill(tmp)`` writing the file at ``tmp`` (:func:`tmp_name`), then renaming it.

    For writers that take a file name (libsndfile); :func:`atomic_write` is the usual entry.
    On any exception the temporary file is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    tmp = tmp_name(path)
    try:
        fill(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def atomic_write(path: str | os.PathLike, write: Callable[[Any], Any], *, digest: bool = True) -> dict[str, Any]:
    """Write ``path`` through ``write(fileobj)`` to a temporary file, fsync, rename.

    Parameters
    ----------
    path : path-like
        Destination; its folder must exist.
    write : callable
        Called once with a binary file object open for writing.
    digest : bool, default=True
        Hash what is written (``write`` then gets a write-only wrapper); False hands
        ``write`` the real file (for writers that seek, such as ``np.savez_compressed``).

    Returns
    -------
    dict
        ``{"name", "sha256", "bytes"}`` of what was written (no ``"sha256"`` without ``digest``).

    Raises
    ------
    OSError
        The write or the rename failed: the temporary file is removed and ``path``
        keeps its previous content (any other exception does the same).
    """
    path = Path(path)
    hw: _HashingWriter | None = None
    size = 0

    def fill(tmp: Path) -> None:
        nonlocal hw, size
        with open(tmp, "wb") as f:
            hw = _HashingWriter(f) if digest else None
            write(hw if hw is not None else f)
            f.flush()
            size = f.tell()
            os.fsync(f.fileno())

    atomic_replace(path, fill)
    if hw is None:
        return {"name": path.name, "bytes": size}
    return {"name": path.name, "sha256": hw.h.hexdigest(), "bytes": size}


def atomic_text(path: str | os.PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_write`; return the path."""
    data = text.encode(encoding)
    atomic_write(path, lambda f: f.write(data), digest=False)
    return Path(path)


def atomic_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (one space, a final newline) through :func:`atomic_write`."""
    data = (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode()
    atomic_write(path, lambda f: f.write(data))


def json_clean(obj: Any) -> Any:
    """A JSON-safe copy of ``obj``.

    Mapping keys become strings, tuples and arrays lists, NumPy integers and booleans
    Python ones, and floats that are not finite ``None`` (so ``json.dumps(...,
    allow_nan=False)`` accepts the result). Other values are returned as they are.
    """
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_clean(obj.tolist())
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    return obj


def library_versions() -> dict[str, str]:
    """The versions of Python, the platform, synth_probe and :data:`LIBRARIES` (``absent`` if not installed)."""
    out = {"python": platform.python_version(), "platform": platform.platform(), "synth_probe": __version__}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "absent"
    return out


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, *, error: type[SynthProbeError] | None = None,
              make_parent: bool = False) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    Parameters
    ----------
    path : path-like
        The lock file; its content is not touched.
    error : type, optional
        The :class:`~synth_probe.errors.SynthProbeError` subclass an unopenable or
        unlockable file raises (default: the ``OSError`` itself).
    make_parent : bool, default=False
        Create the lock file's folder first.
    """
    path = Path(path)
    try:
        if make_parent:
            path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "a+b")
    except OSError as e:
        if error is None:
            raise
        raise error(f"cannot open the lock file {path}: {e.strerror or e}") from None
    with f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        except OSError as e:
            if error is None:
                raise
            raise error(f"cannot lock {path}: {e.strerror or e}") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
