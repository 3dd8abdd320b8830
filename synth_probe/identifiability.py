"""Identifiability in context: among the patches a sampler draws, does the sound pin a parameter down?

The sensitivity study asks whether a parameter *can* change the sound (it opens
the parameter's gate first). A model trained on random patches faces a harder
question: in a random patch, with every other parameter random too, does the
render tell this parameter's value apart? Two things can stop it:

*masked*
    moving the parameter far changes the render by no more than two renders of
    the same patch differ (the synth's own noise sources: noise oscillators,
    sample-and-hold LFOs) plus a small tolerance. The LFO amount with its
    destination off is masked; so is a knob whose effect is drowned by noise.
*confounded*
    the change is audible, but other parameters can undo it: a search over the
    other varied parameters finds a *twin*, a patch with the moved value that
    renders (within the floor and tolerance) like the original. The
    filter key-follow on a fixed note is confounded with the cutoff.

For each parameter and each of ``bases`` patches drawn by the sampler:

1. ``floor``: distance between two renders of the base with different render
   seeds;
2. ``effect``: the parameter moved half its range (continuous ``v -> (v + 0.5)
   mod 1``; discrete: the choice half-way round), rendered with the base's seed;
3. masked when ``effect <= floor + tolerance``;
4. otherwise a hill climb (:func:`synth_probe.matching.hill_climb`) over the
   other varied parameters, from the moved patch toward the base's render,
   within ``budget`` renders: confounded when it reaches ``floor + tolerance``,
   *distinct* otherwise;
5. the same for smaller moves (``steps``, by default 0.25 and 0.1 of the range,
   toward the middle; discrete: the neighbouring choice). The half-range move
   says whether the sound tells far-apart values apart; the smaller ones how
   closely it resolves the value, which is what a high R² needs.

A base the synth cannot render (non-finite audio, a plugin that crashes or
hangs) is recorded with its error and left out of the shares; the other
probes go on.

Distances are :class:`~synth_probe.matching.MatchObjective`'s multi-resolution
log-mel L1 (dB). A twin found proves the confound at that base; a search that
finds none proves nothing. For a continuous parameter the summary turns the
verdicts into a rough *resolvable R²*: at each base the value is taken as
known to within ``Δ``, the largest probed move that is not distinct (the whole
range when the half-range move is not), and a uniform error of ``±Δ`` costs
``4 Δ²`` of R² (the range's variance is 1/12), so ``1 − 4 mean(Δ²)``.
The same estimate at looser tolerances (:data:`LOOSER_TOLERANCES_DB`) comes from
the stored distances without new renders: a move counts as not distinct there
when its effect or its twin lies within ``floor + tolerance``. How fast it falls
says how fine a difference a model must hear to reach a given R². Each search also
keeps the best distance it had after half its renders; the estimate from those
(``resolvable_r2_half_budget``) above the full one says the searches were still
finding twins, so a bigger ``budget`` would lower the estimate further; the same
value is no proof that they had settled.

The same verdicts give a *resolvable MPR* (``resolvable_mpr``), in the predictability
study's own metric (:mod:`synth_probe.metrics`): at a base whose largest not-distinct
move took the value from ``x`` to ``m``, two patches that sound alike hold ``x`` and
``m``, so one prediction serves both; the base scores the best mean percentile rank
that one prediction gives the pair (continuous: the 16 bins, or the sampler's grid
levels; discrete: the two choices ranked first, ``100 − 50 / (K − 1)`` over the
sampler's ``K`` choices), 50 (chance) where even the half-range move is masked, and 100
where every move is distinct. It counts one twin per base and nothing finer than the
smallest move, so it leans high.

These are estimates, not bounds: twins the search missed would lower them;
a model can hear differences below the tolerance in renders without noise,
which would raise them; and with K bases each share is uncertain by about
``±0.5/sqrt(K)``.
"""
from __future__ import annotations

