"""Handcrafted audio descriptors as a scikit-learn transformer.

Each clip (one rendered note) becomes a fixed vector of descriptors chosen to
expose what synth parameters change: spectral shape (filter, waveform), MFCC
statistics (timbre), the RMS envelope (amp ADSR), pitch and harmonicity (tuning,
noise), and the modulation spectrum of loudness and brightness (LFO rate and
depth).
"""
from __future__ import annotations

from typing import Any

import librosa
import numpy as np

from synth_probe.errors import ParameterValueError
from synth_probe.features.cache import cached_features
from synth_probe.features.spectrogram import AudioRowsTransformer, batched, cache_params, check_positive_ints
from synth_probe.frontend import autocorrelation_pitch, feature_mel_power, feature_stft_magnitude

__all__ = [
    "HandcraftedFeatures", "MOD_BANDS", "ONSET_THRESHOLDS_DB", "ONSET_TIMES_S", "DESCRIPTORS_VERSION",
    "uses_handcrafted",
]

#: the version of the descriptor set; raise it whenever a column is added, removed or computed
#: differently. Feature caches are keyed by it, and a saved model made with another version is
#: refused on load (its estimator expects other columns). 2: the onset descriptors.
DESCRIPTORS_VERSION = 2

#: modulation-frequency bands (Hz) of the loudness and brightness modulation spectra
MOD_BANDS = ((0.25, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0))
#: levels (dB relative to the held note's peak) at which the onset descriptors time the first crossing
ONSET_THRESHOLDS_DB = (-60.0, -40.0, -30.0, -20.0, -12.0, -6.0, -3.0, -1.0, -0.3)
#: times (s from the start) at which the onset descriptors read the level relative to that peak
ONSET_TIMES_S = (0.002, 0.004, 0.008, 0.016, 0.03, 0.06, 0.12, 0.25, 0.5, 0.9)
#: window of the onset level (s); windows overlap by half
_ONSET_WINDOW_S = 0.0029
_EPS = 1e-10
_CONTRAST_BANDS = 6


def _feature_names(n_mfcc: int) -> list[str]:
    names = []
    for d in ("centroid", "bandwidth", "rolloff", "flatness", "zcr"):
        names += [f"{d}_mean", f"{d}_std"]
    names += [f"contrast_{i}" for i in range(_CONTRAST_BANDS + 1)]
    names += [f"mfcc{i}_mean" for i in range(n_mfcc)] + [f"mfcc{i}_std" for i in range(n_mfcc)]
    names += [
        "peak_db", "mean_db", "attack_time", "peak_time", "decay_slope", "sustain_db",
        "release_time", "tail_db", "offset_drop_db",
    ]
    names += [f"onset_t_{-thr:g}dB" for thr in ONSET_THRESHOLDS_DB] + ["onset_peak_t"]
    names += [f"onset_level_{1000 * t:g}ms" for t in ONSET_TIMES_S]
    names += ["f0_log2", "f0_std_semitones", "harmonicity", "noisiness"]
    for sig in ("loudness", "brightness"):
        names += [f"{sig}_mod_{lo:g}_{hi:g}Hz" for lo, hi in MOD_BANDS]
        names += [f"{sig}_mod_peak_hz", f"{sig}_mod_depth"]
    return names


