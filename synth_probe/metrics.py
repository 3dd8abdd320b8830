"""Per-parameter and audio-domain metrics of parameter estimates.

Parameter metrics (unit space)
------------------------------
continuous
    MAE and R² of the unit values.
discrete
    accuracy and balanced accuracy of the chosen class (the choice the synth
    would pick for each unit value), beside two chance levels: ``1 / n_choices``
    (a uniform guess) and the majority-class rate of the truth.
every parameter
    MPR, InverSynth's *mean percentile rank* (``reference/anchors.md`` §2): for
    each sample, rank the candidate classes from most to least likely; the true
    class at rank ``r`` (0 = first) of ``K`` scores ``100 · (1 − r / (K − 1))``;
    MPR is the mean. A random ranking scores 50 on average, a perfect one 100.

    * continuous parameters: the classes are ``16`` equal bins of [0, 1]; the
      truth falls in one bin, and the bins are ranked by the distance of the
      predicted value to each bin's centre (ties share their mean rank). With
      a prediction that carries no information, every bin is equally likely to
      hold the truth at each rank, so chance is exactly 50.
    * parameters sampled on a grid (``levels=``, e.g. the ``inversynth``
      sampler's 8 or 16 levels): the classes are the grid's own levels, as in
      InverSynth, where each parameter's classes are the values it was drawn
      from. Uniform 16 bins would misplace such a grid (cutoff's 16 levels in
      0.3..1 fill only 12 of them, two to a bin), and a constant prediction
      would score far from 50 (67 for the mean patch on ``inversynth``).
      Continuous levels are ranked by the model's level probabilities where it
      gives them (a model that learns the levels as classes, as InverSynth's
      do: ``levels=`` of kNN, LightGBM and the torch models), else by distance
      to the prediction; discrete ones by the class probabilities restricted to
      the sampled choices.
    * discrete parameters: the classes are the parameter's own choices, ranked
      by the estimator's class probabilities when given (``proba=``), else by
      the distance of the predicted unit value to each choice's unit value.

Audio-domain metrics
--------------------
:func:`audio_report` re-renders the predicted patches and measures
multi-resolution log-mel distance (dB), spectral convergence and MFCC distance
to the target audio (:mod:`synth_probe.spectral`), beside the same distances of
the mean-patch baseline.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, make_scorer, r2_score

from synth_probe.errors import ParameterValueError
from synth_probe.models.base import ParamTargets, nearest_level

__all__ = [
    "N_MPR_BINS",
    "percentile_ranks",
    "mpr_continuous",
    "mpr_levels",
    "grid_levels",
    "mpr_from_scores",
    "mean_mpr",
    "mean_mpr_scorer",
    "parameter_report",
    "audio_report",
    "summarize_audio",
]

#: bins of a continuous parameter for the MPR (InverSynth quantized each parameter to 16 classes)
N_MPR_BINS = 16


def percentile_ranks(true_index: np.ndarray, scores: np.ndarray, tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Percentile rank of the true class in each row of ``scores`` (higher score = ranked first).

    Parameters
    ----------
    true_index : np.ndarray of int [shape=(n,)]
    scores : np.ndarray [shape=(n, K)]
        K >= 2 candidate classes.
    tiebreak : np.ndarray [shape=(n, K)], optional
        Second key (higher = ranked first) among classes of equal score.

    Returns
    -------
    pr : np.ndarray [shape=(n,)]
        ``100 · (1 − r / (K − 1))`` with ``r`` the 0-based rank of the true class;
        classes tied on every key share the mean of their ranks.
    """
    scores = np.asarray(scores, dtype=np.float64)
    true_index = np.asarray(true_index, dtype=np.int64)
    n, k = scores.shape
    if k < 2:
        raise ParameterValueError(f"a percentile rank needs at least 2 classes, got {k}")
    rows = np.arange(n)
    s_true = scores[rows, true_index][:, None]
    better = scores > s_true
    same = scores == s_true
    if tiebreak is not None:
        tb = np.asarray(tiebreak, dtype=np.float64)
        tb_true = tb[rows, true_index][:, None]
        better = better | (same & (tb > tb_true))
        same = same & (tb == tb_true)
    rank = better.sum(axis=1) + (same.sum(axis=1) - 1) / 2.0
    return 100.0 * (1.0 - rank / (k - 1))


