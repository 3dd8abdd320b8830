"""Local search from a predicted patch towards a target: hill climbing and CMA-ES.

:class:`MatchObjective` renders a unit vector and measures its multi-resolution
log-mel distance from the target (dB); :func:`hill_climb` and :func:`cmaes_search`
spend a fixed number of renders from a start that stays the incumbent, so a search
never returns something worse than its start; :func:`refine` picks one by name.
``optuna`` is imported in :func:`cmaes_search` only (heavy, and the hill climber needs none of it).
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from synth_probe.errors import AudioError, ParameterValueError, RenderError, UnknownParameterError
from synth_probe.spectral import DEFAULT_RESOLUTIONS, multi_resolution_l1, multi_resolution_log_mel
from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["SEARCH_METHODS", "MatchObjective", "SearchResult", "hill_climb", "cmaes_search", "refine"]

#: local search methods of :func:`refine`
SEARCH_METHODS = ("hill", "cmaes")


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
        return float(multi_resolution_l1(self._target_mel, mel))

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
            raise UnknownParameterError(n, names)
        idx.append(names.index(n))
    if not idx:
        raise ParameterValueError("the search needs at least one free parameter")
    return np.array(sorted(set(idx)))


def _search_start(
    objective: Callable[[np.ndarray], float],
    start: np.ndarray,
    budget: int,
    specs: Sequence[Any],
    free: Sequence[str] | None,
    start_distance: float | None,
) -> tuple[int, np.ndarray, np.ndarray, float]:
    """Checked budget, free indices, the start clipped to [0, 1] ``(n_params,)`` and its distance."""
    budget = int(budget)
    if budget < 0:
        raise ParameterValueError(f"the refine budget must be >= 0 renders, got {budget}")
    idx = _free_indices(specs, free)
    x0 = np.clip(np.asarray(start, dtype=np.float64).copy(), 0.0, 1.0)
    d_start = float(objective(x0)) if start_distance is None else float(start_distance)
    return budget, idx, x0, d_start


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
    budget, idx, best, d_start = _search_start(objective, start, budget, specs, free, start_distance)
    d_best = d_start
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
    budget, idx, x0, d_start = _search_start(objective, start, budget, specs, free, start_distance)
    best, d_best = x0.copy(), d_start
    history: list[float] = []
    if budget == 0:
        return SearchResult(best, d_best, d_start, 0, history, "cmaes", time.perf_counter() - t0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [f"p{j}" for j in idx]
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


class ProbeObjective:
    """Distance of a patch's probe renders from the target's: the sum over the renders (dB).

    The same interface as :class:`MatchObjective` (``specs``, ``snap``,
    ``__call__``, ``distance_of``, ``n_renders``), so the twin searches use it unchanged;
    ``n_renders`` counts single renders (a probe evaluation is ``len(renders)`` of them).

    Parameters
    ----------
    synth : Synth
    target : np.ndarray [shape=(n_renders, n_samples)]
    renders : sequence of RenderSettings
        One per row of ``target`` (:meth:`Probe.renders`).
    seed : int
    """

    def __init__(self, synth: Synth, target: np.ndarray, renders: Sequence[RenderSettings], seed: int = 0) -> None:
        t = np.asarray(target, dtype=np.float32)
        if t.ndim != 2 or t.shape[0] != len(renders):
            raise AudioError(f"probe target has shape {t.shape}; expected ({len(renders)}, n_samples)")
        self.parts = [MatchObjective(synth, row, s, seed=seed) for row, s in zip(t, renders)]
        self.specs = self.parts[0].specs
        self.synth = synth
        self.seed = int(seed)
        self._cache: dict[bytes, float] = {}

    @property
    def n_renders(self) -> int:
        return sum(p.n_renders for p in self.parts)

    def snap(self, vec: np.ndarray) -> np.ndarray:
        return self.parts[0].snap(vec)

    def distance_of(self, audio: np.ndarray) -> float:
        """Summed distance of probe renders ``audio`` [shape=(n_renders, n_samples)] from the target's."""
        return float(sum(p.distance_of(a) for p, a in zip(self.parts, audio)))

    def __call__(self, vec: np.ndarray) -> float:
        v = self.snap(vec)
        key = v.tobytes()
        hit = self._cache.get(key)
        if hit is None:
            total = 0.0
            for p in self.parts:
                total += p(v)
                if math.isinf(total):  # a render that fails: the rest cannot bring it back
                    break
            hit = self._cache[key] = float(total)
        return hit
