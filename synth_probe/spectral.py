"""Audio-feature math shared by the studies and the audio-domain metrics.

Everything here works on plain NumPy arrays of mono audio, one clip per row:
``audio`` is ``(n_samples,)`` or ``(..., n_samples)``; the leading axes are a
batch, and every function returns one value (or one spectrogram) per clip.

Spectrograms are power spectrograms scaled so that a full-scale sine puts
0 dB into the band or bin at its frequency; log-mel spectrograms are in dB with
a floor (``floor_db``, default -80 dB), so silence and near-silence compare equal
and the quiet end of a spectrum does not dominate a distance.

Distances
---------
log_mel_distance, multi_resolution_log_mel_distance
    Mean absolute difference of log-mel spectrograms, frame by frame (dB).
time_averaged_log_mel_distance
    The same on the time-averaged spectra: a phase or LFO-position shift does
    not move it.
spectral_convergence, log_spectral_distance, multi_scale_spectral_distance, mfcc_distance
    The audio-domain metrics of the sound-matching literature (SC, LSD, MSS, MFCC).

Descriptors
-----------
loudness_db, spectral_centroid, pitch_f0, rms_envelope, describe
    What aspect of a sound moved: loudness, brightness, pitch, time envelope,
    modulation.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
import scipy.fft

from synth_probe.errors import AudioError

__all__ = [
    "DEFAULT_RESOLUTIONS",
    "check_audio",
    "power_spectrogram",
    "mel_filterbank",
    "log_mel_from_power",
    "log_mel_spectrogram",
    "multi_resolution_log_mel",
    "log_mel_l1",
    "log_mel_distance",
    "multi_resolution_log_mel_distance",
    "time_averaged_log_mel",
    "time_averaged_log_mel_distance",
    "spectral_convergence",
    "log_spectral_distance",
    "multi_scale_spectral_distance",
    "mfcc",
    "mfcc_distance",
    "loudness_db",
    "rms_envelope",
    "spectral_centroid",
    "pitch_f0",
    "hz_to_semitones",
    "describe",
    "ASPECTS",
]

#: (n_fft, hop_length) pairs of the multi-resolution log-mel distance
DEFAULT_RESOLUTIONS: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512))
#: aspects of a sound that :func:`describe` measures
ASPECTS: tuple[str, ...] = ("loudness", "brightness", "pitch", "envelope", "modulation")

_EPS = 1e-12


# --------------------------------------------------------------------------- validation
def check_audio(
    audio: np.ndarray,
    *,
    sample_rate: int | None = None,
    min_samples: int = 16,
    name: str = "audio",
    dtype: type = np.float64,
) -> np.ndarray:
    """Validate audio and return it as a float array (one clip per row).

    Parameters
    ----------
    audio : array-like [shape=(n_samples,) or (..., n_samples)]
        Mono clips; leading axes are a batch.
    sample_rate : int, optional
        Checked to be within 1 kHz .. 768 kHz when given.
    min_samples : int
        The shortest clip accepted.
    name : str
        What to call the array in error messages.
    dtype : {np.float64, np.float32}
        The float type returned.

    Returns
    -------
    audio : np.ndarray [shape=(..., n_samples), dtype=dtype]

    Raises
    ------
    AudioError
        Not numeric, zero-dimensional, shorter than ``min_samples``, not finite,
        or an implausible sample rate.
    """
    try:
        x = np.asarray(audio, dtype=dtype)
    except (TypeError, ValueError):
        raise AudioError(f"{name} must be a numeric array of samples, got {type(audio).__name__}") from None
    if x.ndim == 0:
        raise AudioError(f"{name} must have at least one axis of samples, got a scalar")
    if x.shape[-1] < min_samples:
        raise AudioError(
            f"{name} has {x.shape[-1]} samples on its last axis; at least {min_samples} are needed "
            "(the last axis holds the samples, leading axes are a batch)"
        )
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise AudioError(f"{name} holds {bad} non-finite samples (NaN or inf); audio must be finite")
    if sample_rate is not None and not (1000 <= int(sample_rate) <= 768000):
        raise AudioError(f"sample_rate must be 1000..768000 Hz, got {sample_rate}")
    return x


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = check_audio(a, name="a")
    b = check_audio(b, name="b")
    if a.shape[-1] != b.shape[-1]:
        raise AudioError(
            f"a and b must have the same number of samples, got {a.shape[-1]} and {b.shape[-1]}"
        )
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise AudioError(f"batch shapes of a {a.shape[:-1]} and b {b.shape[:-1]} do not broadcast") from None
    return a, b


# --------------------------------------------------------------------------- spectrograms
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


@functools.lru_cache(maxsize=32)
def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 30.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular mel filters with unit peak (a sine at a band's centre gives the band its power).

    Returns
    -------
    weights : np.ndarray [shape=(n_mels, n_fft // 2 + 1)], read-only
    """
    import librosa

    fmax = float(fmax) if fmax is not None else sample_rate / 2.0
    fb = librosa.filters.mel(
        sr=int(sample_rate), n_fft=int(n_fft), n_mels=int(n_mels), fmin=float(fmin), fmax=fmax, norm=None
    ).astype(np.float64)
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


