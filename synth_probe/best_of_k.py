"""Best-of-k: draw k patches per sound from a posterior, render them, keep the closest.

A posterior estimator (:class:`~synth_probe.models.posterior.FlowMatchingPosterior`)
gives several plausible patches for one sound where a regressor gives the point
between them. Rendering each draw and keeping the one whose audio is closest to
the target (multi-resolution log-mel distance, the distance ``synth-probe match``
minimizes) turns the draws into one answer at a known cost: at most ``k``
renders per sound (a draw that snaps to a patch already rendered is not
rendered again). :func:`compare_at_renders` sets it beside a regressor at the
same number of renders (its prediction plus a local search,
:func:`predict_and_search`); ``synth-probe evaluate --samples k`` prints it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import json
import math

import numpy as np
import pandas as pd

from synth_probe.errors import AudioError, ParameterValueError
from synth_probe.matching.samples import (
    base_vectors,
    closest_draw,
    draws_patches,
    estimator_parts,
    model_columns,
    sample_patches,
)
from synth_probe.matching.search import MatchObjective, refine
from synth_probe.metrics import parameter_report
from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["BestOfK", "best_of_k", "compare_at_renders", "draw_spread", "format_comparison", "predict_and_search", "sample_patches"]


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


def best_of_k(
    model: Any,
    synth: Synth,
    settings: RenderSettings,
    targets: np.ndarray | Sequence[np.ndarray],
    *,
    k: int = 16,
    X: np.ndarray | None = None,
    base: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    random_state: Any = 0,
    seed: int | Sequence[int] = 0,
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
    base : mapping of str to float, or a sequence of n such mappings, optional
        Unit values of the parameters the model does not predict (default: the synth's defaults).
    random_state : int, numpy Generator or None, default=0
        Seeds the draws.
    seed : int or sequence of n ints, default=0
        Render seed (one for all sounds, or one per sound).

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
    T = _check_targets(targets, settings)
    vectors = sample_patches(model, synth, T, int(k), X=X, base=base, random_state=random_state)
    seeds = _row_seeds(seed, len(T))
    n = len(T)
    all_d = np.empty((n, int(k)))
    chosen = np.empty(n, dtype=np.int64)
    renders = np.empty(n, dtype=np.int64)
    audio = np.empty_like(T)
    patches = []
    for i in range(n):
        objective = MatchObjective(synth, T[i], settings, seed=int(seeds[i]))
        best, all_d[i], chosen[i] = closest_draw(objective, vectors[i])
        patches.append(dict(zip(synth.param_names, map(float, best))))
        audio[i] = objective.audio_for(best)
        renders[i] = objective.n_renders
    rows = np.arange(n)
    return BestOfK(patches=patches, distances=all_d[rows, chosen], all_distances=all_d, chosen=chosen,
                   n_renders=renders, audio=audio)


def _row_seeds(seed: int | Sequence[int], n: int) -> np.ndarray:
    """One render seed per sound."""
    seeds = np.atleast_1d(np.asarray(seed, dtype=np.int64))
    if seeds.size == 1:
        return np.full(n, int(seeds[0]), dtype=np.int64)
    if seeds.size != n:
        raise ParameterValueError(f"got {seeds.size} render seeds for {n} target sounds")
    return seeds


def predict_and_search(
    model: Any,
    synth: Synth,
    settings: RenderSettings,
    targets: np.ndarray | Sequence[np.ndarray],
    *,
    renders: int = 16,
    base: Mapping[str, float] | Sequence[Mapping[str, float]] | None = None,
    seed: int | Sequence[int] = 0,
    method: str = "hill",
) -> BestOfK:
    """A regressor's answer at ``renders`` renders per sound: its prediction, then a local search.

    The prediction costs one render; the search (:func:`synth_probe.matching.refine`)
    gets the other ``renders - 1`` and never returns a patch further from the target
    than the prediction.

    Parameters
    ----------
    model : estimator or Pipeline
        A fitted model whose ``predict`` takes the target audio rows and returns a
        DataFrame named by synth parameters (a pipeline of ``synth-probe train``).
    synth, settings, targets, base, seed
        As :func:`best_of_k`.
    renders : int, default=16
        Renders per sound, the prediction's included.
    method : {"hill", "cmaes"}, default="hill"

    Returns
    -------
    BestOfK
        ``all_distances`` has one column, the prediction's distance; ``chosen`` is 0.
    """
    if not isinstance(renders, (int, np.integer)) or isinstance(renders, bool) or renders < 1:
        raise ParameterValueError(f"renders must be an int >= 1, got {renders!r}")
    T = _check_targets(targets, settings)
    pred = model.predict(T)
    if not isinstance(pred, pd.DataFrame):
        raise ParameterValueError(f"{type(model).__name__}.predict must return a DataFrame named by "
                                  f"{synth.name}'s parameters (a model of `synth-probe train`)")
    vectors = base_vectors(synth, len(T), base)
    for c in pred.columns:
        synth.spec(str(c))  # UnknownParameterError, with the closest names
        vectors[:, synth.param_names.index(str(c))] = np.clip(pred[c].to_numpy(dtype=np.float64), 0.0, 1.0)
    seeds = _row_seeds(seed, len(T))
    n = len(T)
    start_d, dist, n_renders = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    audio = np.empty_like(T)
    patches = []
    for i in range(n):
        objective = MatchObjective(synth, T[i], settings, seed=int(seeds[i]))
        start = objective.snap(vectors[i])
        start_d[i] = objective(start)
        found = refine(objective, start, int(renders) - 1, method=method, seed=int(seeds[i]),
                       start_distance=float(start_d[i]))
        best = objective.snap(found.vector) if found.distance < start_d[i] else start
        dist[i] = min(found.distance, start_d[i])
        patches.append(dict(zip(synth.param_names, map(float, best))))
        audio[i] = objective.audio_for(best)
        n_renders[i] = objective.n_renders
    return BestOfK(patches=patches, distances=dist, all_distances=start_d[:, None], chosen=np.zeros(n, np.int64),
                   n_renders=n_renders, audio=audio)


def _check_targets(targets: np.ndarray | Sequence[np.ndarray], settings: RenderSettings) -> np.ndarray:
    """Target rows as float32 ``(n, settings.n_samples)``; AudioError otherwise."""
    T = np.asarray(targets, dtype=np.float32)
    if T.ndim != 2 or T.shape[1] != settings.n_samples:
        raise AudioError(
            f"targets must be rows of {settings.n_samples} samples ({settings.render_length} s at "
            f"{settings.sample_rate} Hz), got shape {T.shape}"
        )
    return T


def compare_at_renders(
    models: Mapping[str, Any],
    synth: Synth,
    settings: RenderSettings,
    targets: np.ndarray,
    truth: pd.DataFrame,
    *,
    k: int = 16,
    seeds: Sequence[int] | None = None,
    random_state: Any = 0,
    levels: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Each model's answer at ``k`` renders per sound, measured in audio and in parameters.

    A model that draws patches (a posterior) answers with the best of ``k`` draws
    (:func:`best_of_k`); any other with its prediction plus a ``k - 1``-render hill
    climb (:func:`predict_and_search`). The parameters a model does not predict keep
    their true values (from ``truth``), as in :func:`synth_probe.metrics.audio_report`.

    Parameters
    ----------
    models : mapping of str to estimator or Pipeline
        Label -> fitted model taking audio rows.
    synth : Synth
    settings : RenderSettings
    targets : np.ndarray [shape=(n, n_samples)]
    truth : DataFrame [shape=(n, n_params)]
        True unit values of the targets' patches (the dataset's columns).
    k : int, default=16
    seeds : sequence of n ints, optional
        Render seed of each target (the dataset's).
    random_state : int, numpy Generator or None, default=0
        Seeds the posterior's draws.
    levels : mapping, optional
        Grid levels of the parameters (:func:`synth_probe.metrics.grid_levels`).

    Returns
    -------
    dict
        Label -> ``method``, ``renders_per_sound`` (mean renders made), ``log_mel``
        (``median``, ``mean``, ``q25``, ``q75`` dB), ``start_log_mel_median`` (the
        single prediction or the first draw), ``parameters`` (records of
        :func:`~synth_probe.metrics.parameter_report` for the chosen patches),
        ``mean_mpr`` and ``per_sound`` (the chosen patch's distance per target).
    """
    base = truth.to_dict("records")
    seed = 0 if seeds is None else list(seeds)
    out: dict[str, Any] = {}
    for label, model in models.items():
        if draws_patches(model):
            res = best_of_k(model, synth, settings, targets, k=k, base=base, random_state=random_state, seed=seed)
            method = f"best of {k} posterior draws"
        else:
            res = predict_and_search(model, synth, settings, targets, renders=k, base=base, seed=seed)
            method = f"prediction + {k - 1}-render hill climb"
        cols = model_columns(estimator_parts(model)[1], synth)
        chosen = pd.DataFrame(res.patches)[cols]
        report = parameter_report(truth[cols].reset_index(drop=True), chosen, synth.name, levels=levels)
        d = res.distances
        out[label] = {
            "method": method, "renders_per_sound": float(np.mean(res.n_renders)),
            "log_mel": {"median": float(np.median(d)), "mean": float(np.mean(d)),
                        "q25": float(np.percentile(d, 25)), "q75": float(np.percentile(d, 75))},
            "start_log_mel_median": float(np.median(res.all_distances[:, 0])),
            "parameters": json.loads(report.reset_index().to_json(orient="records")),
            "mean_mpr": float(report.mpr.mean()), "per_sound": [float(x) for x in d],
        }
    return out


