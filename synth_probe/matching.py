"""Sound matching: from a recording to a patch.

The pipeline of ``synth-probe match``:

1. :func:`load_audio` / :func:`prepare_audio` — read the target and make it what
   the model was trained on: mono, the model's sample rate and length, onset at
   the start. Every change is reported as a notice; audio that cannot be
   matched (unreadable, empty, non-finite, silent, clipped) raises
   :class:`~synth_probe.errors.AudioError`. :func:`prepare_audio` is the one place
   target audio is validated.
2. :func:`estimate_pitch` — the target's fundamental (``librosa.yin`` over the
   loud frames) and the MIDI note to render it with (:func:`note_for_pitch`).
3. :func:`predict_patch` — a trained model (``synth-probe train``) predicts the
   parameters it learned; the others keep the synth's defaults.
4. :func:`refine` — an optional local search from the prediction within a fixed
   number of renders: a hill climber (:func:`hill_climb`, the strongest classical
   matcher in the literature) or CMA-ES through Optuna (:func:`cmaes_search`).
   The start is the incumbent, so the result is never worse than the start.

Distances (:func:`audio_distances`) are those of :mod:`synth_probe.spectral`:
multi-resolution log-mel distance (dB; the search minimizes it), spectral
convergence and MFCC distance.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import AudioError, DatasetError, ModelFileError, ParameterValueError, RenderError
from synth_probe.fileio import read_json
from synth_probe.spectral import (
    DEFAULT_RESOLUTIONS,
    log_mel_l1,
    mfcc_distance,
    multi_resolution_log_mel,
    spectral_convergence,
)
from synth_probe.synths.base import RenderSettings, Synth

__all__ = [
    "PreparedAudio",
    "PitchEstimate",
    "MatchModel",
    "MatchObjective",
    "SearchResult",
    "MatchResult",
    "SEARCH_METHODS",
    "load_audio",
    "prepare_audio",
    "estimate_pitch",
    "note_for_pitch",
    "audio_distances",
    "load_match_model",
    "predict_patch",
    "hill_climb",
    "cmaes_search",
    "refine",
    "match",
    "write_match",
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
#: local search methods of :func:`refine`
SEARCH_METHODS = ("hill", "cmaes")


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

    This is the one function that checks target audio; :func:`load_audio` reads
    a file and calls it.

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
    try:
        x = np.asarray(audio, dtype=np.float64)
    except (TypeError, ValueError):
        raise AudioError(f"{name} must be numeric audio samples, got {type(audio).__name__}") from None
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise AudioError(f"{name}: sample rate {sample_rate!r} is not a number of Hz") from None
    if not (1000 <= sr <= 768000):
        raise AudioError(f"{name}: sample rate {sr} Hz is outside 1000..768000 Hz")
    if x.ndim == 0 or x.size == 0:
        raise AudioError(f"{name} holds no samples; give at least {0.05:g} s of sound")
    notices: list[str] = []
    channels = 1
    if x.ndim == 2:
        if x.shape[1] <= 16 and x.shape[1] <= x.shape[0]:
            pass  # (n, channels), as soundfile reads it
        elif x.shape[0] <= 16:
            x = x.T
        else:
            raise AudioError(f"{name} has shape {x.shape}; expected (n_samples, channels) with at most 16 channels")
        channels = int(x.shape[1])
    elif x.ndim > 2:
        raise AudioError(f"{name} has {x.ndim} axes (shape {x.shape}); expected mono or (n_samples, channels)")
    n_in = x.shape[0]
    if n_in < int(0.05 * sr):
        raise AudioError(f"{name} is {n_in / sr * 1000:.0f} ms long; at least 50 ms of sound are needed")
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.size - np.count_nonzero(finite))
        raise AudioError(f"{name} holds {bad} non-finite samples (NaN or inf); audio must be finite numbers")
    peak_all = float(np.max(np.abs(x)))
    if peak_all <= 10 ** (SILENCE_DB / 20):
        level = "-inf" if peak_all == 0 else f"{20 * math.log10(peak_all):.1f}"
        raise AudioError(
            f"{name} is silent: its peak is {level} dBFS; a target must peak above {SILENCE_DB:.0f} dBFS"
        )
    cols = x if x.ndim == 2 else x[:, None]
    for c in range(cols.shape[1]):
        peak_c = float(np.max(np.abs(cols[:, c])))
        n_clip = _clipped_samples(cols[:, c], peak_c)
        if n_clip > max(CLIP_RUN, CLIP_FRACTION * n_in):
            where = f" (channel {c + 1})" if cols.shape[1] > 1 else ""
            raise AudioError(
                f"{name} is clipped{where}: {n_clip} samples ({100 * n_clip / n_in:.2f} %) sit flat at the "
                f"peak ({20 * math.log10(peak_c):+.1f} dBFS); at most {100 * CLIP_FRACTION:.1f} % are allowed. "
                "Re-record or export it with less gain."
            )
    if x.ndim == 2:
        if channels > 1:
            notices.append(f"downmixed {channels} channels to mono (channel mean)")
        x = x.mean(axis=1)
    if sr != int(target_rate):
        import librosa

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
    import soundfile as sf

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
    """Estimate the fundamental with ``librosa.yin`` over the frames within ``loud_db`` of the loudest.

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
    """
    import librosa

    x = np.asarray(audio, dtype=np.float64)
    frame = 2048 if sample_rate <= 24000 else 4096
    while sample_rate / fmin >= frame - 2:
        frame *= 2
    hop = frame // 4
    if x.shape[0] < frame:
        x = np.pad(x, (0, frame - x.shape[0]))
    f0 = librosa.yin(x, fmin=fmin, fmax=fmax, sr=sample_rate, frame_length=frame, hop_length=hop, center=True)
    rms = librosa.feature.rms(y=x, frame_length=frame, hop_length=hop, center=True)[0]
    m = min(len(f0), len(rms))
    f0, rms = f0[:m], rms[:m]
    loud = rms >= rms.max() * 10 ** (loud_db / 20) if rms.max() > 0 else np.zeros(m, bool)
    sel = f0[loud & np.isfinite(f0)]
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


# ============================================================================ distances
def audio_distances(target: np.ndarray, estimate: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The three matching distances of ``estimate`` from ``target`` (equal-length mono clips).

    Returns
    -------
    dict
        ``log_mel`` (multi-resolution log-mel distance, dB), ``spectral_convergence``
        and ``mfcc`` (mean absolute MFCC difference).
    """
    from synth_probe.spectral import multi_resolution_log_mel_distance

    return {
        "log_mel": float(multi_resolution_log_mel_distance(target, estimate, sample_rate)),
        "spectral_convergence": float(spectral_convergence(target, estimate)),
        "mfcc": float(mfcc_distance(target, estimate, sample_rate)),
    }


