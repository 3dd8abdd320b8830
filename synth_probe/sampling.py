"""Patch sampling: reproducible random patches in unit space.

Row *i* of a sample depends only on ``(seed, i)``: its random words come from
``numpy.random.SeedSequence(seed, spawn_key=(i,))`` (the *i*-th child that
``SeedSequence(seed).spawn`` would give). Asking for more rows, another
``start``, another worker count or another order never changes a row, so a
dataset can be extended along the same stream and split into shards freely.

Word 0 of a row is the render seed (for the synth's own random sources:
detune, vintage noise, S&H LFOs); word ``1 + j`` drives the parameter in host
position ``j``, whether or not that parameter varies, so holding one parameter
does not change the values drawn for the others.

Named samplers (:data:`SAMPLERS`) are defined on TAL-NoiseMaker's canonical
parameter names (reference ``tal-noisemaker.md`` §5 and §6):

``all``
    every parameter uniformly random (works for any synth).
``timbral``
    the 43 parameters that published TAL-NoiseMaker work varies; master
    volume, voices, portamento, velocity and pitch-wheel amounts, the effects,
    bitcrusher, detune, vintage noise, the envelope editor, LFO sync,
    transpose, master high-pass, filter drive and the inert slots stay at their
    defaults. The LFO key-triggers are on (as in InverSynth II): with a
    free-running LFO the phase knobs do nothing to a render, which starts the
    LFO wherever the engine's clock puts it, so two of the 43 would be inert.
``inversynth``
    the parameters and value grids of InverSynth II, with LFO key-triggers on
    and everything else at its default.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import ParameterValueError, SamplerError, UnknownParameterError
from synth_probe.synths.base import RenderSettings, Synth, check_unit_value

__all__ = [
    "SAMPLERS",
    "SamplePlan",
    "TIMBRAL_HELD",
    "TIMBRAL_FIXED",
    "TIMBRAL_VARIED",
    "INVERSYNTH_GRIDS",
    "make_plan",
    "sample_patches",
    "render_seeds",
]

#: parameters the ``timbral`` sampler holds at their defaults (TAL-NoiseMaker names;
#: the LFO key-triggers are held on, :data:`TIMBRAL_FIXED`)
TIMBRAL_HELD: tuple[str, ...] = (
    "unused", "volume", "voices", "portamento", "portamentomode",
    "velocityvolume", "velocitycontour", "velocitycutoff", "pitchwheelcutoff", "pitchwheelpitch",
    "chorus1enable", "chorus2enable",
    "reverbwet", "reverbdecay", "reverbpredelay", "reverbhighcut", "reverblowcut",
    "delaywet", "delaytime", "delaysync", "delayfactorl", "delayfactorr", "delayhighshelf",
    "delaylowshelf", "delayfeedback",
    "oscbitcrusher", "detune", "vintagenoise",
    "envelopeeditordest1", "envelopeeditorspeed", "envelopeeditoramount", "envelopeoneshot",
    "envelopefixtempo", "envelopereset",
    "lfo1sync", "lfo2sync",
    "transpose", "highpass", "filterdrive",
    "panic", "midilearn", "midiclear", "midilock",
)

#: what the ``timbral`` sampler holds away from the defaults: LFOs restart at their phase knob on
#: each note, so lfo1phase and lfo2phase are audible (free-running, they leave a render bit-identical)
TIMBRAL_FIXED: dict[str, float] = {"lfo1keytrigger": 1.0, "lfo2keytrigger": 1.0}

#: the 43 parameters the ``timbral`` sampler varies
TIMBRAL_VARIED: tuple[str, ...] = (
    "filtertype", "cutoff", "resonance", "keyfollow", "filtercontour",
    "filterattack", "filterdecay", "filtersustain", "filterrelease",
    "ampattack", "ampdecay", "ampsustain", "amprelease",
    "osc1volume", "osc2volume", "osc3volume", "oscmastertune", "osc1tune", "osc2tune",
    "osc1finetune", "osc2finetune", "osc1waveform", "osc2waveform", "oscsync",
    "lfo1waveform", "lfo2waveform", "lfo1rate", "lfo2rate", "lfo1amount", "lfo2amount",
    "lfo1destination", "lfo2destination", "lfo1phase", "lfo2phase",
    "osc2fm", "osc2phase", "osc1pw", "osc1phase",
    "freeadattack", "freeaddecay", "freeadamount", "freeaddestination",
    "ringmodulation",
)


def _levels(lo: float, hi: float, k: int) -> tuple[float, ...]:
    return tuple(float(x) for x in np.linspace(lo, hi, k))


#: InverSynth II's value grids on TAL-NoiseMaker (reference §5); discrete values
#: are snapped to the synth's canonical choice values when sampled
INVERSYNTH_GRIDS: dict[str, tuple[float, ...]] = {
    "osc1volume": _levels(0.125, 1.0, 8),
    "osc2volume": _levels(0.125, 1.0, 8),
    "osc3volume": _levels(0.125, 1.0, 8),
    "osc2tune": _levels(0.0, 1.0, 9),
    "osc2finetune": _levels(0.0, 1.0, 9),
    "osc1waveform": (0.0, 0.5),
    "osc2waveform": (0.0, 0.25, 0.5, 0.75),
    "lfo1waveform": (0.0, 0.2, 0.4, 0.6),
    "lfo2waveform": (0.0, 0.2, 0.4, 0.6),
    "lfo1destination": (0.0, 0.285, 0.43, 1.0),
    "lfo2destination": (0.0, 0.285, 0.43, 0.715),
    "lfo1amount": _levels(0.52, 1.0, 16),
    "lfo2amount": _levels(0.52, 1.0, 16),
    "lfo1rate": _levels(0.06, 0.6, 16),
    "lfo2rate": _levels(0.06, 0.6, 16),
    "cutoff": _levels(0.3, 1.0, 16),
    "resonance": _levels(0.0, 1.0, 16),
    # InverSynth II's "attack" and "release" are written to host indices 7 and 10
    "filterattack": _levels(0.0, 0.5, 8),
    "filterrelease": _levels(0.2, 0.8, 8),
}
#: what InverSynth II holds away from the defaults: LFO key-triggers on (effects stay off,
#: bitcrusher stays off, which are the defaults)
INVERSYNTH_FIXED: dict[str, float] = {"lfo1keytrigger": 1.0, "lfo2keytrigger": 1.0}
#: InverSynth II's render setup: 16 384 Hz, note 70, velocity 127, 0.9 s note in a 1 s render
INVERSYNTH_RENDER = {"note": 70, "velocity": 127, "note_length": 0.9, "render_length": 1.0, "sample_rate": 16384}


@dataclass(frozen=True)
class SamplerDef:
    """A named sampler: which parameters vary, on which grids, and what is held."""

    name: str
    description: str
    varied: tuple[str, ...] | None  # None: every parameter
    grids: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)
    render_defaults: Mapping[str, Any] = field(default_factory=dict)
    noisemaker_only: bool = True


SAMPLERS: dict[str, SamplerDef] = {
    "all": SamplerDef("all", "every parameter uniformly random", None, noisemaker_only=False),
    "timbral": SamplerDef(
        "timbral",
        "the 43 timbral parameters vary; LFO key-triggers on; effects, velocity, pitch wheel, voices, "
        "portamento, envelope editor, LFO sync, transpose, high-pass, drive and inert slots at defaults",
        TIMBRAL_VARIED,
        fixed=TIMBRAL_FIXED,
    ),
    "inversynth": SamplerDef(
        "inversynth",
        "InverSynth II's parameters on its grids (LFO key-triggers on, effects off)",
        tuple(INVERSYNTH_GRIDS),
        grids=INVERSYNTH_GRIDS,
        fixed=INVERSYNTH_FIXED,
        render_defaults=INVERSYNTH_RENDER,
    ),
}


@dataclass(frozen=True)
class SamplePlan:
    """A compiled sampler for one synth: what every host position does.

    ``mode[j]`` is 0 (held at ``held[j]``), 1 (uniform continuous, optionally on
    ``grid`` levels), 2 (uniform over ``values[j]``).
    """

    names: tuple[str, ...]
    mode: np.ndarray  # (n_params,) int8
    held: np.ndarray  # (n_params,) float64
    values: tuple[tuple[float, ...], ...]  # per position: choice/grid values for mode 2
    grid: int | None
    settings: dict[str, Any]  # JSON description (sampler, fix, vary, grid)

    @property
    def n_params(self) -> int:
        return len(self.names)

    @property
    def varied(self) -> list[str]:
        return [n for n, m in zip(self.names, self.mode) if m != 0]

    def rows(self, seed: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors and render seeds of rows ``start .. stop-1``.

        Returns
        -------
        vectors : np.ndarray [shape=(stop - start, n_params), dtype=float64]
        seeds : np.ndarray [shape=(stop - start,), dtype=int64]
        """
        n = max(int(stop) - int(start), 0)
        words = np.empty((n, self.n_params + 1), dtype=np.uint64)
        for r in range(n):
            words[r] = np.random.SeedSequence(int(seed), spawn_key=(int(start) + r,)).generate_state(
                self.n_params + 1, dtype=np.uint64
            )
        seeds = (words[:, 0] >> np.uint64(33)).astype(np.int64)  # 31-bit render seed
        u = (words[:, 1:] >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)  # [0, 1)
        out = np.broadcast_to(self.held, (n, self.n_params)).copy()
        for j in range(self.n_params):
            m = self.mode[j]
            if m == 1:
                if self.grid:
                    k = np.minimum((u[:, j] * self.grid).astype(np.int64), self.grid - 1)
                    out[:, j] = k / (self.grid - 1)
                else:
                    out[:, j] = u[:, j]
            elif m == 2:
                vals = np.asarray(self.values[j], dtype=np.float64)
                k = np.minimum((u[:, j] * len(vals)).astype(np.int64), len(vals) - 1)
                out[:, j] = vals[k]
        return out, seeds


