"""The sensitivity study: how strongly each parameter shows up in the spectrogram.

Method (the report states it too; :data:`METHOD` is the text):

1. **Bases.** K base patches: the synth's default patch plus K-1 random patches
   of the ``timbral`` sampler (``all`` for synths without TAL-NoiseMaker's names).
2. **Gates.** A parameter with a gate (``ParamSpec.gate``: LFO rate needs an LFO
   amount and a destination, reverb decay needs reverb wet, ...) is swept on the
   same bases with the gate opened (the gate's values set on top of the base).
   It is also swept with the gate *closed* — the gate's parameters at their
   defaults — which gives the gate effect.
3. **Sweep.** The parameter takes S evenly spaced unit values 0..1 (every choice
   for a discrete parameter), all else fixed, and every point is rendered with
   its own render seed.
4. **Distances.** Each render becomes log-mel spectrograms at three resolutions
   (512/1024/2048-sample frames, dB re full scale, floored at -80 dB). The
   *spread* of a sweep is the mean frame-wise distance (mean |dB difference|
   over the cells where some render of the sweep sounds, averaged over
   resolutions) of its points from the sweep's mean spectrogram, scaled by
   sqrt(n/(n-1)) so that sweeps of different lengths compare; the *static*
   spread is the same on the time-averaged spectra (which a phase shift does
   not move); the *neighbour* distance is the mean distance between
   consecutive points.
5. **Noise floor.** The same patch (base with gate) rendered with R different
   render seeds; its spreads (same statistics) are the floors of that base.
   Detune, vintage noise, noise oscillators, random LFOs, reverb modulation and
   a plugin's carried-over state make renders differ; renders run in a shuffled
   order so that every render follows an unrelated patch.
6. **Score.** Per base, the excess of the spread over its floor, frame-wise or
   static, whichever is larger (dB) — one scale (dB of log-mel change) for
   every parameter, whatever its number of values, normalized by subtracting
   the floor rather than dividing by it (a deterministic synth has a floor of
   0). The score is the interquartile mean of the bases' excesses (the mean of
   the middle half: as indifferent to a few odd bases as the median, but
   steadier between runs with different seeds; the README gives both rank
   correlations). A 90 %
   interval comes from a bootstrap over the bases. A base shows the parameter
   when a spread exceeds both 1.5 times its floor and 0.1 dB; a parameter
   whose median margin over that threshold is not positive (fewer than half
   the bases show it) is *inaudible*; one with a score of at least 1 dB is
   *strong*; the rest are *weak*.
7. **Also.** Monotonicity: |Spearman ρ| between the sweep position and a 1-D
   embedding of its spectrograms (each point's distance from the first point
   minus its distance from the last), median over the bases that show the
   parameter; 1 means the sweep moves the sound steadily one way. Aspect: the
   change of five descriptors (loudness dB, brightness = spectral centroid in
   semitones, pitch = autocorrelation f0 in semitones, median deviation so that
   octave errors at a few points do not count, time envelope shape dB,
   modulation = fluctuation of level and centroid) beyond their own floor,
   each divided by a just-noticeable scale; the largest names the aspect. The
   time-averaged (phase-robust) spectrum spread is reported beside the
   frame-wise one.
"""
from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from synth_probe import spectral
from synth_probe.errors import ParameterValueError, RenderError, SamplerError
from synth_probe.progress import Progress
from synth_probe.render import Task, TaskFailure, build_programs, run_tasks
from synth_probe.sampling import sample_patches
from synth_probe.probe import parse_probe
from synth_probe.sensitivity_analysis import analyse_group, bootstrap_iqm, combine_renders, iqm
from synth_probe.synths.base import ParamSpec, RenderSettings, Synth
from synth_probe.util import json_clean, library_versions

__all__ = [
    "SensitivityConfig",
    "ParamResult",
    "SensitivityResult",
    "run_sensitivity",
    "stability",
    "iqm",
    "ASPECT_SCALES",
    "METHOD",
]