DISTANCE_LABELS = {
    "log_mel": "multi-resolution log-mel distance (dB)",
    "spectral_convergence": "spectral convergence",
    "mfcc": "MFCC distance",
}


# ============================================================================ the model
@dataclass
class MatchModel:
    """A trained model plus what it was trained on.

    Attributes
    ----------
    pipeline : object
        Fitted Pipeline (features + estimator) or estimator; ``predict`` takes audio rows.
    columns : list of str
        The parameters it predicts.
    settings : RenderSettings
        Note, lengths and sample rate of its training renders.
    synth : str or None
        The synth it was trained for (name or plugin path); only a built-in name is ever
        opened from here (:func:`synth_probe.models.io.choose_synth`).
    synth_sha256 : str or None
        sha256 of the plugin binary it was trained with (None for built-in synths).
    path : str
    """

    pipeline: Any
    columns: list[str]
    settings: RenderSettings
    synth: str | None = None
    path: str = ""
    synth_sha256: str | None = None


def _settings_from(raw: Mapping[str, Any]) -> RenderSettings:
    keys = ("note", "velocity", "note_length", "render_length", "sample_rate")
    return RenderSettings(**{k: raw[k] for k in keys if k in raw})


def load_match_model(path: str | os.PathLike) -> MatchModel:
    """Load a model saved by ``synth-probe train`` (or :func:`synth_probe.models.save_model`).

    The render settings come from the header's ``metadata.render``, or else from the
    manifest of the dataset named in ``metadata.data``.

    Raises
    ------
    ModelFileError
        Not a saved model, or its render settings cannot be found.
    """
    from synth_probe.models.io import load_model, read_header

    header = read_header(path)
    meta = header.get("metadata") or {}
    raw = meta.get("render")
    if raw is None and meta.get("data"):
        manifest = Path(str(meta["data"])) / "manifest.json"
        try:
            raw = read_json(manifest, error=DatasetError, what="dataset manifest").get("render")
        except DatasetError:
            raw = None
    if not isinstance(raw, Mapping):
        raise ModelFileError(
            f"model {str(path)!r} does not record the render settings it was trained with (metadata.render), "
            f"and its dataset {meta.get('data')!r} cannot be read to find them"
        )
    pipeline = load_model(path)
    columns = list(header.get("columns") or meta.get("params") or [])
    if not columns:
        raise ModelFileError(f"model {str(path)!r} does not list the parameters it predicts")
    return MatchModel(pipeline, columns, _settings_from(raw), header.get("synth"), str(path),
                      header.get("synth_sha256"))