def _check_names(synth: Synth, names: Sequence[str]) -> None:
    valid = synth.param_names
    for n in names:
        if n not in valid:
            raise UnknownParameterError(n, valid, synth=synth.name)


def make_plan(
    synth: Synth,
    sampler: str = "all",
    *,
    fix: Mapping[str, float] | None = None,
    vary: Sequence[str] | None = None,
    grid: int | None = None,
) -> SamplePlan:
    """Compile a sampler for ``synth``.

    Parameters
    ----------
    synth : Synth
    sampler : {"all", "timbral", "inversynth"}
    fix : mapping of str to float, optional
        Parameters held at the given unit values (discrete ones are snapped to
        their canonical choice value).
    vary : sequence of str, optional
        Vary only these parameters (on the sampler's grid where it has one,
        uniformly otherwise); the rest are held as the sampler holds them.
    grid : int, optional
        Quantize continuous parameters to ``grid`` evenly spaced levels in [0, 1].

    Raises
    ------
    SamplerError
        Unknown sampler, a named sampler on a synth without TAL-NoiseMaker's
        names, a bad grid, or a name both fixed and varied.
    UnknownParameterError
        A name in ``fix`` or ``vary`` that the synth does not have.
    """
    if sampler not in SAMPLERS:
        raise SamplerError(f"unknown sampler {sampler!r}; available: {', '.join(SAMPLERS)}")
    d = SAMPLERS[sampler]
    names = list(synth.param_names)
    specs = list(synth.specs)
    if d.noisemaker_only:
        needed = set(d.varied or ()) | set(d.fixed)
        if sampler == "timbral":
            needed |= set(TIMBRAL_HELD)
        missing = sorted(needed - set(names))
        if missing:
            raise SamplerError(
                f"sampler {sampler!r} is defined on TAL-NoiseMaker's parameter names, and {synth.name} "
                f"lacks {len(missing)} of them (e.g. {', '.join(missing[:5])}). Use --sampler all, "
                "optionally with --vary/--fix, for other synths."
            )
    if grid is not None:
        grid = int(grid)
        if grid < 2:
            raise SamplerError(f"--grid must be at least 2 levels, got {grid}")
        if d.grids:
            raise SamplerError(f"--grid cannot be combined with sampler {sampler!r}, which has its own value grids")
    fix = dict(fix or {})
    _check_names(synth, list(fix))
    vary_list = None if vary is None else [v for v in vary if v]
    if vary_list is not None:
        _check_names(synth, vary_list)
        if not vary_list:
            raise SamplerError("--vary needs at least one parameter name")
        both = sorted(set(vary_list) & set(fix))
        if both:
            raise SamplerError(f"parameters both fixed and varied: {', '.join(both)}")

    varied = set(names) if d.varied is None else set(d.varied)
    if vary_list is not None:
        varied = set(vary_list)
    varied -= set(fix)
    mode = np.zeros(len(names), dtype=np.int8)
    held = np.array([s.default for s in specs], dtype=np.float64)
    values: list[tuple[float, ...]] = []
    for j, s in enumerate(specs):
        vals: tuple[float, ...] = ()
        if s.name in d.fixed:
            held[j] = s.quantize(d.fixed[s.name])
        if s.name in fix:
            v = check_unit_value(s.name, fix[s.name])
            held[j] = s.quantize(v) if s.is_discrete else v
        if s.name in varied:
            if s.name in d.grids:
                mode[j] = 2
                vals = tuple(sorted({s.quantize(v) if s.is_discrete else float(v) for v in d.grids[s.name]}))
            elif s.is_discrete:
                mode[j] = 2
                vals = tuple(float(v) for v in s.choice_values)
                if not vals:
                    raise SamplerError(f"discrete parameter {s.name!r} has no choice values")
            else:
                mode[j] = 1
        values.append(vals)
    settings = {
        "sampler": sampler,
        "fix": {k: float(v) for k, v in sorted(fix.items())},
        "vary": sorted(vary_list) if vary_list is not None else None,
        "grid": grid,
    }
    # what the sampler itself holds away from the defaults (e.g. timbral's LFO key-triggers) is part of a
    # dataset's identity, so that a folder sampled under another definition is refused, never extended
    held_off = {s.name: float(held[j]) for j, s in enumerate(specs)
                if mode[j] == 0 and float(held[j]) != float(s.default) and s.name not in fix}
    if held_off:
        settings["held"] = held_off
    return SamplePlan(tuple(names), mode, held, tuple(values), grid, settings)