class HandcraftedFeatures(AudioRowsTransformer):
    """Descriptors of one rendered note per row.

    Parameters
    ----------
    sample_rate : int, default=22050
        Sample rate of the audio rows (Hz).
    note_length : float or None, default=None
        Seconds the note is held (note-off time). None: taken as 2/3 of the clip
        (the default render: 1.0 s note in 1.5 s).
    n_fft : int, default=1024
    hop_length : int, default=256
    n_mfcc : int, default=13
    fmin_f0, fmax_f0 : float, default=40.0, 2000.0
        Pitch search range (Hz) of the autocorrelation f0 estimate.
    n_jobs : int or None, default=None
        joblib workers over batches of 64 clips.
    cache_dir : str or None, default=None
        Cache results on disk as ``.npy`` arrays (never pickles), keyed by a hash of the audio,
        the parameters and :data:`DESCRIPTORS_VERSION`. A saved model never keeps it.

    Attributes
    ----------
    n_features_in_ : int
        Samples per audio row.
    feature_names_ : list of str
        Name of each output column.

    Notes
    -----
    Output columns, in order (``n_mfcc = k``): mean and std over frames of the
    spectral centroid, bandwidth, 85 % roll-off (all in log2 Hz), flatness and
    zero-crossing rate; spectral contrast (7 bands, mean); MFCC mean and std
    (2k); RMS-envelope descriptors (dB / seconds): peak and mean level, attack
    time (start to 90 % of the peak amplitude), peak time, decay slope (dB/s,
    least squares from the peak to note-off), sustain level (last 20 % before
    note-off, relative to the peak), release time (note-off until 40 dB below
    the level at note-off), tail level and the drop across note-off; the onset
    at a finer grain than the frames (about 3 ms windows, half-overlapping, up
    to note-off): the first time the level comes within each of
    :data:`ONSET_THRESHOLDS_DB` of its peak and the time of the peak (as
    log(seconds + 1 ms)), and the level relative to the peak at each of
    :data:`ONSET_TIMES_S` (dB; the last window before note-off for later
    times) — the frame envelope cannot tell a 3 ms attack from a 10 ms one; pitch
    (log2 of the median autocorrelation f0, its spread in semitones),
    harmonicity (mean peak of the normalized autocorrelation) and noisiness
    (1 - harmonicity, weighted by flatness); and for the loudness (frame dB) and
    brightness (log2 centroid) trajectories while the note is held: the
    modulation energy in the bands of :data:`MOD_BANDS`, the peak modulation
    frequency and the depth (std). ``feature_names_`` lists them.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.arange(11025) / 22050
    >>> X = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 440 * t)]).astype(np.float32)
    >>> h = HandcraftedFeatures(note_length=0.4).fit(X)
    >>> j = h.feature_names_.index("f0_log2")
    >>> F = h.transform(X); F.shape[0], round(float(2 ** F[1, j] / 2 ** F[0, j]), 2)
    (2, 2.0)
    """

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        note_length: float | None = None,
        n_fft: int = 1024,
        hop_length: int = 256,
        n_mfcc: int = 13,
        fmin_f0: float = 40.0,
        fmax_f0: float = 2000.0,
        n_jobs: int | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.sample_rate = sample_rate
        self.note_length = note_length
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.n_mfcc = n_mfcc
        self.fmin_f0 = fmin_f0
        self.fmax_f0 = fmax_f0
        self.n_jobs = n_jobs
        self.cache_dir = cache_dir

    def _check_params(self) -> None:
        check_positive_ints(self, ("sample_rate", "n_fft", "hop_length", "n_mfcc"))
        if self.note_length is not None and not (float(self.note_length) >= 0):
            raise ParameterValueError(f"note_length must be None or >= 0 s, got {self.note_length!r}")
        if not (0 < self.fmin_f0 < self.fmax_f0 < self.sample_rate / 2):
            raise ParameterValueError(
                f"need 0 < fmin_f0 < fmax_f0 < sample_rate/2, got {self.fmin_f0}, {self.fmax_f0}, "
                f"sample_rate={self.sample_rate}"
            )

    def _fit_width(self, n_samples: int) -> None:
        self.feature_names_ = _feature_names(self.n_mfcc)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(_feature_names(self.n_mfcc), dtype=object)

    def _transform_rows(self, X: np.ndarray) -> np.ndarray:
        """Descriptors of checked audio rows ``X`` (n_clips, n_samples).

        Returns
        -------
        F : np.ndarray [shape=(n_clips, n_descriptors), dtype=float32]
            ``n_descriptors = 66 + 2 * n_mfcc``; finite values.
        """
        key = {**cache_params(self), "descriptors_version": DESCRIPTORS_VERSION}
        return cached_features(self.cache_dir, "handcrafted", X, key, lambda: _handcrafted_all(
            X, int(self.sample_rate), self.note_length, int(self.n_fft), int(self.hop_length),
            int(self.n_mfcc), float(self.fmin_f0), float(self.fmax_f0), self.n_jobs,
        ))