def predict_patch(model: MatchModel, audio: np.ndarray, synth: Synth) -> dict[str, float]:
    """Predict a full patch for one clip: the model's columns, the synth's defaults elsewhere.

    Parameters
    ----------
    model : MatchModel
    audio : np.ndarray [shape=(n_samples,)] or [shape=(n_clips, n_samples)]
        At the model's sample rate and length.
    synth : Synth

    Returns
    -------
    patch : dict of str to float, or list of such dicts for 2-D input
        Unit values, discrete parameters snapped to their choices.
    """
    x = np.asarray(audio, dtype=np.float32)
    single = x.ndim == 1
    rows = x[None, :] if single else x
    pred = model.pipeline.predict(rows)
    import pandas as pd

    frame = pred if isinstance(pred, pd.DataFrame) else pd.DataFrame(np.atleast_2d(pred), columns=model.columns)
    base = synth.default_patch()
    specs = {s.name: s for s in synth.specs}
    out = []
    for _, row in frame.iterrows():
        patch = dict(base)
        for c in model.columns:
            if c not in specs:
                from synth_probe.errors import UnknownParameterError

                raise UnknownParameterError(c, synth.param_names, synth=synth.name)
            v = float(np.clip(row[c], 0.0, 1.0))
            patch[c] = specs[c].quantize(v)
        out.append(patch)
    return out[0] if single else out


# ============================================================================ the search
class MatchObjective:
    """Distance of a patch's render from the target; counts renders, caches repeats.

    A patch whose render fails (:class:`~synth_probe.errors.RenderError`, e.g.
    non-finite audio) gets distance ``inf``, so a search never keeps it.

    Parameters
    ----------
    synth : Synth
    target : np.ndarray [shape=(n_samples,)]
    settings : RenderSettings
        ``settings.n_samples`` must equal the target's length.
    seed : int
        Render seed.
    """

    def __init__(self, synth: Synth, target: np.ndarray, settings: RenderSettings, seed: int = 0) -> None:
        t = np.asarray(target, dtype=np.float32)
        if t.ndim != 1 or t.shape[0] != settings.n_samples:
            raise AudioError(
                f"target has shape {t.shape}; the renders have {settings.n_samples} samples "
                f"({settings.render_length} s at {settings.sample_rate} Hz)"
            )
        self.synth = synth
        self.target = t
        self.settings = settings
        self.seed = int(seed)
        self.specs = list(synth.specs)
        self._target_mel = multi_resolution_log_mel(t, settings.sample_rate, resolutions=DEFAULT_RESOLUTIONS)
        self.n_renders = 0
        self.n_failed = 0
        self._cache: dict[bytes, float] = {}
        self._audio: dict[bytes, np.ndarray] = {}
        self.last_audio: np.ndarray | None = None

    def snap(self, vec: np.ndarray) -> np.ndarray:
        """Clip to [0, 1] and snap discrete parameters to their choices."""
        v = np.clip(np.asarray(vec, dtype=np.float64), 0.0, 1.0)
        return np.array([s.quantize(x) for s, x in zip(self.specs, v)], dtype=np.float64)

    def render(self, vec: np.ndarray) -> np.ndarray:
        """Render a (snapped) vector; counts as one render."""
        self.n_renders += 1
        audio = self.synth.render_vector(self.snap(vec), self.settings, seed=self.seed)
        self.last_audio = audio
        return audio

    def distance_of(self, audio: np.ndarray) -> float:
        """Multi-resolution log-mel distance of ``audio`` from the target (dB)."""
        mel = multi_resolution_log_mel(audio, self.settings.sample_rate, resolutions=DEFAULT_RESOLUTIONS)
        return float(np.mean([log_mel_l1(a, b) for a, b in zip(self._target_mel, mel)]))

    def __call__(self, vec: np.ndarray) -> float:
        v = self.snap(vec)
        key = v.tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        try:
            audio = self.render(v)
        except RenderError:
            # a patch the synth cannot render (e.g. a filter that blows up to NaN) is infinitely far
            self.n_failed += 1
            audio = np.zeros(self.settings.n_samples, dtype=np.float32)
            d = math.inf
        else:
            d = self.distance_of(audio)
        self._cache[key] = d
        self._audio[key] = audio
        return d

    def audio_for(self, vec: np.ndarray) -> np.ndarray:
        """The render that was measured for ``vec`` (rendered now if it never was).

        A plugin's renders of one patch can differ (free-running oscillators, effect
        tails), so the audio a search kept is the one its distance belongs to.
        """
        v = self.snap(vec)
        key = v.tobytes()
        if key not in self._audio:
            self(v)
        return self._audio[key]


