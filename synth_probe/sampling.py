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

Samplers are generic: ``all`` varies every parameter uniformly (any synth), and
a synth offers its own named samplers (:class:`~synth_probe.synths.base.SamplerPreset`)
through :attr:`Synth.sampler_presets <synth_probe.synths.base.Synth.sampler_presets>` —
TAL-NoiseMaker's ``timbral`` and ``inversynth`` live in
:mod:`synth_probe.synths.noisemaker.samplers`. :data:`SAMPLERS` lists every sampler
of the built-in synths (for the CLI's choices); :func:`make_plan` takes only those
the synth at hand offers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synth_probe.errors import ParameterValueError, SamplerError, UnknownParameterError
from synth_probe.synths.base import RenderSettings, SamplerPreset, Synth, check_unit_value
from synth_probe.synths.registry import builtin_sampler_presets

__all__ = [
    "ALL",
    "SAMPLERS",
    "SamplePlan",
    "make_plan",
    "sampler_presets",
    "sample_patches",
    "render_seeds",
]

#: the generic sampler: every parameter uniformly random (works for any synth)
ALL = SamplerPreset("all", "every parameter uniformly random", None)
#: every sampler of the built-in synths plus ``all``, by name (the CLI's ``--sampler`` choices)
SAMPLERS: dict[str, SamplerPreset] = {"all": ALL, **builtin_sampler_presets()}


def sampler_presets(synth: Synth) -> dict[str, SamplerPreset]:
    """The samplers ``synth`` offers: ``all`` and its own :attr:`~synth_probe.synths.base.Synth.sampler_presets`."""
    return {"all": ALL, **dict(synth.sampler_presets)}


def _preset_for(synth: Synth, sampler: str) -> SamplerPreset:
    """The preset called ``sampler`` of ``synth``; a clear :class:`SamplerError` naming what it offers."""
    offered = sampler_presets(synth)
    if sampler in offered:
        d = offered[sampler]
        missing = sorted(d.names() - set(synth.param_names))
        if missing:
            raise SamplerError(
                f"sampler {sampler!r} of {synth.name} names {len(missing)} parameters the synth lacks "
                f"(e.g. {', '.join(missing[:5])})"
            )
        return d
    names = ", ".join(sorted(offered))
    if sampler in SAMPLERS:
        raise SamplerError(
            f"sampler {sampler!r} is not offered by {synth.name} (it is defined on another synth's parameters); "
            f"{synth.name} offers: {names}. Use --sampler all, optionally with --vary/--fix."
        )
    raise SamplerError(f"unknown sampler {sampler!r}; {synth.name} offers: {names}")


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
    sampler : str
        ``"all"`` or one of the synth's :attr:`~synth_probe.synths.base.Synth.sampler_presets`.
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
        A sampler the synth does not offer (the message names those it offers),
        a bad grid, or a name both fixed and varied.
    UnknownParameterError
        A name in ``fix`` or ``vary`` that the synth does not have.
    """
    d = _preset_for(synth, sampler)
    names = list(synth.param_names)
    specs = list(synth.specs)
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
    sampler : str, default="all"
        See :func:`make_plan`.
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
    """The render setup a named sampler of a built-in synth was published with (None for the others)."""
    d = SAMPLERS.get(sampler)
    if d is None or not d.render_defaults:
        return None
    return RenderSettings(**d.render_defaults)
