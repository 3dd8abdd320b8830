"""The model families: one table of what each family is and reads, and the feature settings.

Pure data, light to import (the CLI builds its parsers from it); the builders of
feature steps and estimators are in :mod:`synth_probe.pipeline`, which re-exports
these names.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synth_probe.errors import ParameterValueError, UnknownModelError

__all__ = ["Family", "FAMILIES", "GRID_CLASS_MODELS", "GRID_LEVEL_SMOOTHING", "SUITE", "TUNED", "TORCH_FAMILIES", "FEATURE_SETS", "FeatureSpec", "N_FFT",
           "MEL_HOP", "STATS_HOP", "N_MELS", "TIME_POOL", "family", "resolve_family", "default_features"]

#: STFT size of every feature step
N_FFT = 1024
#: hop of the full log-mel image the spectrogram models read (64 bands x 65 frames for 1.5 s at 22,050 Hz)
MEL_HOP = 512
#: hop of the log-mel spectrogram the tabular statistics pool in time, and of the handcrafted descriptors
STATS_HOP = 256
#: mel bands and time segments of the default features
N_MELS = 64
TIME_POOL = 8


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes
    ----------
    name : str
        The CLI name (``synth-probe train MODEL``, ``--families``, ``--models``).
    target : str
        ``"module:Class"`` of the estimator.
    features : str
        Default feature set, a key of :data:`FEATURE_SETS`.
    torch : bool
        A spectrogram model (reads the full log-mel image, reports epochs).
    aliases : tuple of str
        Other names accepted for the family.
    default_knobs : tuple of str
        Searched hyperparameters whose constructor default is a point of the tuning search
        space (empty: the family's untuned default is not a tuning trial).
    bench : dict of str -> dict
        Training-speed benchmark variants: name -> extra constructor arguments.
    """

    name: str
    target: str
    features: str
    torch: bool = False
    aliases: tuple[str, ...] = ()
    default_knobs: tuple[str, ...] = ()
    bench: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


#: every model family, in the predictability suite's training order
FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("mean", "synth_probe.models.baseline:MeanBaseline", "none"),
    Family("knn", "synth_probe.models.knn:NearestNeighbours", "combined", aliases=("nn",),
           default_knobs=("n_neighbors", "weights", "metric")),
    Family("gbm", "synth_probe.models.gbm:GBMEstimator", "combined", aliases=("lightgbm", "lgbm"),
           default_knobs=("learning_rate", "num_leaves", "min_child_samples", "subsample", "colsample_bytree")),
    Family("cnn", "synth_probe.models.cnn:SpectrogramCNN", "logmel", torch=True,
           default_knobs=("lr", "weight_decay", "batch_size", "dropout", "channels", "depth", "residual", "hidden"),
           bench={"cnn": {}, "cnn-residual": {"residual": True, "depth": 2}}),
    Family("autoencoder", "synth_probe.models.autoencoder:AutoencoderMLP", "logmel", torch=True,
           aliases=("autoencoder_mlp", "ae"), bench={"autoencoder": {}}),
    Family("transformer", "synth_probe.models.ast:SpectrogramTransformer", "logmel", torch=True,
           aliases=("ast",), bench={"transformer": {}}),
    Family("posterior", "synth_probe.models.posterior:FlowMatchingPosterior", "combined", aliases=("flow",)),
    Family("neighbours", "synth_probe.models.knn:NeighbourPosterior", "combined",
           aliases=("neighbors", "knn-posterior")),
)}
#: the predictability suite (the posteriors are trained on demand: ``--models ...,posterior,neighbours``)
SUITE: tuple[str, ...] = ("mean", "knn", "gbm", "cnn", "autoencoder", "transformer")
#: the families ``tune`` searches, in the order of its family choice (the first is the untuned default)
TUNED: tuple[str, ...] = ("gbm", "knn", "cnn", "autoencoder", "transformer")
TORCH_FAMILIES: frozenset[str] = frozenset(n for n, f in FAMILIES.items() if f.torch)
#: families that learn a continuous parameter drawn from a grid (the ``inversynth`` sampler's levels) as a
#: class over its levels, as InverSynth does, ranking the levels by their probabilities for the MPR
#: (``levels=``: LightGBM classifiers, the neighbours' votes, the torch models' class heads); the others regress it
GRID_CLASS_MODELS: tuple[str, ...] = ("knn", "neighbours", "gbm", "cnn", "autoencoder", "transformer")
#: ``level_smoothing`` that ``train`` and the predictability suite give the torch families' class heads over a
#: grid's levels (the class default, 0, trains one-hot targets): on the ``inversynth`` sampler's 20,000 one-note
#: and 6,667 three-note renders, targets one level wide raised the CNN, autoencoder and transformer by 0.2-1.4
#: mean MPR points and their ensemble with LightGBM by 0.4 (one note) and 1.2 (three notes); on a few hundred rows
#: they slowed a small transformer's learning
GRID_LEVEL_SMOOTHING = 1.0

#: ``--features`` choices
FEATURE_SETS: dict[str, str] = {
    "handcrafted": "HandcraftedFeatures (spectral shape, MFCC stats, envelope, pitch, modulation)",
    "logmel-stats": f"log-mel ({N_MELS} bands) averaged into {TIME_POOL} time segments",
    "combined": "handcrafted + logmel-stats side by side",
    "logmel": f"full log-mel spectrogram ({N_MELS} bands, hop {MEL_HOP}), flattened; for the torch models",
    "matching": "the multi-resolution log-mel spectrograms the match distance compares, scaled so that the L1 "
                "distance of two rows is that distance; for knn and neighbours (Manhattan, unstandardized)",
    "none": "the raw audio rows",
}


def resolve_family(name: str, choices: Sequence[str] | None = None) -> str:
    """The family a name or alias stands for (case-insensitive).

    Raises
    ------
    UnknownModelError
        Not a family of ``choices`` (default: all), with the closest name.
    """
    choices = list(FAMILIES) if choices is None else list(choices)
    n = str(name).strip().lower()
    for f in FAMILIES.values():
        if n in f.aliases:
            n = f.name
    if n not in choices:
        raise UnknownModelError(str(name).strip(), choices)
    return n


def family(name: str) -> Family:
    """The :class:`Family` of a name or alias."""
    return FAMILIES[resolve_family(name)]


@dataclass(frozen=True)
class FeatureSpec:
    """A feature setting: which features and their log-mel settings.

    Attributes
    ----------
    kind : str
        A key of :data:`FEATURE_SETS`.
    n_mels : int
        Mel bands (``logmel``, ``logmel-stats``, ``combined``).
    hop : int or None
        Hop of the log-mel spectrogram; None: :data:`MEL_HOP` for ``logmel``, :data:`STATS_HOP` otherwise.
    pool : int
        Time segments of the log-mel statistics (``logmel-stats``, ``combined``).
    """

    kind: str
    n_mels: int = N_MELS
    hop: int | None = None
    pool: int = TIME_POOL

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_SETS:
            raise ParameterValueError(f"unknown feature set {self.kind!r}; choose from {', '.join(FEATURE_SETS)}")
        if self.hop is None:
            object.__setattr__(self, "hop", MEL_HOP if self.kind == "logmel" else STATS_HOP)


def default_features(name: str) -> FeatureSpec:
    """The features a family reads unless told otherwise."""
    return FeatureSpec(family(name).features)