@dataclass
class SearchResult:
    """What a local search found.

    Attributes
    ----------
    vector : np.ndarray [shape=(n_params,)]
        The best unit vector (the start if nothing beat it).
    distance, start_distance : float
        Log-mel distance (dB) of the result and of the start.
    n_renders : int
        Renders the search made (the start's own render not counted).
    history : list of float
        Best distance after each render of the search.
    method : str
    seconds : float
    """

    vector: np.ndarray
    distance: float
    start_distance: float
    n_renders: int
    history: list[float]
    method: str
    seconds: float = 0.0

    @property
    def improvement(self) -> float:
        return self.start_distance - self.distance


def _free_indices(specs: Sequence[Any], free: Sequence[str] | None) -> np.ndarray:
    if free is None:
        return np.arange(len(specs))
    names = [s.name for s in specs]
    idx = []
    for n in free:
        if n not in names:
            from synth_probe.errors import UnknownParameterError

            raise UnknownParameterError(n, names)
        idx.append(names.index(n))
    if not idx:
        raise ParameterValueError("the search needs at least one free parameter")
    return np.array(sorted(set(idx)))


def hill_climb(
    objective: Callable[[np.ndarray], float],
    start: np.ndarray,
    budget: int,
    *,
    specs: Sequence[Any],
    free: Sequence[str] | None = None,
    seed: int = 0,
    sigma: float = 0.15,
    start_distance: float | None = None,
) -> SearchResult:
    """Stochastic hill climbing in unit space within ``budget`` renders.

    Each step mutates one to three free parameters of the incumbent (a Gaussian
    step of width ``sigma`` for continuous ones, another choice for discrete ones)
    and keeps the candidate only if it is closer to the target. The step width
    grows after a success and shrinks after a failure (the 1/5th rule), and a
    failed continuous step is tried once in the opposite direction.

    Parameters
    ----------
    objective : callable
        Unit vector -> distance (renders once per new vector).
    start : np.ndarray [shape=(n_params,)]
        The starting patch; it stays the incumbent until a candidate beats it.
    budget : int
        Renders the search may make (the start's render not counted).
    specs : sequence of ParamSpec
    free : sequence of str, optional
        Parameters the search may change (default: all).
    seed : int
    sigma : float
        Initial step width (unit values).
    start_distance : float, optional
        The start's distance if already known (saves a render).

    Returns
    -------
    SearchResult
    """
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    budget = int(budget)
    if budget < 0:
        raise ParameterValueError(f"the refine budget must be >= 0 renders, got {budget}")
    idx = _free_indices(specs, free)
    best = np.clip(np.asarray(start, dtype=np.float64).copy(), 0.0, 1.0)
    d_best = float(objective(best)) if start_distance is None else float(start_distance)
    d_start = d_best
    history: list[float] = []
    step = float(sigma)
    mirror: np.ndarray | None = None
    renders = 0
    for _ in range(budget * 4):  # a candidate seen before costs no render; stop at the render budget
        if renders >= budget:
            break
        if mirror is not None:
            cand, mirror = mirror, None
            mirrored = True
        else:
            mirrored = False
            k = min(len(idx), 1 + int(rng.geometric(0.55)) - 1)
            chosen = rng.choice(idx, size=max(1, k), replace=False)
            cand = best.copy()
            continuous_only = True
            for j in chosen:
                s = specs[j]
                if s.is_discrete and s.n_choices > 1:
                    cur = s.choice_index(best[j])
                    other = [c for c in range(s.n_choices) if c != cur]
                    cand[j] = s.choice_values[int(rng.choice(other))]
                    continuous_only = False
                else:
                    cand[j] = float(np.clip(best[j] + rng.normal(0.0, step), 0.0, 1.0))
        before = getattr(objective, "n_renders", None)
        d = float(objective(cand))
        rendered = before is None or getattr(objective, "n_renders") > before
        if d < d_best:
            best, d_best = cand, d
            step = min(step * 1.5, 0.5)
        else:
            step = max(step * 0.9, 0.01)
            if not mirrored and continuous_only:
                m = np.clip(2 * best - cand, 0.0, 1.0)
                if np.any(m != best):
                    mirror = m
        if rendered:
            renders += 1
            history.append(d_best)
    return SearchResult(best, d_best, d_start, renders, history, "hill", time.perf_counter() - t0)


