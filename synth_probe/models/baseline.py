"""``MeanBaseline``: the reference line every model must beat."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from synth_probe.models.base import SYNTH_PARAMS_DOC, SynthEstimator

__all__ = ["MeanBaseline"]


class MeanBaseline(SynthEstimator):
    """Predict the training mean of each continuous parameter and the most frequent class of each discrete one.

    This is the research log's collapsed CNN ("0.50 for every parameter") made
    explicit: any model that does not beat it has learned nothing from the audio.

    Parameters
    ----------
{synth_params}

    Attributes
    ----------
    means_ : np.ndarray [shape=(n_continuous,)]
        Training mean of each continuous target.
    modes_ : np.ndarray [shape=(n_discrete,), dtype=int64]
        Most frequent class of each discrete target (lowest class on ties).
    class_priors_ : list of np.ndarray [shape=(n_choices,)]
        Training class frequencies of each discrete target.

    Examples
    --------
    >>> import numpy as np
    >>> from synth_probe.models import MeanBaseline
    >>> X = np.zeros((4, 2)); y = np.array([0.1, 0.2, 0.3, 0.4])
    >>> MeanBaseline().fit(X, y).predict(X[:2])
    array([0.25, 0.25])
    """

    def __init__(self, *, synth: str | None = None, discrete: Mapping[Any, Any] | None = None) -> None:
        self._store_init_args(locals())

    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray, callbacks: Sequence[Any] = ()) -> None:
        self.means_ = Yc.mean(axis=0) if Yc.shape[1] else np.zeros(0)
        self.class_priors_ = [
            np.bincount(Yd[:, k], minlength=n) / len(Yd) for k, n in enumerate(self.targets_.n_classes)
        ]
        self.modes_ = np.array([int(np.argmax(p)) for p in self.class_priors_], dtype=np.int64)

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(X)
        return np.tile(self.means_, (n, 1)), np.tile(self.modes_, (n, 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # it ignores X by design
        return tags

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        return [np.tile(p, (len(X), 1)) for p in self.class_priors_]


MeanBaseline.__doc__ = MeanBaseline.__doc__.replace("{synth_params}", SYNTH_PARAMS_DOC)