METHOD = __doc__.split("Method (the report states it too; :data:`METHOD` is the text):", 1)[1].strip()

#: just-noticeable scale of each aspect's descriptor change (dB, semitones, dB, dB, dB|st)
ASPECT_SCALES: dict[str, float] = {
    "loudness": 2.0,
    "brightness": 1.0,
    "pitch": 0.5,
    "envelope": 2.0,
    "modulation": 1.0,
}
ASPECT_UNITS = {"loudness": "dB", "brightness": "st", "pitch": "st", "envelope": "dB", "modulation": "dB"}

CLASSES = ("strong", "weak", "inaudible")
#: seconds between progress lines when stderr is not a terminal
PROGRESS_INTERVAL = 10.0


# ----------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SensitivityConfig:
    """Settings of one sensitivity run.

    Parameters
    ----------
    bases : int
        K: the default patch plus ``bases - 1`` random patches.
    steps : int
        S: sweep points of a continuous parameter (discrete ones take every choice).
    seed : int
        Seeds the random bases, every render seed and the bootstrap.
    floor_seeds : int
        R: renders per noise-floor measurement.
    sampler : str
        Sampler of the random bases; "timbral" falls back to "all" for synths
        without TAL-NoiseMaker's names.
    note, velocity, note_length, render_length, sample_rate
        How each patch is played (see :class:`RenderSettings`).
    jobs : int
        Worker processes for rendering (1 renders in this process).
    params : tuple of str or None
        Study only these parameters (default: all).
    max_choices : int or None
        Sweep at most this many choices of a discrete parameter (evenly spaced,
        both ends kept); None sweeps every choice.
    strong_db, audible_db, floor_factor : float
        Class thresholds: strong when the score is at least ``strong_db``;
        a base shows the parameter when its spread exceeds
        ``max(floor_factor * floor, audible_db)``.
    bootstrap : int
        Bootstrap resamples of the bases.
    chunk : int
        Renders per task (a task renders and analyses whole sweeps in one worker).
    media_clip : float
        Seconds of audio kept for the report's players (16 kHz, 16-bit).
    """

    bases: int = 10
    steps: int = 9
    seed: int = 0
    floor_seeds: int = 3
    sampler: str = "timbral"
    note: int = 60
    velocity: int = 100
    note_length: float = 1.0
    render_length: float = 1.5
    sample_rate: int = 22050
    jobs: int = 1
    params: tuple[str, ...] | None = None
    max_choices: int | None = None
    strong_db: float = 1.0
    audible_db: float = 0.1
    floor_factor: float = 1.5
    bootstrap: int = 2000
    chunk: int = 96
    media_clip: float = 1.0
    probe: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "probe", parse_probe(self.probe).text())
        if int(self.bases) < 1:
            raise ParameterValueError(f"bases must be >= 1 (the default patch is the first), got {self.bases}")
        if int(self.steps) < 3:
            raise ParameterValueError(f"steps must be >= 3 (a sweep needs ends and a middle), got {self.steps}")
        if int(self.floor_seeds) < 2:
            raise ParameterValueError(f"floor_seeds must be >= 2 (a floor compares renders), got {self.floor_seeds}")
        if int(self.jobs) < 1:
            raise ParameterValueError(f"jobs must be >= 1, got {self.jobs}")
        if int(self.seed) < 0:
            raise ParameterValueError(f"seed must be >= 0, got {self.seed}")
        if self.max_choices is not None and int(self.max_choices) < 2:
            raise ParameterValueError(f"max_choices must be >= 2 or None, got {self.max_choices}")
        self.render_settings()  # validates note, lengths, rate

    def render_settings(self) -> RenderSettings:
        return RenderSettings(int(self.note), int(self.velocity), float(self.note_length),
                              float(self.render_length), int(self.sample_rate))

    def probe_renders(self) -> list[RenderSettings] | None:
        """The probe's render settings; None for the default probe (the one note of :meth:`render_settings`)."""
        probe = parse_probe(self.probe)
        return None if probe.is_default else probe.renders(self.render_settings())

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = list(self.params) if self.params is not None else None
        if d["probe"] == "default":  # a one-note run's results read as they did before probes
            d.pop("probe")
        return d