def cmaes_search(
    objective: Callable[[np.ndarray], float],
    start: np.ndarray,
    budget: int,
    *,
    specs: Sequence[Any],
    free: Sequence[str] | None = None,
    seed: int = 0,
    sigma: float = 0.15,
    popsize: int | None = 8,
    start_distance: float | None = None,
) -> SearchResult:
    """CMA-ES from ``start`` through Optuna's ``CmaEsSampler``, within ``budget`` renders.

    Every free parameter is a float in [0, 1] to CMA-ES; discrete ones are snapped
    to their choices when rendered. The start stays the incumbent.

    Parameters
    ----------
    popsize : int or None
        Population per generation (None: CMA-ES's default ``4 + 3 ln n``, which
        leaves few generations in a small budget).

    Other parameters as :func:`hill_climb`.

    Returns
    -------
    SearchResult
    """
    import optuna
    from optuna.distributions import FloatDistribution

    t0 = time.perf_counter()
    budget = int(budget)
    if budget < 0:
        raise ParameterValueError(f"the refine budget must be >= 0 renders, got {budget}")
    idx = _free_indices(specs, free)
    x0 = np.clip(np.asarray(start, dtype=np.float64).copy(), 0.0, 1.0)
    d_start = float(objective(x0)) if start_distance is None else float(start_distance)
    best, d_best = x0.copy(), d_start
    history: list[float] = []
    if budget == 0:
        return SearchResult(best, d_best, d_start, 0, history, "cmaes", time.perf_counter() - t0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"p{j}" for j in idx]
    import warnings

    with warnings.catch_warnings():
        # Optuna 5 marks x0/sigma0 as deprecated (removal planned for v6) but still honours them
        warnings.simplefilter("ignore", FutureWarning)
        sampler = optuna.samplers.CmaEsSampler(
            x0={n: float(x0[j]) for n, j in zip(names, idx)}, sigma0=float(sigma), seed=int(seed),
            n_startup_trials=0, popsize=popsize, warn_independent_sampling=False,
        )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    dists = {n: FloatDistribution(0.0, 1.0) for n in names}
    calls = 0
    for _ in range(budget * 4):  # cached repeats do not render; stop at the render budget
        trial = study.ask(dists)
        cand = x0.copy()
        for n, j in zip(names, idx):
            cand[j] = trial.params[n]
        before = getattr(objective, "n_renders", None)
        d = float(objective(cand))
        study.tell(trial, d)
        rendered = before is None or getattr(objective, "n_renders") > before
        if rendered:
            calls += 1
        if d < d_best:
            best, d_best = np.asarray(objective.snap(cand) if hasattr(objective, "snap") else cand), d
        if rendered:
            history.append(d_best)
        if calls >= budget:
            break
    return SearchResult(best, d_best, d_start, calls, history, "cmaes", time.perf_counter() - t0)


