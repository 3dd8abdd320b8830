"""The one builder of the model families' pipelines (feature step + estimator).

Every place that fits a model (``synth-probe train``, ``synth-probe tune``, the
predictability suite, the matching benchmark, the research scripts) gets the
family's feature step and estimator from here, with the same inputs: the
family table :data:`FAMILIES` (:mod:`synth_probe.families`, re-exported here)
says which features a family reads by default, :func:`feature_step` turns a :class:`FeatureSpec` into a transformer, and
:func:`build_estimator` / :func:`build_pipeline` fill in the constructor
arguments that depend on the data (input shape of a spectrogram model, the
discrete/continuous layout of the targets, seed, threads).

A probe dataset (several renders of each patch, :mod:`synth_probe.probe`) is read as rows of
``n_renders * n_samples`` samples: given the probe's ``renders``, the feature step is a
:class:`~synth_probe.features.ProbeFeatures` that applies the family's features to each render
(tabular features gain the differences between neighbouring renders and each render's note and
velocity), and a spectrogram model reads the
renders' images as input channels, ``input_shape=(n_renders, bins, frames)`` (a probe of one render
keeps the single image's ``(bins, frames)``).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from sklearn.pipeline import FeatureUnion, Pipeline

from synth_probe.errors import ParameterValueError, UnknownModelError, closest_names
from synth_probe.families import (
    FAMILIES,
    FEATURE_SETS,
    GRID_CLASS_MODELS,
    GRID_LEVEL_SMOOTHING,
    MEL_HOP,
    N_FFT,
    N_MELS,
    STATS_HOP,
    SUITE,
    TIME_POOL,
    TORCH_FAMILIES,
    TUNED,
    FeatureSpec,
    Family,
    default_features,
    family,
    resolve_family,
)
from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram, MatchingSpectrogram, ProbeFeatures
from synth_probe.features.probe import render_triples

__all__ = [
    "Family",
    "FAMILIES",
    "SUITE",
    "TUNED",
    "TORCH_FAMILIES",
    "FEATURE_SETS",
    "FeatureSpec",
    "N_FFT",
    "MEL_HOP",
    "STATS_HOP",
    "N_MELS",
    "TIME_POOL",
    "family",
    "family_class",
    "resolve_family",
    "default_features",
    "feature_step",
    "input_shape",
    "build_estimator",
    "build_pipeline",
]


def family_class(name: str) -> type:
    """The estimator class of a family name or alias.

    Raises
    ------
    UnknownModelError
        An unknown name, or a family whose module cannot be imported here.
    """
    target = family(name).target
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise UnknownModelError(name, list(FAMILIES), reason=f"it cannot be imported: {e}") from None


def _as_spec(features: FeatureSpec | str | None, name: str) -> FeatureSpec:
    if features is None:
        return default_features(name)
    if isinstance(features, FeatureSpec):
        return features
    return FeatureSpec(str(features))


#: the families that compare feature rows by a metric, and the metric they get on the ``matching`` features:
#: Manhattan on unstandardized rows, whose L1 distance is the match distance (overrides still win)
MATCHING_METRIC_FAMILIES: tuple[str, ...] = ("knn", "neighbours")
MATCHING_METRIC: dict[str, Any] = {"metric": "manhattan", "standardize": False}


#: whether the tabular features of a probe of several renders also hold the differences between
#: neighbouring renders' features (:class:`ProbeFeatures` ``contrast``; see the README's probe figures)
PROBE_CONTRAST = True


def feature_step(spec: FeatureSpec | str, *, sample_rate: int, note_length: float | None,
                 jobs: int | None = None, renders: Sequence[Any] | None = None) -> Any:
    """The (unfitted) transformer of a feature setting, or None for raw audio rows.

    Parameters
    ----------
    spec : FeatureSpec or str
        A setting, or a :data:`FEATURE_SETS` key with the default settings.
    sample_rate : int
    note_length : float or None
        Seconds the note is held (the handcrafted release descriptors read it).
    jobs : int or None
        Worker processes of the transformer (does not change its output).
    renders : sequence of RenderSettings or (note, velocity, note_length), optional
        A probe's renders (:meth:`synth_probe.probe.Probe.renders`): the step reads rows of
        ``n_renders * n_samples`` samples and is a :class:`ProbeFeatures` around the per-render
        step (tabular features with the differences between neighbouring renders' features,
        :data:`PROBE_CONTRAST`, and each render's note and velocity; ``logmel`` without either: the
        renders as input channels of the spectrogram models). None: one render per row, as before probes. Raw audio (``none``) passes through.
    """
    spec = spec if isinstance(spec, FeatureSpec) else FeatureSpec(spec)
    step = _render_step(spec, sample_rate=sample_rate, note_length=note_length, jobs=jobs)
    if renders is None or step is None:
        return step
    tabular = spec.kind not in ("logmel", "matching")  # matching: the renders' rows side by side, L1 summed
    return ProbeFeatures(step, renders=render_triples(renders), context=tabular,
                         contrast=tabular and PROBE_CONTRAST)


def _render_step(spec: FeatureSpec, *, sample_rate: int, note_length: float | None, jobs: int | None) -> Any:
    """The feature step of one render's audio rows (see :func:`feature_step`)."""
    if spec.kind == "none":
        return None
    if spec.kind == "matching":
        return MatchingSpectrogram(sample_rate=int(sample_rate), n_jobs=jobs)
    if spec.kind == "logmel":
        return LogMelSpectrogram(sample_rate=int(sample_rate), n_fft=N_FFT, hop_length=int(spec.hop),
                                 n_mels=int(spec.n_mels), n_jobs=jobs)
    hand = HandcraftedFeatures(sample_rate=int(sample_rate), note_length=note_length, n_fft=N_FFT,
                               hop_length=STATS_HOP, n_jobs=jobs)
    stats = LogMelSpectrogram(sample_rate=int(sample_rate), n_fft=N_FFT, hop_length=int(spec.hop),
                              n_mels=int(spec.n_mels), time_pool=int(spec.pool), n_jobs=jobs)
    if spec.kind == "handcrafted":
        return hand
    if spec.kind == "logmel-stats":
        return stats
    return FeatureUnion([("handcrafted", hand), ("logmel", stats)])


