"""Parameter values as people write them: unit values, choice labels and physical quantities.

``synth-probe render --set`` and ``generate --fix`` take ``NAME=VALUE`` where VALUE is

* a plain number: the unit value in [0, 1] the host sees (``cutoff=0.4``);
* a choice label of a discrete parameter, case and spaces ignored (``filtertype=lp24``,
  ``osc1tune=+12st``, ``osc1tune=12 semitones``); a label that reads as a plain number
  is written ``choice:LABEL`` (a plugin's ``osc2_pitch=choice:-7``);
* a number with a unit, for a continuous parameter whose spec maps unit values to that
  unit (``cutoff=1.5kHz``, ``ampattack=20ms``, ``volume=-6dB``, ``resonance=50%``).

A physical value is turned into a unit value through the spec's own mapping
(:attr:`ParamSpec.physical`), inverted numerically by bisection; that needs the mapping
to be monotonic on [0, 1], which :func:`monotonic_direction` checks on a grid, and a
mapping that is not monotonic refuses physical input. A value outside the mapping's
range is refused naming the range in the spec's units, unless it rounds to an end point
as :meth:`ParamSpec.display` shows it (``22.1kHz`` is the top of the cutoff's range).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from synth_probe.errors import ParameterValueError, format_number
from synth_probe.synths.base import ParamSpec, Synth, check_unit_value, format_quantity

__all__ = ["UNITS", "CHOICE_PREFIX", "parse_quantity", "parse_value", "physical_to_unit", "monotonic_direction",
           "split_assignment", "patch_from_assignments"]

#: unit text (lower case) -> (the unit a spec uses, factor to it)
UNITS: dict[str, tuple[str, float]] = {
    "hz": ("Hz", 1.0), "khz": ("Hz", 1e3),
    "s": ("s", 1.0), "sec": ("s", 1.0), "ms": ("s", 1e-3),
    "db": ("dB", 1.0), "%": ("%", 1.0),
    "st": ("st", 1.0), "semi": ("st", 1.0), "semitone": ("st", 1.0), "semitones": ("st", 1.0),
    "ct": ("st", 0.01), "cent": ("st", 0.01), "cents": ("st", 0.01),
    "deg": ("deg", 1.0), "°": ("deg", 1.0), "x": ("x", 1.0), "levels": ("levels", 1.0),
}
_QUANTITY = re.compile(r"^([-+]?(?:inf|\d+\.?\d*(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?))\s*([^\d\s].*)$", re.I)
_TIMES = re.compile(r"^x\s*(\d+\.?\d*|\.\d+)$", re.I)  # "x3", as format_quantity writes a factor
#: what marks a choice label that reads as a number (a plain number is a unit value): ``choice:-7``
CHOICE_PREFIX = "choice:"
#: points on [0, 1] where a mapping's monotony is checked
MONOTONY_GRID = 1025


def parse_quantity(text: str) -> tuple[float, str] | None:
    """A number with a unit, e.g. ``"1.5kHz"`` -> ``(1500.0, "Hz")``, ``"x3"`` -> ``(3.0, "x")``.

    Returns ``None`` when ``text`` is not a number followed by a unit; the unit is the
    canonical one of :data:`UNITS`, or the text itself (stripped) when it is not known there.
    """
    text = str(text).strip()
    m = _TIMES.match(text)
    if m:
        return float(m.group(1)), "x"
    m = _QUANTITY.match(text)
    if not m:
        return None
    x, unit_text = float(m.group(1)), m.group(2).strip()
    unit, factor = UNITS.get(unit_text.lower(), (unit_text, 1.0))
    return x * factor, unit


def _plain_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _norm(label: str) -> str:
    return re.sub(r"\s+", "", str(label)).lower()


def _example(spec: ParamSpec) -> str:
    """How to write a physical value of ``spec``: its middle value as it displays, without spaces."""
    return f"{spec.name}={spec.display(0.5).replace(' ', '')}"


def _range(spec: ParamSpec) -> str:
    """The physical range of a continuous spec, low end first, rounded as it displays."""
    a, b = float(spec.to_physical(0.0)), float(spec.to_physical(1.0))
    lo, hi = (0.0, 1.0) if a <= b else (1.0, 0.0)
    return f"{spec.display(lo)} … {spec.display(hi)}"


def _choices(spec: ParamSpec) -> str:
    """The choices of a discrete spec with their unit values; a long list is shortened."""
    items = [f"{c}={format_number(v)}" for c, v in zip(spec.choices, spec.choice_values)]
    if len(items) > 12:
        items = items[:4] + ["…"] + items[-2:] + [f"({len(spec.choices)} choices)"]
    return ", ".join(items)


def monotonic_direction(spec: ParamSpec) -> int:
    """+1 if the spec's unit->physical mapping rises on [0, 1], -1 if it falls, 0 if neither.

    Checked on :data:`MONOTONY_GRID` points; flat stretches are allowed (a plugin's coarse
    value texts), a mapping flat everywhere or with no mapping at all gives 0.
    """
    if spec.is_discrete or spec.physical is None:
        return 0
    grid = np.linspace(0.0, 1.0, MONOTONY_GRID)
    vals = np.array([float(spec.physical(float(v))) for v in grid], dtype=np.float64)
    if np.isnan(vals).any():
        return 0
    vals = np.nan_to_num(vals, posinf=1e300, neginf=-1e300)
    d = np.diff(vals)
    tol = 1e-9 * max(1.0, float(np.max(np.abs(vals[np.abs(vals) < 1e299]), initial=0.0)))
    if np.all(d >= -tol) and np.any(d > tol):
        return 1
    if np.all(d <= tol) and np.any(d < -tol):
        return -1
    return 0


def physical_to_unit(spec: ParamSpec, x: float, text: str | None = None) -> float:
    """The unit value whose physical value (in ``spec.unit``) is ``x``.

    Inverts the spec's mapping by bisection (60 halvings: to float precision).

    Raises
    ------
    ParameterValueError
        The mapping is not monotonic, or ``x`` lies outside its range (``text`` is how the
        value was written, for the message).
    """
    shown = text if text is not None else format_quantity(x, spec.unit).replace(" ", "")
    direction = monotonic_direction(spec)
    if direction == 0:
        raise ParameterValueError(
            f"{spec.name}={shown}: its mapping to {spec.unit} is not monotonic on [0, 1], so a physical value "
            f"has no single unit value; write a unit value in [0, 1] (`synth-probe params SYNTH` shows the range)")
    f = spec.physical
    assert f is not None
    lo_v, hi_v = (0.0, 1.0) if direction > 0 else (1.0, 0.0)
    lo_p, hi_p = float(f(lo_v)), float(f(hi_v))
    if x <= lo_p or x >= hi_p:
        end_v, end_p = (lo_v, lo_p) if x <= lo_p else (hi_v, hi_p)
        if x == end_p or (format_quantity(x, spec.unit) == format_quantity(end_p, spec.unit)
                          and abs(x - end_p) <= 0.005 * max(abs(x), abs(end_p))):
            return end_v  # at an end point as people read it (22.1kHz for 22.05 kHz)
        raise ParameterValueError(f"{spec.name}={shown} is outside {_range(spec)}")
    a, b = 0.0, 1.0  # f(a) <= x <= f(b) in the rising direction
    for _ in range(60):
        mid = 0.5 * (a + b)
        y = float(f(mid))
        if (y < x) == (direction > 0):
            a = mid
        else:
            b = mid
    return a if abs(float(f(a)) - x) <= abs(float(f(b)) - x) else b


def _choice_value(spec: ParamSpec, text: str) -> float | None:
    """The unit value of the choice ``text`` names (label, case and spaces ignored, or equal quantity)."""
    key = _norm(text)
    hits = [k for k, c in enumerate(spec.choices) if c == text.strip()]
    hits = hits or [k for k, c in enumerate(spec.choices) if _norm(c) == key]
    q = parse_quantity(text)
    if not hits and q is not None:
        for k, c in enumerate(spec.choices):
            qc = parse_quantity(c)
            if qc is not None and qc[1] == q[1] and math.isclose(qc[0], q[0], rel_tol=1e-9, abs_tol=1e-12):
                hits.append(k)
    if len({spec.choice_values[k] for k in hits}) != 1:
        return None
    return float(spec.choice_values[hits[0]])


def parse_value(spec: ParamSpec, raw: object) -> float:
    """The unit value in [0, 1] that ``raw`` sets ``spec`` to.

    ``raw`` is a number (a unit value) or text: a plain number (a unit value), a choice
    label of a discrete spec, or a number with a unit for a continuous spec with a mapping
    (see the module's docstring). Discrete values come back as their choice's unit value
    only when written as a label; a unit value is returned as given (the synth rounds it).

    Raises
    ------
    ParameterValueError
        Naming the parameter: not a number, a label or a quantity; a unit value outside
        [0, 1] or NaN; a physical value outside the range (named in the spec's units); a
        unit that is not the spec's; a spec without a monotonic mapping.
    """
    if not isinstance(raw, str):
        return check_unit_value(spec.name, raw)
    text = raw.strip()
    if text.lower().startswith(CHOICE_PREFIX):  # a label that reads as a number: osc2_pitch=choice:-7
        label = text[len(CHOICE_PREFIX):].strip()
        if not spec.is_discrete:
            raise ParameterValueError(f"{spec.name}={text}: {spec.name} is continuous and has no choices")
        v = _choice_value(spec, label)
        if v is None:
            raise ParameterValueError(f"{spec.name}={text}: {label!r} is not one of its choices: {_choices(spec)}")
        return v
    number = _plain_number(text)
    if number is not None:
        try:
            return check_unit_value(spec.name, number)
        except ParameterValueError as e:
            if spec.is_discrete:
                numeric = any(_plain_number(c) is not None for c in spec.choices)
                how = f" (a label that reads as a number as {CHOICE_PREFIX}LABEL)" if numeric else ""
                raise ParameterValueError(f"{e}; or write a choice{how}: {_choices(spec)}") from None
            if spec.physical is not None and spec.unit:
                raise ParameterValueError(
                    f"{e}; or write a physical value with its unit, e.g. {_example(spec)} ({_range(spec)})") from None
            raise
    if spec.is_discrete:
        v = _choice_value(spec, text)
        if v is None:
            raise ParameterValueError(f"{spec.name}={text} is not one of its choices: {_choices(spec)}")
        return v
    q = parse_quantity(text)
    if spec.physical is None or not spec.unit:
        what = "is not a number" if q is None else "has a unit, but the parameter has no physical unit"
        raise ParameterValueError(f"parameter {spec.name!r}: value {text!r} {what}; unit values are numbers in [0, 1]")
    if q is None:
        raise ParameterValueError(
            f"parameter {spec.name!r}: value {text!r} is not a number; write a unit value in [0, 1] or a physical "
            f"value with its unit, e.g. {_example(spec)} ({_range(spec)})")
    x, unit = q
    if unit not in {u for u, _ in UNITS.values()} | {spec.unit}:
        raise ParameterValueError(f"{spec.name}={text}: unknown unit {unit!r}; {spec.name} is in {spec.unit} "
                                  f"({_range(spec)}), e.g. {_example(spec)}")
    if unit != spec.unit:
        raise ParameterValueError(f"{spec.name}={text}: {spec.name} is in {spec.unit} ({_range(spec)}), "
                                  f"not {unit}; e.g. {_example(spec)}")
    if math.isnan(x):
        raise ParameterValueError(f"parameter {spec.name!r}: value is NaN")
    return physical_to_unit(spec, x, text)


def split_assignment(item: str) -> tuple[str, str]:
    """``"cutoff=1.5kHz"`` -> ``("cutoff", "1.5kHz")``; no ``=`` or no name is a ParameterValueError."""
    if "=" not in item:
        raise ParameterValueError(f"expected NAME=VALUE, got {item!r}")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key:
        raise ParameterValueError(f"expected NAME=VALUE, got {item!r} (no name)")
    return key, raw.strip()


def patch_from_assignments(synth: Synth, items: Sequence[str] | Mapping[str, object]) -> dict[str, float]:
    """Unit values of ``["cutoff=1.5kHz", "filtertype=LP24", ...]`` (or a mapping of names to values).

    Returns
    -------
    patch : dict of str to float
        One unit value in [0, 1] per name; a name given twice takes its last value.

    Raises
    ------
    UnknownParameterError
        A name the synth does not have (with the closest names).
    ParameterValueError
        A malformed item or a value :func:`parse_value` refuses.
    """
    pairs = list(items.items()) if isinstance(items, Mapping) else [split_assignment(str(i)) for i in items]
    return {str(k): parse_value(synth.spec(str(k)), v) for k, v in pairs}
