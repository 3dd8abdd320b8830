"""``NearestNeighbours``: the closest training sounds vote on the parameters."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from synth_probe.errors import ParameterValueError
from synth_probe.models.base import LEVELS_DOC, SYNTH_PARAMS_DOC, SynthEstimator, nearest_level

__all__ = ["NearestNeighbours"]


class NearestNeighbours(SynthEstimator):
    """k-nearest neighbours on standardized features.

    Continuous parameters are the (distance-weighted) mean of the neighbours'
    values; discrete ones the (weighted) majority class. For a continuous parameter drawn
    from a grid (``levels``) the neighbours' weights are also votes for their levels:
    :meth:`predict_level_proba` gives them, and they rank the levels for the mean percentile
    rank (the prediction, their mean over the levels, is the weighted mean as before).

    Parameters
    ----------
    n_neighbors : int, default=5
        Neighbours per query (at most the number of training samples).
    weights : {"uniform", "distance"}, default="distance"
    standardize : bool, default=True
        Scale each feature to zero mean and unit variance before measuring distance.
    metric : str, default="euclidean"
        Any metric of :class:`sklearn.neighbors.NearestNeighbors`.
    n_jobs : int or None, default=None
{levels}
{synth_params}

    Attributes
    ----------
    scaler_ : StandardScaler or None
    index_ : NearestNeighbors
        Fitted on the (scaled) training features.
    Yc_ : np.ndarray [shape=(n_train, n_continuous)]
    Yd_ : np.ndarray [shape=(n_train, n_discrete), dtype=int64]
    level_values_ : dict of str -> list of float
        The sorted levels of each continuous column named in ``levels`` (empty without ``levels``).
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 5,
        weights: str = "distance",
        standardize: bool = True,
        metric: str = "euclidean",
        n_jobs: int | None = None,
        levels: Mapping[str, Sequence[float]] | None = None,
        synth: str | None = None,
        discrete: Mapping[Any, Any] | None = None,
    ) -> None:
        self._store_init_args(locals())

    def _fit_encoded(self, X: np.ndarray, Yc: np.ndarray, Yd: np.ndarray, callbacks: Sequence[Any] = ()) -> None:
        if self.weights not in ("uniform", "distance"):
            raise ParameterValueError(f"weights must be 'uniform' or 'distance', got {self.weights!r}")
        if not isinstance(self.n_neighbors, (int, np.integer)) or self.n_neighbors < 1:
            raise ParameterValueError(f"n_neighbors must be a positive int, got {self.n_neighbors!r}")
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        self.index_ = NearestNeighbors(metric=self.metric, n_jobs=self.n_jobs).fit(Z)
        self.Yc_ = np.asarray(Yc, dtype=np.float64)
        self.Yd_ = np.asarray(Yd, dtype=np.int64)
        self.level_values_ = self._grids()

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        k = min(int(self.n_neighbors), self.index_.n_samples_fit_)
        dist, idx = self.index_.kneighbors(Z, n_neighbors=k)
        if self.weights == "distance":
            w = 1.0 / np.maximum(dist, 1e-12)
            exact = dist <= 1e-12
            w = np.where(exact.any(axis=1, keepdims=True), exact.astype(np.float64), w)
        else:
            w = np.ones_like(dist)
        return idx, w / w.sum(axis=1, keepdims=True)

    def _predict_encoded(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx, w = self._neighbours(X)
        Yc = np.einsum("nk,nkc->nc", w, self.Yc_[idx])
        probas = self._class_votes(idx, w)
        Yd = np.stack([p.argmax(axis=1) for p in probas], axis=1) if probas else np.zeros((len(X), 0), np.int64)
        return Yc, Yd

    def _class_votes(self, idx: np.ndarray, w: np.ndarray) -> list[np.ndarray]:
        return [_votes(self.Yd_[idx, k], w, n) for k, n in enumerate(self.targets_.n_classes)]

    def _predict_level_proba(self, X: np.ndarray) -> dict[str, np.ndarray]:
        idx, w = self._neighbours(X)
        return {name: _votes(nearest_level(self.Yc_[:, k], grid)[idx], w, len(grid))
                for k, name, grid in self._level_columns()}

    def _predict_discrete_proba(self, X: np.ndarray) -> list[np.ndarray]:
        idx, w = self._neighbours(X)
        return self._class_votes(idx, w)


def _votes(cls: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    """``(n_queries, n)`` summed weights ``w`` of each class of ``cls`` (both ``(n_queries, k)``)."""
    votes = np.zeros((len(cls), n))
    np.add.at(votes, (np.arange(len(cls))[:, None].repeat(cls.shape[1], 1), cls), w)
    return votes


NearestNeighbours.__doc__ = NearestNeighbours.__doc__.replace("{synth_params}", SYNTH_PARAMS_DOC).replace(
    "{levels}", LEVELS_DOC)