# ----------------------------------------------------------------------------- results
@dataclass
class ParamResult:
    """What the study found for one parameter (all distances in dB of log-mel change)."""

    name: str
    index: int
    group: str
    kind: str
    n_values: int
    inert_spec: bool
    gated: bool
    gate: dict[str, float]
    values: list[float]
    labels: list[str]
    score: float
    ci_low: float
    ci_high: float
    classification: str
    spread: float
    floor: float
    snr: float
    neighbour: float
    static_spread: float
    audible_fraction: float
    monotonicity: float | None
    aspect: str | None
    aspects: dict[str, float]
    per_base: list[dict[str, float]]
    score_closed: float | None = None
    ci_closed: tuple[float, float] | None = None
    class_closed: str | None = None
    rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci_closed"] = list(self.ci_closed) if self.ci_closed is not None else None
        return json_clean(d)


@dataclass
class SensitivityResult:
    """A finished (or interrupted) run: per-parameter results ranked by score, plus context."""

    synth: dict[str, Any]
    config: SensitivityConfig
    params: list[ParamResult]
    n_renders: int
    seconds: float
    render_seconds: float
    bases: list[dict[str, float]]
    floors: dict[str, float]
    sampler_used: str
    versions: dict[str, str]
    created: str
    complete: bool = True
    stability: dict[str, Any] | None = None
    media: dict[str, Any] = field(default_factory=dict, repr=False)

    def ranked(self) -> list[ParamResult]:
        return sorted(self.params, key=lambda p: p.rank)

    def by_name(self) -> dict[str, ParamResult]:
        return {p.name: p for p in self.params}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (no media)."""
        return json_clean({
            "kind": "synth_probe.sensitivity",
            "format": 1,
            "created": self.created,
            "complete": self.complete,
            "synth": self.synth,
            "config": self.config.to_dict(),
            "sampler_used": self.sampler_used,
            "method": METHOD,
            "aspect_scales": ASPECT_SCALES,
            "n_renders": self.n_renders,
            "seconds": self.seconds,
            "render_seconds": self.render_seconds,
            "versions": self.versions,
            "bases": self.bases,
            "floors": self.floors,
            "stability": self.stability,
            "params": [p.to_dict() for p in self.ranked()],
        })

    def table_rows(self) -> list[dict[str, Any]]:
        """One flat row per parameter, in rank order (the CSV's columns)."""
        rows = []
        for p in self.ranked():
            rows.append({
                "rank": p.rank, "param": p.name, "index": p.index, "group": p.group, "kind": p.kind,
                "n_values": p.n_values, "score_db": p.score, "ci_low_db": p.ci_low, "ci_high_db": p.ci_high,
                "class": p.classification, "spread_db": p.spread, "floor_db": p.floor, "snr": p.snr,
                "neighbour_db": p.neighbour, "static_spread_db": p.static_spread,
                "audible_fraction": p.audible_fraction, "monotonicity": p.monotonicity,
                "aspect": p.aspect or "", "gated": p.gated,
                "score_closed_db": p.score_closed,
                "ci_closed_low_db": p.ci_closed[0] if p.ci_closed else None,
                "ci_closed_high_db": p.ci_closed[1] if p.ci_closed else None,
                "class_closed": p.class_closed or "",
                **{f"aspect_{a}": p.aspects.get(a) for a in spectral.ASPECTS},
                "inert_in_spec": p.inert_spec,
            })
        return json_clean(rows)


# ----------------------------------------------------------------------------- plan
@dataclass
class _Unit:
    """A group of renders analysed together: one sweep or one floor measurement."""

    kind: str  # "sweep" or "floor"
    key: tuple
    vectors: np.ndarray
    seeds: np.ndarray
    media: bool = False


def _seed_of(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) & 0xFFFFFFFF for w in words]).generate_state(1)[0] & 0x7FFFFFFF)


