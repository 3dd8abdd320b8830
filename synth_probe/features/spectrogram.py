"""Spectrogram features as a scikit-learn transformer: log-mel, log-STFT or MFCC.

The spectrograms are those of the feature front-end of :mod:`synth_probe.frontend`
(:func:`~synth_probe.frontend.feature_log_mel`: librosa's STFT, Slaney mel, dB re a bin of
power 1), not the distance front-end's; the module notes there say how they differ.
``librosa`` is imported at the top: every transform uses it.
"""
from __future__ import annotations

from typing import Any

import librosa
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, validate_data

from synth_probe.errors import ParameterValueError
from synth_probe.features.cache import cached_features
from synth_probe.frontend import check_audio, feature_log_mel, feature_stft_magnitude

__all__ = ["AudioRowsTransformer", "LogMelSpectrogram", "batched", "cache_params", "check_positive_ints", "pool_time"]


def batched(fn, X: np.ndarray, n_jobs: int | None, batch_size: int = 64) -> np.ndarray:
    """Apply ``fn`` (rows -> feature rows) to ``X`` in batches, in parallel with joblib.

    Each batch is independent, so the result does not depend on ``n_jobs``. The batches are written
    into one array as they arrive (no list of parts to concatenate), so a large feature matrix is held
    once, not twice.
    """
    starts = range(0, len(X), batch_size)
    if len(X) <= batch_size or n_jobs in (None, 1):
        parts = (fn(X[i : i + batch_size]) for i in starts)
    else:
        parts = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(X[i : i + batch_size]) for i in starts)
    out = None
    for i, part in zip(starts, parts):
        part = np.asarray(part)
        if out is None:
            out = np.empty((len(X), *part.shape[1:]), dtype=part.dtype)
        out[i : i + len(part)] = part
    return out if out is not None else np.asarray(fn(X[:0]))


def cache_params(step: Any) -> dict[str, Any]:
    """The parameters of a feature step that shape its output (all but ``n_jobs`` and ``cache_dir``)."""
    return {k: v for k, v in step.get_params(deep=False).items() if k not in ("n_jobs", "cache_dir")}


def check_positive_ints(step: Any, names: tuple[str, ...]) -> None:
    """Raise :class:`ParameterValueError` unless each named parameter of ``step`` is an int >= 1."""
    for name in names:
        v = getattr(step, name)
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ParameterValueError(f"{name} must be a positive int, got {v!r}")