def format_comparison(result: Mapping[str, Any]) -> str:
    """The table of :func:`compare_at_renders`: one line per model, audio distance and mean MPR."""
    width = max(len(str(label)) for label in result)
    lines = [f"{'':{width}}  {'method':36s} {'renders':>7s} {'log-mel median':>14s} {'mean':>7s} "
             f"{'(start median)':>14s} {'mean MPR':>8s}"]
    for label, r in result.items():
        lm = r["log_mel"]
        lines.append(f"{label:{width}}  {r['method']:36s} {r['renders_per_sound']:7.1f} {lm['median']:14.3f} "
                     f"{lm['mean']:7.3f} {r['start_log_mel_median']:14.3f} {r['mean_mpr']:8.1f}")
    lines.append("(multi-resolution log-mel distance in dB of the chosen render from the target; start: the "
                 "single prediction, or the first posterior draw)")
    return "\n".join(lines)


def draw_spread(
    samples: np.ndarray,
    columns: Sequence[str],
    discrete: Sequence[bool],
    *,
    min_share: float = 0.2,
    gap: float = 0.15,
) -> dict[str, dict[str, Any]]:
    """Per parameter, how spread a posterior's draws are over the sounds: width and modes.

    A sound's draws of a parameter are *multi-modal* when they split in two groups of
    at least ``min_share`` of the draws each: for a discrete parameter, two or more
    choices drawn that often; for a continuous one, a gap of at least ``gap`` (unit
    values) between the sorted draws at a split point that leaves ``min_share`` on
    either side.

    Parameters
    ----------
    samples : np.ndarray [shape=(n_sounds, n_draws, n_params)]
        Unit values, e.g. from
        :meth:`~synth_probe.models.posterior.FlowMatchingPosterior.sample`.
    columns : sequence of str [shape=(n_params,)]
    discrete : sequence of bool [shape=(n_params,)]
    min_share : float, default=0.2
    gap : float, default=0.15

    Returns
    -------
    spread : dict of str to dict
        Parameter -> ``kind``, ``mean_std`` (mean over sounds of the draws' standard
        deviation, unit values), ``multimodal_share`` (share of sounds whose draws are
        multi-modal), ``n_sounds`` and ``n_draws``.
    """
    S = np.asarray(samples, dtype=np.float64)
    n, m = S.shape[:2]
    need = max(1, math.ceil(min_share * m))
    out: dict[str, dict[str, Any]] = {}
    for j, (name, is_disc) in enumerate(zip(columns, discrete)):
        x = S[:, :, j]
        if is_disc:
            counts = np.stack([(x == v).sum(axis=1) for v in np.unique(x)], axis=1)
            multi = (counts >= need).sum(axis=1) >= 2
        else:
            srt = np.sort(x, axis=1)
            gaps = np.diff(srt, axis=1)  # gaps[:, i]: between the (i+1) lowest draws and the rest
            left = np.arange(1, m)
            ok = (left >= need) & (m - left >= need)
            multi = (gaps[:, ok].max(axis=1) >= gap) if ok.any() else np.zeros(n, dtype=bool)
        out[str(name)] = {"kind": "discrete" if is_disc else "continuous", "mean_std": float(x.std(axis=1).mean()),
                          "multimodal_share": float(multi.mean()), "n_sounds": int(n), "n_draws": int(m)}
    return out
