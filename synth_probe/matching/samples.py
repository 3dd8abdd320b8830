"""Patches drawn from a posterior estimator, and the start a match takes from them.

A posterior (:class:`~synth_probe.models.posterior.FlowMatchingPosterior`) draws
several patches per sound; :func:`sample_patches` turns its draws into full unit
vectors of a synth (the model's columns drawn, a base patch elsewhere), and
:func:`closest_draw` renders them through a :class:`MatchObjective` and keeps the
closest. Both :mod:`synth_probe.best_of_k` and :func:`synth_probe.matching.match`
use them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from synth_probe.errors import ParameterValueError
from synth_probe.matching.search import MatchObjective
from synth_probe.spectral import DEFAULT_RESOLUTIONS, multi_resolution_l1, multi_resolution_log_mel
from synth_probe.synths.base import Synth

__all__ = ["draws_patches", "estimator_parts", "model_columns", "sample_patches", "closest_draw", "base_vectors",
           "whole_patches", "closest_stored"]


def estimator_parts(model: Any) -> tuple[Any, Any]:
    """(feature steps or None, the final estimator) of an estimator or a Pipeline."""
    if hasattr(model, "steps"):
        est = model.steps[-1][1]
        pre = model[:-1] if len(model.steps) > 1 else None
    else:
        est, pre = model, None
    return pre, est


def draws_patches(model: Any) -> bool:
    """Whether ``model`` (an estimator or a Pipeline) can draw patches (its final step has ``sample``)."""
    return callable(getattr(estimator_parts(model)[1], "sample", None))


def model_columns(est: Any, synth: Synth) -> list[str]:
    """The synth parameter each output column of ``est`` sets (host order for unnamed targets)."""
    targets = getattr(est, "targets_", None)
    if targets is not None and targets.named:
        names = [str(c) for c in targets.columns]
    elif int(getattr(est, "n_outputs_", -1)) == len(synth.param_names):
        names = list(synth.param_names)
    else:
        raise ParameterValueError(
            f"the estimator predicts {getattr(est, 'n_outputs_', '?')} unnamed columns; fit it on a DataFrame "
            f"whose columns are {synth.name}'s parameter names, or on all {len(synth.param_names)} in host order"
        )
    for name in names:
        synth.spec(name)  # UnknownParameterError, with the closest names
    return names


def base_vectors(synth: Synth, n: int, base: Mapping[str, float] | Sequence[Mapping[str, float]] | None
                 ) -> np.ndarray:
    """Unit vectors ``(n, n_params)``: the synth's defaults overridden by ``base`` (one mapping, or one per row)."""
    default = synth.default_patch()
    if base is None or isinstance(base, Mapping):
        return np.tile(synth.patch_vector({**default, **dict(base or {})}), (n, 1))
    rows = list(base)
    if len(rows) != n:
        raise ParameterValueError(f"base has {len(rows)} patches for {n} target sounds")
    return np.stack([synth.patch_vector({**default, **dict(r)}) for r in rows])


def sample_patches(
    model: Any,
    synth: Synth,
    targets: np.ndarray,
    k: int,
    *,
    X: np.ndarray | None = None,
    base: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    random_state: Any = 0,
) -> np.ndarray:
    """Draw ``k`` full unit vectors per target sound: the model's columns drawn, ``base`` elsewhere.

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted estimator with ``sample(X, n_samples, random_state=...)``, or a
        Pipeline whose earlier steps turn audio rows into its features.
    synth : Synth
    targets : np.ndarray [shape=(n, n_samples)]
        Target audio (used for the features when ``X`` is not given).
    k : int
    X : np.ndarray [shape=(n, n_features)], optional
        The model's input for each target, when it is already computed.
    base : mapping of str to float, or a sequence of n such mappings, optional
        Unit values of the parameters the model does not predict (the rest of
        the synth's defaults fill what it does not name).
    random_state : int, numpy Generator or None

    Returns
    -------
    vectors : np.ndarray [shape=(n, k, n_params)]
        Unit vectors in the synth's host order (not yet snapped).

    Raises
    ------
    ParameterValueError
        A model that cannot draw patches, or unnamed columns that are not the synth's.
    """
    pre, est = estimator_parts(model)
    if not callable(getattr(est, "sample", None)):
        raise ParameterValueError(
            f"best-of-k needs an estimator that draws patches (a `sample` method, e.g. FlowMatchingPosterior); "
            f"{type(est).__name__} has none"
        )
    names = model_columns(est, synth)
    if X is None:
        X = pre.transform(targets) if pre is not None else targets
    draws = np.asarray(est.sample(X, int(k), random_state=random_state), dtype=np.float64)
    return whole_patches(synth, names, draws, base)


