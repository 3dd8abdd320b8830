"""scikit-learn's estimator checks on every public estimator and transformer."""
from __future__ import annotations

import importlib

from sklearn.utils.estimator_checks import parametrize_with_checks

from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram, MatchingSpectrogram
from synth_probe.models import GBMEstimator, MeanBaseline, NearestNeighbours, NeighbourPosterior
from synth_probe.models.posterior import FlowMatchingPosterior


def _torch_estimators() -> list:
    """The torch models, configured tiny (2 epochs, one thread), when their modules import."""
    tiny = {
        "SpectrogramCNN": dict(channels=(4, 8), hidden=16),
        "AutoencoderMLP": dict(channels=(4, 8), latent_dim=8, hidden=(16,), pretrain_epochs=1),
        "SpectrogramTransformer": dict(patch_size=(2, 2), d_model=16, n_layers=1, n_heads=2, dim_feedforward=32),
    }
    out = []
    models = importlib.import_module("synth_probe.models")
    for name, params in tiny.items():
        try:
            cls = getattr(models, name)
        except (ImportError, AttributeError):  # pragma: no cover - torch is a dependency
            continue
        out.append(cls(max_epochs=2, num_threads=1, random_state=0, **params))
    return out


ESTIMATORS = [
    MeanBaseline(),
    NearestNeighbours(n_neighbors=3),
    NeighbourPosterior(n_neighbors=3),
    MatchingSpectrogram(sample_rate=8000, resolutions=((64, 16), (128, 32))),
    # min_child_samples=1 so that trees can split the checks' tiny data (as LightGBM's own tests do)
    GBMEstimator(n_estimators=50, min_child_samples=1, validation_fraction=0.0, random_state=0, n_jobs=1),
    LogMelSpectrogram(n_fft=64, hop_length=16, n_mels=8),
    HandcraftedFeatures(n_fft=64, hop_length=16, n_mfcc=4),
    *_torch_estimators(),
    FlowMatchingPosterior(hidden=16, context_dim=8, ode_steps=4, n_predict_samples=8, max_epochs=2, num_threads=1,
                          random_state=0),
]

#: check name -> reason, per estimator class; each expected failure listed once. Every estimator and
#: transformer passes every check today, so the table is empty; an estimator may add its own entries
#: through an ``_expected_failed_checks()`` method.
EXPECTED_FAILED: dict[str, dict[str, str]] = {}


def _expected(est) -> dict[str, str]:
    own = getattr(est, "_expected_failed_checks", None)
    out = dict(EXPECTED_FAILED.get(type(est).__name__, {}))
    if callable(own):
        out.update(own())
    return out


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_sklearn_compatible(estimator, check):
    check(estimator)
