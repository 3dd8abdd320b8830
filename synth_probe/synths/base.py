"""The synth interface: parameter specs, patches and the ``Synth`` base class.

A *patch* is a mapping of parameter names to unit values in [0, 1] — the
normalized values a plugin host sees. Everything in synth_probe works in that
unit space; physical units (Hz, seconds, semitones) appear only for display,
through :meth:`ParamSpec.to_physical` and :meth:`ParamSpec.display`.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import (
    ParameterValueError,
    PatchFileError,
    UnknownParameterError,
)
from synth_probe.fileio import read_json

__all__ = ["ParamSpec", "RenderSettings", "SamplerPreset", "Synth", "read_patch_file", "MAX_RENDER_SECONDS"]

CONTINUOUS = "continuous"
DISCRETE = "discrete"
#: the largest patch file read (a patch of a plugin with thousands of parameters is a few hundred kB)
PATCH_FILE_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ParamSpec:
    """One synth parameter, as data.

    Parameters
    ----------
    index : int
        Host index (the plugin's parameter order).
    name : str
        Canonical name, unique within the synth.
    kind : {"continuous", "discrete"}
        Discrete parameters select one of ``choices``.
    default : float
        Unit value of the synth's startup program.
    group : str
        Section of the synth, e.g. ``"filter"``, ``"amp-env"``, ``"lfo1"``, ``"fx-reverb"``.
    choices : tuple of str
        Labels of a discrete parameter's items, in order.
    choice_values : tuple of float
        The unit value that selects each choice (what a GUI writes).
    rounding : {"round", "trunc", "gt0"}
        How the synth turns a unit value into a choice: nearest item
        (``round``), the synth's own truncation formula (``trunc``), or
        on for any value above 0 (``gt0``).
    unit : str
        Physical unit for display ("Hz", "s", "dB", "st", "%" or "").
    physical : callable or None
        Unit value -> physical value (a float), for continuous parameters.
    inert : bool
        True when the parameter has no audio function on one held note.
    note : str
        One line on what the parameter does or why it is inert.
    gate : mapping of str to float
        Other parameters to set so that this one is audible ("open its gate"):
        e.g. an LFO's rate needs its amount away from neutral and a destination.
    """

    index: int
    name: str
    kind: str
    default: float
    group: str
    choices: tuple[str, ...] = ()
    choice_values: tuple[float, ...] = ()
    rounding: str = "round"
    unit: str = ""
    physical: Callable[[float], float] | None = field(default=None, compare=False, repr=False)
    inert: bool = False
    note: str = ""
    gate: Mapping[str, float] = field(default_factory=dict, compare=False)
    chooser: Callable[[float], int] | None = field(default=None, compare=False, repr=False)

    @property
    def is_discrete(self) -> bool:
        return self.kind == DISCRETE

    @property
    def n_choices(self) -> int:
        return len(self.choices)

    def choice_index(self, value: float) -> int:
        """Return the choice that unit ``value`` selects, as the synth decides it."""
        if not self.is_discrete:
            raise TypeError(f"{self.name} is continuous; it has no choices")
        n = self.n_choices
        if self.chooser is not None:
            k = int(self.chooser(float(value)))
        elif self.rounding == "gt0":
            k = int(value > 0.0) if n == 2 else int(math.floor(value * (n - 1) + 0.5))
        else:  # "round": nearest item, as TAL's combo boxes do
            k = int(math.floor(value * (n - 1) + 0.5))
        return min(max(k, 0), n - 1)

    def quantize(self, value: float) -> float:
        """Snap a unit value to the canonical unit value of its choice (identity if continuous)."""
        if not self.is_discrete:
            return float(value)
        return float(self.choice_values[self.choice_index(value)])

    def to_physical(self, value: float) -> float | str:
        """Physical value of a unit value: a float in ``unit``, or a choice label."""
        if self.is_discrete:
            return self.choices[self.choice_index(value)]
        if self.physical is None:
            return float(value)
        return float(self.physical(float(value)))

    def display(self, value: float) -> str:
        """Human-readable value, e.g. ``"1.5 kHz"``, ``"LP24"``, ``"-12 st"``."""
        phys = self.to_physical(value)
        if isinstance(phys, str):
            return phys
        return format_quantity(phys, self.unit)

    def physical_range(self) -> str:
        """A short description of the range: the choices or the physical end points."""
        if self.is_discrete:
            return " | ".join(self.choices)
        return f"{self.display(0.0)} .. {self.display(1.0)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (mapping functions become their end points)."""
        d = asdict(self)
        d.pop("physical")
        d.pop("chooser")
        d["gate"] = dict(self.gate)
        d["choices"] = list(self.choices)
        d["choice_values"] = list(self.choice_values)
        d["range"] = self.physical_range()
        return d


def format_quantity(x: float, unit: str) -> str:
    """Format a physical value with an SI prefix where it reads better."""
    if unit == "Hz":
        if abs(x) >= 1000:
            return f"{x / 1000:.3g} kHz"
        return f"{x:.3g} Hz"
    if unit == "s":
        if abs(x) < 1:
            return f"{x * 1000:.3g} ms"
        return f"{x:.3g} s"
    if unit == "dB":
        if x == -math.inf:
            return "-inf dB"
        return f"{x:+.1f} dB"
    if unit == "st":
        return f"{x:+.2f} st" if x != round(x) else f"{int(round(x)):+d} st"
    if unit == "%":
        return f"{x:.0f} %"
    if unit == "x":
        return f"x{x:.3g}"
    if unit:
        return f"{x:.3g} {unit}"
    return f"{x:.3f}"


#: the longest note and render (seconds). TAL-NoiseMaker's slowest envelope stage, a decay at its maximum,
#: takes about 104 s to fall silent (the reference's envelope table), so 120 s holds any one note and its tail;
#: one such render at the highest rate (192 kHz) is 23 M samples, 92 MB of float32 per channel, where an
#: unbounded length (``--render-length 1e9``) only ends in an out-of-memory error
MAX_RENDER_SECONDS = 120.0


@dataclass(frozen=True)
class RenderSettings:
    """How a patch is played: one MIDI note, held for ``note_length`` seconds.

    Lengths are bounded by :data:`MAX_RENDER_SECONDS`, the sample rate by 8000..192000 Hz.
    """

    note: int = 60
    velocity: int = 100
    note_length: float = 1.0
    render_length: float = 1.5
    sample_rate: int = 44100

    def __post_init__(self) -> None:
        if not (0 <= int(self.note) <= 127):
            raise ParameterValueError(f"note must be a MIDI note 0..127, got {self.note}")
        if not (1 <= int(self.velocity) <= 127):
            raise ParameterValueError(f"velocity must be 1..127, got {self.velocity}")
        if not (0 < self.render_length <= MAX_RENDER_SECONDS):
            raise ParameterValueError(
                f"render_length must be > 0 and at most {MAX_RENDER_SECONDS:g} s (the longest note and tail "
                f"that make sense), got {self.render_length}")
        if not (0 <= self.note_length <= MAX_RENDER_SECONDS):
            # a note_length beyond render_length is fine: the note is still held at the end
            raise ParameterValueError(f"note_length must be 0..{MAX_RENDER_SECONDS:g} s, got {self.note_length}")
        if not (8000 <= int(self.sample_rate) <= 192000):
            raise ParameterValueError(f"sample_rate must be 8000..192000 Hz, got {self.sample_rate}")

    @property
    def n_samples(self) -> int:
        return int(round(self.render_length * self.sample_rate))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SamplerPreset:
    """A named sampler a synth offers: which parameters vary, on which grids, and what is held.

    A synth lists its presets in :attr:`Synth.sampler_presets`; :func:`synth_probe.sampling.make_plan`
    compiles one (or the generic ``all``) into a plan.

    Attributes
    ----------
    name : str
    description : str
        One line for ``--help`` and reports.
    varied : tuple of str or None
        The parameters that vary; None: every parameter.
    grids : mapping of str to tuple of float
        Value grids (unit values) of varied parameters that are not drawn uniformly.
    fixed : mapping of str to float
        Parameters held away from their defaults (unit values).
    held : tuple of str
        Parameters the preset holds at their defaults on purpose (documentation and a check
        that the synth has them; every parameter not varied is held).
    render_defaults : mapping of str to Any
        :class:`RenderSettings` fields the preset was published with (empty: none).
    """

    name: str
    description: str
    varied: tuple[str, ...] | None
    grids: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    fixed: Mapping[str, float] = field(default_factory=dict)
    held: tuple[str, ...] = ()
    render_defaults: Mapping[str, Any] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every parameter name the preset refers to."""
        return set(self.varied or ()) | set(self.grids) | set(self.fixed) | set(self.held)


class Synth(ABC):
    """A synthesizer: a list of :class:`ParamSpec` plus a renderer.

    Subclasses implement :meth:`_render_unit`, which receives a complete,
    validated vector of unit values in host order.
    """

    #: short identifier, e.g. "noisemaker" or a plugin's file name
    name: str = "synth"

    @property
    @abstractmethod
    def specs(self) -> Sequence[ParamSpec]:
        """The parameters, in host order."""

    @property
    def sampler_presets(self) -> Mapping[str, SamplerPreset]:
        """The named samplers this synth offers beyond the generic ``all`` (none by default)."""
        return {}

    @property
    def param_names(self) -> list[str]:
        return [s.name for s in self.specs]

    def spec(self, name: str) -> ParamSpec:
        """The spec called ``name``; an unknown name lists the closest valid ones."""
        by_name = self._spec_index()
        if name not in by_name:
            raise UnknownParameterError(name, self.param_names, synth=self.name)
        return self.specs[by_name[name]]

    def _spec_index(self) -> dict[str, int]:
        cache = self.__dict__.get("_by_name")
        if cache is None:
            cache = {s.name: i for i, s in enumerate(self.specs)}
            self.__dict__["_by_name"] = cache
        return cache

    def default_patch(self) -> dict[str, float]:
        return {s.name: float(s.default) for s in self.specs}

    def identity(self) -> dict[str, Any]:
        """What identifies this synth's sound: an id and a hash of its DSP or binary."""
        return {"synth": self.name}

    def patch_vector(self, patch: Mapping[str, float] | None = None) -> np.ndarray:
        """Validate ``patch`` and return all unit values in host order (float64).

        Missing names take their defaults. Raises
        :class:`~synth_probe.errors.UnknownParameterError` for an unknown name and
        :class:`~synth_probe.errors.ParameterValueError` for a value that is not a
        number in [0, 1].
        """
        vec = np.array([s.default for s in self.specs], dtype=np.float64)
        if patch is None:
            return vec
        if not isinstance(patch, Mapping):
            raise PatchFileError(
                f"a patch must be a mapping of parameter names to unit values, got {type(patch).__name__}"
            )
        index = self._spec_index()
        for key, value in patch.items():
            if key not in index:
                raise UnknownParameterError(str(key), self.param_names, synth=self.name)
            vec[index[key]] = check_unit_value(key, value)
        return vec

    def render(
        self,
        patch: Mapping[str, float] | None = None,
        *,
        note: int = 60,
        velocity: int = 100,
        note_length: float = 1.0,
        render_length: float = 1.5,
        sample_rate: int = 44100,
        seed: int = 0,
    ) -> np.ndarray:
        """Render one note of ``patch``.

        Returns
        -------
        audio : np.ndarray [shape=(n_samples,), dtype=float32]
            Mono audio (the synth's stereo output averaged).
        """
        settings = RenderSettings(note, velocity, note_length, render_length, sample_rate)
        vec = self.patch_vector(patch)
        return self.render_vector(vec, settings, seed=seed)

    def render_vector(self, vec: np.ndarray, settings: RenderSettings, seed: int = 0) -> np.ndarray:
        """Render a validated unit vector (host order). For batch code that validated already."""
        audio = self._render_unit(np.asarray(vec, dtype=np.float64), settings, int(seed))
        return np.ascontiguousarray(audio, dtype=np.float32)

    def render_batch(self, vectors: np.ndarray, settings: RenderSettings, seeds: np.ndarray | None = None
                     ) -> np.ndarray:
        """Render every row of ``vectors`` (validated unit vectors in host order).

        Returns
        -------
        audio : np.ndarray [shape=(n, settings.n_samples), dtype=float32]

        Synths that can batch (a plugin in a child process answers a batch in one round trip)
        override this; the default renders row by row.
        """
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
        seeds = np.zeros(len(vectors), dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=np.int64)
        out = np.empty((len(vectors), settings.n_samples), dtype=np.float32)
        for k, vec in enumerate(vectors):
            out[k] = self.render_vector(vec, settings, seed=int(seeds[k]))
        return out

    @abstractmethod
    def _render_unit(self, vec: np.ndarray, settings: RenderSettings, seed: int) -> np.ndarray:
        """Render a validated unit vector. Returns mono float audio of ``settings.n_samples``."""

    def programs_to_build(self, vectors: np.ndarray, settings: RenderSettings) -> list[Any]:
        """Programs (e.g. compiled DSP variants) that rendering ``vectors`` would build first (none by default).

        A caller builds them up front with :meth:`build_program` (in worker processes, in
        parallel) so that rendering runs at an even pace. ``vectors`` has shape ``(n, n_params)``.
        """
        return []

    def build_program(self, program: Any, settings: RenderSettings) -> None:
        """Build one program named by :meth:`programs_to_build` (a no-op by default)."""

    def close(self) -> None:
        """Release engines or child processes. Safe to call twice."""

    def __enter__(self) -> Synth:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_unit_value(name: str, value: Any) -> float:
    """Return ``value`` as a float in [0, 1], or raise naming the parameter."""
    if isinstance(value, bool):
        value = float(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ParameterValueError(
            f"parameter {name!r}: value {value!r} is not a number; unit values are numbers in [0, 1]"
        ) from None
    if math.isnan(x):
        raise ParameterValueError(f"parameter {name!r}: value is NaN; unit values are numbers in [0, 1]")
    if not (0.0 <= x <= 1.0):
        raise ParameterValueError(
            f"parameter {name!r}: value {x!r} is outside [0, 1]; patches hold normalized unit values"
        )
    return x


def read_patch_file(path: str | Path) -> dict[str, float]:
    """Read a patch from a JSON file: ``{"name": value, ...}`` or ``{"params": {...}}``.

    Raises
    ------
    PatchFileError
        Missing, unreadable, not JSON (or nested too deeply to parse), or not an object
        (see :func:`synth_probe.fileio.read_json`); values are checked when the patch is used.
    """
    example = 'expected an object of parameter names to unit values such as {"cutoff": 0.5, "resonance": 0.2}'
    data = read_json(path, error=PatchFileError, what="patch file", expect=dict, hint=example,
                     max_bytes=PATCH_FILE_MAX_BYTES)
    if isinstance(data.get("params"), dict):
        data = data["params"]
    return data

