"""Target audio for sound matching: validate, bring to the model's format, estimate the pitch.

:func:`prepare_audio` checks target audio with :func:`synth_probe.frontend.check_audio`
(the package's one audio validator) plus the checks only a target needs (silence,
clipping, channel layout), then resamples, downmixes, trims the onset and fits the
length; :func:`load_audio` reads a file and calls it. :func:`estimate_pitch` finds
the target's fundamental with :func:`synth_probe.frontend.autocorrelation_pitch`, the package's one
pitch estimator, and :func:`note_for_pitch` the MIDI note to render it with.

All imports are at the top (``librosa`` loads its submodules on first use).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import soundfile as sf

from synth_probe.errors import AudioError
from synth_probe.frontend import autocorrelation_pitch, check_audio, check_sample_rate

__all__ = [
    "PreparedAudio", "PitchEstimate", "SILENCE_DB", "CLIP_LEVEL", "CLIP_RUN", "CLIP_FRACTION", "ONSET_DB",
    "NOTE_RANGE", "prepare_audio", "load_audio", "estimate_pitch", "note_for_pitch",
]

#: a target whose peak is below this level (dBFS) counts as silent
SILENCE_DB = -60.0
#: samples at or above this fraction of the peak, in runs of CLIP_RUN or more, count as clipped
CLIP_LEVEL = 0.999
CLIP_RUN = 3
#: more clipped samples than this fraction of the clip is an error
CLIP_FRACTION = 1e-3
#: leading audio below this level relative to the peak (dB) is trimmed
ONSET_DB = -50.0
#: the notes a match may render (C1 .. C7)
NOTE_RANGE = (24, 96)


# ============================================================================ target audio
@dataclass
class PreparedAudio:
    """A target ready to match.

    Attributes
    ----------
    audio : np.ndarray [shape=(n_samples,), dtype=float32]
        Mono, at ``sample_rate``, onset at the start, trimmed or padded.
    sample_rate : int
    notices : list of str
        What was changed (resampled, downmixed, trimmed, padded).
    source : str
        File name or "array".
    original_rate, channels : int
    original_seconds : float
    """

    audio: np.ndarray
    sample_rate: int
    notices: list[str] = field(default_factory=list)
    source: str = "array"
    original_rate: int = 0
    channels: int = 1
    original_seconds: float = 0.0


def _clipped_samples(x: np.ndarray, peak: float) -> int:
    """Samples of ``x`` (1-D) at the peak level in runs of at least :data:`CLIP_RUN`."""
    if peak < 0.99:  # digital clipping sits at (or above) full scale
        return 0
    hot = np.abs(x) >= CLIP_LEVEL * peak
    if not hot.any():
        return 0
    d = np.diff(np.concatenate([[0], hot.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    runs = stops - starts
    return int(runs[runs >= CLIP_RUN].sum())


def _check_level(x: np.ndarray, name: str) -> None:
    """Refuse a silent target or one with a clipped channel (``x``: ``(channels, n)``)."""
    n_in = x.shape[1]
    peak_all = float(np.max(np.abs(x)))
    if peak_all <= 10 ** (SILENCE_DB / 20):
        level = "-inf" if peak_all == 0 else f"{20 * math.log10(peak_all):.1f}"
        raise AudioError(
            f"{name} is silent: its peak is {level} dBFS; a target must peak above {SILENCE_DB:.0f} dBFS"
        )
    for c in range(x.shape[0]):
        peak_c = float(np.max(np.abs(x[c])))
        n_clip = _clipped_samples(x[c], peak_c)
        if n_clip > max(CLIP_RUN, CLIP_FRACTION * n_in):
            where = f" (channel {c + 1})" if x.shape[0] > 1 else ""
            raise AudioError(
                f"{name} is clipped{where}: {n_clip} samples ({100 * n_clip / n_in:.2f} %) sit flat at the "
                f"peak ({20 * math.log10(peak_c):+.1f} dBFS); at most {100 * CLIP_FRACTION:.1f} % are allowed. "
                "Re-record or export it with less gain."
            )


def prepare_audio(
    audio: Any,
    sample_rate: int,
    *,
    target_rate: int,
    n_samples: int,
    name: str = "target",
    trim_onset: bool = True,
) -> PreparedAudio:
    """Validate target audio and bring it to the model's format.

    The samples are checked by :func:`synth_probe.frontend.check_audio` (the package's one
    audio validator); this adds what only a target needs (not silent, not clipped).
    :func:`load_audio` reads a file and calls it.

    Parameters
    ----------
    audio : array-like [shape=(n,), (n, channels) or (channels, n)]
        Samples as floats (full scale 1.0). A 2-D array's channel axis is the
        shorter one (at most 16 channels).
    sample_rate : int
        Rate of ``audio`` in Hz.
    target_rate : int
        The rate the model and the renders use.
    n_samples : int
        The length the model and the renders use.
    name : str
        What to call the audio in messages.
    trim_onset : bool, default=True
        Cut leading audio quieter than :data:`ONSET_DB` below the peak, so the sound
        starts where a render's note starts.

    Returns
    -------
    PreparedAudio

    Raises
    ------
    AudioError
        Not numeric, empty, more than 2 axes or 16 channels, NaN or infinite samples,
        silent (peak below :data:`SILENCE_DB` dBFS), clipped (more than 0.1 % of the
        samples flat at a full-scale peak), or an implausible sample rate.
    """
    sr = check_sample_rate(sample_rate, name)
    x = check_audio(audio, sample_rate=sr, min_samples=int(0.05 * sr), name=name, layout="channels")  # (channels, n)
    n_in = x.shape[1]
    channels = x.shape[0] if np.ndim(audio) == 2 else 1
    _check_level(x, name)
    notices: list[str] = []
    if channels > 1:
        notices.append(f"downmixed {channels} channels to mono (channel mean)")
    x = x.mean(axis=0)
    if sr != int(target_rate):
        x = librosa.resample(x, orig_sr=sr, target_sr=int(target_rate), res_type="soxr_hq")
        notices.append(f"resampled from {sr} Hz to {int(target_rate)} Hz")
    peak = float(np.max(np.abs(x)))
    if trim_onset and peak > 0:
        loud = np.flatnonzero(np.abs(x) >= peak * 10 ** (ONSET_DB / 20))
        start = int(loud[0]) if loud.size else 0
        if start > int(0.005 * target_rate):
            x = x[start:]
            notices.append(f"trimmed {start / target_rate:.3f} s of leading silence (below {ONSET_DB:.0f} dB re peak)")
    n = int(n_samples)
    if x.shape[0] > n:
        notices.append(f"trimmed from {x.shape[0] / target_rate:.2f} s to {n / target_rate:.2f} s (the model's length)")
        x = x[:n]
    elif x.shape[0] < n:
        notices.append(f"padded with silence from {x.shape[0] / target_rate:.2f} s to {n / target_rate:.2f} s")
        x = np.pad(x, (0, n - x.shape[0]))
    return PreparedAudio(np.ascontiguousarray(x, dtype=np.float32), int(target_rate), notices,
                         original_rate=sr, channels=channels, original_seconds=n_in / sr)


def load_audio(path: str | os.PathLike, *, target_rate: int, n_samples: int, trim_onset: bool = True) -> PreparedAudio:
    """Read an audio file (any format libsndfile reads) and :func:`prepare_audio` it.

    Raises
    ------
    AudioError
        A missing or unreadable file, or audio that :func:`prepare_audio` refuses.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError(f"audio file {str(p)!r} does not exist")
    if p.is_dir():
        raise AudioError(f"{str(p)!r} is a folder; give an audio file (WAV, FLAC, OGG, AIFF)")
    try:
        data, sr = sf.read(str(p), dtype="float64", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioError(
            f"audio file {str(p)!r} cannot be read ({e}); give a WAV, FLAC, OGG or AIFF file"
        ) from None
    out = prepare_audio(data, sr, target_rate=target_rate, n_samples=n_samples, name=p.name, trim_onset=trim_onset)
    out.source = str(p)
    return out


# ============================================================================ pitch
@dataclass(frozen=True)
class PitchEstimate:
    """The fundamental of a target.

    Attributes
    ----------
    f0 : float
        Median f0 over the loud frames, Hz.
    midi : float
        ``69 + 12 log2(f0 / 440)``.
    spread : float
        Interquartile range of the frame f0s, semitones (large: unpitched or gliding).
    n_frames : int
        Loud frames the estimate used.
    """

    f0: float
    midi: float
    spread: float
    n_frames: int

    @property
    def stable(self) -> bool:
        """True when the frames agree within a semitone (a clear, steady pitch)."""
        return self.spread <= 1.0 and self.n_frames >= 3


def estimate_pitch(audio: np.ndarray, sample_rate: int, *, fmin: float = 30.0, fmax: float = 2200.0,
                   loud_db: float = -20.0) -> PitchEstimate:
    """Estimate the fundamental over the frames within ``loud_db`` of the loudest.

    Each loud frame's f0 is :func:`synth_probe.frontend.autocorrelation_pitch` (the package's one
    pitch estimator; a frame without a clear peak still gets its best lag, so an unpitched
    target shows as a wide spread); the estimate is their median.

    Parameters
    ----------
    audio : np.ndarray [shape=(n_samples,)]
    sample_rate : int
    fmin, fmax : float
        Search range, Hz.
    loud_db : float
        Frames quieter than this (dB re the loudest frame's RMS) are ignored.

    Returns
    -------
    PitchEstimate

    Raises
    ------
    AudioError
        No loud frame (silence).
    """
    x = check_audio(audio, sample_rate=sample_rate, min_samples=1, name="target")
    frame = 2048 if sample_rate <= 24000 else 4096
    while sample_rate / fmin >= frame - 2:
        frame *= 2
    hop = frame // 4
    if x.shape[-1] < frame:
        x = np.pad(x, (0, frame - x.shape[-1]))
    # centred frames, zero padding: frame j covers samples j*hop - frame/2 .. j*hop + frame/2
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, frame // 2), frame)[::hop]
    rms = np.sqrt((frames**2).mean(axis=-1))
    loud = rms >= rms.max() * 10 ** (loud_db / 20) if rms.max() > 0 else np.zeros(len(rms), bool)
    f0, _ = autocorrelation_pitch(frames[loud], sample_rate, fmin=fmin, fmax=fmax, use_max_if_no_peak=True)
    sel = f0[np.isfinite(f0)]
    if sel.size == 0:
        raise AudioError("no pitch could be measured: the target has no loud frames")
    semis = 69 + 12 * np.log2(sel / 440.0)
    q1, med, q3 = np.percentile(semis, [25, 50, 75])
    f = float(440.0 * 2 ** ((med - 69) / 12))
    return PitchEstimate(f, float(med), float(q3 - q1), int(sel.size))


def note_for_pitch(midi: float, note_range: tuple[int, int] = NOTE_RANGE) -> int:
    """The MIDI note closest to pitch ``midi`` (fractional note number).

    Raises
    ------
    AudioError
        The note lies outside ``note_range`` (inclusive).
    """
    if not math.isfinite(midi):
        raise AudioError(f"pitch {midi} is not a number")
    note = int(math.floor(midi + 0.5))
    lo, hi = note_range
    if not (lo <= note <= hi):
        f = 440.0 * 2 ** ((midi - 69) / 12)
        raise AudioError(
            f"the target's pitch ({f:.1f} Hz, MIDI note {note}) is out of range: notes {lo}..{hi} "
            f"({440 * 2 ** ((lo - 69) / 12):.0f}..{440 * 2 ** ((hi - 69) / 12):.0f} Hz) can be matched; "
            "pass --note to choose the render note yourself"
        )
    return note