def uses_handcrafted(step: Any) -> bool:
    """Whether a transformer is, or contains (Pipeline, FeatureUnion), a :class:`HandcraftedFeatures`."""
    if isinstance(step, HandcraftedFeatures):
        return True
    parts = getattr(step, "steps", None) or getattr(step, "transformer_list", None) or []
    return any(uses_handcrafted(part) for _, part in parts)


def _handcrafted_all(X, sr, note_length, n_fft, hop, n_mfcc, fmin_f0, fmax_f0, n_jobs):
    def one(batch):
        return _handcrafted_batch(batch, sr, note_length, n_fft, hop, n_mfcc, fmin_f0, fmax_f0)

    return batched(one, X, n_jobs)


def _spectral_contrast(S: np.ndarray, freqs: np.ndarray, fmin: float = 100.0, quantile: float = 0.02) -> np.ndarray:
    """Peak-to-valley level (dB) per octave band and frame: ``(n, bands + 1, t)``.

    Band 0 is below ``fmin``, band ``k`` spans ``fmin·2^(k-1) .. fmin·2^k``, the
    last band runs to Nyquist. Peak and valley are the means of the top and
    bottom ``quantile`` of the band's magnitudes; a band without bins gives 0.
    """
    edges = [0.0] + [fmin * 2.0**k for k in range(_CONTRAST_BANDS)] + [np.inf]
    n, _, t = S.shape
    out = np.zeros((n, _CONTRAST_BANDS + 1, t))
    for b in range(_CONTRAST_BANDS + 1):
        sel = (freqs >= edges[b]) & (freqs < edges[b + 1])
        if not sel.any():
            continue
        band = np.sort(S[:, sel, :], axis=1)
        q = max(1, int(round(quantile * band.shape[1])))
        peak = band[:, -q:, :].mean(axis=1)
        valley = band[:, :q, :].mean(axis=1)
        out[:, b, :] = 20.0 * (np.log10(peak + 1e-8) - np.log10(valley + 1e-8))
    return out


def _onset_descriptors(X: np.ndarray, sr: int, off: float) -> np.ndarray:
    """Crossing times, peak time and levels of the onset (see the class notes): ``(n, 20)``."""
    win = max(8, int(round(_ONSET_WINDOW_S * sr)))
    hop = max(1, win // 2)
    x = X.astype(np.float64)
    end = min(max(int(round(off * sr)), win), x.shape[1])
    if end < win:  # a clip shorter than one window: pad it with silence
        x = np.pad(x, ((0, 0), (0, win - end)))
        end = win
    energy = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x[:, :end] ** 2, axis=1)], axis=1)
    starts = np.arange(0, end - win + 1, hop)
    level = 10.0 * np.log10((energy[:, starts + win] - energy[:, starts]) / win + 1e-14)  # floor -140 dB
    rel = level - level.max(axis=1, keepdims=True)
    centres = (starts + win / 2.0) / sr
    out = [np.log(centres[np.argmax(rel >= thr, axis=1)] + 1e-3) for thr in ONSET_THRESHOLDS_DB]
    out.append(np.log(centres[np.argmax(rel, axis=1)] + 1e-3))
    for t in ONSET_TIMES_S:
        out.append(rel[:, min(int(t * sr / hop), len(starts) - 1)])
    return np.stack(out, axis=1)