def _config_id(overrides: Mapping[str, float]) -> int:
    return zlib.crc32(repr(sorted((k, round(float(v), 9)) for k, v in overrides.items())).encode())


def sweep_values(spec: ParamSpec, steps: int, max_choices: int | None = None) -> np.ndarray:
    """Unit values a sweep visits: S evenly spaced for continuous, every choice for discrete.

    Returns
    -------
    values : np.ndarray [shape=(n_values,)]
    """
    if spec.is_discrete:
        vals = np.asarray(spec.choice_values, dtype=np.float64)
        if len(vals) < 2:  # a one-choice "switch": nothing to sweep but its value
            vals = np.array([0.0, 1.0])
        if max_choices is not None and len(vals) > max_choices:
            keep = np.unique(np.round(np.linspace(0, len(vals) - 1, int(max_choices))).astype(int))
            vals = vals[keep]
        return vals
    return np.linspace(0.0, 1.0, int(steps))


def closed_gate(synth: Synth, spec: ParamSpec) -> dict[str, float]:
    """The gate's parameters at their defaults: the "closed" state of ``spec``'s gate."""
    return {k: float(synth.spec(k).default) for k in spec.gate}


def draw_bases(synth: Synth, config: SensitivityConfig) -> tuple[np.ndarray, str]:
    """The K base vectors (the default patch first) and the name of the sampler used.

    Returns
    -------
    bases : np.ndarray [shape=(K, n_params)]
    sampler : str
    """
    default = synth.patch_vector()
    k = int(config.bases)
    if k == 1:
        return default[None, :], config.sampler
    sampler = config.sampler
    try:
        df = sample_patches(synth, k - 1, sampler=sampler, seed=int(config.seed))
    except SamplerError:
        if sampler != "timbral":
            raise
        sampler = "all"
        df = sample_patches(synth, k - 1, sampler=sampler, seed=int(config.seed))
    rand = df[list(synth.param_names)].to_numpy(dtype=np.float64)
    return np.vstack([default[None, :], rand]), sampler


def _with(vec: np.ndarray, index: Mapping[str, int], overrides: Mapping[str, float]) -> np.ndarray:
    out = vec.copy()
    for k, v in overrides.items():
        out[index[k]] = float(v)
    return out


def _plan(synth: Synth, config: SensitivityConfig, specs: Sequence[ParamSpec], bases: np.ndarray) -> list[_Unit]:
    index = {s.name: i for i, s in enumerate(synth.specs)}
    seed = int(config.seed)
    r = int(config.floor_seeds)
    floors: dict[tuple, _Unit] = {}
    sweeps: list[_Unit] = []

    def floor_unit(b: int, overrides: Mapping[str, float]) -> tuple:
        cid = _config_id(overrides)
        key = ("floor", b, cid)
        if key not in floors:
            vec = _with(bases[b], index, overrides)
            floors[key] = _Unit("floor", key, np.repeat(vec[None, :], r, axis=0),
                                np.array([_seed_of(seed, 1, cid, b, i) for i in range(r)], dtype=np.int64))
        return key

    for spec in specs:
        vals = sweep_values(spec, config.steps, config.max_choices)
        modes = [("open", dict(spec.gate))]
        if spec.gate:
            modes.append(("closed", closed_gate(synth, spec)))
        for mode, overrides in modes:
            for b in range(len(bases)):
                fkey = floor_unit(b, overrides)
                vec = _with(bases[b], index, overrides)
                vecs = np.repeat(vec[None, :], len(vals), axis=0)
                vecs[:, index[spec.name]] = vals
                seeds = np.array([_seed_of(seed, 2, spec.index, b, int(mode == "closed"), i)
                                  for i in range(len(vals))], dtype=np.int64)
                sweeps.append(_Unit("sweep", (spec.name, mode, b, fkey), vecs, seeds,
                                    media=(b == 0 and mode == "open")))
    return list(floors.values()) + sweeps


