"""The audio front-end: one audio validator, the STFTs and mel basis, two log-mel conventions, one pitch estimator.

Every module that reads audio goes through this one: :mod:`synth_probe.spectral` (distances and
descriptors), :mod:`synth_probe.features` (model inputs) and :mod:`synth_probe.matching` (targets).

Validation
----------
:func:`check_audio` is the only audio validator. ``layout`` says how the array is read:
``"batch"`` ``(..., n_samples)``, ``"rows"`` ``(n_clips, n_samples)`` (a 1-D clip is one row),
``"channels"`` ``(n_samples,)``, ``(n_samples, channels)`` or ``(channels, n_samples)``.

Two log-mel front-ends
----------------------
They differ on purpose and are named for what they serve; both take their mel basis from
:func:`mel_basis`.

:func:`distance_log_mel` — the distance front-end (also ``spectral.log_mel_spectrogram``)
    STFT of :func:`power_spectrogram` (periodic Hann, centred frames, zero padding), power
    scaled so a full-scale sine puts 0 dB into its bin; triangular mel filters with unit
    peak (``norm=None``) from ``fmin`` = 30 Hz; dB re a full-scale sine, floored at
    ``floor_db`` (-80 dB). Every log-mel distance in dB (sensitivity scores, fidelity,
    matching) and every descriptor is on this scale.
:func:`feature_log_mel` — the model-input front-end (``LogMelSpectrogram``)
    librosa's STFT (:func:`feature_stft_magnitude`: the same window and framing, float32,
    clips shorter than ``n_fft`` zero-padded), power not rescaled (0 dB = a bin of power 1;
    a full-scale sine's bin is about ``20 log10(n_fft / 4)`` dB, +48 dB at 1024); Slaney
    area-normalized mel filters from ``fmin`` = 0 Hz; floored at ``-top_db`` dB. The
    models were trained and tuned on these values, so they keep them.

The two STFTs are not merged: the features computed with :func:`power_spectrogram` differ
from librosa's in the float32 rounding of quiet bins, and the models' figures would move.

Pitch
-----
:func:`autocorrelation_pitch` is the one pitch estimator: the normalized autocorrelation of
each segment, the shortest lag within ``peak_ratio`` of the highest peak, refined by
parabolic interpolation. :func:`pitch_f0` applies it to each clip's loudest segment (the
descriptors), ``HandcraftedFeatures`` to windows of the held note, ``matching`` to the loud
frames of a target.
"""
from __future__ import annotations

import functools
import math
from typing import Any

import librosa
import numpy as np
import scipy.fft

from synth_probe.errors import AudioError

__all__ = [
    "AUDIO_LAYOUTS",
    "check_audio",
    "check_sample_rate",
    "power_spectrogram",
    "mel_basis",
    "mel_filterbank",
    "log_mel_from_power",
    "distance_log_mel",
    "feature_stft_magnitude",
    "feature_log_mel",
    "feature_mel_power",
    "autocorrelation_pitch",
    "pitch_f0",
]

#: how :func:`check_audio` reads an array
AUDIO_LAYOUTS = ("batch", "rows", "channels")
#: the most channels a ``"channels"`` array may have
MAX_CHANNELS = 16
_EPS = 1e-12


# --------------------------------------------------------------------------- validation
def _numeric(audio: Any, name: str) -> np.ndarray:
    arr = audio if isinstance(audio, np.ndarray) else None
    if arr is None:
        try:
            arr = np.asarray(audio)
        except (TypeError, ValueError):
            raise AudioError(f"{name} must be numeric audio samples, got {type(audio).__name__}") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise AudioError(
            f"{name} must be numeric audio samples (integers or floats), "
            f"got {type(audio).__name__} of dtype {arr.dtype}"
        )
    return arr


def _arrange(arr: np.ndarray, layout: str, name: str) -> np.ndarray:
    """``arr`` with the samples on its last axis, as ``layout`` reads it."""
    if layout == "rows":
        arr = arr[None, :] if arr.ndim == 1 else arr
        if arr.ndim != 2:
            raise AudioError(
                f"{name} must be 2-D audio rows (n_clips, n_samples), got shape {arr.shape}; "
                "stereo or multichannel audio must be mixed to mono first"
            )
    elif layout == "channels":
        if arr.ndim == 1:
            return arr[None, :]
        if arr.ndim > 2:
            raise AudioError(f"{name} has {arr.ndim} axes (shape {arr.shape}); expected mono or (n_samples, channels)")
        if arr.shape[1] <= MAX_CHANNELS and arr.shape[1] <= arr.shape[0]:
            return arr.T  # (n, channels), as soundfile reads it
        if arr.shape[0] > MAX_CHANNELS:
            raise AudioError(
                f"{name} has shape {arr.shape}; expected (n_samples, channels) with at most {MAX_CHANNELS} channels"
            )
    elif layout != "batch":
        raise ValueError(f"layout must be one of {AUDIO_LAYOUTS}, got {layout!r}")
    return arr


