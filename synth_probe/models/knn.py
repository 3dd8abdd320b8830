"""``NearestNeighbours``: the closest training sounds vote on the parameters."""
from __future__ import annotations

import hashlib
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import StandardScaler

from synth_probe.errors import ParameterValueError
from synth_probe.models.base import LEVELS_DOC, SYNTH_PARAMS_DOC, SynthEstimator, nearest_level

__all__ = ["NearestNeighbours", "NeighbourPosterior"]

#: estimator -> its last neighbour query and answer; outside the estimator, so predicting leaves it as it was
#: (scikit-learn's contract) and a saved model holds no cache
_LAST_QUERY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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
        _LAST_QUERY.pop(self, None)  # an answer about the previous training set is no answer about this one
        self.Yc_ = np.asarray(Yc, dtype=np.float64)
        self.Yd_ = np.asarray(Yd, dtype=np.int64)
        self.level_values_ = self._grids()

    def _nearest(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature distances and training rows ``(n, k)`` of the ``k`` nearest, nearest first.

        The last query's answer is kept (not saved with the model): a caller that asks for the
        prediction, then the class probabilities, then the level probabilities of the same rows
        (``evaluate``, the suite) searches the training set once, not three times.
        """
        Z = self.scaler_.transform(X) if self.scaler_ is not None else X
        k = min(int(self.n_neighbors), self.index_.n_samples_fit_)
        Z = np.ascontiguousarray(Z)
        key = (id(self.index_), k, Z.shape, str(Z.dtype), hashlib.blake2b(Z.data, digest_size=16).digest())
        last = _LAST_QUERY.get(self)
        if last is not None and last[0] == key:
            return last[1][0].copy(), last[1][1].copy()
        found = self.index_.kneighbors(Z, n_neighbors=k)
        _LAST_QUERY[self] = (key, found)
        return found[0].copy(), found[1].copy()

    def _neighbours(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = self._nearest(X)
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


class NeighbourPosterior(NearestNeighbours):
    """A nonparametric posterior: the patches of the nearest training sounds are its draws.

    The ``n_neighbors`` training sounds closest to a sound (standardized features),
    with their weights, stand for p(parameters | sound): :meth:`sample` draws among
    their patches. Every draw is a patch that was rendered, so where the knob values
    of a sound form separate modes (an LFO amount and its negative, cutoff against
    key-follow) the draws stay on the modes, where :class:`NearestNeighbours`' mean
    of the same neighbours falls between them. It needs no training beyond the index,
    and its draws improve with every training render added.

    ``predict`` returns the posterior mean of each continuous parameter and the mode of
    each discrete one over the same neighbours (their weighted mean and weighted
    majority, as :class:`NearestNeighbours` predicts; where the modes are two, the mean
    lies between them, which is why a match starts from the draws), and the class and
    level probabilities are the neighbours' weighted votes. :meth:`neighbours` gives the training
    rows themselves, for a caller that holds the training renders and reranks them by
    an audio distance (``python -m synth_probe.bench.match_eval --posterior-model
    neighbours --posterior-rerank``).

    Parameters
    ----------
    n_neighbors : int, default=32
        Neighbours the draws come from (at most the number of training samples).
    weights : {"uniform", "distance"}, default="distance"
        How likely each neighbour is drawn: equally, or in proportion to the inverse
        of its feature distance.
    standardize : bool, default=True
    metric : str, default="euclidean"
    n_jobs : int or None, default=None
{levels}
{synth_params}

    Attributes
    ----------
    scaler_, index_, Yc_, Yd_, level_values_
        As :class:`NearestNeighbours`.

    Examples
    --------
    A target whose sign does not reach the input (0.5 ± 0.4 x): the draws keep both
    signs, the posterior mean sits between them.

    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0.25, 1.0, (400, 1))
    >>> y = pd.DataFrame({"amount": 0.5 + 0.4 * rng.choice([-1, 1], 400) * x[:, 0]})
    >>> post = NeighbourPosterior(n_neighbors=32).fit(x, y)
    >>> draws = post.sample([[0.9]], 16, random_state=0)[0, :, 0]
    >>> bool((draws < 0.3).any() and (draws > 0.7).any())
    True
    >>> bool(abs(float(post.predict([[0.9]])["amount"][0]) - 0.5) < 0.2)  # the posterior mean: between the modes
    True
    """

    def __init__(
        self,
        *,
        n_neighbors: int = 32,
        weights: str = "distance",
        standardize: bool = True,
        metric: str = "euclidean",
        n_jobs: int | None = None,
        levels: Mapping[str, Sequence[float]] | None = None,
        synth: str | None = None,
        discrete: Mapping[Any, Any] | None = None,
    ) -> None:
        self._store_init_args(locals())

    def neighbours(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """The training rows the draws come from, nearest first.

        Returns
        -------
        distances : np.ndarray [shape=(n, k)]
            Feature distances (standardized features).
        rows : np.ndarray [shape=(n, k), dtype=int64]
            Indices into the training rows ``fit`` was given.
        """
        X = self._prepare_predict(X)
        dist, idx = self._nearest(X)
        return dist, idx.astype(np.int64)

    def sample(self, X: Any, n_samples: int = 16, *, random_state: Any = None) -> np.ndarray:
        """Draw patches for each row of ``X``: the patches of its nearest training sounds.

        Up to ``n_neighbors`` draws are distinct neighbours, drawn without replacement
        in proportion to their weights (the Gumbel top-k trick); more draws than that
        are drawn with replacement.

        Parameters
        ----------
        X : array-like [shape=(n, n_features)]
        n_samples : int, default=16
        random_state : int, numpy Generator or None, default=None
            The same seed gives the same draws; every row uses the same random
            numbers, so a row's draws do not depend on the other rows passed with it.

        Returns
        -------
        samples : np.ndarray [shape=(n, n_samples, n_params), dtype=float64]
            Unit values in the column order of the fitted ``Y`` (discrete ones their
            choice's canonical value).
        """
        if not isinstance(n_samples, (int, np.integer)) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
        m = int(n_samples)
        X = self._prepare_predict(X)
        dist, idx = self._nearest(X)
        n, k = idx.shape
        rng = np.random.default_rng(random_state)
        if self.weights == "distance":
            logw = -np.log(np.maximum(dist, 1e-12))
        else:
            logw = np.zeros_like(dist)
        if m <= k:
            keys = logw + rng.gumbel(size=k)[None, :]
            pick = np.take_along_axis(idx, np.argsort(-keys, axis=1, kind="stable")[:, :m], axis=1)
        else:
            p = np.exp(logw - logw.max(axis=1, keepdims=True))
            cdf = np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1)
            u = rng.random(m)
            col = np.minimum((cdf[:, None, :] < u[None, :, None]).sum(axis=2), k - 1)
            pick = np.take_along_axis(idx, col, axis=1)
        flat = self.targets_.inverse_transform(self.Yc_[pick.reshape(-1)], self.Yd_[pick.reshape(-1)])
        return np.asarray(flat, dtype=np.float64).reshape(n, m, -1)


for _cls in (NearestNeighbours, NeighbourPosterior):
    _cls.__doc__ = _cls.__doc__.replace("{synth_params}", SYNTH_PARAMS_DOC).replace("{levels}", LEVELS_DOC)