def _summarise(
    spec: ParamSpec,
    synth: Synth,
    config: SensitivityConfig,
    sweeps: dict[tuple[str, int], dict[str, Any]],
    floors: dict[tuple, dict[str, Any]],
    floor_keys: dict[tuple[str, int], tuple],
    rng: np.random.Generator,
) -> ParamResult:
    k = int(config.bases)
    vals = sweep_values(spec, config.steps, config.max_choices)

    def mode_stats(mode: str) -> dict[str, Any]:
        sw = [sweeps[(mode, b)] for b in range(k)]
        fl = [floors[floor_keys[(mode, b)]] for b in range(k)]
        d = np.array([x["spread"] for x in sw])
        f = np.array([x["spread"] for x in fl])
        ds = np.array([x["static"] for x in sw])
        fs = np.array([x["static"] for x in fl])
        # a base shows the parameter when the frame-wise spectrogram or the long-term
        # (time-averaged, phase-robust) spectrum moves beyond its own noise floor
        margin = np.maximum(d - np.maximum(config.floor_factor * f, config.audible_db),
                            ds - np.maximum(config.floor_factor * fs, config.audible_db))
        excess = np.maximum(d - f, ds - fs)
        score = iqm(excess)
        lo, hi = bootstrap_iqm(excess, config.bootstrap, rng)
        if float(np.median(margin)) <= 0.0:
            cls = "inaudible"
        elif score >= config.strong_db:
            cls = "strong"
        else:
            cls = "weak"
        return {"d": d, "f": f, "ds": ds, "fs": fs, "excess": excess, "margin": margin, "score": score,
                "lo": lo, "hi": hi, "cls": cls}

    st = mode_stats("open")
    audible = st["margin"] > 0
    mono_vals = [sweeps[("open", b)]["monotonicity"] for b in range(k) if audible[b]]
    mono_vals = [m for m in mono_vals if np.isfinite(m)]
    monotonicity = float(np.median(mono_vals)) if mono_vals else None
    aspects: dict[str, float] = {}
    for a in spectral.ASPECTS:
        per = []
        for b in range(k):
            sv = sweeps[("open", b)]["aspects"][a]
            fv = floors[floor_keys[("open", b)]]["aspects"][a]
            if not np.isfinite(sv):
                continue
            fv = fv if np.isfinite(fv) else 0.0
            per.append(max(sv - fv, 0.0) / ASPECT_SCALES[a])
        aspects[a] = float(np.median(per)) if per else float("nan")
    aspect = None
    if st["cls"] != "inaudible":
        finite = {a: v for a, v in aspects.items() if np.isfinite(v)}
        if finite and max(finite.values()) > 0:
            aspect = max(finite, key=finite.get)
    f_med = float(np.median(st["f"]))
    snr = float(np.median(st["d"] / np.maximum(st["f"], config.audible_db / config.floor_factor)))
    per_base = [
        {"spread": float(st["d"][b]), "floor": float(st["f"][b]), "static": float(st["ds"][b]),
         "static_floor": float(st["fs"][b]), "excess": float(st["excess"][b]),
         "audible": bool(audible[b]), "neighbour": sweeps[("open", b)]["neighbour"],
         "monotonicity": sweeps[("open", b)]["monotonicity"]}
        for b in range(k)
    ]
    res = ParamResult(
        name=spec.name, index=int(spec.index), group=spec.group,
        kind=f"{spec.n_choices}-way" if spec.is_discrete else "continuous",
        n_values=len(vals), inert_spec=bool(spec.inert), gated=bool(spec.gate),
        gate={k_: float(v) for k_, v in spec.gate.items()},
        values=[float(v) for v in vals], labels=[spec.display(float(v)) for v in vals],
        score=st["score"], ci_low=st["lo"], ci_high=st["hi"], classification=st["cls"],
        spread=float(np.median(st["d"])), floor=f_med, snr=snr,
        neighbour=float(np.median([sweeps[("open", b)]["neighbour"] for b in range(k)])),
        static_spread=float(np.median(st["ds"])),
        audible_fraction=float(np.mean(audible)), monotonicity=monotonicity,
        aspect=aspect, aspects=aspects, per_base=per_base,
    )
    if spec.gate:
        sc = mode_stats("closed")
        res.score_closed, res.ci_closed, res.class_closed = sc["score"], (sc["lo"], sc["hi"]), sc["cls"]
    return res