import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from synth_probe.errors import ParameterValueError, RenderError, SamplerError
from synth_probe.matching import SEARCH_METHODS, MatchObjective, ProbeObjective, refine
from synth_probe.metrics import mpr_continuous, mpr_levels
from synth_probe.probe import parse_probe, render_probe
from synth_probe.progress import Progress
from synth_probe.render import Task, TaskFailure, run_tasks
from synth_probe.sampling import SAMPLERS, make_plan
from synth_probe.sensitivity import select_specs
from synth_probe.synths.base import ParamSpec, RenderSettings, Synth

__all__ = ["IdentifiabilityConfig", "IdentifiabilityResult", "probe_base", "moved_value", "run_identifiability",
           "compare_probes", "mpr_classes", "RESULTS_NAME", "PROBES_RESULTS_NAME"]

RESULTS_NAME = "identifiability.json"
#: the comparison of candidate probes (:func:`compare_probes`); the report section reads it under the same name
PROBES_RESULTS_NAME = "identifiability_probes.json"
#: a twin's parameter counts as a compensator when it moved by more than this (unit values)
MOVE_THRESHOLD = 1e-3
#: tolerances (dB above the floor) at which the summary also gives the resolvable R², from the stored distances
LOOSER_TOLERANCES_DB = (0.5, 1.0, 2.0)


def _not_distinct(move: dict[str, Any], floor: float, tolerance_db: float, twin_key: str = "twin") -> bool:
    """Whether a probed move would not be distinct at ``tolerance_db`` (at or above the run's tolerance), judged
    by its effect and the twin distance under ``twin_key`` (``twin_half_budget``: after half the search)."""
    limit = float(floor) + float(tolerance_db)
    if move["effect"] <= limit:
        return True
    twin = move.get(twin_key, move.get("twin"))
    return twin is not None and twin <= limit


def _resolvable_r2(recs: Sequence[dict[str, Any]], tolerance_db: float | None = None,
                   twin_key: str = "twin") -> float:
    """``1 - 4 mean(Δ²)`` over ``recs``; Δ from the stored verdicts, or re-judged at ``tolerance_db``."""
    widths = []
    for r in recs:
        moves = r.get("steps", [])
        if tolerance_db is None:
            nd = [m["step"] for m in moves if m["verdict"] != "distinct"]
        else:
            nd = [m["step"] for m in moves if _not_distinct(m, r["floor"], tolerance_db, twin_key)]
        widths.append(max(nd, default=0.0))
    return float(1.0 - 4.0 * np.mean(np.square(widths)))


def _pair_rank(x: float, m: float, levels: Sequence[float] | None, discrete: bool) -> float:
    """The best mean percentile rank one prediction gives two patches holding ``x`` and ``m`` (see the module
    notes): discrete, the two choices ranked first among ``len(levels)``; continuous, the best point between the
    two, ranked over ``levels`` (a sampler's grid) or the metric's 16 bins."""
    if discrete:
        k = len(levels) if levels else 0
        return 100.0 if k < 2 else 100.0 - 50.0 / (k - 1)
    lo, hi = sorted((float(x), float(m)))
    truth = [float(x), float(m)]
    best = 0.0
    for p in np.linspace(lo, hi, 21):
        pred = [p, p]
        r = mpr_levels(truth, pred, levels) if levels else mpr_continuous(truth, pred)
        best = max(best, r)
    return best


def _resolvable_mpr(recs: Sequence[dict[str, Any]], levels: Sequence[float] | None, discrete: bool) -> float | None:
    """Mean over ``recs`` of :func:`_pair_rank` at the largest move not distinct (100 where all are, 50 where
    the half-range move is masked); None for a discrete parameter whose number of choices is not known (a run
    from before this estimate) or records without the moved values."""
    if discrete and not levels:
        return None
    ranks = []
    for r in recs:
        moves = [m for m in r.get("steps", []) if m["verdict"] != "distinct"]
        if not moves:
            ranks.append(100.0)
            continue
        widest = max(moves, key=lambda m: m["step"])
        if widest["verdict"] == "masked" and widest["step"] >= 0.5:  # not heard across half the range: chance
            ranks.append(50.0)
        elif widest.get("moved") is None or r.get("value") is None:  # a record without the values moved
            return None
        else:
            ranks.append(_pair_rank(r["value"], widest["moved"], levels, discrete))
    return float(np.mean(ranks)) if ranks else None