class AudioRowsTransformer(TransformerMixin, BaseEstimator):
    """Base of the feature steps that read audio rows and return float32 features.

    Gives ``fit`` and ``transform`` (parameter and input checks) and the scikit-learn tags
    (no fit required, 2-D input, float32 output); subclasses define ``__init__``,
    ``_check_params``, ``_fit_width`` (what ``fit`` records) and ``_transform_rows``
    (the features of checked rows).
    """

    def _check_params(self) -> None:
        raise NotImplementedError

    def _fit_width(self, n_samples: int) -> None:
        """Record what :meth:`fit` learns from the audio width ``n_samples`` (default: nothing)."""

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fit(self, X: Any, y: Any = None) -> AudioRowsTransformer:
        """Check the parameters and record the audio width; learns nothing else.

        Parameters
        ----------
        X : array-like [shape=(n_clips, n_samples)]
        y : ignored
        """
        self._check_params()
        X = validate_data(self, X, dtype=np.float32)
        self._fit_width(X.shape[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Features of audio rows.

        Parameters
        ----------
        X : array-like [shape=(n_clips, n_samples)]

        Returns
        -------
        np.ndarray [dtype=float32]
            One row (or one 2-D array) per clip: see the ``_transform_rows`` of the step.
        """
        self._check_params()
        return self._transform_rows(self._audio_rows(X))

    def _audio_rows(self, X: Any) -> np.ndarray:
        """``X`` (n_clips, n_samples) checked as audio rows, as float32; once fitted, of the width seen in ``fit``."""
        if hasattr(self, "n_features_in_"):
            X = validate_data(self, X, reset=False, dtype=np.float32)
        else:
            X = check_array(X, dtype=np.float32)
        return check_audio(X, layout="rows", min_samples=1, name="X", dtype=np.float32)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = True
        tags.transformer_tags.preserves_dtype = ["float32"]  # output is always float32
        return tags


def _spectrogram_batch(
    X: np.ndarray,
    sample_rate: int,
    n_fft: int,
    hop_length: int,
    n_mels: int,
    kind: str,
    n_mfcc: int,
    fmin: float,
    fmax: float | None,
    top_db: float,
) -> np.ndarray:
    """(n, samples) -> (n, n_bins, n_frames) float32 log spectrogram (dB) or MFCC, on the feature front-end."""
    S = feature_stft_magnitude(X, n_fft, hop_length) ** 2
    if kind == "stft":
        # absolute floor: audio is full-scale in [-1, 1], so 0 dB is a full-scale bin
        out = np.maximum(librosa.power_to_db(S, ref=1.0, amin=1e-10, top_db=None), -float(top_db))
    elif kind == "mel":
        out = feature_log_mel(S, sample_rate, n_mels, fmin=fmin, fmax=fmax, top_db=top_db)
    else:
        out = librosa.feature.mfcc(S=feature_log_mel(S, sample_rate, n_mels, fmin=fmin, fmax=fmax, top_db=None),
                                   n_mfcc=n_mfcc)
    return out.astype(np.float32)


class LogMelSpectrogram(AudioRowsTransformer):
    """Log-mel (or log-STFT, or MFCC) spectrogram of audio rows.

    Parameters
    ----------
    sample_rate : int, default=22050
        Sample rate of the audio rows (Hz).
    n_fft : int, default=1024
    hop_length : int, default=256
    n_mels : int, default=64
        Mel bands (``kind="mel"``, and the mel basis of ``"mfcc"``).
    kind : {"mel", "stft", "mfcc"}, default="mel"
        Log-mel power in dB, log power of the linear STFT in dB (``n_fft // 2 + 1``
        bins), or ``n_mfcc`` MFCCs of the log-mel spectrogram.
    n_mfcc : int, default=20
    fmin : float, default=0.0
    fmax : float or None, default=None
        Mel range; None means ``sample_rate / 2``.
    top_db : float, default=80.0
        Floor in dB below full scale (levels are absolute, not normalized per clip,
        so loudness stays a feature).
    time_pool : int or None, default=None
        If set, average the frames into this many equal segments (a compact
        time profile per band, for tree and neighbour models).
    flatten : bool, default=True
        Return 2-D rows ``(n, n_bins * n_frames)`` (bins-major, C order); False
        returns ``(n, n_bins, n_frames)``.
    n_jobs : int or None, default=None
        joblib workers over batches of 64 clips.
    cache_dir : str or None, default=None
        Cache results on disk as ``.npy`` arrays (never pickles), keyed by a hash of the audio
        and the parameters (:func:`synth_probe.features.cache.cached_features`). A saved model
        never keeps it (:func:`synth_probe.models.save_model` drops it, loading refuses it).

    Attributes
    ----------
    n_features_in_ : int
        Samples per audio row seen in :meth:`fit`.
    output_shape_ : tuple of int
        ``(n_bins, n_frames)`` of one clip, where ``n_frames = 1 + max(n_samples, n_fft) // hop_length``
        (or ``time_pool``).

    Notes
    -----
    ``fit`` learns nothing but the input width; ``transform`` works on any
    number of clips of that width.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((2, 22050), dtype=np.float32)
    >>> LogMelSpectrogram(n_mels=32).fit_transform(X).shape
    (2, 2784)
    """

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mels: int = 64,
        kind: str = "mel",
        n_mfcc: int = 20,
        fmin: float = 0.0,
        fmax: float | None = None,
        top_db: float = 80.0,
        time_pool: int | None = None,
        flatten: bool = True,
        n_jobs: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.kind = kind
        self.n_mfcc = n_mfcc
        self.fmin = fmin
        self.fmax = fmax
        self.top_db = top_db
        self.time_pool = time_pool
        self.flatten = flatten
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir

    def _check_params(self) -> None:
        if self.kind not in ("mel", "stft", "mfcc"):
            raise ParameterValueError(f"kind must be 'mel', 'stft' or 'mfcc', got {self.kind!r}")
        check_positive_ints(self, ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc"))
        if self.time_pool is not None and (not isinstance(self.time_pool, (int, np.integer)) or self.time_pool < 1):
            raise ParameterValueError(f"time_pool must be None or a positive int, got {self.time_pool!r}")

    def n_bins(self) -> int:
        """Rows of one spectrogram: mel bands, STFT bins or MFCCs."""
        return {"mel": self.n_mels, "stft": self.n_fft // 2 + 1, "mfcc": self.n_mfcc}[self.kind]

    def n_frames(self, n_samples: int) -> int:
        """Frames of one clip of ``n_samples`` samples (``time_pool`` if set)."""
        if self.time_pool is not None:
            return int(self.time_pool)
        return 1 + max(int(n_samples), self.n_fft) // self.hop_length

    def _fit_width(self, n_samples: int) -> None:
        self.output_shape_ = (self.n_bins(), self.n_frames(n_samples))

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        """Spectrograms of checked audio rows ``X`` (n_clips, n_samples).

        Returns
        -------
        S : np.ndarray [shape=(n_clips, n_bins * n_frames) or (n_clips, n_bins, n_frames), dtype=float32]
            dB values (``kind`` "mel"/"stft") floored at ``-top_db``, or MFCCs.
        """
        key = {k: v for k, v in cache_params(self).items() if k != "flatten"}  # the cache holds the 3-D frames
        out = cached_features(self.cache_dir, "logmel", X, key, lambda: _transform_all(
            X, self.sample_rate, self.n_fft, self.hop_length, self.n_mels, self.kind, self.n_mfcc,
            self.fmin, self.fmax, self.top_db, self.time_pool, self.n_jobs,
        ))
        return out.reshape(len(out), -1) if self.flatten else out


def pool_time(S: np.ndarray, n: int) -> np.ndarray:
    """Average frames into ``n`` equal segments (segments repeat frames if ``t < n``).

    Parameters
    ----------
    S : np.ndarray [shape=(..., t)]
    n : int

    Returns
    -------
    pooled : np.ndarray [shape=(..., n), dtype=float32]
    """
    t = S.shape[-1]
    edges = np.linspace(0, t, n + 1)
    out = np.empty(S.shape[:-1] + (n,), dtype=np.float32)
    for i in range(n):
        a = int(np.floor(edges[i]))
        b = max(int(np.ceil(edges[i + 1])), a + 1)
        out[..., i] = S[..., a:b].mean(axis=-1)
    return out


#: the name tuning.py imports today
_pool_time = pool_time


def _transform_all(X, sample_rate, n_fft, hop_length, n_mels, kind, n_mfcc, fmin, fmax, top_db, time_pool, n_jobs):
    def one(batch: np.ndarray) -> np.ndarray:
        S = _spectrogram_batch(batch, sample_rate, n_fft, hop_length, n_mels, kind, n_mfcc, fmin, fmax, top_db)
        return pool_time(S, time_pool) if time_pool is not None else S

    return batched(one, X, n_jobs)