def whole_patches(synth: Synth, names: Sequence[str], values: np.ndarray,
                  base: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None) -> np.ndarray:
    """Unit vectors ``(n, k, n_params)``: ``values`` ``(n, k, len(names))`` at the parameters ``names``,
    :func:`base_vectors` elsewhere."""
    values = np.asarray(values, dtype=np.float64)
    vectors = np.repeat(base_vectors(synth, values.shape[0], base)[:, None, :], values.shape[1], axis=1)
    vectors[:, :, [synth.param_names.index(c) for c in names]] = values
    return vectors


def closest_draw(objective: MatchObjective, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Render each draw through ``objective`` and keep the closest.

    Parameters
    ----------
    objective : MatchObjective
        Counts the renders; a draw that snaps to a patch already rendered is not rendered again.
    vectors : np.ndarray [shape=(k, n_params)]

    Returns
    -------
    best : np.ndarray [shape=(n_params,)]
        The chosen draw, snapped.
    distances : np.ndarray [shape=(k,)]
        Log-mel distance (dB) of every draw (``inf`` where the render failed).
    chosen : int
    """
    d = np.array([objective(v) for v in np.asarray(vectors)], dtype=np.float64)
    chosen = int(np.argmin(d))
    return objective.snap(vectors[chosen]), d, chosen


def closest_stored(targets: np.ndarray, library: np.ndarray, rows: np.ndarray, sample_rate: int, k: int, *,
                   n_jobs: int = 1) -> np.ndarray:
    """The ``k`` candidate rows of ``library`` whose audio is closest to each target, closest first.

    Retrieval without renders: a posterior that draws training rows
    (:meth:`~synth_probe.models.knn.NeighbourPosterior.neighbours`) names candidates whose
    renders are already stored; they are ranked by the distance a match minimizes
    (:meth:`MatchObjective.distance_of`: the multi-resolution log-mel L1 distance, dB).

    Parameters
    ----------
    targets : np.ndarray [shape=(n, n_samples)]
    library : array-like [shape=(n_library, n_samples)]
        The stored renders (a memory map is read only at the candidate rows).
    rows : np.ndarray [shape=(n, n_candidates), dtype=int]
        Candidate rows of ``library`` per target.
    sample_rate : int
    k : int
        Rows to keep per target (at most ``n_candidates``).
    n_jobs : int, default=1
        Threads that rank targets side by side (they share ``library``; the spectrograms
        release the GIL for most of their time).

    Returns
    -------
    best : np.ndarray [shape=(n, min(k, n_candidates)), dtype=int64]
    """
    rows = np.asarray(rows, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.float32)
    if rows.ndim != 2 or len(rows) != len(targets):
        raise ParameterValueError(f"rows has shape {rows.shape}; expected ({len(targets)}, n_candidates)")
    if k < 1:
        raise ParameterValueError(f"k must be >= 1, got {k}")
    keep = min(int(k), rows.shape[1])

    def rank(t: np.ndarray, cand: np.ndarray) -> np.ndarray:
        tm = multi_resolution_log_mel(t, sample_rate, resolutions=DEFAULT_RESOLUTIONS)
        order = np.argsort(cand, kind="stable")  # ascending rows: a memory map reads forward
        cm = multi_resolution_log_mel(np.asarray(library[cand[order]], dtype=np.float32), sample_rate,
                                      resolutions=DEFAULT_RESOLUTIONS)
        d = np.empty(len(cand))
        d[order] = np.atleast_1d(multi_resolution_l1(tm, cm))
        return cand[np.argsort(d, kind="stable")[:keep]]

    ranked = Parallel(n_jobs=max(1, int(n_jobs)), prefer="threads")(
        delayed(rank)(t, cand) for t, cand in zip(targets, rows))
    return np.asarray(ranked, dtype=np.int64).reshape(len(rows), keep)