def mpr_classes(synth: Synth, plan: Any, params: Sequence[str]) -> dict[str, list[float]]:
    """The classes the predictability study's MPR ranks, per parameter of ``params`` (unit values): a
    discrete parameter's choices as the sampler draws them, a continuous parameter's grid levels where the
    sampler draws from a grid; a continuous parameter drawn from the whole range is left out (16 bins)."""
    out: dict[str, list[float]] = {}
    for j, name in enumerate(plan.names):
        if name not in params:
            continue
        spec = synth.spec(name)
        if plan.mode[j] == 2:
            out[name] = sorted({float(v) for v in plan.values[j]})
        elif plan.mode[j] == 1 and plan.grid:
            out[name] = [float(v) for v in np.linspace(0.0, 1.0, int(plan.grid))]
        elif spec.is_discrete:
            out[name] = sorted({float(v) for v in spec.choice_values})
    return out


@dataclass(frozen=True)
class IdentifiabilityConfig:
    """Settings of :func:`run_identifiability`.

    Parameters
    ----------
    sampler : str
        Named sampler of the base patches (``timbral``, ``inversynth``, ``all``).
    bases : int
        Random base patches per parameter (the sampler's rows ``0 .. bases-1``).
    budget : int
        Renders of each twin search.
    search : {"hill", "cmaes"}
        The twin search (:func:`~synth_probe.matching.refine`'s ``method``):
        :func:`~synth_probe.matching.hill_climb` or :func:`~synth_probe.matching.cmaes_search`.
    tolerance_db : float
        Distance (dB) above the render-noise floor that still counts as "the same sound".
    steps : tuple of float
        The moves probed, largest first (unit range; :func:`moved_value`). The first (0.5) gives the
        masked / confounded / distinct shares; the smaller ones how finely the sound resolves the
        value, from which a rough resolvable R² is estimated (:meth:`IdentifiabilityResult.summary`).
    seed : int
        Sampler seed (bases, render seeds) and search seed.
    params : tuple of str, optional
        Parameters to probe (default: every parameter the sampler varies).
    jobs : int
        Worker processes.
    note, velocity, note_length, render_length, sample_rate
        How each patch is played (defaults: the sensitivity study's; the sampler's
        own render settings, as InverSynth II's, replace them where it has them).
    probe : str
        The probe's text form (:func:`synth_probe.probe.parse_probe`; default: the one note above).
        With several renders, distances sum over them (:class:`synth_probe.matching.ProbeObjective`),
        so a twin must sound alike on every render; ``budget`` counts patches tried, each
        rendered once per probe render.
    """

    sampler: str = "timbral"
    bases: int = 16
    budget: int = 200
    search: str = "hill"
    tolerance_db: float = 0.2
    steps: tuple[float, ...] = (0.5, 0.25, 0.1)
    seed: int = 0
    params: tuple[str, ...] | None = None
    jobs: int = 1
    note: int = 60
    velocity: int = 100
    note_length: float = 1.0
    render_length: float = 1.5
    sample_rate: int = 22050
    probe: str = "default"

    def __post_init__(self) -> None:
        object.__setattr__(self, "probe", parse_probe(self.probe).text())
        for name, lo in (("bases", 1), ("budget", 0), ("jobs", 1)):
            if int(getattr(self, name)) < lo:
                raise ParameterValueError(f"{name} must be >= {lo}, got {getattr(self, name)}")
        if self.search not in SEARCH_METHODS:
            raise ParameterValueError(f"search must be one of {', '.join(SEARCH_METHODS)}, got {self.search!r}")
        if not float(self.tolerance_db) >= 0:
            raise ParameterValueError(f"tolerance_db must be >= 0 dB, got {self.tolerance_db}")
        st = tuple(float(x) for x in self.steps)
        if not st or any(not 0 < x <= 0.5 for x in st) or list(st) != sorted(st, reverse=True):
            raise ParameterValueError(f"steps must be unit-range moves in (0, 0.5], largest first, got {self.steps}")
        object.__setattr__(self, "steps", st)

    def settings(self) -> RenderSettings:
        return RenderSettings(int(self.note), int(self.velocity), float(self.note_length),
                              float(self.render_length), int(self.sample_rate))


