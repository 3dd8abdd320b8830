"""The matching distance as a feature space: rows whose L1 distance is the distance a match minimizes.

``synth-probe match``, best-of-k and the benchmarks judge a render by the multi-resolution
log-mel distance (:meth:`synth_probe.matching.MatchObjective.distance_of`: the mean absolute
dB difference of :func:`~synth_probe.spectral.multi_resolution_log_mel` spectrograms, averaged
over the resolutions). :class:`MatchingSpectrogram` flattens those spectrograms and scales each
resolution by one over (its size times the number of resolutions), so the L1 (Manhattan)
distance between two feature rows *is* that distance. A nearest-neighbour model on these
features with ``metric="manhattan"`` and no standardization
(:class:`~synth_probe.models.knn.NeighbourPosterior`; the builder sets both for the
``matching`` feature set) retrieves the training sounds that the matching distance ranks
closest: approximate Bayesian computation by rejection, with the training renders as draws from
the prior and the matching distance as the discrepancy.
"""
from __future__ import annotations

from collections.abc import Sequence
import numpy as np

from synth_probe.errors import ParameterValueError
from synth_probe.features.cache import cached_features
from synth_probe.features.spectrogram import AudioRowsTransformer, batched, cache_params, check_positive_ints
from synth_probe.spectral import DEFAULT_RESOLUTIONS, multi_resolution_log_mel

__all__ = ["MatchingSpectrogram"]

#: the shortest audio the match distance reads (:func:`synth_probe.frontend.check_audio`'s default)
_MIN_SAMPLES = 16


class MatchingSpectrogram(AudioRowsTransformer):
    """Multi-resolution log-mel rows whose L1 distance is the matching distance (dB).

    Parameters
    ----------
    sample_rate : int, default=22050
    resolutions : sequence of (n_fft, hop), default=DEFAULT_RESOLUTIONS
        Those of :meth:`MatchObjective.distance_of <synth_probe.matching.MatchObjective.distance_of>`.
    time_pool : int, default=1
        Frames averaged into one (1: exact, the L1 distance equals the matching distance; more: a
        smaller feature row whose L1 distance is at most the matching distance).
    n_jobs : int or None
        Parallel batches (the output does not depend on it).
    cache_dir : str or None
        Feature cache folder (:mod:`synth_probe.features.cache`).

    Examples
    --------
    >>> import numpy as np
    >>> from synth_probe.spectral import multi_resolution_log_mel_distance
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(0, 0.1, (2, 22050)).astype(np.float32)
    >>> F = MatchingSpectrogram().fit_transform(X)
    >>> bool(np.isclose(np.abs(F[0] - F[1]).sum(), multi_resolution_log_mel_distance(X[0], X[1], 22050), rtol=1e-4))
    True
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        resolutions: Sequence[Sequence[int]] = DEFAULT_RESOLUTIONS,
        time_pool: int = 1,
        n_jobs: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.resolutions = resolutions
        self.time_pool = time_pool
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir

    def _check_params(self) -> None:
        check_positive_ints(self, ("sample_rate", "time_pool"))
        res = self._resolutions()
        if not res or any(len(r) != 2 or min(r) < 1 for r in res):
            raise ParameterValueError(
                f"resolutions must be (n_fft, hop) pairs of positive ints, got {self.resolutions!r}")

    def _resolutions(self) -> tuple[tuple[int, int], ...]:
        try:
            return tuple((int(n), int(h)) for n, h in self.resolutions)
        except (TypeError, ValueError):
            raise ParameterValueError(f"resolutions must be (n_fft, hop) pairs, got {self.resolutions!r}") from None

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        res, pool, sr = self._resolutions(), int(self.time_pool), int(self.sample_rate)
        if X.shape[1] < _MIN_SAMPLES:  # shorter than the distance reads: silence after it, as a short render
            X = np.pad(X, ((0, 0), (0, _MIN_SAMPLES - X.shape[1])))

        def rows(batch: np.ndarray) -> np.ndarray:
            parts = []
            for S in multi_resolution_log_mel(batch, sr, resolutions=res):
                S = np.asarray(S, dtype=np.float64)
                bins, frames = S.shape[-2], S.shape[-1]
                # each run of `pool` frames summed, over (frames x bins x resolutions): one run's cell is its mean
                # weighted by its share of the frames, so the rows' L1 distance is the distance's mean absolute
                # difference (pool 1) or, by the triangle inequality, at most it
                runs = np.add.reduceat(S, np.arange(0, frames, pool), axis=-1)
                parts.append((runs / (frames * bins * len(res))).reshape(len(batch), -1))
            return np.concatenate(parts, axis=1).astype(np.float32)

        return cached_features(self.cache_dir, "matching", X, cache_params(self),
                               lambda: batched(rows, X, self.n_jobs, batch_size=32))
