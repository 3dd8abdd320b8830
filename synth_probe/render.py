"""Batch rendering: many patches of one synth, each with its own seed.

This is the serial reference implementation; the dataset machinery builds its
parallel, fault-tolerant generation on the same call.
"""
from __future__ import annotations

import numpy as np

from synth_probe.synths.base import RenderSettings, Synth
from synth_probe.synths.registry import get_synth

__all__ = ["render_many"]


def render_many(
    synth: Synth | str,
    vectors: np.ndarray,
    settings: RenderSettings,
    seeds: np.ndarray | None = None,
    *,
    jobs: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Render every row of ``vectors`` (unit values in host order).

    Parameters
    ----------
    synth : Synth or str
        A synth or its name / plugin path.
    vectors : np.ndarray [shape=(n, n_params)]
        Validated unit vectors.
    settings : RenderSettings
    seeds : np.ndarray [shape=(n,)], optional
        Seed of each render (default 0 for all).

    Returns
    -------
    audio : np.ndarray [shape=(n, settings.n_samples), dtype=float32]
    """
    if isinstance(synth, str):
        synth = get_synth(synth)
    vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    n = len(vectors)
    seeds = np.zeros(n, dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=np.int64)
    out = np.empty((n, settings.n_samples), dtype=np.float32)
    for i in range(n):
        out[i] = synth.render_vector(vectors[i], settings, seed=int(seeds[i]))
    return out