def moved_value(spec: ParamSpec, value: float, step: float = 0.5) -> float:
    """The value ``step`` of the range away.

    Continuous: ``step = 0.5`` wraps (``(v + 0.5) mod 1``); a smaller step moves
    toward the middle of the range (so it stays inside). Discrete: 0.5 takes the
    choice half-way round, a smaller step the neighbouring choice.
    """
    v = float(value)
    if spec.is_discrete and spec.n_choices > 1:
        k = spec.choice_index(v)
        n = spec.n_choices
        shift = n // 2 if step >= 0.5 else (1 if k < n - 1 else -1)
        return float(spec.choice_values[(k + shift) % n])
    if step >= 0.5:
        return float((v + 0.5) % 1.0)
    return v + step if v < 0.5 else v - step


def probe_base(synth: Synth, base: np.ndarray, param: str, settings: RenderSettings, *, seed: int,
               compensate: Sequence[str], budget: int, tolerance_db: float, search_seed: int = 0,
               steps: Sequence[float] = (0.5,), search: str = "hill",
               renders: Sequence[RenderSettings] | None = None) -> dict[str, Any]:
    """Probe one parameter at one base patch: the floor, and for each move its effect and a twin search.

    Parameters
    ----------
    synth : Synth
    base : np.ndarray [shape=(n_params,)]
        The base patch (unit values).
    param : str
        The parameter moved.
    settings : RenderSettings
    seed : int
        The base's render seed (the floor render uses another).
    compensate : sequence of str
        Parameters the twin search may change (``param`` itself is left out).
    budget : int
        Renders of each twin search.
    tolerance_db : float
    search_seed : int
    steps : sequence of float, default=(0.5,)
        The moves (:func:`moved_value`); a discrete parameter's small steps all take the
        neighbouring choice, so it is probed once for them.
    search : {"hill", "cmaes"}, default="hill"
        The twin search (see :class:`IdentifiabilityConfig`).
    renders : sequence of RenderSettings, optional
        A probe's renders (:meth:`synth_probe.probe.Probe.renders`); with more than one, every
        distance is the sum over them. None: ``settings`` alone.

    Returns
    -------
    record : dict
        ``value``, ``floor`` (dB), ``renders`` and ``steps``: one dict per move with ``step``,
        ``moved``, ``effect``, ``twin`` (dB; None when masked), ``verdict`` ("masked",
        "confounded" or "distinct") and ``compensators`` (name -> unit change of the twin, largest
        first; only for confounded). The first move's fields are repeated at the top level.
    """
    names = list(synth.param_names)
    j = names.index(param)
    spec = synth.specs[j]
    multi = renders is not None and len(renders) > 1
    if multi:
        target = render_probe(synth, base, renders, seed=int(seed))
    else:
        target = synth.render_vector(base, settings, seed=int(seed))
    if not np.all(np.isfinite(target)):
        raise RenderError(f"the base patch rendered non-finite audio (probing {param})",
                          patch=dict(zip(names, map(float, base))))
    floor_seed = (int(seed) + 7919) % (2 ** 31)
    if multi:
        obj: Any = ProbeObjective(synth, target, renders, seed=int(seed))
        floor = obj.distance_of(render_probe(synth, base, renders, seed=floor_seed))
    else:
        obj = MatchObjective(synth, target, settings, seed=int(seed))
        floor = obj.distance_of(synth.render_vector(base, settings, seed=floor_seed))
    limit = floor + float(tolerance_db)
    start = obj.snap(base)
    free = [c for c in compensate if c != param]
    moves: list[dict[str, Any]] = []
    seen: dict[float, dict[str, Any]] = {}
    for i, step in enumerate(steps):
        moved = start.copy()
        moved[j] = moved_value(spec, float(base[j]), float(step))
        moved = obj.snap(moved)
        key = float(moved[j])
        if key in seen:  # a discrete parameter's small steps: the same neighbour
            moves.append({**seen[key], "step": float(step)})
            continue
        m = _probe_move(obj, base, moved, j, names, limit, free, budget, search_seed + 7 * i, search)
        m = {"step": float(step), **m}
        seen[key] = m
        moves.append(m)
    first = {k: v for k, v in moves[0].items() if k != "step"}
    n_target = len(renders) if multi else 1
    return {"value": float(base[j]), "floor": float(floor), **first, "steps": moves,
            "renders": 2 * n_target + obj.n_renders,
            "discrete": bool(spec.is_discrete)}