def input_shape(step: Any, n_samples: int) -> tuple[int, ...] | None:
    """Shape of the flattened spectrogram image(s) ``step`` makes of ``n_samples``-sample clips.

    ``(bins, frames)`` for one render; for a probe's :class:`ProbeFeatures` around a full
    spectrogram with more than one render, the renders' images as input channels,
    ``(n_renders, bins, frames)`` (``n_samples`` is one render's; a probe of one render keeps
    ``(bins, frames)``, so models, datasets and figures of single renders stay as they were).
    Bins and frames are always ``shape[-2]`` and ``shape[-1]``. None when ``step`` is not a full
    (unpooled) spectrogram.
    """
    if isinstance(step, ProbeFeatures) and not step.context:
        one = input_shape(step.step, n_samples)
        if one is None or len(step.renders) == 1:
            return one
        return (len(step.renders), *one)
    if isinstance(step, LogMelSpectrogram) and step.flatten and step.time_pool is None:
        return int(step.n_bins()), int(step.n_frames(int(n_samples)))
    return None


def build_estimator(
    name: str,
    *,
    input_shape: tuple[int, int] | tuple[int, int, int] | None = None,
    discrete: Mapping[Any, Any] | None = None,
    synth: str | None = None,
    seed: int | None = 0,
    jobs: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    levels: Mapping[str, Sequence[float]] | None = None,
) -> Any:
    """The estimator of family ``name`` with the constructor arguments the data decides.

    Parameters
    ----------
    name : str
        Family name or alias.
    input_shape : (int, int), (int, int, int) or None
        ``(bins, frames)`` of the spectrogram image, or ``(n_renders, bins, frames)`` of a probe's
        images read as input channels (torch families; :func:`input_shape`).
    discrete : mapping or None
        The targets' discrete layout (:func:`synth_probe.models.base.discrete_layout`; ``{}``: all
        continuous). Required with ``synth``.
    synth : str or None
        Synth name or plugin path, recorded with the model (never opened by it).
    seed : int or None
        ``random_state``.
    jobs : int or None
        ``n_jobs`` (LightGBM and kNN threads).
    threads : int or None
        ``n_jobs`` and ``num_threads`` (torch threads); overrides ``jobs``.
    device : str or None
        Torch device.
    overrides : mapping
        Hyperparameters set last.
    levels : mapping of str -> sequence of float, optional
        The grids the dataset drew continuous parameters from (:func:`synth_probe.metrics.grid_levels`):
        the families of :data:`~synth_probe.families.GRID_CLASS_MODELS` learn them as classes over
        their levels (``levels=``), the torch ones on targets :data:`~synth_probe.families.GRID_LEVEL_SMOOTHING`
        levels wide; the other families regress them.

    Raises
    ------
    UnknownModelError, ParameterValueError
        An unknown family, or an override the estimator does not have (with the closest name).
    """
    cls = family_class(name)
    names = set(cls().get_params(deep=False))
    kw: dict[str, Any] = {"synth": synth, "discrete": None if discrete is None else dict(discrete)}
    if seed is not None:
        kw["random_state"] = int(seed)
    if jobs is not None:
        kw["n_jobs"] = jobs
    if threads is not None:
        kw.update(n_jobs=int(threads), num_threads=int(threads))
    if device is not None:
        kw["device"] = device
    if input_shape is not None:
        kw["input_shape"] = tuple(int(v) for v in input_shape)
    if levels and resolve_family(name) in GRID_CLASS_MODELS:
        kw["levels"] = {str(k): [float(v) for v in vs] for k, vs in levels.items()}
        kw["level_smoothing"] = GRID_LEVEL_SMOOTHING  # dropped just below for kNN and LightGBM, which lack it
    kw = {k: v for k, v in kw.items() if k in names}
    for key, value in (overrides or {}).items():
        if key not in names:
            hint = closest_names(key, sorted(names))
            raise ParameterValueError(
                f"{cls.__name__} has no parameter {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" Parameters: {', '.join(sorted(names))}")
        kw[key] = value
    return cls(**kw)


def build_pipeline(
    name: str,
    *,
    features: FeatureSpec | str | None = None,
    sample_rate: int,
    note_length: float | None,
    n_samples: int,
    discrete: Mapping[Any, Any] | None = None,
    synth: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = 0,
    jobs: int | None = None,
    threads: int | None = None,
    device: str | None = None,
    renders: Sequence[Any] | None = None,
    levels: Mapping[str, Sequence[float]] | None = None,
) -> Pipeline:
    """A Pipeline of the feature step (``"features"``, left out for raw audio) and the estimator.

    Parameters
    ----------
    name : str
        Family name or alias.
    features : FeatureSpec, str or None
        None: the family's default (:func:`default_features`).
    sample_rate, note_length, n_samples :
        Of the audio the pipeline will read (``n_samples``: of one render).
    discrete, synth, overrides, seed, jobs, threads, device, levels :
        As :func:`build_estimator`.
    renders : sequence of RenderSettings, optional
        A probe's renders (see :func:`feature_step`): the pipeline reads rows of
        ``n_renders * n_samples`` samples.
    """
    spec = _as_spec(features, name)
    step = feature_step(spec, sample_rate=sample_rate, note_length=note_length, jobs=jobs, renders=renders)
    if spec.kind == "matching" and resolve_family(name) in MATCHING_METRIC_FAMILIES:
        overrides = {**MATCHING_METRIC, **dict(overrides or {})}  # the L1 of the rows is the match distance
    shape = input_shape(step, n_samples) if family(name).torch else None
    est = build_estimator(name, input_shape=shape, discrete=discrete, synth=synth, seed=seed, jobs=jobs,
                          threads=threads, device=device, overrides=overrides, levels=levels)
    return Pipeline(([("features", step)] if step is not None else []) + [("estimator", est)])