def check_sample_rate(sample_rate: Any, name: str = "audio") -> int:
    """``sample_rate`` as an int, checked to be a number within 1 kHz .. 768 kHz (:class:`AudioError` if not)."""
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError, OverflowError):
        raise AudioError(f"{name}: sample_rate {sample_rate!r} is not a number of Hz") from None
    if not (1000 <= sr <= 768000):
        raise AudioError(f"{name}: sample_rate must be 1000..768000 Hz, got {sample_rate}")
    return sr


def check_audio(
    audio: Any,
    *,
    sample_rate: int | None = None,
    min_samples: int = 16,
    name: str = "audio",
    dtype: type = np.float64,
    layout: str = "batch",
) -> np.ndarray:
    """Validate audio and return it as a float array with the samples on the last axis.

    The one audio validator of the package: spectral distances and descriptors, feature
    transformers and sound-matching targets all call it.

    Parameters
    ----------
    audio : array-like [shape=(..., n_samples), (n_clips, n_samples) or (n_samples, channels)]
        Integer or float samples (not bool, complex, object or text), read as ``layout`` says.
    sample_rate : int, optional
        Checked to be a number within 1 kHz .. 768 kHz when given.
    min_samples : int, default=16
        The shortest clip accepted.
    name : str, default="audio"
        What to call the array in error messages.
    dtype : {np.float64, np.float32}, default=np.float64
        The float type returned.
    layout : {"batch", "rows", "channels"}, default="batch"
        ``"batch"``: samples on the last axis, leading axes a batch. ``"rows"``: 2-D clips, one
        per row (a 1-D clip becomes one row). ``"channels"``: mono ``(n,)`` or ``(n, channels)``
        / ``(channels, n)`` with at most 16 channels (the shorter axis is the channels),
        returned as ``(channels, n)``.

    Returns
    -------
    audio : np.ndarray [shape=(..., n_samples), dtype=dtype], C-contiguous

    Raises
    ------
    AudioError
        Not numeric, no samples, the wrong number of axes or channels, shorter than
        ``min_samples``, NaN or infinite samples, or an implausible sample rate.
    """
    arr = _numeric(audio, name)
    sr = None if sample_rate is None else check_sample_rate(sample_rate, name)
    if arr.ndim == 0 or arr.size == 0:
        raise AudioError(f"{name} holds no samples (shape {arr.shape}); give at least {int(min_samples)} samples")
    arr = _arrange(arr, layout, name)
    n = arr.shape[-1]
    if n < min_samples:
        if sr is not None:
            raise AudioError(
                f"{name} is {n / sr * 1000:.0f} ms long ({n} samples at {sr} Hz); at least "
                f"{min_samples / sr * 1000:.0f} ms ({int(min_samples)} samples) of sound are needed"
            )
        raise AudioError(
            f"{name} has {n} samples on its last axis; at least {int(min_samples)} are needed "
            "(the last axis holds the samples, leading axes are a batch)"
        )
    x = np.ascontiguousarray(arr, dtype=dtype)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        if layout == "rows":
            row = int(np.argmax(~finite.all(axis=1)))
            raise AudioError(f"{name} row {row} holds NaN or infinite samples ({bad} in all); audio must be finite")
        raise AudioError(f"{name} holds {bad} non-finite samples (NaN or inf); audio must be finite numbers")
    return x


# --------------------------------------------------------------------------- the distance front-end
@functools.lru_cache(maxsize=32)
def _window(n_fft: int) -> np.ndarray:
    return np.hanning(n_fft + 1)[:-1]  # periodic Hann


