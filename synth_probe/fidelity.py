"""Fidelity: how close one synth sounds to another that has the same parameter names.

Synth A (the built-in emulation, or any plugin) is rendered on a set of probes
and compared probe by probe with a reference B: another synth rendered on the
same probes, or a reference folder of recorded audio with its patches
(:mod:`synth_probe.reference`).

Per probe: the multi-resolution log-mel distance
(:func:`synth_probe.spectral.multi_resolution_log_mel_distance`, dB), the
loudness difference (dB), the spectral-centroid and f0 differences (semitones;
f0 only where both are pitched), the audible-length difference (seconds above
-60 dBFS RMS), and silence (peak below 1e-3, as in the calibration data). Over
all probes: median and mean distance, the probes where B sounds and A is silent
(and the reverse), the *retrieval rate* (for each A render, is the nearest B
render by the same distance its own patch?), a breakdown by probe set and by the
parameter groups a probe changes from the default patch, and B's own floor where
it can be measured.

The retrieval needs the nearest B render of every A render, an argmin over the
full A x B distance matrix. It is exact but does not compute every entry: block
sums of the log-mel features give a lower bound of every entry (the L1 distance
of block sums never exceeds the L1 distance of the entries), and only the entries
whose bound is below the own-patch distance (or the best other patch found so
far) are computed in full.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.signal import resample_poly
from scipy.spatial.distance import cdist

from synth_probe.errors import ReferenceDataError, RenderError, closest_names
from synth_probe.reference import ProbeTable, ReferenceFolder, load_mono
from synth_probe.progress import Progress
from synth_probe.render import Task, run_tasks
from synth_probe.spectral import (
    DEFAULT_RESOLUTIONS,
    hz_to_semitones,
    log_mel_from_power,
    loudness_db,
    pitch_f0,
    power_spectrogram,
    rms_envelope,
    spectral_centroid,
)
from synth_probe.synths.base import RenderSettings, Synth

__all__ = [
    "Timing",
    "Analysis",
    "FidelityResult",
    "analyse_audio",
    "own_distances",
    "pair_distances",
    "nearest_references",
    "compare_folder",
    "compare_synths",
    "SILENT_PEAK",
    "AUDIBLE_DB",
]

#: a render whose peak stays below this is silent (the calibration data's threshold)
SILENT_PEAK = 1e-3
#: the audible length ends at the last frame whose RMS is above this level (dB re full scale)
AUDIBLE_DB = -60.0
#: sample rate and length of the compact clips kept for listening
CLIP_RATE = 22050
CLIP_SECONDS = 2.0
#: (mel bands, frames) summed per block of the lower bound
POOL = (4, 8)
#: probes per task of the worker pool
CHUNK = 16
#: two distances closer than this (dB) are a tie
TIE_DB = 1e-4

Log = Callable[[str], None]


@dataclass(frozen=True)
class Timing:
    """How every probe is rendered: one note from 0 s, released at ``note_length``, ``render_length`` long."""

    sample_rate: int = 44100
    note_length: float = 1.0
    render_length: float = 2.0

    @property
    def n_samples(self) -> int:
        return int(round(self.render_length * self.sample_rate))

    def settings(self, note: int, velocity: int) -> RenderSettings:
        return RenderSettings(int(note), int(velocity), self.note_length, self.render_length, self.sample_rate)


@dataclass
class Analysis:
    """What is kept of one side's renders.

    Attributes
    ----------
    features : list of np.ndarray
        Per resolution of :data:`~synth_probe.spectral.DEFAULT_RESOLUTIONS`, log-mel
        spectrograms [shape=(n, n_mels_r, n_frames_r), dtype=float32], dB.
    peak, loudness, centroid, f0, length : np.ndarray [shape=(n,)]
        Peak |x|; loudness (dB); long-term spectral centroid and f0 (semitones,
        A4 = 69; NaN when silent or unpitched); audible length (s).
    clips : np.ndarray [shape=(n, n_clip), dtype=int16]
        The first :data:`CLIP_SECONDS` at ``clip_rate`` Hz, for listening.
    clip_rate : int
    """

    features: list[np.ndarray]
    peak: np.ndarray
    loudness: np.ndarray
    centroid: np.ndarray
    f0: np.ndarray
    length: np.ndarray
    clips: np.ndarray
    clip_rate: int

    @property
    def silent(self) -> np.ndarray:
        return self.peak < SILENT_PEAK

    def take(self, idx: np.ndarray) -> Analysis:
        """The rows ``idx`` only."""
        return Analysis([f[idx] for f in self.features], self.peak[idx], self.loudness[idx], self.centroid[idx],
                        self.f0[idx], self.length[idx], self.clips[idx], self.clip_rate)


def _clip_rate(sample_rate: int) -> int:
    return min(CLIP_RATE, int(sample_rate))


def _audible_length(x: np.ndarray, sample_rate: int) -> np.ndarray:
    hop = 256
    env = rms_envelope(x, frame_length=1024, hop_length=hop)
    above = env > 10.0 ** (AUDIBLE_DB / 20.0)
    last = np.where(above.any(axis=-1), above.shape[-1] - 1 - np.argmax(above[:, ::-1], axis=-1), -1)
    return np.where(last >= 0, np.minimum((last + 1) * hop, x.shape[-1]) / sample_rate, 0.0)


def analyse_audio(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Log-mel features, descriptors and a compact clip of every clip.

    Parameters
    ----------
    audio : np.ndarray [shape=(n, n_samples)]
        Mono clips.
    sample_rate : int

    Returns
    -------
    analysis : dict
        The fields of :class:`Analysis` (``features`` a list of float32 arrays).
    """
    x = np.ascontiguousarray(np.atleast_2d(audio), dtype=np.float32)
    feats, centroid = [], None
    for n, h in DEFAULT_RESOLUTIONS:
        power = power_spectrogram(x, n, h)
        feats.append(log_mel_from_power(power, sample_rate).astype(np.float32, copy=False))
        if (n, h) == (2048, 512):  # spectral_centroid's own resolution
            centroid = spectral_centroid(None, sample_rate, n_fft=n, hop_length=h, power=power)
    if centroid is None:
        centroid = spectral_centroid(x, sample_rate)
    f0, _ = pitch_f0(x, sample_rate)
    rate = _clip_rate(sample_rate)
    head = x[:, : int(round(min(CLIP_SECONDS, x.shape[-1] / sample_rate) * sample_rate))]
    if rate != sample_rate:
        g = math.gcd(rate, int(sample_rate))
        head = resample_poly(head, rate // g, int(sample_rate) // g, axis=-1)
    clips = np.clip(np.round(head * 32767.0), -32768, 32767).astype(np.int16)
    return {
        "features": feats,
        "peak": np.abs(x).max(axis=-1).astype(np.float64),
        "loudness": np.atleast_1d(loudness_db(x)).astype(np.float64),
        "centroid": np.atleast_1d(hz_to_semitones(centroid)).astype(np.float64),
        "f0": np.atleast_1d(hz_to_semitones(f0)).astype(np.float64),
        "length": _audible_length(x, sample_rate),
        "clips": clips,
        "clip_rate": rate,
    }


def _render_analyse_chunk(ctx, vectors: np.ndarray, notes: np.ndarray, velocities: np.ndarray, seeds: np.ndarray,
                          timing: Timing, offset: int) -> dict[str, Any]:
    """Task function: render rows ``offset ..`` with ``ctx.synth`` and analyse them."""
    audio = np.empty((len(vectors), timing.n_samples), dtype=np.float32)
    for r in range(len(vectors)):
        ctx.start(offset + r)
        audio[r] = ctx.synth.render_vector(vectors[r], timing.settings(notes[r], velocities[r]), seed=int(seeds[r]))
        ctx.done(offset + r)
    return analyse_audio(audio, timing.sample_rate)


def _load_analyse_chunk(ctx, paths: list[str], timing: Timing, offset: int) -> dict[str, Any]:
    """Task function: read audio files (``ctx.synth`` is not used) and analyse them."""
    return analyse_audio(load_mono(paths, timing.n_samples), timing.sample_rate)


def _gather(parts: dict[int, dict[str, Any]], n: int) -> Analysis:
    order = sorted(parts)
    first = parts[order[0]]
    feats = [np.empty((n,) + f.shape[1:], dtype=np.float32) for f in first["features"]]
    cols = {k: np.empty(n) for k in ("peak", "loudness", "centroid", "f0", "length")}
    clips = np.empty((n, first["clips"].shape[1]), dtype=np.int16)
    for a in order:
        p = parts[a]
        b = a + len(p["peak"])
        for r, f in enumerate(p["features"]):
            feats[r][a:b] = f
        for k in cols:
            cols[k][a:b] = p[k]
        clips[a:b] = p["clips"]
    return Analysis(feats, clips=clips, clip_rate=int(first["clip_rate"]), **cols)


def _run(synth: Synth, func: Callable[..., dict[str, Any]], chunks: list[tuple], n: int, jobs: int,
         progress: str | None, error: type[Exception]) -> Analysis:
    """Run ``func`` over ``chunks`` (argument tuples ending in their offset), here or in worker processes."""
    bar = Progress(n, f"compare {progress}", unit="probes") if progress else None
    parts: dict[int, dict[str, Any]] = {}
    try:
        tasks = [Task(key=args[-1], func=func, args=args) for args in chunks]
        for key, res in run_tasks(synth, tasks, jobs=jobs, in_process=jobs <= 1 or len(chunks) <= 1,
                                  error=lambda f: error(f.message)):
            parts[key] = res
            if bar is not None:
                bar.update(len(res["peak"]))
        return _gather(parts, n)
    finally:
        if bar is not None:
            bar.close()


def _bounds(n: int, jobs: int) -> list[tuple[int, int]]:
    size = max(1, min(CHUNK, math.ceil(n / max(1, jobs * 4))))
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def render_analysis(synth: Synth, vectors: np.ndarray, notes: np.ndarray, velocities: np.ndarray, timing: Timing,
                    *, seed: int = 0, jobs: int = 1, progress: str | None = None) -> Analysis:
    """Render every probe with ``synth`` and analyse it (in ``jobs`` worker processes when > 1).

    Parameters
    ----------
    vectors : np.ndarray [shape=(n, n_params)]
        Validated unit vectors in ``synth``'s host order.
    notes, velocities : np.ndarray [shape=(n,)]
    timing : Timing
    seed : int
        Render seed of every probe.

    Returns
    -------
    analysis : Analysis
    """
    n = len(vectors)
    seeds = np.full(n, int(seed), np.int64)
    chunks = [(vectors[a:b], notes[a:b], velocities[a:b], seeds[a:b], timing, a) for a, b in _bounds(n, jobs)]
    return _run(synth, _render_analyse_chunk, chunks, n, jobs, progress, RenderError)


def file_analysis(synth: Synth, paths: list[str], timing: Timing, *, jobs: int = 1,
                  progress: str | None = None) -> Analysis:
    """Read and analyse audio files (in ``synth``'s worker processes when ``jobs`` > 1)."""
    n = len(paths)
    chunks = [([str(p) for p in paths[a:b]], timing, a) for a, b in _bounds(n, jobs)]
    return _run(synth, _load_analyse_chunk, chunks, n, jobs, progress, ReferenceDataError)


# ----------------------------------------------------------------------------- distances
def own_distances(fa: list[np.ndarray], fb: list[np.ndarray]) -> np.ndarray:
    """Multi-resolution log-mel distance of row i of ``fa`` to row i of ``fb``.

    Parameters
    ----------
    fa, fb : list of np.ndarray [shape=(n, n_mels_r, n_frames_r)]
        Features of :func:`analyse_audio`, one array per resolution.

    Returns
    -------
    distance : np.ndarray [shape=(n,)]
        dB; equal to :func:`~synth_probe.spectral.multi_resolution_log_mel_distance` of the clips.
    """
    n = len(fa[0])
    out = np.zeros(n)
    for a, b in zip(fa, fb):
        for s in range(0, n, 64):
            out[s:s + 64] += np.abs(a[s:s + 64] - b[s:s + 64]).mean(axis=(1, 2), dtype=np.float64)
    return out / len(fa)


def pair_distances(fa: list[np.ndarray], fb: list[np.ndarray], i: int, js: np.ndarray) -> np.ndarray:
    """Distances of A row ``i`` to B rows ``js``.

    Returns
    -------
    distance : np.ndarray [shape=(len(js),)]
    """
    out = np.zeros(len(js))
    for a, b in zip(fa, fb):
        out += np.abs(b[js] - a[i]).mean(axis=(1, 2), dtype=np.float64)
    return out / len(fa)


def _pooled(features: list[np.ndarray]) -> np.ndarray:
    """Weighted block sums whose cityblock distance is a lower bound of the log-mel distance.

    Returns
    -------
    pooled : np.ndarray [shape=(n, n_blocks)]
    """
    out = []
    for f in features:
        n, m, t = f.shape
        p = np.add.reduceat(f, np.arange(0, m, POOL[0]), axis=1, dtype=np.float64)
        p = np.add.reduceat(p, np.arange(0, t, POOL[1]), axis=2)
        out.append(p.reshape(n, -1) / (len(features) * m * t))
    return np.concatenate(out, axis=1)


def nearest_references(fa: list[np.ndarray], fb: list[np.ndarray], keys: np.ndarray, own: np.ndarray
                       ) -> dict[str, Any]:
    """For every A render: the other patches' B renders that are closer than its own, and the nearest of them.

    Parameters
    ----------
    fa, fb : list of np.ndarray [shape=(n, n_mels_r, n_frames_r)]
    keys : np.ndarray [shape=(n,)]
        Patch keys (:meth:`ProbeTable.patch_keys`); B renders with A's key are its own patch.
    own : np.ndarray [shape=(n,)]
        :func:`own_distances`.

    Returns
    -------
    result : dict
        ``closer`` [shape=(n,), int]: B renders of other patches strictly closer than the own one
        (retrieved where 0; ties count for the own patch); ``nearest`` [shape=(n,), int]: where
        ``closer`` > 0, the index of the nearest of them (the patch A was taken for), else -1;
        ``nearest_db`` [shape=(n,)]: its distance (NaN where -1); ``exact`` (int): entries computed in full.
    """
    n = len(own)
    pa, pb = _pooled(fa), _pooled(fb)
    closer = np.zeros(n, np.int64)
    nearest = np.full(n, -1, np.int64)
    nearest_db = np.full(n, np.nan)
    exact = 0
    for s in range(0, n, 128):
        lbs = cdist(pa[s:s + 128], pb, "cityblock") * (1.0 - 1e-6) - 1e-6
        for r, lb in enumerate(lbs):
            i = s + r
            lb[keys == keys[i]] = np.inf
            js = np.flatnonzero(lb < own[i] - TIE_DB)  # every other entry is at least its bound away
            if not len(js):
                continue
            d = pair_distances(fa, fb, i, js)
            exact += len(js)
            hit = d < own[i] - TIE_DB
            closer[i] = int(hit.sum())
            if closer[i]:
                k = int(np.argmin(d))
                nearest[i], nearest_db[i] = int(js[k]), float(d[k])
    return {"closer": closer, "nearest": nearest, "nearest_db": nearest_db, "exact": exact}


def _contrast(fa: list[np.ndarray], fb: list[np.ndarray], keys: np.ndarray, k: int = 4) -> float | None:
    """Median distance of A renders to B renders of other, random patches (a scale for the own distances)."""
    rng = np.random.default_rng(0)
    n = len(keys)
    out = []
    for i in range(n):
        others = np.flatnonzero(keys != keys[i])
        if len(others):
            out.append(pair_distances(fa, fb, i, rng.choice(others, size=min(k, len(others)), replace=False)))
    return float(np.median(np.concatenate(out))) if out else None


# ----------------------------------------------------------------------------- per probe and aggregates
def _changed(probes: ProbeTable, default: np.ndarray, i: int) -> list[int]:
    return [int(j) for j in np.flatnonzero(np.abs(probes.vectors[i] - default) > 1e-9)]


def _flag(silent_a: bool, silent_b: bool) -> str:
    if silent_a and silent_b:
        return "both silent"
    if silent_a:
        return "B sounds, A silent"
    if silent_b:
        return "A sounds, B silent"
    return ""


def _fin(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def probe_rows(probes: ProbeTable, synth: Synth, a: Analysis, b: Analysis, own: np.ndarray,
               near: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One dict per probe: identity, labels, distances, descriptor differences, silence, changed parameters."""
    specs = list(synth.specs)
    default = synth.patch_vector()
    rows = []
    for i in range(len(probes)):
        ch = _changed(probes, default, i)
        sa, sb = bool(a.silent[i]), bool(b.silent[i])
        pitched = np.isfinite(a.f0[i]) and np.isfinite(b.f0[i])
        r: dict[str, Any] = {"id": probes.ids[i]}
        if probes.sets is not None:
            r["set"] = probes.sets[i]
        r.update({k: v[i] for k, v in probes.labels.items()})
        j = int(near["nearest"][i])
        r.update({
            "note": int(probes.notes[i]), "velocity": int(probes.velocities[i]),
            "distance_db": float(own[i]), "retrieved": bool(near["closer"][i] == 0),
            "own_rank": int(near["closer"][i]) + 1,
            "nearest_other": probes.ids[j] if j >= 0 else "", "nearest_other_db": _fin(near["nearest_db"][i]),
            "loudness_a_db": float(a.loudness[i]), "loudness_b_db": float(b.loudness[i]),
            "loudness_diff_db": float(a.loudness[i] - b.loudness[i]),
            "centroid_diff_st": _fin(a.centroid[i] - b.centroid[i]) if not (sa or sb) else None,
            "f0_a_st": _fin(a.f0[i]), "f0_b_st": _fin(b.f0[i]),
            "f0_diff_st": _fin(a.f0[i] - b.f0[i]) if pitched else None,
            "length_a_s": float(a.length[i]), "length_b_s": float(b.length[i]),
            "length_diff_s": float(a.length[i] - b.length[i]),
            "peak_a": float(a.peak[i]), "peak_b": float(b.peak[i]), "silent_a": sa, "silent_b": sb,
            "flag": _flag(sa, sb), "n_changed": len(ch),
            "groups": ", ".join(sorted({specs[j].group for j in ch})),
            "changed": "; ".join(f"{specs[j].name}={probes.vectors[i, j]:.4g}" for j in ch),
        })
        rows.append(r)
    return rows


def _median_abs(rows: list[dict[str, Any]], key: str) -> float | None:
    v = [abs(r[key]) for r in rows if r.get(key) is not None]
    return float(np.median(v)) if v else None


def stats(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregates of probe rows: distance quantiles, retrieval, silence counts, median |differences|."""
    d = np.array([r["distance_db"] for r in rows], dtype=float)
    if not len(d):
        return {"n": 0}
    return {
        "n": len(rows), "median_db": float(np.median(d)), "mean_db": float(d.mean()),
        "p90_db": float(np.percentile(d, 90)), "max_db": float(d.max()),
        "retrieval": float(np.mean([r["retrieved"] for r in rows])),
        "n_retrieved": int(sum(r["retrieved"] for r in rows)),
        "b_sounds_a_silent": sum(r["flag"] == "B sounds, A silent" for r in rows),
        "a_sounds_b_silent": sum(r["flag"] == "A sounds, B silent" for r in rows),
        "both_silent": sum(r["flag"] == "both silent" for r in rows),
        "loudness_abs_db": _median_abs(rows, "loudness_diff_db"),
        "centroid_abs_st": _median_abs(rows, "centroid_diff_st"),
        "f0_abs_st": _median_abs(rows, "f0_diff_st"),
        "n_pitched": sum(r.get("f0_diff_st") is not None for r in rows),
        "length_abs_s": _median_abs(rows, "length_diff_s"),
    }


def breakdown(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """:func:`stats` per value of ``by``: ``"set"``, or ``"groups"`` (a probe counts in every group it changes).

    Returns
    -------
    table : list of dict
        ``{"name": ..., **stats}``, worst median first.
    """
    members: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if by == "groups":
            names = [g for g in r["groups"].split(", ") if g] or ["(default patch)"]
        else:
            names = [str(r.get(by, ""))]
        for g in names:
            members.setdefault(g, []).append(r)
    out = [{"name": g, **stats(rs)} for g, rs in members.items()]
    return sorted(out, key=lambda s: -s["median_db"])


def _floor_stats(d: np.ndarray, **info: Any) -> dict[str, Any]:
    if not len(d):
        return {"measurable": False, **info}
    return {"measurable": True, "n": int(len(d)), "median_db": float(np.median(d)),
            "p95_db": float(np.percentile(d, 95)), "max_db": float(d.max()), **info}


def folder_floor(probes: ProbeTable, keys: np.ndarray, b: Analysis) -> dict[str, Any]:
    """B's own floor in a reference folder: probes with identical patches (and note, velocity) but other files."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    d = []
    for idx in groups.values():
        idx = [i for n_, i in enumerate(idx) if probes.files[i] not in {probes.files[j] for j in idx[:n_]}]
        for j in idx[1:]:
            d.append(pair_distances(b.features, b.features, idx[0], np.array([j]))[0])
    how = "pairs of probes with identical patches, note and velocity but different audio files"
    if not d:
        return _floor_stats(np.array([]), how=how, why="no two probes share a patch with different files")
    return _floor_stats(np.array(d), how=how)


def synth_floor(b: Synth, probes: ProbeTable, vectors_b: np.ndarray, timing: Timing, ref: Analysis, *, seed: int,
                n_floor: int, jobs: int) -> dict[str, Any]:
    """B's own floor as a synth: a subset of probes rendered again, with seed + 1 and in reverse order."""
    m = min(int(n_floor), len(probes))
    if m < 1:
        return _floor_stats(np.array([]), how="not measured", why="--floor-n is 0")
    idx = np.unique(np.round(np.linspace(0, len(probes) - 1, m)).astype(int))[::-1]
    again = render_analysis(b, vectors_b[idx], probes.notes[idx], probes.velocities[idx], timing,
                            seed=seed + 1, jobs=jobs)
    d = own_distances(again.features, ref.take(idx).features)
    return _floor_stats(d, how=f"{len(idx)} probes rendered by B again with seed {seed + 1}, in reverse order "
                               "(so after other predecessors), against B's first renders")


# ----------------------------------------------------------------------------- the comparison
@dataclass
class FidelityResult:
    """A finished comparison: the summary (plain data), one row per probe, and what the report plays and shows."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    probes: ProbeTable
    a: Analysis
    b: Analysis
    synth: Synth = field(repr=False)

    def listening(self, max_pairs: int = 24, budget_mb: float = 10.0) -> list[int]:
        """Probes to play in the report: the worst, then the worst of each set, within a size budget.

        Parameters
        ----------
        max_pairs : int
            Worst probes overall (each set's worst is added beyond them).
        budget_mb : float
            Audio and pictures of all pairs together stay below this many MB (base64 in the page).

        Returns
        -------
        indices : list of int
            Worst first.
        """
        d = np.array([r["distance_db"] for r in self.rows])
        order = [int(i) for i in np.argsort(-d, kind="stable")]
        chosen = order[: max(0, int(max_pairs))]
        if self.probes.sets is not None:
            for s in dict.fromkeys(self.probes.sets):
                first = next(i for i in order if self.probes.sets[i] == s)
                if first not in chosen:
                    chosen.append(first)
        per_pair = 2 * (44 + 2 * self.a.clips.shape[1]) * 4 / 3 + 2 * 12_000
        keep = max(0, int(budget_mb * 1e6 // per_pair))
        return sorted(chosen[:keep], key=lambda i: -d[i])

    def media(self, indices: list[int]) -> dict[str, dict[str, Any]]:
        """Clips, log-mel spectrograms (1024-sample frames) and changed parameters of the given probes, by id."""
        specs = list(self.synth.specs)
        default = self.synth.patch_vector()
        out = {}
        for i in indices:
            ch = _changed(self.probes, default, i)
            out[self.probes.ids[i]] = {
                "clip_a": self.a.clips[i], "clip_b": self.b.clips[i], "clip_rate": self.a.clip_rate,
                "mel_a": self.a.features[1][i], "mel_b": self.b.features[1][i],
                "changed": [f"{specs[j].name} = {specs[j].display(self.probes.vectors[i, j])}" for j in ch],
            }
        return out


def _vectors_for(b: Synth, probes: ProbeTable) -> np.ndarray:
    names_b = set(b.param_names)
    missing = [n for n in probes.names if n not in names_b]
    if missing:
        shown = "; ".join(f"{n!r} (closest: {', '.join(closest_names(n, b.param_names)) or 'none'})"
                          for n in missing[:5])
        raise ReferenceDataError(
            f"{b.name} lacks {len(missing)} of the {len(probes.names)} parameter names the probes set: {shown}"
            f"{' ...' if len(missing) > 5 else ''}. compare needs two synths with the same parameter names.")
    out = np.tile(b.patch_vector(), (len(probes), 1))
    idx = {n: k for k, n in enumerate(b.param_names)}
    out[:, [idx[n] for n in probes.names]] = probes.vectors
    return out


def _finish(a: Synth, probes: ProbeTable, timing: Timing, an_a: Analysis, an_b: Analysis, *, mode: str,
            b_desc: dict[str, Any], floor: dict[str, Any], seed: int, jobs: int, times: dict[str, float],
            t0: float) -> FidelityResult:
    t = time.perf_counter()
    keys = probes.patch_keys()
    own = own_distances(an_a.features, an_b.features)
    near = nearest_references(an_a.features, an_b.features, keys, own)
    rows = probe_rows(probes, a, an_a, an_b, own, near)
    times["distances"] = time.perf_counter() - t
    worst = sorted(rows, key=lambda r: -r["distance_db"])[:10]
    summary = {
        "mode": mode, "a": a.identity(), "b": b_desc,
        "probes": {"n": len(probes), "source": probes.source, "labels": list(probes.labels),
                   "sets": list(dict.fromkeys(probes.sets)) if probes.sets is not None else None,
                   "distinct_patches": int(len(set(keys)))},
        "settings": {"sample_rate": timing.sample_rate, "note_length": timing.note_length,
                     "render_length": timing.render_length, "seed": int(seed), "jobs": int(jobs),
                     "silent_peak": SILENT_PEAK, "audible_db": AUDIBLE_DB, "clip_rate": an_a.clip_rate,
                     "clip_seconds": min(CLIP_SECONDS, timing.render_length),
                     "resolutions": [list(r) for r in DEFAULT_RESOLUTIONS]},
        "overall": stats(rows),
        "contrast_db": _contrast(an_a.features, an_b.features, keys),
        "by_set": breakdown(rows, "set") if probes.sets is not None else None,
        "by_group": breakdown(rows, "groups"),
        "floor": floor,
        "worst": [{"id": r["id"], "distance_db": r["distance_db"], "flag": r["flag"]} for r in worst],
        "matrix": {"entries": len(probes) ** 2, "computed_in_full": int(near["exact"]) + len(probes)},
        "sensitivity": None,
        "seconds": time.perf_counter() - t0, "stage_seconds": times,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return FidelityResult(summary, rows, probes, an_a, an_b, a)


def _render_a(a: Synth, probes: ProbeTable, timing: Timing, *, seed: int, jobs: int, progress: bool, log: Log,
              times: dict[str, float]) -> Any:
    """Render and analyse synth A's side of a comparison; its time goes to ``times["render_a"]``."""
    log(f"rendering {len(probes)} probes with {a.name} ({timing.sample_rate} Hz, note {timing.note_length:g} s, "
        f"{timing.render_length:g} s)")
    t = time.perf_counter()
    an_a = render_analysis(a, probes.vectors, probes.notes, probes.velocities, timing, seed=seed, jobs=jobs,
                           progress="A" if progress else None)
    times["render_a"] = time.perf_counter() - t
    return an_a


def compare_folder(a: Synth, folder: ReferenceFolder, *, seed: int = 0, jobs: int = 1, progress: bool = False,
                   log: Log | None = None) -> FidelityResult:
    """Compare synth ``a`` with a reference folder's audio, probe by probe.

    Parameters
    ----------
    a : Synth
    folder : ReferenceFolder
        From :func:`synth_probe.reference.open_reference_folder` (with ``a``'s names).
    seed : int
        Render seed of A.
    jobs : int
        Worker processes for rendering A and reading the folder.
    progress : bool
        Progress bars.
    log : callable, optional
        Receives one line per stage.

    Returns
    -------
    result : FidelityResult
    """
    log = log or (lambda s: None)
    t0 = time.perf_counter()
    probes = folder.probes
    timing = Timing(folder.sample_rate, folder.note_length, folder.render_length)
    times: dict[str, float] = {}
    an_a = _render_a(a, probes, timing, seed=seed, jobs=jobs, progress=progress, log=log, times=times)
    log(f"reading {len(probes)} reference files from {folder.path}")
    t = time.perf_counter()
    an_b = file_analysis(a, folder.paths(), timing, jobs=jobs, progress="B" if progress else None)
    times["reference"] = time.perf_counter() - t
    floor = folder_floor(probes, probes.patch_keys(), an_b)
    return _finish(a, probes, timing, an_a, an_b, mode="folder", b_desc=folder.describe(), floor=floor, seed=seed,
                   jobs=jobs, times=times, t0=t0)


def compare_synths(a: Synth, b: Synth, probes: ProbeTable, timing: Timing, *, seed: int = 0, floor_n: int = 40,
                   jobs: int = 1, progress: bool = False, log: Log | None = None) -> FidelityResult:
    """Compare synth ``a`` with synth ``b`` on the same probes (the same parameter values by name).

    Parameters
    ----------
    a, b : Synth
        ``b`` must have every parameter name of ``probes``.
    probes : ProbeTable
        In ``a``'s names.
    timing : Timing
    seed : int
        Render seed of both; B's floor renders use ``seed + 1``.
    floor_n : int
        Probes B renders a second time for its floor.
    jobs, progress, log
        As in :func:`compare_folder`.

    Returns
    -------
    result : FidelityResult
    """
    log = log or (lambda s: None)
    t0 = time.perf_counter()
    vectors_b = _vectors_for(b, probes)
    times: dict[str, float] = {}
    an_a = _render_a(a, probes, timing, seed=seed, jobs=jobs, progress=progress, log=log, times=times)
    log(f"rendering {len(probes)} probes with {b.name}")
    t = time.perf_counter()
    an_b = render_analysis(b, vectors_b, probes.notes, probes.velocities, timing, seed=seed, jobs=jobs,
                           progress="B" if progress else None)
    times["reference"] = time.perf_counter() - t
    log(f"B's floor: {min(floor_n, len(probes))} probes rendered again")
    t = time.perf_counter()
    floor = synth_floor(b, probes, vectors_b, timing, an_b, seed=seed, n_floor=floor_n, jobs=jobs)
    times["floor"] = time.perf_counter() - t
    b_desc = {**b.identity(), "params": len(b.param_names)}
    return _finish(a, probes, timing, an_a, an_b, mode="synth", b_desc=b_desc, floor=floor, seed=seed, jobs=jobs,
                   times=times, t0=t0)