def refine(
    objective: MatchObjective,
    start: np.ndarray,
    budget: int,
    *,
    method: str = "hill",
    free: Sequence[str] | None = None,
    seed: int = 0,
    start_distance: float | None = None,
) -> SearchResult:
    """Local search from ``start`` with ``method`` (one of :data:`SEARCH_METHODS`) within ``budget`` renders.

    The result is never worse than the start: the start is the incumbent.
    """
    if method not in SEARCH_METHODS:
        raise ParameterValueError(f"unknown search method {method!r}; choose from {', '.join(SEARCH_METHODS)}")
    fn = hill_climb if method == "hill" else cmaes_search
    return fn(objective, start, budget, specs=objective.specs, free=free, seed=seed, start_distance=start_distance)


# ============================================================================ the whole match
@dataclass
class MatchResult:
    """The outcome of :func:`match`.

    Attributes
    ----------
    patch : dict of str to float
        The final patch (unit values).
    start_patch : dict of str to float
        The model's prediction (or the synth's defaults without a model).
    audio, target : np.ndarray [shape=(n_samples,)]
        The final patch's render and the prepared target.
    distances, start_distances : dict of str to float
        :func:`audio_distances` of the final and the start patch.
    settings : RenderSettings
        How the patches were rendered (the note chosen for the target's pitch).
    search : SearchResult or None
    notices : list of str
    pitch : PitchEstimate or None
    """

    patch: dict[str, float]
    start_patch: dict[str, float]
    audio: np.ndarray
    target: np.ndarray
    distances: dict[str, float]
    start_distances: dict[str, float]
    settings: RenderSettings
    search: SearchResult | None = None
    notices: list[str] = field(default_factory=list)
    pitch: PitchEstimate | None = None
    start_audio: np.ndarray | None = None


def match(
    target: PreparedAudio,
    synth: Synth,
    model: MatchModel | None,
    *,
    settings: RenderSettings | None = None,
    note: int | None = None,
    refine_budget: int = 0,
    method: str = "hill",
    seed: int = 0,
    estimate_note: bool = True,
) -> MatchResult:
    """Match a prepared target: predict, render, optionally refine, measure.

    Parameters
    ----------
    target : PreparedAudio
        At the model's sample rate and length.
    synth : Synth
    model : MatchModel or None
        None starts from the synth's default patch.
    settings : RenderSettings, optional
        Default: the model's training settings.
    note : int, optional
        Render note; by default estimated from the target's pitch (``estimate_note``)
        or the training note.
    refine_budget : int
        Renders for the local search (0: model only).
    method : {"hill", "cmaes"}
    seed : int

    Returns
    -------
    MatchResult
    """
    if settings is None:
        if model is None:
            raise ParameterValueError("match needs render settings when no model is given")
        settings = model.settings
    notices = list(target.notices)
    if target.sample_rate != settings.sample_rate or target.audio.shape[0] != settings.n_samples:
        raise AudioError(
            f"target is {target.audio.shape[0]} samples at {target.sample_rate} Hz; the renders are "
            f"{settings.n_samples} samples at {settings.sample_rate} Hz — prepare it with prepare_audio"
        )
    pitch = None
    if note is None and estimate_note:
        pitch = estimate_pitch(target.audio, target.sample_rate)
        if pitch.stable:
            note = note_for_pitch(pitch.midi)
            notices.append(f"pitch {pitch.f0:.1f} Hz (MIDI {pitch.midi:.2f}): rendering note {note}")
        else:
            notices.append(
                f"no steady pitch (frames spread over {pitch.spread:.1f} semitones); rendering the training "
                f"note {settings.note}"
            )
    if note is not None:
        note = int(note)
        if not (0 <= note <= 127):
            raise ParameterValueError(f"note must be a MIDI note 0..127, got {note}")
        if note != settings.note:
            settings = RenderSettings(note, settings.velocity, settings.note_length, settings.render_length,
                                      settings.sample_rate)
    if model is not None:
        model_input = target.audio
        shift = (model.settings.note - settings.note)
        if shift:
            import librosa

            model_input = librosa.effects.pitch_shift(target.audio.astype(np.float64), sr=target.sample_rate,
                                                      n_steps=float(shift)).astype(np.float32)
            notices.append(f"the model saw the target shifted {shift:+d} semitones to its training note "
                           f"{model.settings.note}")
        start_patch = predict_patch(model, model_input, synth)
    else:
        start_patch = synth.default_patch()
    objective = MatchObjective(synth, target.audio, settings, seed=seed)
    start_vec = objective.snap(synth.patch_vector(start_patch))
    d0 = objective(start_vec)
    start_audio = objective.audio_for(start_vec)
    start_distances = audio_distances(target.audio, start_audio, settings.sample_rate)
    search = None
    final_vec, final_audio, final_d = start_vec, start_audio, start_distances
    if refine_budget and int(refine_budget) > 0:
        search = refine(objective, start_vec, int(refine_budget), method=method, seed=seed, start_distance=d0)
        if search.distance < d0:
            final_vec = search.vector
            final_audio = objective.audio_for(final_vec)
            final_d = audio_distances(target.audio, final_audio, settings.sample_rate)
    patch = {s.name: float(v) for s, v in zip(synth.specs, objective.snap(final_vec))}
    start_patch = {s.name: float(v) for s, v in zip(synth.specs, start_vec)}
    return MatchResult(patch, start_patch, final_audio, target.audio, final_d, start_distances, settings,
                       search, notices, pitch, start_audio)