def _rank(params: list[ParamResult]) -> None:
    order = {"strong": 0, "weak": 1, "inaudible": 2}
    ranked = sorted(params, key=lambda p: (order[p.classification], -p.score, p.index))
    for i, p in enumerate(ranked, 1):
        p.rank = i


# ----------------------------------------------------------------------------- rendering
def _tasks(units: list[_Unit], size: int) -> list[list[_Unit]]:
    """Group units into tasks of about ``size`` renders, never splitting a unit."""
    out: list[list[_Unit]] = []
    cur: list[_Unit] = []
    n = 0
    for u in units:
        if cur and n + len(u.vectors) > size:
            out.append(cur)
            cur, n = [], 0
        cur.append(u)
        n += len(u.vectors)
    if cur:
        out.append(cur)
    return out


def _render_and_analyse(
    ctx: Any,
    units: list[tuple[tuple, str, np.ndarray, np.ndarray, bool]],
    settings: RenderSettings,
    clip: float,
    order_seed: int,
    renders: list[RenderSettings] | None = None,
) -> list[tuple[tuple, str, dict[str, Any]]]:
    """Task body (in a worker process, or here for jobs=1): render a group of units, then analyse each.

    Renders run in a shuffled order: a plugin carries state from one render into
    the next (release tails, smoothing, free-running LFOs), so every render — of a
    sweep or of a floor measurement alike — should follow an unrelated patch.
    A render that is not finite gets a fresh synth instance and one retry. With a probe
    (``renders``), every patch is rendered at each of its settings, each render's groups are
    analysed alone and :func:`~synth_probe.sensitivity_analysis.combine_renders` sums them.
    """
    from threadpoolctl import threadpool_limits

    vecs = np.concatenate([u[2] for u in units])
    seeds = np.concatenate([u[3] for u in units])
    plays = renders or [settings]
    audio = np.empty((len(plays), len(vecs), settings.n_samples), dtype=np.float32)
    for j in np.random.default_rng(order_seed).permutation(len(vecs)):
        ctx.start(int(j))
        for r, play in enumerate(plays):
            audio[r, j] = _render_finite(ctx, vecs[j], play, int(seeds[j]))
        ctx.done(int(j))
    out = []
    pos = 0
    with threadpool_limits(limits=1):
        for key, kind, v, _, media in units:
            infos = [analyse_group(audio[r, pos : pos + len(v)], settings.sample_rate, media=media and r == 0,
                                   clip=clip) for r in range(len(plays))]
            pos += len(v)
            out.append((key, kind, infos[0] if renders is None else combine_renders(infos)))
    return out


def _render_finite(ctx: Any, vec: np.ndarray, settings: RenderSettings, seed: int) -> np.ndarray:
    """One render of ``vec``; a non-finite one gets a fresh synth instance and one retry."""
    for _attempt in range(2):
        y = ctx.synth.render_vector(vec, settings, seed=seed)
        if np.all(np.isfinite(y)):
            return y
        ctx.recreate()
    patch = dict(zip(ctx.synth.param_names, map(float, vec)))
    raise RenderError("the synth rendered non-finite audio twice for this patch (with a fresh instance "
                      "the second time)", patch=patch)


