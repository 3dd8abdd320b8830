"""What one group of renders of the sensitivity study measures: spreads, aspects, monotonicity.

A *group* is one sweep (a parameter's values on one base) or one noise-floor measurement
(the same patch with different render seeds); :func:`analyse_group` turns its audio into the
numbers :mod:`synth_probe.sensitivity` compares (the method is in that module's notes).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.signal import resample_poly
from scipy.stats import spearmanr, trim_mean

from synth_probe import spectral

__all__ = ["FLOOR_DB", "analyse_group", "monotonicity", "clips", "iqm", "bootstrap_iqm"]

#: floor of the log-mel spectrograms, dB re a full-scale sine
FLOOR_DB = -80.0


def _spread_scale(n: int) -> float:
    return math.sqrt(n / (n - 1)) if n > 1 else 0.0


def analyse_group(audio: np.ndarray, sample_rate: int, *, media: bool = False, clip: float = 1.0) -> dict[str, Any]:
    """Summaries of one group of renders (a sweep or a floor measurement).

    Parameters
    ----------
    audio : np.ndarray [shape=(n_renders, n_samples)]
    sample_rate : int
    media : bool
        Also keep the 1024-frame log-mel spectrograms (``strip``, float16) and the clips of the
        group's first and last render (``clips``, int16 [shape=(2, n)] at 16 kHz).
    clip : float
        Seconds of each clip.

    Returns
    -------
    info : dict
        ``spread``, ``neighbour``, ``static`` (dB), ``aspects`` (aspect -> change), ``monotonicity``.
    """
    x = np.ascontiguousarray(audio, dtype=np.float32)
    n = len(x)
    scale = _spread_scale(n)
    fw_spread, fw_neigh = [], []
    p1024 = None
    mel1024 = None
    for n_fft, hop in spectral.DEFAULT_RESOLUTIONS:
        p = spectral.power_spectrogram(x, n_fft, hop)
        lm = spectral.log_mel_from_power(p, sample_rate, floor_db=FLOOR_DB)
        # only cells where some render of the group sounds: silence (the tail after the
        # release, bands below the floor) does not dilute the change
        active = lm.max(axis=0) > FLOOR_DB + 0.5
        n_active = int(active.sum())
        if n_active == 0:
            fw_spread.append(0.0)
            fw_neigh.append(0.0)
        else:
            dev = np.abs(lm - lm.mean(axis=0, keepdims=True))[:, active]
            fw_spread.append(scale * float(dev.mean()))
            fw_neigh.append(float(np.abs(np.diff(lm, axis=0))[:, active].mean()) if n > 1 else 0.0)
        if n_fft == 1024:
            p1024, mel1024 = p, lm
        if n_fft == 2048:
            ta = spectral.log_mel_from_power(p.mean(axis=-1, keepdims=True), sample_rate, floor_db=FLOOR_DB)[..., 0]
            band = ta.max(axis=0) > FLOOR_DB + 0.5
            static = (scale * float(np.abs(ta - ta.mean(axis=0, keepdims=True))[:, band].mean())
                      if band.any() else 0.0)
    desc = spectral.describe(x, sample_rate, power=p1024)
    aspects: dict[str, float] = {}
    for a in spectral.ASPECTS:
        v = np.asarray(desc[a], dtype=np.float64)
        if a == "pitch":
            voiced = np.isfinite(v)
            if voiced.sum() < max(2, math.ceil(n / 2)):
                aspects[a] = float("nan")
                continue
            # robust: octave errors of the f0 estimate at a few points must not count as a pitch change
            v = v[voiced]
            aspects[a] = float(np.median(np.abs(v - np.median(v))))
            continue
        dev = np.abs(v - v.mean(axis=0, keepdims=True))
        aspects[a] = scale * float(dev.mean())
    out: dict[str, Any] = {
        "spread": float(np.mean(fw_spread)),
        "neighbour": float(np.mean(fw_neigh)),
        "static": static,
        "aspects": aspects,
        "monotonicity": monotonicity(mel1024),
    }
    if media:
        out["strip"] = mel1024.astype(np.float16)
        out["clips"] = clips(x[[0, -1]], sample_rate, clip)
    return out


def combine_renders(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """One group's summaries over a probe's renders (:func:`analyse_group` of each render's group).

    ``spread``, ``neighbour`` and ``static`` sum over the renders, as a probe's distances do
    (:mod:`synth_probe.probe`): a change heard on one note keeps its full size. ``aspects`` and
    ``monotonicity`` are means over the renders where they are defined (NaN where none is);
    the media (``strip``, ``clips``) are the first render's.
    """
    out: dict[str, Any] = {k: float(sum(i[k] for i in infos)) for k in ("spread", "neighbour", "static")}
    out["aspects"] = {a: _nanmean([i["aspects"][a] for i in infos]) for a in infos[0]["aspects"]}
    out["monotonicity"] = _nanmean([i["monotonicity"] for i in infos])
    for k in ("strip", "clips"):
        if k in infos[0]:
            out[k] = infos[0][k]
    return out


def _nanmean(x: list[float]) -> float:
    v = [float(a) for a in x if np.isfinite(a)]
    return float(np.mean(v)) if v else float("nan")


def monotonicity(lm: np.ndarray) -> float:
    """|Spearman ρ| of sweep position against a 1-D embedding of the sweep's spectrograms.

    The embedding places each point between the sweep's two ends:
    ``e_i = D(M_i, M_first) - D(M_i, M_last)`` (mean |dB difference|). It rises
    steadily along a sweep that moves the sound one way (invertible), and stays
    flat or turns back for a response that returns (a U shape cannot be inverted).
    """
    n = lm.shape[0]
    if n < 3:
        return float("nan")
    f = lm.reshape(n, -1).astype(np.float64)
    d_first = np.abs(f - f[0]).mean(axis=1)
    d_last = np.abs(f - f[-1]).mean(axis=1)
    e = d_first - d_last
    if np.ptp(e) < 1e-6:
        return float("nan")
    rho = spearmanr(np.arange(n), e).statistic
    return float(abs(rho)) if np.isfinite(rho) else float("nan")


def clips(audio: np.ndarray, sample_rate: int, seconds: float, rate: int = 16000) -> np.ndarray:
    g = math.gcd(int(sample_rate), rate)
    y = resample_poly(audio.astype(np.float64), rate // g, int(sample_rate) // g, axis=-1)
    y = y[:, : int(seconds * rate)]
    y = y / max(1.0, float(np.max(np.abs(y))) if y.size else 1.0)  # above full scale: both down alike
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def iqm(x: np.ndarray) -> float:
    """Interquartile mean: the mean of the middle half of the values (25 % trimmed at each end)."""
    return float(trim_mean(np.asarray(x, dtype=np.float64), 0.25))


def bootstrap_iqm(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float]:
    """90 % bootstrap interval of the interquartile mean of ``x``."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 1:
        return float(x[0]), float(x[0])
    idx = rng.integers(0, len(x), size=(int(n_boot), len(x)))
    stats = trim_mean(x[idx], 0.25, axis=1)
    return float(np.percentile(stats, 5)), float(np.percentile(stats, 95))
