"""amsynth banks: read, map into the plugin's unit space, write back.

An amsynth bank (``*.amSynth.bank``) is a text file::

    amSynth
    <preset> <name> basic11
    <parameter> amp_attack 0.0333333
    ...
    EOF

Each ``<parameter>`` line holds amsynth's *internal* value of a parameter — the
value between the parameter's ``min`` and ``max`` that amsynth stores — not the
value a host sees. The host's unit value is linear in the internal value,
``unit = (value - min) / (max - min)`` (amsynth's ``setNormalisedValue``), and
the plugin's value text shows the *control* value, the internal value through
the parameter's law (linear ``offset + base * v``, exponential
``offset + base ** v`` or power ``offset + v ** base``).

The ranges and laws below are amsynth's own (its ``Parameter.cpp`` table,
version 1.13). :func:`check_value_texts` verifies them against a plugin's value
texts read through DawDreamer, and :func:`readback` against the texts after
writing whole presets and rendering them.

Parameters that a preset does not list (banks older than the parameter) take
amsynth's default, as amsynth does when it loads such a preset.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import PresetFileError, UnknownParameterError

__all__ = [
    "AMSYNTH_PARAMS",
    "AMSYNTH_NAMES",
    "FACTORY_BANK_DIR",
    "AmsynthParam",
    "Preset",
    "read_bank",
    "load_factory_presets",
    "preset_to_unit",
    "presets_to_frame",
    "unit_to_preset",
    "write_bank",
    "check_value_texts",
    "readback",
]

FACTORY_BANK_DIR = Path("/usr/share/amsynth/banks")
HEADER = "amSynth"
LINEAR, EXPONENTIAL, POWER = "linear", "exponential", "power"


@dataclass(frozen=True)
class AmsynthParam:
    """One amsynth parameter: its internal range, step and law.

    Attributes
    ----------
    name : str
        amsynth's name (also the plugin's parameter name).
    default, min, max : float
        Internal values.
    step : float
        0 for continuous parameters; 1 for selectors (internal values snap to
        ``min + k * step``).
    law : {"linear", "exponential", "power"}
    base, offset : float
        Control value = ``offset + base * v`` (linear), ``offset + base ** v``
        (exponential) or ``offset + v ** base`` (power).
    """

    name: str
    default: float
    min: float
    max: float
    step: float = 0.0
    law: str = LINEAR
    base: float = 1.0
    offset: float = 0.0

    def snap(self, value: float) -> float:
        """The internal value amsynth keeps: clamped to [min, max], snapped to the step."""
        v = min(max(float(value), self.min), self.max)
        if self.step > 0:
            v = self.min + math.floor((v - self.min) / self.step + 0.5) * self.step
        return v

    def control(self, value: float) -> float:
        """Control value (what the plugin's value text shows) of an internal value."""
        v = self.snap(value)
        if self.law == LINEAR:
            return self.offset + self.base * v
        if self.law == EXPONENTIAL:
            return self.offset + self.base**v
        return self.offset + v**self.base

    def to_unit(self, value: float) -> float:
        """Host unit value in [0, 1] of an internal value."""
        return (self.snap(value) - self.min) / (self.max - self.min)

    def from_unit(self, unit: float) -> float:
        """Internal value that unit value ``unit`` sets (snapped like amsynth does)."""
        return self.snap(self.min + float(unit) * (self.max - self.min))


_P = AmsynthParam
#: amsynth's 41 parameters in host order (amsynth 1.13 ``Parameter.cpp``)
AMSYNTH_PARAMS: tuple[AmsynthParam, ...] = (
    _P("amp_attack", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("amp_decay", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("amp_sustain", 1.0, 0.0, 1.0),
    _P("amp_release", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("osc1_waveform", 2.0, 0.0, 4.0, 1.0),
    _P("filter_attack", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("filter_decay", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("filter_sustain", 1.0, 0.0, 1.0),
    _P("filter_release", 0.0, 0.0, 2.5, 0, POWER, 3.0, 0.0005),
    _P("filter_resonance", 0.0, 0.0, 0.97),
    _P("filter_env_amount", 0.0, -16.0, 16.0),
    _P("filter_cutoff", 1.5, -0.5, 1.5, 0, EXPONENTIAL, 16.0, 0.0),
    _P("osc2_detune", 0.0, -1.0, 1.0, 0, EXPONENTIAL, 1.25, 0.0),
    _P("osc2_waveform", 2.0, 0.0, 4.0, 1.0),
    _P("master_vol", 0.67, 0.0, 1.0, 0, POWER, 2.0, 0.0),
    _P("lfo_freq", 0.0, 0.0, 7.5, 0, POWER, 2.0, 0.0),
    _P("lfo_waveform", 0.0, 0.0, 6.0, 1.0),
    _P("osc2_range", 0.0, -3.0, 4.0, 1.0, EXPONENTIAL, 2.0, 0.0),
    _P("osc_mix", 0.0, -1.0, 1.0),
    _P("freq_mod_amount", 0.0, 0.0, 1.25992105, 0, POWER, 3.0, -1.0),
    _P("filter_mod_amount", -1.0, -1.0, 1.0),
    _P("amp_mod_amount", -1.0, -1.0, 1.0),
    _P("osc_mix_mode", 0.0, 0.0, 1.0),
    _P("osc1_pulsewidth", 1.0, 0.0, 1.0),
    _P("osc2_pulsewidth", 1.0, 0.0, 1.0),
    _P("reverb_roomsize", 0.0, 0.0, 1.0),
    _P("reverb_damp", 0.0, 0.0, 1.0),
    _P("reverb_wet", 0.0, 0.0, 1.0),
    _P("reverb_width", 1.0, 0.0, 1.0),
    _P("distortion_crunch", 0.0, 0.0, 0.9),
    _P("osc2_sync", 0.0, 0.0, 1.0, 1.0),
    _P("portamento_time", 0.0, 0.0, 1.0),
    _P("keyboard_mode", 0.0, 0.0, 2.0, 1.0),
    _P("osc2_pitch", 0.0, -12.0, 12.0, 1.0),
    _P("filter_type", 0.0, 0.0, 4.0, 1.0),
    _P("filter_slope", 1.0, 0.0, 1.0, 1.0),
    _P("freq_mod_osc", 0.0, 0.0, 2.0, 1.0),
    _P("filter_kbd_track", 1.0, 0.0, 1.0),
    _P("filter_vel_sens", 1.0, 0.0, 1.0),
    _P("amp_vel_sens", 1.0, 0.0, 1.0),
    _P("portamento_mode", 0.0, 0.0, 1.0),
)
AMSYNTH_NAMES: tuple[str, ...] = tuple(p.name for p in AMSYNTH_PARAMS)
_BY_NAME = {p.name: p for p in AMSYNTH_PARAMS}


def _param(name: str) -> AmsynthParam:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownParameterError(name, AMSYNTH_NAMES, synth="amsynth") from None


@dataclass
class Preset:
    """One preset of a bank.

    Attributes
    ----------
    name : str
    values : dict of str to float
        Internal values as the file lists them (parameters it omits are absent).
    bank : str
        File name of the bank ("" for presets made here).
    index : int
        Position in the bank (0-based).
    unknown : dict of str to float
        Parameters the file lists that amsynth 1.13 does not have (ignored, as amsynth does).
    """

    name: str
    values: dict[str, float]
    bank: str = ""
    index: int = 0
    unknown: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """``bank/index:name``, unique within a set of banks."""
        return f"{self.bank}/{self.index}:{self.name}"

    def complete(self) -> dict[str, float]:
        """All 41 internal values (amsynth's default where the file omits one), snapped."""
        return {p.name: p.snap(self.values.get(p.name, p.default)) for p in AMSYNTH_PARAMS}

    def control_values(self) -> dict[str, float]:
        """The control values (what the plugin's value texts show) of all 41 parameters."""
        full = self.complete()
        return {p.name: p.control(full[p.name]) for p in AMSYNTH_PARAMS}


def read_bank(path: str | os.PathLike) -> list[Preset]:
    """Read the presets of one amsynth bank file.

    Parameters
    ----------
    path : path
        A ``*.amSynth.bank`` file.

    Returns
    -------
    presets : list of Preset
        In file order; ``index`` is the position, ``bank`` the file name.

    Raises
    ------
    PresetFileError
        A missing or unreadable file, a file that does not start with ``amSynth``,
        a ``<parameter>`` line before any ``<preset>``, or a value that is not a
        finite number — with the line number.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise PresetFileError(f"bank file {str(p)!r} does not exist") from None
    except OSError as e:
        raise PresetFileError(f"bank file {str(p)!r} cannot be read: {e}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != HEADER:
        first = lines[0][:40] if lines else "(empty file)"
        raise PresetFileError(
            f"{str(p)!r} is not an amsynth bank: its first line is {first!r}, an amsynth bank starts with {HEADER!r}"
        )
    presets: list[Preset] = []
    current: Preset | None = None
    for lineno, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line == "EOF":
            continue
        if line.startswith("<preset>"):
            rest = line[len("<preset>"):].strip()
            name = rest[len("<name>"):].strip() if rest.startswith("<name>") else rest
            current = Preset(name=name, values={}, bank=p.name, index=len(presets))
            presets.append(current)
            continue
        if line.startswith("<parameter>"):
            if current is None:
                raise PresetFileError(f"{p}:{lineno}: a <parameter> line before any <preset> line")
            parts = line.split()
            if len(parts) != 3:
                raise PresetFileError(
                    f"{p}:{lineno}: expected '<parameter> NAME VALUE', got {line[:60]!r}"
                )
            _, name, value_text = parts
            try:
                value = float(value_text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise PresetFileError(
                    f"{p}:{lineno}: parameter {name!r} of preset {current.name!r} has value {value_text!r}; "
                    "values must be finite numbers"
                )
            if name in _BY_NAME:
                current.values[name] = value
            else:
                current.unknown[name] = value
            continue
        # anything else (e.g. a header glued to "EOF" by concatenation) is ignored, as amsynth does
    return presets


def load_factory_presets(directory: str | os.PathLike = FACTORY_BANK_DIR) -> list[Preset]:
    """All presets of the ``*.bank`` files in ``directory`` (sorted by file name).

    Raises
    ------
    PresetFileError
        The folder does not exist or holds no bank (install the Debian package ``amsynth``).
    """
    d = Path(directory)
    files = sorted(d.glob("*.bank")) if d.is_dir() else []
    if not files:
        raise PresetFileError(
            f"no amsynth banks (*.bank) in {str(d)!r}; they come with the Debian package 'amsynth'"
        )
    out: list[Preset] = []
    for f in files:
        out.extend(read_bank(f))
    return out


def preset_to_unit(preset: Preset | Mapping[str, float], names: Sequence[str] | None = None) -> dict[str, float]:
    """Map a preset's internal values onto the plugin's unit values.

    Parameters
    ----------
    preset : Preset or mapping of str to float
        A preset, or internal values by name (omitted names take amsynth's defaults).
    names : sequence of str, optional
        The synth's parameter names (``PluginSynth.param_names``); each must be an
        amsynth parameter. Default: all 41.

    Returns
    -------
    patch : dict of str to float
        Unit values in [0, 1].
    """
    values = preset.values if isinstance(preset, Preset) else dict(preset)
    for k in values:
        _param(k)
    names = AMSYNTH_NAMES if names is None else names
    out = {}
    for n in names:
        p = _param(n)
        out[n] = float(p.to_unit(values.get(n, p.default)))
    return out


def presets_to_frame(presets: Sequence[Preset], names: Sequence[str] | None = None):
    """Unit values of many presets as a DataFrame (one row per preset, indexed by :attr:`Preset.key`)."""
    import pandas as pd

    names = list(AMSYNTH_NAMES if names is None else names)
    rows = [preset_to_unit(p, names) for p in presets]
    return pd.DataFrame(rows, columns=names, index=pd.Index([p.key for p in presets], name="preset"))


def unit_to_preset(patch: Mapping[str, float], name: str = "synth-probe match") -> Preset:
    """The preset that unit values ``patch`` set (omitted parameters: amsynth's defaults)."""
    values = {}
    for k, u in patch.items():
        p = _param(k)
        values[k] = p.from_unit(float(u))
    for p in AMSYNTH_PARAMS:
        values.setdefault(p.name, p.default)
    return Preset(name=name, values=values)


def write_bank(presets: Iterable[Preset], path: str | os.PathLike) -> Path:
    """Write presets as an amsynth bank file that amsynth can load.

    Values are written with 6 significant digits, as amsynth writes them.
    """
    lines = [HEADER]
    for pre in presets:
        lines.append(f"<preset> <name> {pre.name}")
        full = pre.complete()
        for p in AMSYNTH_PARAMS:
            lines.append(f"<parameter> {p.name} {full[p.name]:.6g}")
    lines.append("EOF")
    out = Path(path)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


# --------------------------------------------------------------------------------------------
# verification against the plugin
# --------------------------------------------------------------------------------------------
def _close(expected: float, text: str, rel: float = 2e-4, abs_: float = 2e-5) -> tuple[bool, float]:
    try:
        got = float(str(text).split()[0])
    except (ValueError, IndexError):
        return False, math.inf
    err = abs(got - expected)
    return err <= abs_ + rel * abs(expected), err


def check_value_texts(description: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Compare this module's ranges and laws with a plugin's value texts.

    Parameters
    ----------
    description : sequence of dict
        ``PluginSynth.description``: per host parameter its ``name`` and ``texts``
        (the value text at each unit value of ``PROBE_GRID``, 257 points).

    Returns
    -------
    rows : list of dict
        Per parameter: ``name``, ``n`` (texts compared), ``mismatches``,
        ``max_abs_error`` and ``worst`` (unit value, expected, text) — all 41 must
        have 0 mismatches for the mapping to hold.
    """
    from synth_probe.synths._plugin_worker import PROBE_GRID

    rows = []
    for d in description:
        name = str(d["name"])
        p = _param(name)
        mism, worst, max_err = 0, None, 0.0
        for u, text in zip(PROBE_GRID, d["texts"]):
            expected = p.control(p.from_unit(float(u)))
            ok, err = _close(expected, text)
            if err > max_err:
                max_err, worst = err, (float(u), expected, str(text))
            mism += not ok
        rows.append({"name": name, "n": len(d["texts"]), "mismatches": mism, "max_abs_error": max_err,
                     "worst": worst})
    return rows


def readback(plugin_path: str | os.PathLike, presets: Sequence[Preset], *, sample_rate: int = 22050,
             note: int = 60, render_length: float = 0.3) -> list[dict[str, Any]]:
    """Write each preset's unit values into a real plugin instance, render a note, read the texts back.

    Runs the plugin in this process (DawDreamer engine built here).

    Returns
    -------
    rows : list of dict
        Per preset: ``preset`` (key), ``mismatches`` (list of ``(name, expected
        control value, text)``), ``peak`` (peak level of the render).
    """
    from synth_probe.synths._plugin_worker import PluginHost

    host = PluginHost(str(plugin_path))
    n = host.load(sample_rate)
    names = [str(host.proc.get_parameter_name(i)) for i in range(n)]
    out = []
    for pre in presets:
        unit = preset_to_unit(pre, names)
        audio = host.render(list(range(n)), [unit[nm] for nm in names], note, 100, render_length * 0.7,
                            render_length, sample_rate, 0.05)
        expected = pre.control_values()
        bad = []
        for i, nm in enumerate(names):
            text = str(host.proc.get_parameter_text(i))
            ok, _ = _close(expected[nm], text)
            if not ok:
                bad.append((nm, expected[nm], text))
        out.append({"preset": pre.key, "mismatches": bad, "peak": float(np.max(np.abs(audio))) if audio.size else 0.0})
    host.engine = host.proc = None
    return out