def _envelope_descriptors(env_db: np.ndarray, rms: np.ndarray, t_frames: np.ndarray, off_idx: int,
                          frame_rate: float) -> np.ndarray:
    """Peak and mean level, attack, peak time, decay slope, sustain, release, tail, drop: ``(n, 9)``.

    ``env_db`` and ``rms`` are ``(n, n_frames)`` frame levels (dB, linear); see the class notes.
    """
    n, nfr = rms.shape
    env_cols = np.zeros((n, 9))
    for i in range(n):
        e = env_db[i]
        a = rms[i]
        pk = int(np.argmax(a[: max(off_idx, 1)]))
        peak_db = e[pk]
        thr = 0.9 * a[pk]
        attack = t_frames[int(np.argmax(a >= thr))] if a[pk] > 0 else 0.0
        seg = slice(pk, max(off_idx, pk + 1))
        if seg.stop - seg.start >= 3:
            slope = np.polyfit(t_frames[seg], e[seg], 1)[0]
        else:
            slope = 0.0
        sus_lo = max(pk, off_idx - max(1, int(0.2 * off_idx)))
        sustain = e[sus_lo : max(off_idx, sus_lo + 1)].mean() - peak_db
        lvl_off = e[min(off_idx, nfr - 1)]
        after = e[off_idx:]
        below = np.nonzero(after <= lvl_off - 40.0)[0]
        release = (below[0] if len(below) else len(after)) / frame_rate
        tail = after[len(after) // 2 :].mean() - peak_db if len(after) else 0.0
        drop = e[max(off_idx - 2, 0)] - (after[min(3, len(after) - 1)] if len(after) else e[-1])
        env_cols[i] = [peak_db, e.mean(), attack, t_frames[pk], slope, sustain, release, tail, drop]
    return env_cols


def _pitch_descriptors(X: np.ndarray, sr: int, off: float, n_samples: int, fmin_f0: float, fmax_f0: float,
                       flatness_mean: np.ndarray) -> np.ndarray:
    """log2 f0, its spread (semitones), harmonicity and noisiness of each row: ``(n, 4)``.

    :func:`~synth_probe.frontend.autocorrelation_pitch` of up to three 2048-sample windows
    before note-off ``off`` (s); ``flatness_mean`` ``(n,)`` weights the noisiness.
    """
    win = min(2048, n_samples)
    held_end = max(int(off * sr), win)
    starts = np.linspace(0, max(held_end - win, 0), 4).astype(int)[1:] if held_end > win else np.array([0])
    segs = np.stack([X[:, s0 : s0 + win] for s0 in starts], axis=1).astype(np.float64)  # (n, windows, win)
    centred = segs - segs.mean(axis=2, keepdims=True)
    loud = (centred**2).sum(axis=2) >= 1e-8
    f0, clarity = autocorrelation_pitch(segs.reshape(-1, win), sr, fmin=fmin_f0, fmax=fmax_f0, peak_ratio=0.8,
                                        use_max_if_no_peak=True)
    f0, clarity = f0.reshape(loud.shape), clarity.reshape(loud.shape)
    n = len(X)
    f0_cols = np.zeros((n, 4))
    for i in range(n):
        ok = loud[i] & np.isfinite(f0[i])
        if ok.any():
            lf = np.log2(f0[i][ok])
            harm = float(np.mean(clarity[i][ok]))
            f0_cols[i] = [np.median(lf), 12 * np.std(lf), harm, (1 - harm) * flatness_mean[i] ** 0.5]
        else:
            f0_cols[i] = [np.log2(fmin_f0), 0.0, 0.0, 1.0]
    return f0_cols


def _handcrafted_batch(X: np.ndarray, sr: int, note_length: float | None, n_fft: int, hop: int, n_mfcc: int,
                       fmin_f0: float, fmax_f0: float) -> np.ndarray:
    """Descriptors of audio rows ``(n, n_samples)``: ``(n, 66 + 2 * n_mfcc)`` float32, finite (see the class notes)."""
    n, n_samples = X.shape
    if n_samples < n_fft:
        X = np.pad(X, ((0, 0), (0, n_fft - n_samples)))
    S = feature_stft_magnitude(X, n_fft, hop).astype(np.float64)  # (n, f, t)
    P = S**2
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)
    frame_energy = P.sum(axis=1) + _EPS  # (n, t)
    w = frame_energy / frame_energy.sum(axis=1, keepdims=True)  # energy weights over time

    def wstats(x):  # energy-weighted mean and std over frames
        m = (w * x).sum(axis=1)
        s = np.sqrt(np.maximum((w * (x - m[:, None]) ** 2).sum(axis=1), 0))
        return m, s

    Pn = P / frame_energy[:, None, :]
    centroid = (freqs[None, :, None] * Pn).sum(axis=1)
    bandwidth = np.sqrt((((freqs[None, :, None] - centroid[:, None, :]) ** 2) * Pn).sum(axis=1))
    cum = np.cumsum(Pn, axis=1)
    rolloff = freqs[np.argmax(cum >= 0.85, axis=1)]
    flatness = np.exp(np.mean(np.log(P + _EPS), axis=1)) / (np.mean(P, axis=1) + _EPS)
    zc = np.abs(np.diff(np.signbit(X[:, :n_samples]).astype(np.int8), axis=1))
    nfr = S.shape[2]
    zcr = np.stack(
        [seg.mean(axis=1) for seg in np.array_split(zc, nfr, axis=1)], axis=1
    ) if zc.shape[1] >= nfr else np.repeat(zc.mean(axis=1, keepdims=True), nfr, axis=1)

    cols = []
    for x in (np.log2(centroid + 1.0), np.log2(bandwidth + 1.0), np.log2(rolloff + 1.0), flatness, zcr):
        m, s = wstats(x)
        cols += [m, s]
    contrast = _spectral_contrast(S, freqs)
    cols += list(np.moveaxis((w[:, None, :] * contrast).sum(axis=2), 1, 0))
    mel = feature_mel_power(P, sr, 64)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None), n_mfcc=n_mfcc)
    cols += list(np.moveaxis(mfcc.mean(axis=2), 1, 0)) + list(np.moveaxis(mfcc.std(axis=2), 1, 0))

    # RMS envelope (frame rate sr/hop)
    frame_rate = sr / hop
    rms = np.sqrt(np.maximum(2.0 * (S**2).sum(axis=1) / (n_fft * n_fft * 0.375 / 0.5), 0.0))  # ~ RMS (Hann)
    env_db = 20 * np.log10(rms + 1e-5)  # floor -100 dB
    t_frames = np.arange(nfr) / frame_rate
    clip_len = n_samples / sr
    off = (2.0 / 3.0) * clip_len if note_length is None else min(float(note_length), clip_len)
    off_idx = int(np.clip(round(off * frame_rate), 1, nfr - 1)) if nfr > 1 else 0
    env_cols = _envelope_descriptors(env_db, rms, t_frames, off_idx, frame_rate)
    cols += list(env_cols.T)
    cols += list(_onset_descriptors(X[:, :n_samples], sr, off).T)

    # f0 and harmonicity: the autocorrelation pitch of a few windows while the note is held
    f0_cols = _pitch_descriptors(X, sr, off, n_samples, fmin_f0, fmax_f0, cols[6])
    cols += list(f0_cols.T)

    # modulation spectra of loudness and brightness while the note is held
    mod_cols = []
    start = min(int(0.1 * frame_rate), max(off_idx - 4, 0))
    held = slice(start, max(off_idx, start + 4))
    for traj in (env_db, np.log2(centroid + 1.0)):
        x = traj[:, held]
        tt = np.arange(x.shape[1])
        if x.shape[1] >= 3:  # remove a linear trend (the decay) before the spectrum
            A = np.stack([tt, np.ones_like(tt)], axis=1).astype(np.float64)
            coef, *_ = np.linalg.lstsq(A, x.T, rcond=None)
            x = x - (A @ coef).T
        m = x.shape[1]
        spec = np.abs(np.fft.rfft(x * np.hanning(m)[None, :], n=max(m, 64), axis=1)) ** 2
        mf = np.fft.rfftfreq(max(m, 64), 1.0 / frame_rate)
        for lo, hi in MOD_BANDS:
            sel = (mf >= lo) & (mf < hi)
            mod_cols.append(np.log10(spec[:, sel].sum(axis=1) + 1e-6) if sel.any() else np.full(n, -6.0))
        valid = mf >= MOD_BANDS[0][0]
        mod_cols.append(mf[valid][np.argmax(spec[:, valid], axis=1)] if valid.any() else np.zeros(n))
        mod_cols.append(x.std(axis=1))
    cols += mod_cols
    out = np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
