"""Feature caches on disk: plain arrays in ``.npy`` files, never pickles.

A cache file is read with ``np.load(..., allow_pickle=False)``, so a planted or damaged file
can at worst be ignored (the features are then computed again and the file rewritten); it can
never run code. Files are written to a temporary name and renamed, so a reader sees either a
whole file or none.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.util import atomic_write

__all__ = ["load_array", "save_array", "features_key", "cached_features"]


def load_array(path: str | os.PathLike) -> np.ndarray | None:
    """The array in ``path``, or None when it is missing, torn, or holds objects (a pickle).

    Parameters
    ----------
    path : path
        An ``.npy`` file.

    Returns
    -------
    array : np.ndarray or None
        Read fully into memory with ``allow_pickle=False``.
    """
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated, not .npy, or an object array
        return None


def save_array(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` to ``path`` (``.npy``, no pickle) through a temporary file and a rename.

    Parameters
    ----------
    path : path
        Destination; its folder is created.
    array : np.ndarray
        A numeric array (object arrays are refused by ``allow_pickle=False``).

    Returns
    -------
    path : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.save(f, np.asarray(array), allow_pickle=False), digest=False)
    return path


def features_key(X: np.ndarray, params: Mapping[str, Any]) -> str:
    """A hash of audio rows and the parameters that shape their features.

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_samples)]
    params : mapping
        Everything the features depend on (not ``n_jobs``: results do not depend on it).

    Returns
    -------
    key : str
        32 hex digits of a sha256 over the array's dtype, shape and bytes and the sorted parameters.
    """
    h = hashlib.sha256()
    arr = np.ascontiguousarray(X)
    h.update(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(memoryview(arr).cast("B"))
    h.update(repr(sorted((str(k), repr(v)) for k, v in params.items())).encode())
    return h.hexdigest()[:32]


def cached_features(
    cache_dir: str | os.PathLike | None,
    name: str,
    X: np.ndarray,
    params: Mapping[str, Any],
    compute: Callable[[], np.ndarray],
) -> np.ndarray:
    """``compute()``, served from ``cache_dir/<name>-<key>.npy`` when that file holds a fitting array.

    Parameters
    ----------
    cache_dir : path or None
        None: no cache, ``compute()`` is returned as is.
    name : str
        File name prefix (the transformer).
    X : np.ndarray [shape=(n_clips, n_samples)]
        The audio rows; hashed with ``params`` into the file name.
    params : mapping
        The transformer's parameters that shape the result.
    compute : callable
        Returns the features, float32 with ``len(X)`` rows.

    Returns
    -------
    F : np.ndarray [shape=(n_clips, ...), dtype=float32]
    """
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{name}-{features_key(X, params)}.npy"
    F = load_array(path)
    if F is not None and F.dtype == np.float32 and F.ndim >= 1 and F.shape[0] == len(X):
        return F
    F = compute()
    save_array(path, F)
    return F