def _continuous_scores(y_pred: np.ndarray, n_bins: int) -> np.ndarray:
    centres = (np.arange(n_bins) + 0.5) / n_bins
    return -np.abs(np.asarray(y_pred, dtype=np.float64)[:, None] - centres[None, :])


def _bin(y: np.ndarray, n_bins: int) -> np.ndarray:
    return np.clip(np.floor(np.asarray(y, dtype=np.float64) * n_bins), 0, n_bins - 1).astype(np.int64)


def mpr_continuous(y_true: Any, y_pred: Any, n_bins: int = N_MPR_BINS) -> float:
    """MPR of a continuous parameter (unit values), bins ranked by distance to the prediction.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n,)]
        Unit values in [0, 1].
    n_bins : int, default=16

    Returns
    -------
    mpr : float
        In [0, 100]; chance 50.
    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    return float(percentile_ranks(_bin(y_true, n_bins), _continuous_scores(y_pred, n_bins)).mean())


def _level_index(y_true: Any, levels: Any) -> tuple[np.ndarray, np.ndarray]:
    """The grid's distinct levels, sorted, and the index of the level nearest each true value."""
    lv = np.asarray(sorted(set(np.asarray(levels, dtype=np.float64).ravel().tolist())))
    return lv, nearest_level(y_true, lv)


def mpr_levels(y_true: Any, y_pred: Any, levels: Any) -> float:
    """MPR of a parameter drawn from a grid: the ``K`` levels ranked by distance to the prediction.

    Parameters
    ----------
    y_true, y_pred : array-like [shape=(n,)]
        Unit values; each true value is assigned to its nearest level.
    levels : array-like [shape=(K,)]
        The grid, K >= 2 distinct values.

    Returns
    -------
    mpr : float
        In [0, 100]; a constant prediction scores 50 when the levels are drawn uniformly.
    """
    lv, true_index = _level_index(y_true, levels)
    y_pred = np.asarray(y_pred, dtype=np.float64).ravel()
    return float(percentile_ranks(true_index, -np.abs(y_pred[:, None] - lv[None, :])).mean())


def grid_levels(params: pd.DataFrame, max_levels: int = 32) -> dict[str, tuple[float, ...]]:
    """The grid of each column that takes between 2 and ``max_levels`` distinct values.

    Pass a dataset's whole parameter table (not a split of it), so that every
    level is seen. Columns drawn uniformly from [0, 1] take as many values as
    rows and are left out; so are columns of a table too small to tell (fewer
    than 4 rows per distinct value). Discrete parameters drawn from all their
    choices give those choices, which :func:`parameter_report` would use anyway.

    Returns
    -------
    levels : dict of str -> tuple of float
    """
    out: dict[str, tuple[float, ...]] = {}
    for c in params.columns:
        u = np.unique(params[c].to_numpy(dtype=np.float64))
        if 2 <= len(u) <= max_levels and 4 * len(u) <= len(params):
            out[str(c)] = tuple(float(v) for v in u)
    return out


def mpr_from_scores(true_index: Any, scores: Any, tiebreak: Any = None) -> float:
    """MPR of classes ranked by ``scores`` (probabilities, or negative distances), ties by ``tiebreak``."""
    return float(percentile_ranks(np.asarray(true_index), np.asarray(scores), tiebreak).mean())


