"""Estimators that predict synth parameters (unit values) from audio features.

All follow scikit-learn's estimator contract and :mod:`synth_probe.models.base`'s
target convention. The torch models (``SpectrogramCNN``, ``AutoencoderMLP``,
``SpectrogramTransformer``) are imported on first use, so importing this
package does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from synth_probe.errors import UnknownModelError
from synth_probe.models.base import FitProgress, ParamTargets, SynthEstimator, discrete_layout
from synth_probe.models.baseline import MeanBaseline

__all__ = [
    "ParamTargets",
    "SynthEstimator",
    "MeanBaseline",
    "NearestNeighbours",
    "NeighbourPosterior",
    "GBMEstimator",
    "SpectrogramCNN",
    "AutoencoderMLP",
    "SpectrogramTransformer",
    "FlowMatchingPosterior",
    "discrete_layout",
    "FitProgress",
    "model_class",
    "save_model",
    "load_model",
]

# class name -> "module:Class": what this package holds (the model families are in synth_probe.pipeline)
_LAZY = {
    "NearestNeighbours": "synth_probe.models.knn:NearestNeighbours",
    "NeighbourPosterior": "synth_probe.models.knn:NeighbourPosterior",
    "GBMEstimator": "synth_probe.models.gbm:GBMEstimator",
    "SpectrogramCNN": "synth_probe.models.cnn:SpectrogramCNN",
    "AutoencoderMLP": "synth_probe.models.autoencoder:AutoencoderMLP",
    "SpectrogramTransformer": "synth_probe.models.ast:SpectrogramTransformer",
    "FlowMatchingPosterior": "synth_probe.models.posterior:FlowMatchingPosterior",
    "save_model": "synth_probe.models.io:save_model",
    "load_model": "synth_probe.models.io:load_model",
}
_CLASSES = ("MeanBaseline", *(k for k in _LAZY if k[0].isupper()))


def model_class(name: str) -> type:
    """The estimator class of a class name (``"GBMEstimator"``), as a saved model's header records it.

    Raises
    ------
    UnknownModelError
        Not an estimator class of this package, or its module cannot be imported here.
    """
    if name == "MeanBaseline":
        return MeanBaseline
    target = _LAZY.get(name)
    if target is None or name not in _CLASSES:
        raise UnknownModelError(name, list(_CLASSES))
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise UnknownModelError(name, list(_CLASSES), reason=f"it cannot be imported: {e}") from None


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'synth_probe.models' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