def _run_tasks(
    synth: Synth, tasks: list[list[_Unit]], settings: RenderSettings, config: SensitivityConfig,
    on_renders: Callable[[int], None],
) -> Iterator[list[tuple[tuple, str, dict[str, Any]]]]:
    """Run the tasks here (jobs=1) or on the render module's worker pool; yield each task's results."""
    payloads = [[(u.key, u.kind, u.vectors, u.seeds, u.media) for u in t] for t in tasks]
    order_seeds = [_seed_of(int(config.seed), 4, i) for i in range(len(tasks))]
    renders = config.probe_renders()
    pool_tasks = [Task(key=i, func=_render_and_analyse,
                       args=(payloads[i], settings, config.media_clip, order_seeds[i], renders))
                  for i in range(len(payloads))]

    def error(res: TaskFailure) -> RenderError:
        flat, idx = np.concatenate([u[2] for u in payloads[res.key]]), res.patch_index
        patch = (dict(zip(synth.param_names, map(float, flat[idx])))
                 if idx is not None and 0 <= idx < len(flat) else None)
        return RenderError(f"sensitivity task {res.key} failed ({res.kind}): {res.message}", patch=patch)

    # a task whose worker crashed or hung is run once more, on a fresh worker
    for i, res in run_tasks(synth, pool_tasks, jobs=int(config.jobs), in_process=int(config.jobs) <= 1,
                            retry_crashed=1, error=error, on_done=lambda _: on_renders(1)):
        yield res


def select_specs(synth: Synth, params: Sequence[str] | None) -> list[ParamSpec]:
    """The specs to study: all, or the named ones (unknown names raise with suggestions)."""
    if params is None:
        return list(synth.specs)
    out = []
    for name in params:
        out.append(synth.spec(name))  # raises UnknownParameterError
    if not out:
        raise ParameterValueError("params must name at least one parameter")
    return out


