"""Estimators that predict synth parameters (unit values) from audio features.

All follow scikit-learn's estimator contract and :mod:`synth_probe.models.base`'s
target convention. The torch models (``SpectrogramCNN``, ``AutoencoderMLP``,
``SpectrogramTransformer``) are imported on first use, so importing this
package does not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from synth_probe.models.base import ParamTargets, SynthEstimator
from synth_probe.models.baseline import MeanBaseline

__all__ = [
    "ParamTargets",
    "SynthEstimator",
    "MeanBaseline",
    "NearestNeighbours",
    "GBMEstimator",
    "SpectrogramCNN",
    "AutoencoderMLP",
    "SpectrogramTransformer",
    "MODELS",
    "model_class",
    "save_model",
    "load_model",
]

# public name -> "module:Class"; the CLI's MODEL argument takes the keys
MODELS: dict[str, str] = {
    "mean": "synth_probe.models.baseline:MeanBaseline",
    "knn": "synth_probe.models.knn:NearestNeighbours",
    "gbm": "synth_probe.models.gbm:GBMEstimator",
    "cnn": "synth_probe.models.cnn:SpectrogramCNN",
    "autoencoder": "synth_probe.models.autoencoder:AutoencoderMLP",
    "transformer": "synth_probe.models.ast:SpectrogramTransformer",
}

_LAZY = {target.rsplit(":", 1)[1]: target for target in MODELS.values()}
_LAZY.update({"save_model": "synth_probe.models.io:save_model", "load_model": "synth_probe.models.io:load_model"})


def model_class(name: str) -> type:
    """The estimator class for a CLI model name (``"gbm"``) or a class name (``"GBMEstimator"``)."""
    from synth_probe.errors import UnknownModelError

    target = MODELS.get(name) or _LAZY.get(name)
    if target is None or name in ("save_model", "load_model"):
        raise UnknownModelError(name, list(MODELS))
    module, _, cls = target.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise UnknownModelError(name, list(MODELS), reason=f"it cannot be imported: {e}") from None


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'synth_probe.models' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
