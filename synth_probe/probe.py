"""Probes: the set of renders taken of one patch — one or more (note, velocity, note length).

A single held note hides some parameters by construction: key-follow does nothing one note
can tell apart from the cutoff, velocity → cutoff and velocity → volume nothing one velocity
can tell apart from the cutoff and volume. A :class:`Probe` plays the patch at several notes,
velocities and note lengths (their product); every render keeps the render length and sample
rate of the :class:`~synth_probe.synths.base.RenderSettings` it is applied to, so the renders
of one patch stack as an array ``(n_renders, n_samples)``.

The default probe, :data:`DEFAULT_PROBE`, is the settings' own single note: one render, the
same as before probes existed, so a default run's datasets, figures and identities are unchanged.

Text form (``--probe``): ``default``, or ``KEY=V,V,...`` terms joined by ``/``, with the keys
``notes`` (MIDI 0..127), ``velocities`` (1..127) and ``lengths`` (note lengths, seconds), e.g.
``notes=36,60,84``, ``velocities=64,127`` or ``notes=36,60,84/velocities=64,127``. A key left
out takes the render settings' own value.

A probe's distance between two patches is the **sum** over its renders of the per-render
multi-resolution log-mel distance (dB): a difference heard on one note keeps its full size
however many renders the probe has (an average would divide it by their number and hide it
under the tolerance), and the render-noise floor, measured the same way, sums the renders'
floors, so noise and effect scale alike.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from synth_probe.errors import ParameterValueError, RenderError
from synth_probe.synths.base import RenderSettings, Synth

__all__ = ["Probe", "DEFAULT_PROBE", "parse_probe", "probe_arg", "render_probe", "PROBE_KEYS",
           "MAX_PROBE_RENDERS"]

#: the keys of the text form, and the field of :class:`Probe` each sets
PROBE_KEYS = {"notes": "notes", "velocities": "velocities", "lengths": "note_lengths"}
#: the most renders one probe may take of a patch (a product of notes x velocities x lengths)
MAX_PROBE_RENDERS = 64
_ALLOWED = ("'default', or KEY=V,V,... terms joined by '/', KEY one of notes (MIDI 0..127), velocities (1..127), "
            "lengths (seconds), e.g. notes=36,60,84/velocities=64,127")


@dataclass(frozen=True)
class Probe:
    """The renders taken of one patch: the product of ``notes`` x ``velocities`` x ``note_lengths``.

    Parameters
    ----------
    notes, velocities : tuple of int, optional
        None: the render settings' own note (velocity).
    note_lengths : tuple of float, optional
        Seconds the note is held; None: the settings' own.
    """

    notes: tuple[int, ...] | None = None
    velocities: tuple[int, ...] | None = None
    note_lengths: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("notes", "velocities", "note_lengths"):
            v = getattr(self, name)
            if v is not None:
                if len(v) == 0:
                    raise ParameterValueError(f"probe {name} must not be empty; {_ALLOWED}")
                if len(set(v)) != len(v):
                    raise ParameterValueError(f"probe {name} repeat a value ({list(v)}); {_ALLOWED}")
        n = len(self.notes or (0,)) * len(self.velocities or (0,)) * len(self.note_lengths or (0,))
        if n > MAX_PROBE_RENDERS:
            raise ParameterValueError(f"a probe takes at most {MAX_PROBE_RENDERS} renders of a patch, this one {n}")

    @property
    def is_default(self) -> bool:
        """True for the settings' own single note (the behaviour before probes)."""
        return self.notes is None and self.velocities is None and self.note_lengths is None

    def n_renders(self) -> int:
        return len(self.notes or (0,)) * len(self.velocities or (0,)) * len(self.note_lengths or (0,))

    def renders(self, settings: RenderSettings) -> list[RenderSettings]:
        """The render settings of each render, notes outermost, then velocities, then lengths.

        Each is ``settings`` with its note, velocity and note length replaced (validated by
        :class:`RenderSettings`); the default probe gives ``[settings]``.
        """
        notes = self.notes or (settings.note,)
        vels = self.velocities or (settings.velocity,)
        lengths = self.note_lengths or (settings.note_length,)
        return [replace(settings, note=int(n), velocity=int(v), note_length=float(L))
                for n, v, L in itertools.product(notes, vels, lengths)]

    def text(self) -> str:
        """The text form (:func:`parse_probe` reads it back)."""
        if self.is_default:
            return "default"
        terms = []
        for key, name in PROBE_KEYS.items():
            v = getattr(self, name)
            if v is not None:
                terms.append(f"{key}=" + ",".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v))
        return "/".join(terms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (None for a key the settings fill)."""
        return {name: (None if getattr(self, name) is None else list(getattr(self, name)))
                for name in PROBE_KEYS.values()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Probe:
        d = d or {}
        return cls(*(None if d.get(name) is None else tuple(d[name]) for name in PROBE_KEYS.values()))


DEFAULT_PROBE = Probe()


def _values(key: str, text: str) -> tuple:
    conv = float if key == "lengths" else int
    out = []
    for x in text.split(","):
        x = x.strip()
        try:
            v = conv(x)
        except ValueError:
            raise ParameterValueError(f"probe {key}: {x!r} is not a{'' if key == 'lengths' else 'n integer'} "
                                      f"number; {_ALLOWED}") from None
        if key == "notes" and not 0 <= v <= 127:
            raise ParameterValueError(f"probe notes: {v} is not a MIDI note 0..127")
        if key == "velocities" and not 1 <= v <= 127:
            raise ParameterValueError(f"probe velocities: {v} is not a velocity 1..127")
        if key == "lengths" and not (math.isfinite(v) and v >= 0):
            raise ParameterValueError(f"probe lengths: {x} is not a note length in seconds (>= 0)")
        out.append(v)
    return tuple(out)


def parse_probe(text: str | Probe | None) -> Probe:
    """Read a probe's text form (see the module notes); a :class:`Probe` or None passes through (None: default).

    Raises
    ------
    ParameterValueError
        One line naming the bad term and what is allowed.
    """
    if text is None:
        return DEFAULT_PROBE
    if isinstance(text, Probe):
        return text
    s = str(text).strip()
    if s in ("", "default"):
        return DEFAULT_PROBE
    fields: dict[str, tuple] = {}
    for term in s.split("/"):
        key, eq, vals = term.partition("=")
        key = key.strip()
        if not eq or key not in PROBE_KEYS:
            raise ParameterValueError(f"probe term {term!r} is not understood; {_ALLOWED}")
        if PROBE_KEYS[key] in fields:
            raise ParameterValueError(f"probe key {key!r} given twice in {s!r}")
        fields[PROBE_KEYS[key]] = _values(key, vals)
    return Probe(**fields)


def probe_arg(text: str) -> Probe:
    """argparse type of ``--probe``: the error becomes argparse's one line."""
    import argparse

    try:
        return parse_probe(text)
    except ParameterValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def render_probe(synth: Synth, vec: np.ndarray, renders: Sequence[RenderSettings], seed: int = 0) -> np.ndarray:
    """Render one validated unit vector at each of a probe's render settings.

    Returns
    -------
    audio : np.ndarray [shape=(n_renders, n_samples), dtype=float32]
    """
    return np.stack([synth.render_vector(vec, s, seed=int(seed)) for s in renders])


def check_finite(audio: np.ndarray, what: str, patch: dict[str, float]) -> None:
    """Raise :class:`RenderError` when ``audio`` holds non-finite samples."""
    if not np.all(np.isfinite(audio)):
        raise RenderError(f"{what} rendered non-finite audio", patch=patch)