def mean_mpr(y_true: Any, y_pred: Any) -> float:
    """Mean over target columns of :func:`mpr_continuous` (every column binned as continuous).

    For a scorer that knows nothing of the synth; :func:`parameter_report` treats
    discrete parameters by their choices.
    """
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.ndim == 1:
        yt, yp = yt[:, None], yp[:, None]
    return float(np.mean([mpr_continuous(yt[:, j], yp[:, j]) for j in range(yt.shape[1])]))


#: scikit-learn scorer (greater is better) for ``cross_val_score(..., scoring=mean_mpr_scorer)``
mean_mpr_scorer = make_scorer(mean_mpr)


def parameter_report(
    y_true: pd.DataFrame | Any,
    y_pred: pd.DataFrame | Any,
    synth: str | None = None,
    *,
    discrete: Mapping[Any, Any] | None = None,
    proba: Mapping[str, np.ndarray] | None = None,
    n_bins: int = N_MPR_BINS,
    levels: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row of metrics per parameter.

    Parameters
    ----------
    y_true, y_pred : DataFrame [shape=(n_samples, n_params)]
        Unit values; the same columns (``y_pred`` is reordered to ``y_true``'s).
        Arrays are accepted (columns become ``y0``, ``y1``...).
    synth : str or None, default=None
        Synth whose specs mark discrete parameters and how a unit value picks a choice.
    discrete : mapping or None, default=None
        Column -> number of choices (or their unit values); overrides ``synth``.
    proba : mapping of str -> np.ndarray [shape=(n_samples, n_choices)], optional
        Class probabilities of discrete parameters (e.g. from
        ``SynthEstimator.predict_discrete_proba``), used to rank choices for MPR; and of
        continuous parameters with a grid in ``levels``, shape ``(n_samples, n_levels)`` in the
        order of the sorted levels (``SynthEstimator.predict_level_proba``), used to rank the levels.
    n_bins : int, default=16
        MPR bins of continuous parameters.
    levels : mapping of str -> sequence of float, optional
        Parameters sampled on a grid (e.g. :func:`grid_levels` of the dataset's
        parameter table): their MPR ranks the grid's levels (continuous) or the
        sampled choices (discrete) instead of 16 bins or all choices.

    Returns
    -------
    report : DataFrame
        Indexed by ``parameter``; columns ``kind``, ``n_choices``, ``mae``, ``r2``
        (continuous), ``accuracy``, ``balanced_accuracy``, ``chance_accuracy``
        (1 / n_choices), ``majority_rate`` (discrete), ``mpr`` and ``mpr_chance`` (50);
        NaN where a metric does not apply.
    """
    if isinstance(y_true, pd.DataFrame):
        if not isinstance(y_pred, pd.DataFrame):
            y_pred = pd.DataFrame(np.asarray(y_pred), columns=y_true.columns)
        missing = [c for c in y_true.columns if c not in y_pred.columns]
        if missing:
            raise ParameterValueError(
                f"predictions lack parameters {missing}; they have {list(y_pred.columns)}"
            )
        y_pred = y_pred[list(y_true.columns)]
    if len(y_true) != len(y_pred):
        raise ParameterValueError(f"y_true has {len(y_true)} rows but y_pred has {len(y_pred)}")
    targets = ParamTargets(synth=synth, discrete=discrete).fit(y_true)
    Tc, Td = targets.transform(y_true)
    Pc, Pd = targets.transform(y_pred)
    Pc_raw = ParamTargets._as_2d(y_pred)[:, targets.continuous_index]
    Pd_raw = ParamTargets._as_2d(y_pred)[:, targets.discrete_index]
    rows = []
    names = targets.names
    levels = dict(levels or {})
    for k, j in enumerate(targets.continuous_index):
        t, p = Tc[:, k], Pc_raw[:, k]
        grid = levels.get(names[j])
        if grid is not None and len(set(grid)) >= 2:
            mpr = _grid_mpr(names[j], t, p, grid, (proba or {}).get(names[j]))
        else:
            mpr = mpr_continuous(t, p, n_bins)
        rows.append(dict(
            parameter=names[j], kind="continuous", n_choices=np.nan,
            mae=float(np.mean(np.abs(t - p))),
            r2=float(r2_score(t, p)) if len(t) > 1 and np.ptp(t) > 0 else np.nan,
            accuracy=np.nan, balanced_accuracy=np.nan, chance_accuracy=np.nan, majority_rate=np.nan,
            mpr=mpr, mpr_chance=50.0,
        ))
    for k, j in enumerate(targets.discrete_index):
        rows.append(_discrete_row(targets, k, names[j], Td[:, k], Pd[:, k], Pd_raw[:, k], proba, levels))
    order = {n: i for i, n in enumerate(names)}
    rows.sort(key=lambda r: order[r["parameter"]])
    return pd.DataFrame(rows).set_index("parameter")


def _grid_mpr(name: str, t: np.ndarray, p: np.ndarray, grid: Any, scores: np.ndarray | None) -> float:
    """MPR of a continuous parameter drawn from ``grid``: its levels ranked by the model's level
    probabilities ``scores`` ``(n, K)`` when given, levels of equal probability (a neighbour vote's
    unvoted levels) by their distance to the prediction ``p``; else by that distance alone."""
    if scores is None:
        return mpr_levels(t, p, grid)
    lv, true_index = _level_index(t, grid)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(t), len(lv)):
        raise ParameterValueError(
            f"proba[{name!r}] has shape {scores.shape}, expected {(len(t), len(lv))} (one column per level of "
            "its grid)")
    return mpr_from_scores(true_index, scores, -np.abs(np.asarray(p, dtype=np.float64)[:, None] - lv[None, :]))


def _discrete_row(targets: ParamTargets, k: int, name: str, t: np.ndarray, p: np.ndarray, p_raw: np.ndarray,
                  proba: Mapping[str, np.ndarray] | None, levels: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics of discrete target ``k`` (true and predicted choice indices ``t``, ``p``) for parameter_report."""
    n_choices = targets.n_classes[k]
    if proba is not None and name in proba:
        scores = np.asarray(proba[name], dtype=np.float64)
        if scores.shape != (len(t), n_choices):
            raise ParameterValueError(
                f"proba[{name!r}] has shape {scores.shape}, expected {(len(t), n_choices)}"
            )
    else:
        cv = np.asarray(targets.choice_values[k])
        scores = -np.abs(p_raw[:, None] - cv[None, :])
    mpr_t, mpr_scores = t, scores
    if name in levels:
        # rank only the choices that were sampled (the grid's), as InverSynth ranks its own classes
        cv = np.asarray(targets.choice_values[k], dtype=np.float64)
        sampled = np.unique(np.argmin(np.abs(np.asarray(levels[name], dtype=np.float64)[:, None] - cv[None, :]),
                                      axis=1))
        if len(sampled) >= 2 and np.isin(t, sampled).all():
            mpr_t = np.searchsorted(sampled, t)
            mpr_scores = scores[:, sampled]
    return dict(
        parameter=name, kind="discrete", n_choices=float(n_choices), mae=np.nan, r2=np.nan,
        accuracy=float(np.mean(t == p)),
        balanced_accuracy=float(balanced_accuracy_score(t, p)) if len(t) else np.nan,
        chance_accuracy=1.0 / n_choices,
        majority_rate=float(np.bincount(t, minlength=n_choices).max() / len(t)) if len(t) else np.nan,
        mpr=mpr_from_scores(mpr_t, mpr_scores), mpr_chance=50.0,
    )


def _patch_matrix(synth: Any, base: pd.DataFrame, overrides: pd.DataFrame | None) -> np.ndarray:
    """Full unit vectors (host order): defaults, then ``base`` columns, then ``overrides`` columns."""
    names = synth.param_names
    index = {n: i for i, n in enumerate(names)}
    vec = np.tile(np.asarray([s.default for s in synth.specs], dtype=np.float64), (len(base), 1))
    for frame in (base, overrides):
        if frame is None:
            continue
        for col in frame.columns:
            if col not in index:
                from synth_probe.errors import UnknownParameterError

                raise UnknownParameterError(str(col), names, synth=synth.name)
            vec[:, index[col]] = np.clip(frame[col].to_numpy(dtype=np.float64), 0.0, 1.0)
    return vec


def audio_report(
    synth: Any,
    patches: pd.DataFrame,
    y_pred: pd.DataFrame,
    settings: Any,
    *,
    seeds: np.ndarray | None = None,
    target_audio: np.ndarray | None = None,
    baseline: pd.DataFrame | Mapping[str, float] | None = None,
    jobs: int = 1,
) -> pd.DataFrame:
    """Re-render predicted patches and measure their distance to the targets.

    The predicted columns replace the true values in each target patch; the
    parameters that were not predicted keep their true values, so the distance
    measures only the estimated parameters.

    Parameters
    ----------
    synth : Synth or str
    patches : DataFrame [shape=(n, n_params)]
        The true patches (unit values; absent parameters take their defaults).
    y_pred : DataFrame [shape=(n, n_predicted)]
        Predicted unit values of some parameters.
    settings : RenderSettings
    seeds : np.ndarray [shape=(n,)], optional
        Render seed of each target (the dataset's), reused for the re-render.
    target_audio : np.ndarray [shape=(n, n_samples)], optional
        The targets' audio; rendered from ``patches`` when absent.
    baseline : DataFrame or mapping, optional
        The mean-patch baseline's prediction for the same columns (a row per
        sample, or one mapping for all), e.g. ``MeanBaseline().fit(...).predict(X)``.
    jobs : int, default=1
        Render workers (:func:`synth_probe.render.render_many`).

    Returns
    -------
    distances : DataFrame [shape=(n, 3 or 6)]
        Per sample: ``log_mel`` (multi-resolution log-mel distance, dB),
        ``spectral_convergence``, ``mfcc`` (MFCC distance); and ``baseline_*``
        the same for the baseline when given.
    """
    from synth_probe import spectral
    from synth_probe.render import render_many
    from synth_probe.synths.registry import get_synth

    if isinstance(synth, str):
        synth = get_synth(synth)
    y_pred = pd.DataFrame(y_pred).reset_index(drop=True)
    patches = pd.DataFrame(patches).reset_index(drop=True)
    if len(y_pred) != len(patches):
        raise ParameterValueError(f"{len(patches)} target patches but {len(y_pred)} predictions")
    sr = int(settings.sample_rate)
    if target_audio is None:
        target_audio = render_many(synth, _patch_matrix(synth, patches, None), settings, seeds, jobs=jobs)
    target_audio = np.asarray(target_audio, dtype=np.float32)
    out = {}
    candidates = [("", y_pred)]
    if baseline is not None:
        if isinstance(baseline, Mapping):
            baseline = pd.DataFrame([dict(baseline)] * len(patches))
        candidates.append(("baseline_", pd.DataFrame(baseline).reset_index(drop=True)))
    for prefix, pred in candidates:
        audio = render_many(synth, _patch_matrix(synth, patches, pred), settings, seeds, jobs=jobs)
        out[prefix + "log_mel"] = np.atleast_1d(spectral.multi_resolution_log_mel_distance(target_audio, audio, sr))
        out[prefix + "spectral_convergence"] = np.atleast_1d(spectral.spectral_convergence(target_audio, audio))
        out[prefix + "mfcc"] = np.atleast_1d(spectral.mfcc_distance(target_audio, audio, sr))
    return pd.DataFrame(out)


def summarize_audio(distances: pd.DataFrame) -> pd.DataFrame:
    """Mean and median of each distance column of :func:`audio_report` (distances are heavy-tailed)."""
    return distances.agg(["mean", "median"]).T