def power_spectrogram(audio: np.ndarray, n_fft: int = 1024, hop_length: int | None = None) -> np.ndarray:
    """Short-time power spectrum, scaled so a full-scale sine peaks at 1 (0 dB).

    Frames are centred (the clip is zero-padded by ``n_fft // 2`` on both sides)
    and windowed with a periodic Hann window.

    Parameters
    ----------
    audio : np.ndarray [shape=(..., n_samples)]
    n_fft : int
        FFT size (frame length).
    hop_length : int, optional
        Frame hop; ``n_fft // 4`` by default.

    Returns
    -------
    power : np.ndarray [shape=(..., n_fft // 2 + 1, n_frames)]
        ``n_frames = 1 + n_samples // hop_length``; float32 for float32 audio, float64 otherwise.
    """
    dtype = np.float32 if np.asarray(audio).dtype == np.float32 else np.float64
    x = check_audio(audio, dtype=dtype)
    n_fft = int(n_fft)
    hop = int(hop_length or n_fft // 4)
    if n_fft < 16 or hop < 1:
        raise AudioError(f"n_fft must be >= 16 and hop_length >= 1, got {n_fft} and {hop}")
    pad = n_fft // 2
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)])
    n_frames = 1 + x.shape[-1] // hop
    need = (n_frames - 1) * hop + n_fft
    if xp.shape[-1] < need:
        xp = np.pad(xp, [(0, 0)] * (x.ndim - 1) + [(0, need - xp.shape[-1])])
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=-1)[..., ::hop, :][..., :n_frames, :]
    win = _window(n_fft).astype(dtype)
    spec = scipy.fft.rfft(frames * win, axis=-1)
    scale = (win.sum() / 2.0) ** 2
    power = (spec.real**2 + spec.imag**2) / scale
    return np.swapaxes(power, -1, -2)


@functools.lru_cache(maxsize=64)
def mel_basis(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None, norm: str | None
) -> np.ndarray:
    """librosa's triangular mel filters: the one mel basis of both front-ends.

    Parameters
    ----------
    sample_rate, n_fft, n_mels : int
    fmin : float
        Lowest band edge, Hz.
    fmax : float or None
        Highest band edge, Hz (None: Nyquist).
    norm : {None, "slaney"}
        None: unit-peak filters (the distance front-end); "slaney": area-normalized (the features).

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float32], read-only
    """
    fb = librosa.filters.mel(sr=int(sample_rate), n_fft=int(n_fft), n_mels=int(n_mels), fmin=float(fmin),
                             fmax=None if fmax is None else float(fmax), norm=norm)
    fb.setflags(write=False)
    return fb


@functools.lru_cache(maxsize=32)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 30.0, fmax: float | None = None
) -> np.ndarray:
    """The distance front-end's mel filters: unit peak, so a sine at a band's centre gives the band its power.

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, n_fft // 2 + 1), dtype=float64], read-only
    """
    fmax = float(fmax) if fmax is not None else sample_rate / 2.0
    fb = mel_basis(int(sample_rate), int(n_fft), int(n_mels), float(fmin), fmax, None).astype(np.float64)
    fb.setflags(write=False)
    return fb