def run_sensitivity(
    synth: Synth,
    config: SensitivityConfig | None = None,
    *,
    log: Callable[[str], None] | None = None,
) -> SensitivityResult:
    """Run the sensitivity study on ``synth``.

    Parameters
    ----------
    synth : Synth
    config : SensitivityConfig, optional
    log : callable, optional
        Receives progress lines.

    Returns
    -------
    result : SensitivityResult
        Ranked per-parameter results. If the run is interrupted (Ctrl-C), the
        parameters finished so far are returned with ``complete=False``.
    """
    config = config or SensitivityConfig()
    t_start = time.perf_counter()
    created = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    settings = config.render_settings()
    specs = select_specs(synth, config.params)
    bases, sampler_used = draw_bases(synth, config)
    units = _plan(synth, config, specs, bases)
    n_total = sum(len(u.vectors) for u in units)
    if log:
        log(f"sensitivity: {len(specs)} parameters x {len(bases)} bases, {n_total} renders "
            f"({settings.render_length:g} s at {settings.sample_rate} Hz, jobs={config.jobs})")
    rng = np.random.default_rng(_seed_of(int(config.seed), 3))
    floors: dict[tuple, dict[str, Any]] = {}
    sweeps: dict[str, dict[tuple[str, int], dict[str, Any]]] = {s.name: {} for s in specs}
    floor_keys: dict[str, dict[tuple[str, int], tuple]] = {s.name: {} for s in specs}
    expected = {s.name: int(config.bases) * (2 if s.gate else 1) for s in specs}
    by_name = {s.name: s for s in specs}
    results: dict[str, ParamResult] = {}
    media: dict[str, Any] = {}
    done = [0]
    complete = True
    # programs the renders would compile on the way (a Faust synth on a fresh cache) are built first, in
    # their own phase, so that the renders run at an even pace and their time left holds from the start
    build_programs(synth, np.concatenate([u.vectors for u in units]), settings, jobs=int(config.jobs), log=log,
                   desc="sensitivity", interval=PROGRESS_INTERVAL)
    bar = Progress(n_total, "sensitivity", log=log, enabled=log is not None, interval=PROGRESS_INTERVAL)

    def summarise_ready() -> None:
        for name in list(sweeps):
            got = sweeps[name]
            if len(got) == expected[name] and all(floor_keys[name][k] in floors for k in got):
                results[name] = _summarise(by_name[name], synth, config, got, floors, floor_keys[name], rng)
                del sweeps[name]

    def on_renders(n: int) -> None:
        done[0] += n
        bar.update(n)

    tasks = _tasks(units, int(config.chunk))
    try:
        for res in _run_tasks(synth, tasks, settings, config, on_renders):
            for key, kind, info in res:
                if kind == "floor":
                    floors[key] = info
                    continue
                name, mode, b, fkey = key
                if "strip" in info:
                    media[name] = {"strip": info.pop("strip"), "clips": info.pop("clips")}
                sweeps[name][(mode, b)] = info
                floor_keys[name][(mode, b)] = fkey
            summarise_ready()
            bar.update(0, extra=f"{len(results)}/{len(specs)} parameters")
    except KeyboardInterrupt:
        complete = False
        summarise_ready()
        bar.write(f"sensitivity: interrupted; keeping the {len(results)} parameters finished")
    finally:
        bar.close()
    render_s = time.perf_counter() - t_start
    done = done[0]
    params = [results[s.name] for s in specs if s.name in results]
    _rank(params)
    floor_all = np.array([f["spread"] for f in floors.values()]) if floors else np.zeros(1)
    index = {s.name: i for i, s in enumerate(synth.specs)}
    base_desc = []
    default = synth.patch_vector()
    for b, vec in enumerate(bases):
        changed = {n: float(vec[i]) for n, i in index.items() if abs(vec[i] - default[i]) > 1e-12}
        base_desc.append({"base": b, "kind": "default" if b == 0 else f"random ({sampler_used})",
                          "n_changed": len(changed), "changed": changed})
    return SensitivityResult(
        synth=synth.identity(), config=config, params=params, n_renders=done,
        seconds=time.perf_counter() - t_start, render_seconds=render_s, bases=base_desc,
        floors={"median_db": float(np.median(floor_all)), "max_db": float(np.max(floor_all)),
                "n_measurements": len(floors)},
        sampler_used=sampler_used, versions=library_versions(), created=created, complete=complete, media=media,
    )


def stability(a: SensitivityResult, b: SensitivityResult) -> dict[str, Any]:
    """Spearman rank correlation of the scores of two runs over the parameters above the floor in both.

    Returns
    -------
    info : dict
        ``spearman`` (float or None), ``n`` (parameters compared), ``params``
        (their names), ``seeds``, ``agreement`` (fraction of all parameters with
        the same class in both runs).
    """
    pa, pb = a.by_name(), b.by_name()
    common = [n for n in pa if n in pb]
    both = [n for n in common if pa[n].classification != "inaudible" and pb[n].classification != "inaudible"]
    rho = None
    if len(both) >= 3:
        r = spearmanr([pa[n].score for n in both], [pb[n].score for n in both]).statistic
        rho = float(r) if np.isfinite(r) else None
    all_rho = None
    if len(common) >= 3:
        r = spearmanr([pa[n].score for n in common], [pb[n].score for n in common]).statistic
        all_rho = float(r) if np.isfinite(r) else None
    agree = float(np.mean([pa[n].classification == pb[n].classification for n in common])) if common else None
    return {
        "spearman": rho,
        "n": len(both),
        "params": both,
        "spearman_all": all_rho,
        "n_all": len(common),
        "class_agreement": agree,
        "seeds": [int(a.config.seed), int(b.config.seed)],
    }