def sample_patches(
    synth: Synth,
    n: int,
    *,
    sampler: str = "all",
    seed: int = 0,
    start: int = 0,
    fix: Mapping[str, float] | None = None,
    vary: Sequence[str] | None = None,
    grid: int | None = None,
) -> pd.DataFrame:
    """Draw ``n`` random patches; row ``i`` depends only on ``(seed, i)``.

    Parameters
    ----------
    synth : Synth
    n : int
        Number of patches.
    sampler : {"all", "timbral", "inversynth"}, default="all"
    seed : int, default=0
    start : int, default=0
        Index of the first row (rows ``start .. start+n-1`` of the stream).
    fix, vary, grid
        See :func:`make_plan`.

    Returns
    -------
    patches : pd.DataFrame [shape=(n, n_params)]
        Unit values, one column per parameter in host order, indexed by row
        number ``start .. start+n-1``. The render seed of each row is
        :func:`render_seeds` ``(seed, start, n)``.
    """
    if int(n) < 0:
        raise ParameterValueError(f"n must be >= 0, got {n}")
    if int(seed) < 0 or int(start) < 0:
        raise ParameterValueError(f"seed and start must be >= 0, got seed={seed}, start={start}")
    plan = make_plan(synth, sampler, fix=fix, vary=vary, grid=grid)
    vec, _ = plan.rows(seed, start, start + int(n))
    return pd.DataFrame(vec, columns=list(plan.names), index=pd.RangeIndex(start, start + int(n), name="index"))


def render_seeds(seed: int, start: int, n: int) -> np.ndarray:
    """The render seed of rows ``start .. start+n-1`` (for the synth's own random sources).

    Returns
    -------
    seeds : np.ndarray [shape=(n,), dtype=int64]
        Values in [0, 2**31).
    """
    out = np.empty(int(n), dtype=np.int64)
    for r in range(int(n)):
        w = np.random.SeedSequence(int(seed), spawn_key=(int(start) + r,)).generate_state(1, dtype=np.uint64)
        out[r] = int(w[0] >> np.uint64(33))
    return out


def sampler_render_defaults(sampler: str) -> RenderSettings | None:
    """The render setup a named sampler was published with (None for the others)."""
    d = SAMPLERS.get(sampler)
    if d is None or not d.render_defaults:
        return None
    return RenderSettings(**d.render_defaults)