def log_mel_spectrogram(
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
    """Log-mel spectrogram in dB (re a full-scale sine), floored at ``floor_db``.

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


def multi_resolution_log_mel(
    audio: np.ndarray,
    sample_rate: int,
    *,
    resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
    fmin: float = 30.0,
    fmax: float | None = None,
    floor_db: float = -80.0,
) -> list[np.ndarray]:
    """Log-mel spectrograms at several (n_fft, hop) resolutions.

    Returns
    -------
    specs : list of np.ndarray
        One ``(..., n_mels_r, n_frames_r)`` array per resolution, in the order given;
        ``n_mels_r`` is ``n_fft // 16`` clipped to 32..128.
    """
    x = check_audio(audio, sample_rate=sample_rate)
    return [
        log_mel_spectrogram(x, sample_rate, n_fft=n, hop_length=h, fmin=fmin, fmax=fmax, floor_db=floor_db)
        for n, h in resolutions
    ]


def time_averaged_log_mel(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_mels: int | None = None,
    fmin: float = 30.0,
    floor_db: float = -80.0,
) -> np.ndarray:
    """The long-term spectrum: mel power averaged over all frames, then in dB.

    A shift of phase or of an LFO's position does not move it, only what is
    heard on average.

    Returns
    -------
    spectrum : np.ndarray [shape=(..., n_mels)]
    """
    x = check_audio(audio, sample_rate=sample_rate)
    power = power_spectrogram(x, n_fft, hop_length).mean(axis=-1, keepdims=True)
    return log_mel_from_power(power, sample_rate, n_mels=n_mels, fmin=fmin, floor_db=floor_db)[..., 0]


# --------------------------------------------------------------------------- distances
def log_mel_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Mean absolute difference of two log-mel spectrograms (or spectra), in dB.

    Parameters
    ----------
    a, b : np.ndarray [shape=(..., n_mels, n_frames) or (..., n_mels)]
        Precomputed log-mel features of equal trailing shape (batches broadcast).

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
        Averaged over the last two axes (the last axis for 1-D spectra).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-2:] != b.shape[-2:] and a.shape[-1:] != b.shape[-1:]:
        raise AudioError(f"spectrogram shapes differ: {a.shape} and {b.shape}")
    axes = (-1,) if a.ndim == 1 or b.ndim == 1 else (-2, -1)
    d = np.abs(a - b).mean(axis=axes)
    return float(d) if np.ndim(d) == 0 else d


def log_mel_distance(
    a: np.ndarray,
    b: np.ndarray,
    sample_rate: int,
    *,
    n_fft: int = 1024,
    hop_length: int | None = None,
    n_mels: int | None = None,
    floor_db: float = -80.0,
) -> np.ndarray | float:
    """Frame-wise log-mel distance between two clips: mean |dB difference|.

    Parameters
    ----------
    a, b : np.ndarray [shape=(n_samples,) or (..., n_samples)]
        Clips of equal length; batch axes broadcast.
    sample_rate : int

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
        In dB; 0 for identical clips.
    """
    a, b = _pair(a, b)
    kw = dict(n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, floor_db=floor_db)
    return log_mel_l1(log_mel_spectrogram(a, sample_rate, **kw), log_mel_spectrogram(b, sample_rate, **kw))


def multi_resolution_log_mel_distance(
    a: np.ndarray,
    b: np.ndarray,
    sample_rate: int,
    *,
    resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
    floor_db: float = -80.0,
) -> np.ndarray | float:
    """Multi-resolution log-mel distance: :func:`log_mel_distance` averaged over resolutions.

    Short frames see attacks and fast modulation, long frames see pitch and
    fine spectral detail; the mean over (512, 1024, 2048)-sample frames weighs both.

    Parameters
    ----------
    a, b : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    resolutions : sequence of (n_fft, hop_length)

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
        In dB.
    """
    a, b = _pair(a, b)
    sa = multi_resolution_log_mel(a, sample_rate, resolutions=resolutions, floor_db=floor_db)
    sb = multi_resolution_log_mel(b, sample_rate, resolutions=resolutions, floor_db=floor_db)
    d = np.mean([log_mel_l1(x, y) for x, y in zip(sa, sb)], axis=0)
    return float(d) if np.ndim(d) == 0 else d


def time_averaged_log_mel_distance(
    a: np.ndarray, b: np.ndarray, sample_rate: int, *, n_fft: int = 2048, floor_db: float = -80.0
) -> np.ndarray | float:
    """Distance of the long-term spectra (:func:`time_averaged_log_mel`), in dB.

    Phase-robust: two renders that differ only in where an LFO or a chorus was
    in its cycle are close by this measure even when frame-wise distances are not.

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
    """
    a, b = _pair(a, b)
    return log_mel_l1(
        time_averaged_log_mel(a, sample_rate, n_fft=n_fft, floor_db=floor_db),
        time_averaged_log_mel(b, sample_rate, n_fft=n_fft, floor_db=floor_db),
    )


def spectral_convergence(
    target: np.ndarray,
    estimate: np.ndarray,
    *,
    resolutions: Sequence[tuple[int, int]] = DEFAULT_RESOLUTIONS,
) -> np.ndarray | float:
    """Spectral convergence ``|| |S_t| - |S_e| ||_F / || |S_t| ||_F``, averaged over resolutions.

    Not symmetric: ``target`` is the reference. 0 means equal magnitude
    spectrograms; 1 is the distance of silence from the target.

    Parameters
    ----------
    target, estimate : np.ndarray [shape=(n_samples,) or (..., n_samples)]

    Returns
    -------
    sc : float or np.ndarray [shape=(...)]
    """
    t, e = _pair(target, estimate)
    out = []
    for n_fft, hop in resolutions:
        mt = np.sqrt(power_spectrogram(t, n_fft, hop))
        me = np.sqrt(power_spectrogram(e, n_fft, hop))
        num = np.sqrt(((mt - me) ** 2).sum(axis=(-2, -1)))
        den = np.sqrt((mt**2).sum(axis=(-2, -1)))
        out.append(num / np.maximum(den, _EPS))
    d = np.mean(out, axis=0)
    return float(d) if np.ndim(d) == 0 else d


def log_spectral_distance(
    a: np.ndarray, b: np.ndarray, *, n_fft: int = 2048, hop_length: int | None = None, floor_db: float = -80.0
) -> np.ndarray | float:
    """Log-spectral distance (LSD): per frame the RMS over bins of the dB difference, averaged over frames.

    Returns
    -------
    lsd : float or np.ndarray [shape=(...)]
        In dB.
    """
    a, b = _pair(a, b)
    floor = 10.0 ** (floor_db / 10.0)
    la = 10.0 * np.log10(np.maximum(power_spectrogram(a, n_fft, hop_length), floor))
    lb = 10.0 * np.log10(np.maximum(power_spectrogram(b, n_fft, hop_length), floor))
    d = np.sqrt(((la - lb) ** 2).mean(axis=-2)).mean(axis=-1)
    return float(d) if np.ndim(d) == 0 else d


def multi_scale_spectral_distance(
    a: np.ndarray,
    b: np.ndarray,
    *,
    resolutions: Sequence[tuple[int, int]] = ((2048, 512), (1024, 256), (512, 128), (256, 64)),
    log_weight: float = 1.0,
) -> np.ndarray | float:
    """Multi-scale spectral distance (MSS, as in DDSP): mean |ΔS| + ``log_weight`` · mean |Δ log S|.

    ``S`` is the linear STFT magnitude (scaled so a full-scale sine peaks at 1);
    the terms are averaged over bins and frames and summed over scales.

    Returns
    -------
    mss : float or np.ndarray [shape=(...)]
    """
    a, b = _pair(a, b)
    total = 0.0
    for n_fft, hop in resolutions:
        ma = np.sqrt(power_spectrogram(a, n_fft, hop))
        mb = np.sqrt(power_spectrogram(b, n_fft, hop))
        lin = np.abs(ma - mb).mean(axis=(-2, -1))
        log = np.abs(np.log(ma + 1e-7) - np.log(mb + 1e-7)).mean(axis=(-2, -1))
        total = total + lin + log_weight * log
    return float(total) if np.ndim(total) == 0 else total


def mfcc(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_mfcc: int = 20,
    n_fft: int = 2048,
    hop_length: int | None = None,
    n_mels: int = 128,
    floor_db: float = -80.0,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients: orthonormal DCT-II of the log-mel spectrogram.

    Returns
    -------
    mfcc : np.ndarray [shape=(..., n_mfcc, n_frames)]
    """
    from scipy.fft import dct

    lm = log_mel_spectrogram(audio, sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels,
                             floor_db=floor_db)
    return dct(lm, type=2, axis=-2, norm="ortho")[..., :n_mfcc, :]


def mfcc_distance(
    a: np.ndarray, b: np.ndarray, sample_rate: int, *, n_mfcc: int = 20, skip_c0: bool = False
) -> np.ndarray | float:
    """Mean absolute MFCC difference over coefficients and frames.

    Parameters
    ----------
    a, b : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    n_mfcc : int
    skip_c0 : bool
        Leave out the 0th coefficient (overall level), making the distance loudness-blind.

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
    """
    a, b = _pair(a, b)
    ma = mfcc(a, sample_rate, n_mfcc=n_mfcc)
    mb = mfcc(b, sample_rate, n_mfcc=n_mfcc)
    if skip_c0:
        ma, mb = ma[..., 1:, :], mb[..., 1:, :]
    d = np.abs(ma - mb).mean(axis=(-2, -1))
    return float(d) if np.ndim(d) == 0 else d


# --------------------------------------------------------------------------- descriptors
def loudness_db(audio: np.ndarray, *, floor_db: float = -100.0) -> np.ndarray | float:
    """Mean power of each clip in dB re full scale (a full-scale sine: -3 dB).

    Returns
    -------
    level : float or np.ndarray [shape=(...)]
    """
    x = check_audio(audio)
    d = 10.0 * np.log10(np.maximum((x**2).mean(axis=-1), 10.0 ** (floor_db / 10.0)))
    return float(d) if np.ndim(d) == 0 else d


def rms_envelope(audio: np.ndarray, *, frame_length: int = 1024, hop_length: int = 256) -> np.ndarray:
    """Frame RMS of each clip (centred frames, zero-padded).

    Returns
    -------
    rms : np.ndarray [shape=(..., 1 + n_samples // hop_length)]
    """
    x = check_audio(audio)
    pad = frame_length // 2
    xp = np.pad(x**2, [(0, 0)] * (x.ndim - 1) + [(pad, pad)])
    c = np.concatenate([np.zeros(x.shape[:-1] + (1,)), np.cumsum(xp, axis=-1)], axis=-1)
    n_frames = 1 + x.shape[-1] // hop_length
    starts = np.arange(n_frames) * hop_length
    ends = np.minimum(starts + frame_length, xp.shape[-1])
    return np.sqrt(np.maximum(c[..., ends] - c[..., starts], 0.0) / frame_length)


def hz_to_semitones(f: np.ndarray | float) -> np.ndarray | float:
    """Frequency in Hz to a MIDI-like semitone scale (A4 = 440 Hz = 69); NaN stays NaN."""
    f = np.asarray(f, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 69.0 + 12.0 * np.log2(f / 440.0)
    return float(s) if s.ndim == 0 else s


def spectral_centroid(
    audio: np.ndarray | None,
    sample_rate: int,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    power: np.ndarray | None = None,
) -> np.ndarray | float:
    """Centroid (Hz) of each clip's long-term power spectrum; NaN for silence.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (..., n_samples)] or None
        Ignored when ``power`` is given.
    sample_rate : int
    n_fft, hop_length : int
    power : np.ndarray [shape=(..., n_fft // 2 + 1, n_frames)], optional
        ``power_spectrogram(audio, n_fft, hop_length)`` when the caller has it already.

    Returns
    -------
    centroid : float or np.ndarray [shape=(...)]
    """
    if power is None:
        x = check_audio(audio, sample_rate=sample_rate)
        power = power_spectrogram(x, n_fft, hop_length)
    elif power.shape[-2] != n_fft // 2 + 1:
        raise AudioError(f"power has {power.shape[-2]} frequency bins; n_fft {n_fft} gives {n_fft // 2 + 1}")
    return _centroid(np.asarray(power, dtype=np.float64).mean(axis=-1), sample_rate, n_fft)


def _centroid(p: np.ndarray, sample_rate: int, n_fft: int) -> np.ndarray | float:
    freqs = np.arange(p.shape[-1]) * sample_rate / n_fft
    tot = p.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(tot > 1e-10, (p * freqs).sum(axis=-1) / np.maximum(tot, _EPS), np.nan)
    return float(c) if np.ndim(c) == 0 else c


def pitch_f0(
    audio: np.ndarray,
    sample_rate: int,
    *,
    fmin: float = 25.0,
    fmax: float = 2000.0,
    segment: float = 0.2,
    min_clarity: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Fundamental frequency of each clip from the autocorrelation of its loudest segment.

    The loudest ``segment`` seconds are autocorrelated (normalized, via FFT); the
    period is the shortest lag within 0.9 of the highest peak in the allowed
    range (which avoids most sub-octave errors).

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    fmin, fmax : float
        The search range, Hz.
    segment : float
        Analysis window, seconds.
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
    lo = max(int(sample_rate / fmax), 1)
    hi = min(int(sample_rate / fmin), n - 1)
    f0 = np.full(flat.shape[0], np.nan)
    clar = np.zeros(flat.shape[0])
    if hi <= lo + 2:
        return f0.reshape(batch), clar.reshape(batch)
    c = np.concatenate([np.zeros((flat.shape[0], 1)), np.cumsum(flat**2, axis=-1)], axis=-1)
    starts = np.arange(0, flat.shape[-1] - n + 1, hop)
    energy = c[:, starts + n] - c[:, starts]
    best = starts[np.argmax(energy, axis=-1)]
    seg = np.stack([flat[i, s : s + n] for i, s in enumerate(best)])
    seg = seg - seg.mean(axis=-1, keepdims=True)
    nfft = 1 << int(math.ceil(math.log2(2 * n)))
    spec = np.fft.rfft(seg, nfft, axis=-1)
    ac = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=-1)[:, :n]
    # unbiased normalization: divide by the overlap length, then by lag 0
    ac = ac / (n - np.arange(n))
    r0 = ac[:, :1]
    ok = r0[:, 0] > 1e-10
    r = np.where(ok[:, None], ac / np.maximum(r0, _EPS), 0.0)
    window = r[:, lo : hi + 1]
    # local maxima only
    peak = np.zeros_like(window, dtype=bool)
    peak[:, 1:-1] = (window[:, 1:-1] >= window[:, :-2]) & (window[:, 1:-1] > window[:, 2:])
    vals = np.where(peak, window, -np.inf)
    top = vals.max(axis=-1)
    for i in range(flat.shape[0]):
        if not ok[i] or not np.isfinite(top[i]) or top[i] <= 0.0:
            continue
        cand = np.flatnonzero(vals[i] >= 0.9 * top[i])
        k = int(cand[0])
        # parabolic interpolation around the peak
        if 0 < k < window.shape[1] - 1:
            y0, y1, y2 = window[i, k - 1], window[i, k], window[i, k + 1]
            den = y0 - 2 * y1 + y2
            frac = 0.5 * (y0 - y2) / den if abs(den) > _EPS else 0.0
        else:
            frac = 0.0
        lag = lo + k + frac
        clar[i] = float(np.clip(window[i, k], 0.0, 1.0))
        if clar[i] >= min_clarity:
            f0[i] = sample_rate / lag
    return f0.reshape(batch), clar.reshape(batch)


def describe(
    audio: np.ndarray,
    sample_rate: int,
    *,
    envelope_points: int = 32,
    floor_db: float = -60.0,
    power: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Descriptors of the five aspects of a sound that a parameter can move.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,) or (..., n_samples)]
    sample_rate : int
    envelope_points : int
        Length of the pooled envelope shape.
    floor_db : float
        Floor of the envelope shape, dB below its peak.
    power : np.ndarray [shape=(..., 513, 1 + n_samples // 256)], optional
        ``power_spectrogram(audio, 1024, 256)`` when the caller has it already.

    Returns
    -------
    descriptors : dict of str to np.ndarray
        ``loudness`` [shape=(...)]: mean power, dB re full scale.
        ``brightness`` [shape=(...)]: long-term spectral centroid in semitones (A4 = 69).
        ``pitch`` [shape=(...)]: f0 in semitones (A4 = 69), NaN if unpitched.
        ``envelope`` [shape=(..., envelope_points)]: RMS envelope in dB re its peak
        (the shape, loudness removed), floored at ``floor_db``, mean-pooled in time.
        ``modulation`` [shape=(...)]: fluctuation of the level (dB) and of the
        centroid (semitones) around their 0.25-s moving averages while the note
        sounds, combined as the root of the sum of squares.
    """
    x = check_audio(audio, sample_rate=sample_rate, min_samples=2048)
    batch = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    n_fft, hop = 1024, 256
    if power is None:
        power = power_spectrogram(flat, n_fft, hop)  # (b, f, t)
    else:
        power = np.asarray(power).reshape((-1,) + np.shape(power)[-2:])
        if power.shape != (flat.shape[0], n_fft // 2 + 1, 1 + flat.shape[-1] // hop):
            raise AudioError(
                f"power has shape {power.shape}; expected power_spectrogram(audio, 1024, 256) of shape "
                f"{(flat.shape[0], n_fft // 2 + 1, 1 + flat.shape[-1] // hop)}"
            )
    level = loudness_db(flat)
    bright = hz_to_semitones(_centroid(power.mean(axis=-1), sample_rate, n_fft))
    f0, _ = pitch_f0(flat, sample_rate)
    pitch = hz_to_semitones(f0)

    env_db = 20.0 * np.log10(np.maximum(rms_envelope(flat, frame_length=n_fft, hop_length=hop), 1e-6))
    peak = env_db.max(axis=-1, keepdims=True)
    shape = np.maximum(env_db - peak, floor_db)
    n_t = shape.shape[-1]
    edges = np.linspace(0, n_t, envelope_points + 1).astype(int)
    envelope = np.stack(
        [shape[:, edges[i] : max(edges[i + 1], edges[i] + 1)].mean(axis=-1) for i in range(envelope_points)],
        axis=-1,
    )

    # modulation: detrended level and centroid contours while the note sounds
    k = max(int(round(0.25 * sample_rate / hop)), 3)
    kernel = np.ones(k) / k
    freqs = np.arange(power.shape[-2]) * sample_rate / n_fft
    with np.errstate(invalid="ignore", divide="ignore"):
        cen = (power * freqs[:, None]).sum(axis=-2) / np.maximum(power.sum(axis=-2), _EPS)
        cen_st = 12.0 * np.log2(np.maximum(cen, 1.0) / 440.0)
    mod = np.zeros(flat.shape[0])
    for i in range(flat.shape[0]):
        active = env_db[i] > peak[i, 0] - 30.0
        if active.sum() < 2 * k or peak[i, 0] < -90:
            continue
        a_lvl = env_db[i][active]
        a_cen = cen_st[i][active]
        r_lvl = a_lvl - np.convolve(a_lvl, kernel, mode="same")
        r_cen = a_cen - np.convolve(a_cen, kernel, mode="same")
        core = slice(k // 2, len(a_lvl) - k // 2)  # drop edge effects of the moving average
        mod[i] = math.sqrt(float(np.std(r_lvl[core])) ** 2 + float(np.std(r_cen[core])) ** 2)
    return {
        "loudness": np.asarray(level).reshape(batch),
        "brightness": np.asarray(bright).reshape(batch),
        "pitch": np.asarray(pitch).reshape(batch),
        "envelope": envelope.reshape(batch + (envelope_points,)),
        "modulation": mod.reshape(batch),
    }