def _write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    # 32-bit float, like `synth-probe render`: a render above full scale (the real TAL-NoiseMaker and
    # its emulation have no limiter) keeps its true values instead of being clipped
    sf.write(str(path), np.asarray(audio, dtype=np.float32), int(sample_rate), subtype="FLOAT")


def write_match(result: MatchResult, synth: Synth, out: str | os.PathLike, *, extra: Mapping[str, Any] | None = None
                ) -> dict[str, Path]:
    """Write a match into folder ``out``.

    Files: ``patch.json`` (``params``: unit values, loadable by ``synth-probe render
    --patch``; ``display``: physical values; distances, settings, notices),
    ``render.wav`` (the final patch), ``start.wav`` (the model's patch, when a search
    replaced it), ``target.wav`` (the prepared target) and, for amsynth,
    ``patch.amSynth.bank`` (loadable by amsynth).

    Returns
    -------
    dict of str to Path
    """
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    sr = result.settings.sample_rate
    specs = {s.name: s for s in synth.specs}
    doc: dict[str, Any] = {
        "synth": synth.name,
        "settings": result.settings.to_dict(),
        "params": result.patch,
        "display": {k: specs[k].display(v) for k, v in result.patch.items()},
        "distances": result.distances,
        "model_distances": result.start_distances,
        "model_params": result.start_patch,
        "notices": result.notices,
    }
    if result.pitch is not None:
        doc["pitch"] = {"f0_hz": result.pitch.f0, "midi": result.pitch.midi, "spread_semitones": result.pitch.spread}
    if result.search is not None:
        s = result.search
        doc["refine"] = {"method": s.method, "renders": s.n_renders, "start_log_mel": s.start_distance,
                         "best_log_mel": s.distance, "seconds": round(s.seconds, 2)}
    if extra:
        doc.update(extra)
    paths = {"patch": d / "patch.json", "render": d / "render.wav", "target": d / "target.wav"}
    paths["patch"].write_text(json.dumps(doc, indent=2), encoding="utf-8")
    _write_wav(paths["render"], result.audio, sr)
    _write_wav(paths["target"], result.target, sr)
    if result.start_audio is not None and result.patch != result.start_patch:
        paths["start"] = d / "start.wav"
        _write_wav(paths["start"], result.start_audio, sr)
    if set(specs) <= set(_amsynth_names()):
        from synth_probe.presets.amsynth import unit_to_preset, write_bank

        paths["bank"] = write_bank([unit_to_preset(result.patch, name="synth-probe match")], d / "patch.amSynth.bank")
    return paths


def _amsynth_names() -> tuple[str, ...]:
    from synth_probe.presets.amsynth import AMSYNTH_NAMES

    return AMSYNTH_NAMES
