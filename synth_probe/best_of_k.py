"""Best-of-k: draw k patches per sound from a posterior, render them, keep the closest.

A posterior estimator (:class:`~synth_probe.models.posterior.FlowMatchingPosterior`)
gives several plausible patches for one sound where a regressor gives the point
between them. Rendering each draw and keeping the one whose audio is closest to
the target (multi-resolution log-mel distance, the distance ``synth-probe match``
minimizes) turns the draws into one answer at a known cost: at most ``k``
renders per sound (a draw that snaps to a patch already rendered is not
rendered again).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_probe.errors import AudioError, ParameterValueError
from synth_probe.matching import MatchObjective
from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["BestOfK", "best_of_k", "sample_patches"]


@dataclass
class BestOfK:
    """What :func:`best_of_k` chose.

    Attributes
    ----------
    patches : list of dict of str to float
        The chosen full patch of each sound (unit values, discrete ones snapped).
    distances : np.ndarray [shape=(n,)]
        Multi-resolution log-mel distance (dB) of each chosen patch's render from its target.
    all_distances : np.ndarray [shape=(n, k)]
        Distance of every draw (``inf`` for a draw the synth failed to render).
    chosen : np.ndarray [shape=(n,), dtype=int64]
        Index of the chosen draw.
    n_renders : np.ndarray [shape=(n,), dtype=int64]
        Renders made per sound (at most ``k``).
    audio : np.ndarray [shape=(n, n_samples), dtype=float32]
        The render of each chosen patch, the one its distance was measured on.
    """

    patches: list[dict[str, float]]
    distances: np.ndarray
    all_distances: np.ndarray
    chosen: np.ndarray
    n_renders: np.ndarray
    audio: np.ndarray


def _estimator_parts(model: Any) -> tuple[Any, Any]:
    """(feature steps or None, the final estimator with ``sample``) of an estimator or a Pipeline."""
    if hasattr(model, "steps"):
        est = model.steps[-1][1]
        pre = model[:-1] if len(model.steps) > 1 else None
    else:
        est, pre = model, None
    if not callable(getattr(est, "sample", None)):
        raise ParameterValueError(
            f"best-of-k needs an estimator that draws patches (a `sample` method, e.g. FlowMatchingPosterior); "
            f"{type(est).__name__} has none"
        )
    return pre, est


def _columns(est: Any, synth: Synth) -> list[str]:
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


def sample_patches(
    model: Any,
    synth: Synth,
    targets: np.ndarray,
    k: int,
    *,
    X: np.ndarray | None = None,
    base: Mapping[str, float] | None = None,
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
    base : mapping of str to float, optional
        Unit values of the parameters the model does not predict (the rest of
        the synth's defaults fill what it does not name).
    random_state : int, numpy Generator or None

    Returns
    -------
    vectors : np.ndarray [shape=(n, k, n_params)]
        Unit vectors in the synth's host order (not yet snapped).
    """
    pre, est = _estimator_parts(model)
    names = _columns(est, synth)
    if X is None:
        X = pre.transform(targets) if pre is not None else targets
    draws = np.asarray(est.sample(X, int(k), random_state=random_state), dtype=np.float64)
    base_vec = synth.patch_vector({**synth.default_patch(), **dict(base or {})})
    idx = [synth.param_names.index(c) for c in names]
    vectors = np.broadcast_to(base_vec, draws.shape[:2] + base_vec.shape).copy()
    vectors[:, :, idx] = draws
    return vectors


def best_of_k(
    model: Any,
    synth: Synth,
    settings: RenderSettings,
    targets: np.ndarray | Sequence[np.ndarray],
    *,
    k: int = 16,
    X: np.ndarray | None = None,
    base: Mapping[str, float] | None = None,
    random_state: Any = 0,
    seed: int = 0,
) -> BestOfK:
    """For each target sound, render ``k`` posterior draws and keep the closest.

    Parameters
    ----------
    model : estimator or Pipeline
        See :func:`sample_patches`.
    synth : Synth
    settings : RenderSettings
        How the draws are rendered; ``settings.n_samples`` must equal the targets' length.
    targets : np.ndarray [shape=(n, n_samples)]
        Target audio, one row per sound.
    k : int, default=16
        Draws (and at most renders) per sound.
    X : np.ndarray [shape=(n, n_features)], optional
        The model's input for each target, when it is already computed.
    base : mapping of str to float, optional
        Unit values of the parameters the model does not predict (default: the synth's defaults).
    random_state : int, numpy Generator or None, default=0
        Seeds the draws.
    seed : int, default=0
        Render seed.

    Returns
    -------
    BestOfK

    Raises
    ------
    AudioError
        Targets that are not rows of ``settings.n_samples`` samples.
    ParameterValueError
        ``k < 1``, or a model that cannot draw patches.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ParameterValueError(f"k must be an int >= 1, got {k!r}")
    T = np.asarray(targets, dtype=np.float32)
    if T.ndim != 2 or T.shape[1] != settings.n_samples:
        raise AudioError(
            f"targets must be rows of {settings.n_samples} samples ({settings.render_length} s at "
            f"{settings.sample_rate} Hz), got shape {T.shape}"
        )
    vectors = sample_patches(model, synth, T, int(k), X=X, base=base, random_state=random_state)
    n = len(T)
    all_d = np.empty((n, int(k)))
    chosen = np.empty(n, dtype=np.int64)
    renders = np.empty(n, dtype=np.int64)
    audio = np.empty_like(T)
    patches = []
    for i in range(n):
        objective = MatchObjective(synth, T[i], settings, seed=seed)
        all_d[i] = [objective(v) for v in vectors[i]]
        chosen[i] = int(np.argmin(all_d[i]))
        best = objective.snap(vectors[i, chosen[i]])
        patches.append(dict(zip(synth.param_names, map(float, best))))
        audio[i] = objective.audio_for(best)
        renders[i] = objective.n_renders
    rows = np.arange(n)
    return BestOfK(patches=patches, distances=all_d[rows, chosen], all_distances=all_d, chosen=chosen,
                   n_renders=renders, audio=audio)
