"""Audio-feature math shared by the studies and the audio-domain metrics.

Everything here works on plain NumPy arrays of mono audio, one clip per row:
``audio`` is ``(n_samples,)`` or ``(..., n_samples)``; the leading axes are a
batch, and every function returns one value (or one spectrogram) per clip.

Spectrograms come from the distance front-end of :mod:`synth_probe.frontend`
(:func:`~synth_probe.frontend.distance_log_mel`, here also ``log_mel_spectrogram``):
power scaled so that a full-scale sine puts 0 dB into the band or bin at its
frequency, unit-peak mel bands from 30 Hz, dB with a floor (``floor_db``, default
-80 dB), so silence and near-silence compare equal and the quiet end of a
spectrum does not dominate a distance. The validator (``check_audio``), the STFT
(``power_spectrogram``), the mel filters and ``pitch_f0`` are the front-end's,
re-exported here.

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

import math
from collections.abc import Sequence

import numpy as np
from scipy.fft import dct

from synth_probe.errors import AudioError
from synth_probe.frontend import (
    check_audio,
    distance_log_mel,
    log_mel_from_power,
    mel_filterbank,
    pitch_f0,
    power_spectrogram,
)

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
    "multi_resolution_l1",
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

#: the distance front-end (:func:`synth_probe.frontend.distance_log_mel`) under its historical name
log_mel_spectrogram = distance_log_mel


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


# --------------------------------------------------------------------------- spectrograms (frontend.distance_log_mel)
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
    return multi_resolution_l1(sa, sb)


def multi_resolution_l1(sa: Sequence[np.ndarray], sb: Sequence[np.ndarray]) -> np.ndarray | float:
    """:func:`log_mel_l1` averaged over resolutions, of precomputed :func:`multi_resolution_log_mel` lists.

    A caller that compares one target with many sounds computes the target's spectrograms once;
    batches broadcast (one target against ``(k, ...)`` candidates gives ``k`` distances).

    Returns
    -------
    distance : float or np.ndarray [shape=(...)]
        In dB.
    """
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