def _probe_move(obj: Any, base: np.ndarray, moved: np.ndarray, j: int, names: list[str], limit: float,
                free: list[str], budget: int, search_seed: int, search: str = "hill") -> dict[str, Any]:
    """Effect of one move and, when it is audible, a twin search from it toward the base's render."""
    effect = float(obj(moved)) if moved[j] != base[j] else 0.0
    rec: dict[str, Any] = {"moved": float(moved[j]), "effect": effect, "twin": None, "verdict": "masked",
                           "compensators": {}}
    if effect <= limit:
        return rec
    if budget > 0 and free:
        r = refine(obj, moved, int(budget), method=search, free=free, seed=int(search_seed), start_distance=effect)
        twin, vec = float(r.distance), r.vector
        # the best distance after half the renders: a search still closing in on a twin says the verdict may not hold
        half = r.history[: max(1, int(budget) // 2)]
        rec["twin_half_budget"] = float(half[-1]) if half else effect
    else:
        twin, vec = effect, moved
    rec["twin"] = twin
    if twin > limit:
        rec["verdict"] = "distinct"
        return rec
    rec["verdict"] = "confounded"
    # the search also carries moves that cost nothing (a parameter that is itself masked): put each moved
    # parameter back, smallest move first, and keep it back when the twin stays within the limit
    vec = vec.copy()
    moved_k = sorted((k for k in range(len(names)) if k != j and abs(vec[k] - base[k]) > MOVE_THRESHOLD),
                     key=lambda k: abs(vec[k] - base[k]))
    for k in moved_k:
        trial = vec.copy()
        trial[k] = base[k]
        if obj(trial) <= limit:
            vec = trial
    delta = {names[k]: float(vec[k] - base[k]) for k in range(len(names))
             if k != j and abs(vec[k] - base[k]) > MOVE_THRESHOLD}
    rec["compensators"] = dict(sorted(delta.items(), key=lambda kv: -abs(kv[1]))[:4])
    rec["twin"] = float(obj(vec))
    return rec


def _probe_task(ctx: Any, units: list[tuple[str, int, np.ndarray, int]], settings: RenderSettings,
                compensate: list[str], budget: int, tolerance_db: float, steps: tuple[float, ...],
                search: str = "hill", renders: list[RenderSettings] | None = None) -> list[tuple[str, int, dict]]:
    """Task body (a worker process, or here for jobs=1): probe a group of (parameter, base) units."""
    from threadpoolctl import threadpool_limits

    out = []
    with threadpool_limits(limits=1):
        for param, b, base, seed in units:
            ctx.start(b)
            try:
                rec = probe_base(ctx.synth, base, param, settings, seed=seed, compensate=compensate, budget=budget,
                                 tolerance_db=tolerance_db, search_seed=seed % 100003, steps=steps, search=search,
                                 renders=renders)
            except RenderError as e:  # the base itself does not render: record it, go on with the others
                rec = {"error": str(e)}
            ctx.done(b)
            out.append((param, b, rec))
    return out


@dataclass
class IdentifiabilityResult:
    """What :func:`run_identifiability` measured."""

    synth: dict[str, Any]
    config: dict[str, Any]
    records: dict[str, list[dict[str, Any]]]  # parameter -> one record per base (in base order)
    seconds: float = 0.0
    complete: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> list[dict[str, Any]]:
        """One row per parameter.

        ``masked``, ``confounded``, ``distinct``: shares of the bases (the first, half-range
        move); ``distinct_by_step``: the distinct share of every move; ``resolvable_r2``
        (continuous parameters): ``1 - 4 mean(Δ²)``, Δ the largest move not distinct at a
        base (see the module notes); ``resolvable_r2_at``: the same at each of
        :data:`LOOSER_TOLERANCES_DB` above the run's tolerance (dB as str -> value);
        ``resolvable_r2_half_budget``: the same with the twins each search had after half its
        renders (above ``resolvable_r2`` when the searches were still finding twins; None for
        records without it); ``resolvable_mpr``: the MPR the verdicts leave reachable (see the
        module notes; None for a discrete parameter of a run that did not record its classes);
        medians of the effect, floor and twin distances; the parameters the twins moved most often.
        """
        rows = []
        tolerance = float(self.config.get("tolerance_db", 0.0))
        looser = [t for t in LOOSER_TOLERANCES_DB if t > tolerance]
        classes = self.config.get("mpr_classes") or {}
        for p, recs in self.records.items():
            recs = [r for r in recs if r and "error" not in r]
            if not recs:
                continue
            n = len(recs)
            v = Counter(r["verdict"] for r in recs)
            comp = Counter(k for r in recs for k in r.get("compensators", {}))
            twins = [r["twin"] for r in recs if r.get("twin") is not None]
            by_step: dict[str, list[bool]] = {}
            for r in recs:
                for m in r.get("steps", []):
                    by_step.setdefault(f"{m['step']:g}", []).append(m["verdict"] == "distinct")
            continuous = not any(r.get("discrete") for r in recs) and any(r.get("steps") for r in recs)
            half_budget = any("twin_half_budget" in m for r in recs for m in r.get("steps", []))
            rows.append({
                "parameter": p, "bases": n,
                "masked": v["masked"] / n, "confounded": v["confounded"] / n, "distinct": v["distinct"] / n,
                "effect_db": float(np.median([r["effect"] for r in recs])),
                "floor_db": float(np.median([r["floor"] for r in recs])),
                "twin_db": float(np.median(twins)) if twins else None,
                "distinct_by_step": {k: float(np.mean(v)) for k, v in by_step.items()},
                "resolvable_r2": _resolvable_r2(recs) if continuous else None,
                "resolvable_r2_at": {f"{t:g}": _resolvable_r2(recs, t) for t in looser} if continuous else {},
                "resolvable_r2_half_budget": (_resolvable_r2(recs, tolerance, "twin_half_budget")
                                              if continuous and half_budget else None),
                "resolvable_mpr": _resolvable_mpr(recs, classes.get(p), any(r.get("discrete") for r in recs))
                                  if any(r.get("steps") for r in recs) else None,
                "compensators": [k for k, _ in comp.most_common(3)],
            })
        rows.sort(key=lambda r: (-r["distinct"], -r["effect_db"]))
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"format": "synth_probe.identifiability", "version": 1, "synth": self.synth, "config": self.config,
                "complete": self.complete, "seconds": self.seconds, **self.extra,
                "summary": self.summary(), "records": self.records}


def run_identifiability(synth: Synth, config: IdentifiabilityConfig, *,
                        log: Callable[[str], None] | None = None) -> IdentifiabilityResult:
    """Probe every (chosen) parameter on ``config.bases`` patches of the sampler.

    Interrupting (Ctrl-C) keeps the units finished so far (``complete`` False).
    """
    log = log or (lambda m: None)
    t0 = time.perf_counter()
    sampler = config.sampler
    try:
        plan = make_plan(synth, sampler)
    except SamplerError:  # a plugin without TAL-NoiseMaker's names: every parameter random, as sensitivity does
        if sampler != "timbral":
            raise
        sampler = "all"
        plan = make_plan(synth, sampler)
        log("identifiability: this synth has no 'timbral' sampler; using 'all'")
    varied = plan.varied
    if config.params is None:
        params = list(varied)
    else:
        params = [s.name for s in select_specs(synth, config.params)]
    settings = config.settings()
    rd = dict(SAMPLERS[sampler].render_defaults) if sampler in SAMPLERS else {}
    if rd:
        settings = RenderSettings(**{**asdict(settings), **rd})
    V, seeds = plan.rows(int(config.seed), 0, int(config.bases))
    units = [(p, b, V[b], int(seeds[b])) for p in params for b in range(int(config.bases))]
    records: dict[str, list[dict]] = {p: [{} for _ in range(int(config.bases))] for p in params}
    # groups of a few units per task: the twin searches take 1-3 s each
    groups = [units[i:i + 4] for i in range(0, len(units), 4)]
    probe = parse_probe(config.probe)
    args = (settings, list(varied), int(config.budget), float(config.tolerance_db), tuple(config.steps),
            config.search, None if probe.is_default else probe.renders(settings))
    log(f"identifiability: {len(params)} parameters x {config.bases} {sampler} bases, {config.search} twin searches "
        f"of {config.budget} renders, tolerance {config.tolerance_db} dB, {config.jobs} job(s)")
    complete = False
    bar = Progress(len(units), "identifiability", unit="checks", log=log)
    try:
        for res in _run(synth, groups, args, int(config.jobs)):
            for p, b, rec in res:
                records[p][b] = rec
                if "error" in rec:
                    bar.write(f"  {p} at base {b} failed ({rec['error']}); it is left out of the shares")
            bar.update(len(res))
        complete = True
    except KeyboardInterrupt:
        bar.write("interrupted: keeping the checks finished so far")
    finally:
        bar.close()
    meta = {"synth": synth.name, "kind": getattr(synth, "kind", ""), "n_params": len(synth.param_names)}
    cfg = asdict(config)
    cfg["params"] = list(params)
    cfg["sampler"] = sampler
    cfg["render"] = asdict(settings)
    cfg["mpr_classes"] = mpr_classes(synth, plan, params)
    if probe.is_default:  # a one-note run's results read as they did before probes
        cfg.pop("probe")
    else:
        cfg["probe_renders"] = [asdict(r) for r in probe.renders(settings)]
    res = IdentifiabilityResult(meta, cfg, records, time.perf_counter() - t0, complete)
    res.extra = {"created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv),
                 "python": platform.python_version(), "cpus": os.cpu_count()}
    return res


def compare_probes(synth: Synth, config: IdentifiabilityConfig, probes: Sequence[str], *,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the study once per candidate probe on the same base patches and compare them per parameter.

    Parameters
    ----------
    synth : Synth
    config : IdentifiabilityConfig
        Everything but the probe (its ``probe`` is replaced by each candidate in turn).
    probes : sequence of str
        Candidate probes' text forms (:func:`synth_probe.probe.parse_probe`), at least one, no repeats.

    Returns
    -------
    data : dict
        Plain data: ``probes`` (text forms, in order), ``n_renders`` (per probe), ``config`` (the first
        run's, without the probe), ``rows`` (one per parameter: ``parameter``, ``discrete`` and
        ``by_probe``: probe -> ``distinct``, ``masked``, ``confounded``, ``resolvable_r2``, ``resolvable_mpr``, and ``best_probe``: the probe with the highest distinct
        share, the first on ties), ``mean_distinct`` (probe -> mean distinct share over the parameters), ``mean_resolvable_r2``
        (probe -> mean over the continuous parameters), ``mean_resolvable_mpr`` (probe -> mean over the parameters
        that have one), ``seconds`` (probe -> s), ``complete``, ``runs``
        (probe -> the run's ``to_dict()`` without its records).
    """
    log = log or (lambda m: None)
    texts = [parse_probe(p).text() for p in probes]
    if not texts:
        raise ParameterValueError("compare at least one probe")
    if len(set(texts)) != len(texts):
        raise ParameterValueError(f"the probes compared repeat one: {', '.join(texts)}")
    runs: dict[str, dict[str, Any]] = {}
    complete = True
    for text in texts:
        log(f"identifiability: probe {text}")
        res = run_identifiability(synth, replace(config, probe=text), log=log)
        runs[text] = {k: v for k, v in res.to_dict().items() if k != "records"}
        complete = complete and res.complete
        if not res.complete:
            break
    return _probe_table(runs, complete)


def _probe_table(runs: dict[str, dict[str, Any]], complete: bool) -> dict[str, Any]:
    """The per-parameter, per-probe table of :func:`compare_probes` from the runs' ``to_dict()``."""
    texts = list(runs)
    first = next(iter(runs.values()))
    params = list(first["config"]["params"])
    keys = ("distinct", "masked", "confounded", "resolvable_r2", "resolvable_mpr")
    by = {t: {r["parameter"]: r for r in runs[t]["summary"]} for t in texts}
    rows = []
    for p in params:
        cells = {t: {k: by[t][p].get(k) for k in keys} for t in texts if p in by[t]}
        if not cells:
            continue
        discrete = all(c["resolvable_r2"] is None for c in cells.values())
        rows.append({"parameter": p, "discrete": discrete, "by_probe": cells,
                     "best_probe": max(cells, key=lambda t: (cells[t]["distinct"], -texts.index(t)))})

    def _mean(t: str, k: str) -> float | None:
        v = [r["by_probe"][t][k] for r in rows if t in r["by_probe"] and r["by_probe"][t][k] is not None]
        return float(np.mean(v)) if v else None

    cfg = {k: v for k, v in first["config"].items() if k not in ("probe", "probe_renders")}
    return {"format": "synth_probe.identifiability_probes", "version": 1, "synth": first["synth"], "config": cfg,
            "probes": texts, "n_renders": {t: len(runs[t]["config"].get("probe_renders") or [0]) for t in texts},
            "rows": rows, "mean_distinct": {t: _mean(t, "distinct") for t in texts},
            "mean_resolvable_r2": {t: _mean(t, "resolvable_r2") for t in texts},
            "mean_resolvable_mpr": {t: _mean(t, "resolvable_mpr") for t in texts},
            "seconds": {t: runs[t]["seconds"] for t in texts}, "complete": complete,
            "command": first.get("command"), "created": first.get("created"), "runs": runs}


def _run(synth: Synth, groups: list, args: tuple, jobs: int):
    tasks = [Task(key=i, func=_probe_task, args=(g, *args)) for i, g in enumerate(groups)]
    for key, res in run_tasks(synth, tasks, jobs=jobs, in_process=jobs <= 1, on_failure="collect"):
        if isinstance(res, TaskFailure):
            # a plugin that crashed or hung fails only these probes: they are recorded, the rest go on
            yield [(p, b, {"error": f"{res.kind}: {res.message}"}) for p, b, _, _ in groups[key]]
            continue
        yield res