def _default_n_mels(n_fft: int) -> int:
    return int(min(max(n_fft // 16, 32), 128))


def log_mel_from_power(
    power: np.ndarray,
    sample_rate: int,
    *,
    n_mels: int | None = None,
    fmin: float = 30.0,
    fmax: float | None = None,
    floor_db: float = -80.0,
) -> np.ndarray:
    """Log-mel spectrogram (dB) from a power spectrogram of :func:`power_spectrogram`.

    Parameters
    ----------
    power : np.ndarray [shape=(..., n_fft // 2 + 1, n_frames)]
    sample_rate : int
    n_mels : int, optional
        Number of bands; ``n_fft // 16`` clipped to 32..128 by default.
    fmin, fmax : float
        Band edges in Hz (``fmax`` defaults to Nyquist).
    floor_db : float
        Values below this level (dB re a full-scale sine) are raised to it.

    Returns
    -------
    log_mel : np.ndarray [shape=(..., n_mels, n_frames)]
    """
    n_fft = 2 * (power.shape[-2] - 1)
    n_mels = int(n_mels or _default_n_mels(n_fft))
    fb = mel_filterbank(int(sample_rate), n_fft, n_mels, float(fmin), fmax).astype(power.dtype, copy=False)
    # (..., t, f) @ (f, m): contiguous in the layout power_spectrogram computes it
    mel = np.swapaxes(np.matmul(np.swapaxes(power, -1, -2), fb.T), -1, -2)
    return 10.0 * np.log10(np.maximum(mel, power.dtype.type(10.0 ** (floor_db / 10.0))))


def distance_log_mel(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int | None = None,
    fmin: float = 30.0,
    fmax: float | None = None,
    floor_db: float = -80.0,
) -> np.ndarray:
    """The distance front-end: log-mel spectrogram in dB (re a full-scale sine), floored at ``floor_db``.

    ``spectral.log_mel_spectrogram`` is this function. See the module notes for how it differs
    from :func:`feature_log_mel`.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    n_fft, hop_length : int
        Frame length and hop (``n_fft // 4`` by default).
    n_mels : int, optional
        Number of mel bands; ``n_fft // 16`` clipped to 32..128 by default.
    fmin, fmax, floor_db : float
        See :func:`log_mel_from_power`.

    Returns
    -------
    log_mel : np.ndarray [shape=(..., n_mels, n_frames)]
    """
    x = check_audio(audio, sample_rate=sample_rate)
    power = power_spectrogram(x, n_fft, hop_length)
    return log_mel_from_power(power, sample_rate, n_mels=n_mels, fmin=fmin, fmax=fmax, floor_db=floor_db)


# --------------------------------------------------------------------------- the feature front-end
def feature_stft_magnitude(X: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """librosa's STFT magnitude of audio rows: the one STFT of the feature transformers.

    Rows shorter than ``n_fft`` are zero-padded to ``n_fft``; frames are centred (periodic
    Hann window, zero padding); nothing is rescaled (square it for the power).

    Parameters
    ----------
    X : np.ndarray [shape=(n_clips, n_samples)]
    n_fft, hop_length : int

    Returns
    -------
    magnitude : np.ndarray [shape=(n_clips, n_fft // 2 + 1, 1 + max(n_samples, n_fft) // hop_length)]
        The dtype of ``X`` (float32 rows give float32).
    """
    if X.shape[1] < n_fft:
        X = np.pad(X, ((0, 0), (0, n_fft - X.shape[1])))
    return np.abs(librosa.stft(X, n_fft=n_fft, hop_length=hop_length, center=True))


def feature_log_mel(
    power: np.ndarray,
    sample_rate: int,
    n_mels: int,
    *,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """The model-input front-end: log-mel power (dB re a bin of power 1) of the squared :func:`feature_stft_magnitude`.

    Slaney area-normalized mel filters; see the module notes for how it differs from
    :func:`distance_log_mel`.

    Parameters
    ----------
    power : np.ndarray [shape=(n_clips, n_fft // 2 + 1, n_frames)]
    sample_rate, n_mels : int
    fmin : float, default=0.0
    fmax : float or None, default=None
        Mel range in Hz; None: Nyquist.
    top_db : float or None, default=80.0
        Floor, dB below a bin of power 1 (absolute, so loudness stays a feature); None: the
        librosa floor of -100 dB only.

    Returns
    -------
    log_mel : np.ndarray [shape=(n_clips, n_mels, n_frames)]
    """
    n_fft = 2 * (power.shape[-2] - 1)
    fb = mel_basis(int(sample_rate), n_fft, int(n_mels), float(fmin), fmax, "slaney")
    out = librosa.power_to_db(np.einsum("mf,nft->nmt", fb, power), ref=1.0, amin=1e-10, top_db=None)
    return out if top_db is None else np.maximum(out, -float(top_db))


def feature_mel_power(power: np.ndarray, sample_rate: int, n_mels: int) -> np.ndarray:
    """Mel power of a :func:`feature_stft_magnitude` on the feature front-end's mel basis (Slaney, 0 Hz .. Nyquist).

    What ``librosa.feature.melspectrogram(S=power, sr=sample_rate, n_mels=n_mels)`` returns.

    Parameters
    ----------
    power : np.ndarray [shape=(..., n_fft // 2 + 1, n_frames)]

    Returns
    -------
    mel : np.ndarray [shape=(..., n_mels, n_frames)]
    """
    n_fft = 2 * (power.shape[-2] - 1)
    fb = mel_basis(int(sample_rate), n_fft, int(n_mels), 0.0, None, "slaney")
    return np.einsum("...ft,mf->...mt", power, fb, optimize=True)


# --------------------------------------------------------------------------- pitch
def _pick_lag(window: np.ndarray, peak_ratio: float, use_max_if_no_peak: bool) -> int | None:
    """Index in ``window`` (one segment's normalized autocorrelation over the lag range) of the period."""
    peak = np.zeros(window.shape, dtype=bool)
    peak[1:-1] = (window[1:-1] >= window[:-2]) & (window[1:-1] > window[2:])  # local maxima
    vals = np.where(peak, window, -np.inf)
    top = vals.max()
    if np.isfinite(top) and (top > 0.0 or use_max_if_no_peak):
        cand = np.flatnonzero(vals >= peak_ratio * top)
        # a negative top lies below peak_ratio times itself: then the first peak
        return int(cand[0]) if cand.size else int(np.flatnonzero(peak)[0])
    return int(np.argmax(window)) if use_max_if_no_peak else None


def autocorrelation_pitch(
    segments: np.ndarray,
    sample_rate: int,
    *,
    fmin: float = 25.0,
    fmax: float = 2000.0,
    peak_ratio: float = 0.9,
    use_max_if_no_peak: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The package's pitch estimator: the fundamental of each segment from its autocorrelation.

    Each segment's mean is removed; its autocorrelation (via FFT) is normalized without bias
    (divided by the overlap length, then by lag 0). The period is the shortest lag among the
    local maxima within ``1/fmax .. 1/fmin`` whose value is within ``peak_ratio`` of the highest
    one (which avoids most sub-octave errors), refined by parabolic interpolation.

    Parameters
    ----------
    segments : np.ndarray [shape=(n_segments, n)]
        Audio segments of equal length (float64 is used inside).
    sample_rate : int
    fmin, fmax : float
        The search range, Hz.
    peak_ratio : float, default=0.9
    use_max_if_no_peak : bool, default=False
        When the range holds no positive local maximum: take the first peak near the highest
        (or the highest point of the range if there is no peak at all) instead of NaN.

    Returns
    -------
    f0 : np.ndarray [shape=(n_segments,)]
        Hz; NaN for a silent segment, a range the segment cannot hold, or no peak.
    clarity : np.ndarray [shape=(n_segments,)]
        Normalized autocorrelation at the period, clipped to 0..1 (0 where f0 is NaN).
    """
    seg = np.asarray(segments, dtype=np.float64)
    n_seg, n = seg.shape
    lo = max(int(sample_rate / fmax), 1)
    hi = min(int(sample_rate / fmin), n - 1)
    f0 = np.full(n_seg, np.nan)
    clar = np.zeros(n_seg)
    if hi <= lo + 2:
        return f0, clar
    seg = seg - seg.mean(axis=-1, keepdims=True)
    nfft = 1 << int(math.ceil(math.log2(2 * n)))
    spec = np.fft.rfft(seg, nfft, axis=-1)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=-1)[:, :n]
    ac = ac / (n - np.arange(n))  # unbiased: divide by the overlap length, then by lag 0
    r0 = ac[:, :1]
    ok = r0[:, 0] > 1e-10
    window = np.where(ok[:, None], ac / np.maximum(r0, _EPS), 0.0)[:, lo : hi + 1]
    for i in np.flatnonzero(ok):
        k = _pick_lag(window[i], peak_ratio, use_max_if_no_peak)
        if k is None:
            continue
        frac = 0.0
        if 0 < k < window.shape[1] - 1:  # parabolic interpolation around the peak
            y0, y1, y2 = window[i, k - 1], window[i, k], window[i, k + 1]
            den = y0 - 2 * y1 + y2
            frac = 0.5 * (y0 - y2) / den if abs(den) > _EPS else 0.0
        clar[i] = float(np.clip(window[i, k], 0.0, 1.0))
        f0[i] = sample_rate / (lo + k + frac)
    return f0, clar


def pitch_f0(
    audio: np.ndarray,
    sample_rate: int,
    *,
    fmin: float = 25.0,
    fmax: float = 2000.0,
    segment: float = 0.2,
    min_clarity: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency of each clip: :func:`autocorrelation_pitch` of its loudest segment.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    fmin, fmax : float
        The search range, Hz.
    segment : float
        Analysis window, seconds (the loudest one, on a grid of quarter windows).
    min_clarity : float
        Below this normalized autocorrelation at the chosen lag the clip counts
        as unpitched and its f0 is NaN.

    Returns
    -------
    f0 : np.ndarray [shape=(...)]
        Hz, NaN where unpitched or silent.
    clarity : np.ndarray [shape=(...)]
        Normalized autocorrelation at the period, 0..1.
    """
    x = check_audio(audio, sample_rate=sample_rate)
    batch = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    n = min(int(segment * sample_rate), flat.shape[-1])
    hop = max(n // 4, 1)
    c = np.concatenate([np.zeros((flat.shape[0], 1)), np.cumsum(flat**2, axis=-1)], axis=-1)
    starts = np.arange(0, flat.shape[-1] - n + 1, hop)
    energy = c[:, starts + n] - c[:, starts]
    best = starts[np.argmax(energy, axis=-1)]
    seg = np.stack([flat[i, s : s + n] for i, s in enumerate(best)])
    f0, clar = autocorrelation_pitch(seg, sample_rate, fmin=fmin, fmax=fmax, peak_ratio=0.9)
    f0[clar < min_clarity] = np.nan
    return f0.reshape(batch), clar.reshape(batch)
