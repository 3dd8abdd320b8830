"""The 88 parameters of TAL-NoiseMaker, in the commercial v4/v5 host order.

Facts (names, order, mappings, defaults of the startup program, which slots are
inert and what gates what) follow ``shared/reference/tal-noisemaker.md`` §1–§3
and §6. The unit→physical functions here are used for display and by the
Faust program (``noisemaker.dsp``), which implements the same formulas.
"""
from __future__ import annotations

import math

from synth_probe.synths.base import CONTINUOUS, DISCRETE, ParamSpec

__all__ = ["NOISEMAKER_SPECS", "ENVELOPE_TIMES", "envelope_time"]

# Envelope times (seconds) at v = 0, .1, .25, .5, .75, 1 (reference §1, "Envelope times").
# Between the points the time is interpolated linearly in log-time.
ENVELOPE_POINTS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
ENVELOPE_TIMES = {
    "attack": (0.003, 0.009, 0.049, 1.4, 22.0, 25.0),
    "decay": (0.004, 0.015, 0.096, 3.2, 71.0, 104.0),
    "release": (0.005, 0.009, 0.040, 1.0, 10.7, 13.0),
}


def envelope_time(stage: str, v: float) -> float:
    """Seconds for an envelope ``stage`` ("attack", "decay", "release") at unit value ``v``."""
    times = ENVELOPE_TIMES[stage]
    pts = ENVELOPE_POINTS
    for i in range(len(pts) - 1):
        if v <= pts[i + 1] or i == len(pts) - 2:
            t = (v - pts[i]) / (pts[i + 1] - pts[i])
            t = min(max(t, 0.0), 1.0)
            lo, hi = math.log(times[i]), math.log(times[i + 1])
            return math.exp(lo + t * (hi - lo))
    return times[-1]  # pragma: no cover


def _db(gain: float) -> float:
    return 20 * math.log10(gain) if gain > 0 else -math.inf


def _exp20(v: float) -> float:
    return (20.0**v - 1.0) / 19.0


def _cube(v: float) -> float:
    return (2.0 * v - 1.0) ** 3


def _cutoff_hz(v: float) -> float:
    c = (8.0**v - 1.0) / 7.0
    return min(c * c, 1.0) * 22050.0


def _lfo_hz(v: float) -> float:
    return (math.exp(0.2) * 20.0 ** (3.0 * v) - 1.0) / 19.0


def _glide_12st(v: float) -> float:
    per_sample = ((0.11 - 0.1 * v) ** 6 + 1e-8) * 1e4
    return 12.0 / per_sample / 44100.0


def _highpass_hz(v: float) -> float:
    a = 0.999 - 0.4 * _exp20(v)
    return -math.log(a) * 44100.0 / (2 * math.pi)


def _delay_s(v: float) -> float:
    return 4.0 * (0.01 + 0.99 * _exp20(v))


def _tune_choice(v: float) -> int:
    x = 48.0 * v - 24.0
    # truncation toward zero; the nudge keeps a GUI-written (s+24)/48 on s even in float32
    s = int(x + 1e-4) if x >= 0 else -int(-x + 1e-4)
    return s + 24


def _lfo_wave_choice(v: float) -> int:
    return int(5.000001 * v)


def _transpose_choice(v: float) -> int:
    return int(3.00001 * v)


def _choices(n_or_labels, values=None):
    labels = tuple(n_or_labels)
    if values is None:
        n = len(labels)
        values = tuple(k / (n - 1) for k in range(n))
    return labels, tuple(values)


ONOFF = _choices(("off", "on"))
TUNE_LABELS = tuple(f"{s:+d} st" if s else "0 st" for s in range(-24, 25))
TUNE = (TUNE_LABELS, tuple((s + 24) / 48.0 for s in range(-24, 25)))
LFO_WAVES = _choices(("sine", "triangle", "saw", "square", "s&h", "noise"), (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
LFO1_DEST = _choices(("off", "filter", "osc1", "osc2", "pw", "fm", "lfo2 rate", "osc1+2"))
LFO2_DEST = _choices(("off", "filter", "osc1", "osc2", "pan", "volume", "lfo1 rate", "osc1+2"))
FILTER_TYPES = _choices(
    ("LP24", "LP18", "LP12", "LP6", "HP12", "BP12", "Notch", "SV-LP", "SV-HP", "SV-BP", "LP24 Moog", "Off")
)

# Gates: other parameters that make a gated parameter audible (reference §3).
FILTER_OPEN = {"cutoff": 0.4}
FILTER_ENV = {"cutoff": 0.3, "filtercontour": 1.0, "filtersustain": 0.3}
LFO1_GATE = {"lfo1amount": 1.0, "lfo1destination": 1 / 7, "cutoff": 0.4}
LFO2_GATE = {"lfo2amount": 1.0, "lfo2destination": 1 / 7, "cutoff": 0.4}
FREEAD_GATE = {"freeaddestination": 0.2, "freeadamount": 1.0, "cutoff": 0.3}
ENVED_GATE = {"envelopeeditordest1": 1 / 7, "envelopeeditoramount": 1.0, "cutoff": 0.3}
DELAY_GATE = {"delaywet": 0.5}
REVERB_GATE = {"reverbwet": 0.7}
OSC2_ON = {"osc2volume": 0.8}


def _c(index, name, default, group, *, unit="", physical=None, inert=False, note="", gate=None):
    return ParamSpec(
        index=index, name=name, kind=CONTINUOUS, default=default, group=group, unit=unit,
        physical=physical, inert=inert, note=note, gate=dict(gate or {}),
    )


def _d(index, name, default, group, choices, *, rounding="round", chooser=None, inert=False, note="", gate=None):
    labels, values = choices
    return ParamSpec(
        index=index, name=name, kind=DISCRETE, default=default, group=group, choices=labels,
        choice_values=values, rounding=rounding, chooser=chooser, inert=inert, note=note,
        gate=dict(gate or {}),
    )


def _build() -> tuple[ParamSpec, ...]:
    att = lambda v: envelope_time("attack", v)  # noqa: E731
    dec = lambda v: envelope_time("decay", v)  # noqa: E731
    rel = lambda v: envelope_time("release", v)  # noqa: E731
    pct = lambda v: 100.0 * v  # noqa: E731
    depth = lambda v: 100.0 * _cube(v)  # noqa: E731
    gain_db = lambda v: _db(_exp20(v))  # noqa: E731
    specs = [
        _c(0, "unused", 0.0, "inert", inert=True, note="no function"),
        _c(1, "volume", 0.408, "master", unit="dB", physical=lambda v: _db((20 ** (2 * v) - 1) / 19),
           note="master gain (20^(2v)-1)/19: 0.5 = 0 dB"),
        _d(2, "filtertype", 0.0, "filter", FILTER_TYPES, gate=FILTER_OPEN,
           note="ladder LP24/18/12/6, HP12, BP12, notch; state-variable LP/HP/BP; extra ladder; off"),
        _c(3, "cutoff", 1.0, "filter", unit="Hz", physical=_cutoff_hz,
           note="c=(8^v-1)/7 plus modulation, squared: f = c^2 * 22.05 kHz (LP24 sits 1.42x higher)"),
        _c(4, "resonance", 0.0, "filter", unit="%", physical=pct, gate={"cutoff": 0.5},
           note="self-oscillates without input from about 0.95 (LP12/LP6 at 1); state-variable types ring and decay from 0.85"),
        _c(5, "keyfollow", 0.0, "filter", unit="%", physical=lambda v: 100 * v * v, gate=FILTER_OPEN,
           note="adds v^2*(note-72)/512 to the cutoff"),
        _c(6, "filtercontour", 0.5, "filter", unit="%", physical=depth,
           gate={"cutoff": 0.3, "filterdecay": 0.3, "filtersustain": 0.0},
           note="filter envelope depth (2v-1)^3"),
        _c(7, "filterattack", 0.0, "filter-env", unit="s", physical=att, gate=FILTER_ENV),
        _c(8, "filterdecay", 0.0, "filter-env", unit="s", physical=dec, gate=FILTER_ENV),
        _c(9, "filtersustain", 1.0, "filter-env", unit="%", physical=lambda v: 100 * _exp20(v),
           gate={"cutoff": 0.3, "filtercontour": 1.0, "filterdecay": 0.2}),
        _c(10, "filterrelease", 0.0, "filter-env", unit="s", physical=rel, gate=FILTER_ENV),
        _c(11, "ampattack", 0.0, "amp-env", unit="s", physical=att),
        _c(12, "ampdecay", 0.0, "amp-env", unit="s", physical=dec, gate={"ampsustain": 0.3}),
        _c(13, "ampsustain", 1.0, "amp-env", unit="%", physical=pct),
        _c(14, "amprelease", 0.0, "amp-env", unit="s", physical=rel),
        _c(15, "osc1volume", 0.8, "osc", unit="dB", physical=gain_db),
        _c(16, "osc2volume", 0.0, "osc", unit="dB", physical=gain_db),
        _c(17, "osc3volume", 0.8, "osc", unit="dB", physical=gain_db, note="sub oscillator, two octaves down"),
        _c(18, "oscmastertune", 0.5, "osc", unit="st", physical=lambda v: 2 * v - 1),
        _d(19, "osc1tune", 0.25, "osc", TUNE, rounding="trunc", chooser=_tune_choice),
        _d(20, "osc2tune", 0.5, "osc", TUNE, rounding="trunc", chooser=_tune_choice, gate=OSC2_ON),
        _c(21, "osc1finetune", 0.5, "osc", unit="st", physical=lambda v: 2 * v - 1),
        _c(22, "osc2finetune", 0.5, "osc", unit="st", physical=lambda v: 2 * v - 1, gate=OSC2_ON),
        _d(23, "osc1waveform", 0.0, "osc", _choices(("saw", "pulse", "noise"))),
        _d(24, "osc2waveform", 0.0, "osc", _choices(("saw", "pulse", "triangle", "sine", "noise")), gate=OSC2_ON),
        _d(25, "oscsync", 0.0, "osc", ONOFF, rounding="gt0", gate={"osc1tune": (7 + 24) / 48},
           note="osc 1 and 2 hard-sync to the sub; on for any value > 0"),
        _d(26, "lfo1waveform", 0.0, "lfo1", LFO_WAVES, rounding="trunc", chooser=_lfo_wave_choice, gate=LFO1_GATE),
        _d(27, "lfo2waveform", 0.0, "lfo2", LFO_WAVES, rounding="trunc", chooser=_lfo_wave_choice, gate=LFO2_GATE),
        _c(28, "lfo1rate", 0.0, "lfo1", unit="Hz", physical=_lfo_hz, gate=LFO1_GATE),
        _c(29, "lfo2rate", 0.0, "lfo2", unit="Hz", physical=_lfo_hz, gate=LFO2_GATE),
        _c(30, "lfo1amount", 0.5, "lfo1", unit="%", physical=depth, gate={"lfo1destination": 1 / 7, "cutoff": 0.4, "lfo1rate": 0.4}),
        _c(31, "lfo2amount", 0.5, "lfo2", unit="%", physical=depth, gate={"lfo2destination": 1 / 7, "cutoff": 0.4, "lfo2rate": 0.4}),
        _d(32, "lfo1destination", 0.0, "lfo1", LFO1_DEST, gate={"lfo1amount": 0.9, "lfo1rate": 0.4, "cutoff": 0.4}),
        _d(33, "lfo2destination", 0.0, "lfo2", LFO2_DEST, gate={"lfo2amount": 0.9, "lfo2rate": 0.4, "cutoff": 0.4}),
        _c(34, "lfo1phase", 0.0, "lfo1", unit="deg", physical=lambda v: 360 * v,
           gate={**LFO1_GATE, "lfo1keytrigger": 1.0, "lfo1rate": 0.3}, note="start phase on key-trigger"),
        _c(35, "lfo2phase", 0.0, "lfo2", unit="deg", physical=lambda v: 360 * v,
           gate={**LFO2_GATE, "lfo2keytrigger": 1.0, "lfo2rate": 0.3}, note="start phase on key-trigger"),
        _c(36, "osc2fm", 0.0, "osc", unit="%", physical=lambda v: 100 * _exp20(v), gate=OSC2_ON),
        _c(37, "osc2phase", 0.0, "osc", unit="deg", physical=lambda v: 360 * v, gate=OSC2_ON,
           note="start phase of osc 2 relative to the sub"),
        _c(38, "osc1pw", 0.5, "osc", unit="%", physical=pct, gate={"osc1waveform": 0.5},
           note="osc 1 pulse width (v5 labels it 'Osc 2 PW')"),
        _c(39, "osc1phase", 0.5, "osc", unit="deg", physical=lambda v: 360 * v,
           note="start phase of osc 1 relative to the sub (v5 labels it 'Osc 2 Phase')"),
        _d(40, "transpose", 0.5, "osc", _choices(("-12 st", "0 st", "+12 st", "+24 st"), (0.0, 0.5, 0.75, 1.0)),
           rounding="trunc", chooser=_transpose_choice),
        _c(41, "freeadattack", 0.0, "free-ad", unit="s", physical=att, gate=FREEAD_GATE),
        _c(42, "freeaddecay", 0.0, "free-ad", unit="s", physical=dec, gate={**FREEAD_GATE, "freeadattack": 0.2}),
        _c(43, "freeadamount", 0.0, "free-ad", unit="%", physical=depth,
           gate={"freeaddestination": 0.2, "freeaddecay": 0.3, "cutoff": 0.3}, note="(2v-1)^3: 0 is full negative depth; PW and FM use its size"),
        _d(44, "freeaddestination", 0.0, "free-ad", _choices(("off", "filter", "osc1", "osc2", "pw", "fm")),
           gate={"freeaddecay": 0.3, "cutoff": 0.5}),
        _d(45, "lfo1sync", 0.0, "lfo1", ONOFF, gate=LFO1_GATE, note="rate from 120 BPM divisions"),
        _d(46, "lfo1keytrigger", 0.0, "lfo1", ONOFF, gate={**LFO1_GATE, "lfo1rate": 0.3, "lfo1phase": 0.25},
           note="restart the LFO at its phase knob on note-on; else it runs on (a fresh one from phase 0)"),
        _d(47, "lfo2sync", 0.0, "lfo2", ONOFF, gate=LFO2_GATE, note="rate from 120 BPM divisions"),
        _d(48, "lfo2keytrigger", 0.0, "lfo2", ONOFF, gate={**LFO2_GATE, "lfo2rate": 0.3, "lfo2phase": 0.25},
           note="restart the LFO at its phase knob on note-on; else it runs on (a fresh one from phase 0)"),
        _c(49, "portamento", 0.0, "portamento", unit="s", physical=_glide_12st, gate={"portamentomode": 1.0},
           note="glide time over 12 semitones; a fresh instance glides from MIDI note 42 in mode On"),
        _d(50, "portamentomode", 0.0, "portamento", _choices(("off", "auto", "on")), gate={"portamento": 0.5},
           note="off and auto do not glide on an isolated note"),
        _d(51, "voices", 0.0, "voice", _choices(("mono", "2", "3", "4", "5", "6")), inert=True,
           note="mono and poly sound the same on one note"),
        _c(52, "velocityvolume", 0.0, "velocity", unit="%", physical=pct, note="gain 1 - v*(1 - velocity/127)"),
        _c(53, "velocitycontour", 0.0, "velocity", unit="%", physical=pct,
           gate={"cutoff": 0.2, "filtercontour": 0.5, "filterdecay": 0.3, "filtersustain": 0.0}),
        _c(54, "velocitycutoff", 0.0, "velocity", unit="%", physical=pct, gate={"cutoff": 0.3}),
        _c(55, "pitchwheelcutoff", 0.0, "pitchwheel", unit="%", physical=pct, inert=True,
           note="no effect without pitch-bend messages"),
        _c(56, "pitchwheelpitch", 0.0, "pitchwheel", unit="st", physical=lambda v: 12 * v, inert=True,
           note="no effect without pitch-bend messages"),
        _c(57, "ringmodulation", 0.0, "osc", unit="%", physical=pct, gate=OSC2_ON,
           note="(o1+o2)(r-1) + 8r*o1*o2"),
        _d(58, "chorus1enable", 0.0, "fx-chorus", ONOFF, note="Juno chorus I (0.5 Hz)"),
        _d(59, "chorus2enable", 0.0, "fx-chorus", ONOFF, note="Juno chorus II (0.83 Hz)"),
        _c(60, "reverbwet", 0.0, "fx-reverb", unit="dB", physical=gain_db, note="0 bypasses the reverb"),
        _c(61, "reverbdecay", 0.5, "fx-reverb", unit="%", physical=pct, gate=REVERB_GATE),
        _c(62, "reverbpredelay", 0.0, "fx-reverb", unit="s", physical=_exp20, gate=REVERB_GATE),
        _c(63, "reverbhighcut", 0.0, "fx-reverb", unit="%", physical=pct, gate=REVERB_GATE,
           note="acts as a high-pass on the reverb input (0 = open)"),
        _c(64, "reverblowcut", 1.0, "fx-reverb", unit="%", physical=pct, gate=REVERB_GATE,
           note="acts as a low-pass on the reverb input (1 = open, 0 = silent)"),
        _c(65, "oscbitcrusher", 1.0, "osc", unit="levels", physical=lambda v: 1 + v**8 * 65535,
           note="1 = off; otherwise 1 + v^8*65535 levels over -1..1 on osc 1/2, truncated: silent at <= 0.25"),
        _c(66, "highpass", 0.0, "master", unit="Hz", physical=_highpass_hz, note="master one-pole high-pass"),
        _c(67, "detune", 0.0, "master", unit="%", physical=lambda v: 0.25 * v * v,
           note="random per-note pitch scaling, seeded by the render's seed"),
        _c(68, "vintagenoise", 0.0, "master", unit="%", physical=pct,
           note="a soft crackle x v before the filter (measured: +0.5 dB on the default patch at 1)"),
        _c(69, "panic", 0.0, "inert", inert=True, note="a write releases all voices; silent"),
        _c(70, "midilearn", 0.0, "inert", inert=True, note="no audio function"),
        _d(71, "envelopeeditordest1", 0.0, "env-editor",
           _choices(("off", "filter", "osc1", "osc2", "osc1+2", "fm", "ringmod", "volume")),
           gate={"envelopeeditoramount": 1.0, "cutoff": 0.3, "osc2volume": 0.5}),
        _d(72, "envelopeeditorspeed", 0.0, "env-editor",
           _choices(("x1", "x2", "x4", "x8", "x16", "x32")), gate=ENVED_GATE, inert=True,
           note="speed of the editor's curve, which a patch leaves flat at 0.5: no effect (measured)"),
        _c(73, "envelopeeditoramount", 0.0, "env-editor", unit="%", physical=lambda v: 100 * v * v,
           gate={"envelopeeditordest1": 1 / 7, "cutoff": 0.3},
           note="v^2 times the flat curve (0.5): a static offset on cutoff, FM or ring; volume x0.25v^2"),
        _d(74, "envelopeoneshot", 0.0, "env-editor", ONOFF, gate={**ENVED_GATE, "envelopeeditorspeed": 1.0},
           inert=True, note="plays the editor's curve once; the flat default curve sounds the same (measured)"),
        _d(75, "envelopefixtempo", 0.0, "env-editor", ONOFF, inert=True,
           note="fixes the editor's tempo at 120 BPM; the flat default curve has no tempo to fix"),
        _d(76, "envelopereset", 0.0, "env-editor", ONOFF, rounding="gt0", inert=True,
           note="resets the curve to its default flat line, the shape a patch's values leave it in"),
        _c(77, "filterdrive", 0.0, "filter", unit="x", physical=lambda v: 1 + 10 * v, gate={"cutoff": 0.6},
           note="filter input x(1+10v), output /(1+5v)"),
        _c(78, "delaywet", 0.0, "fx-delay", unit="%", physical=pct, note="0 bypasses the delay"),
        _c(79, "delaytime", 0.5, "fx-delay", unit="s", physical=_delay_s, gate=DELAY_GATE),
        _d(80, "delaysync", 0.0, "fx-delay", ONOFF, gate=DELAY_GATE, note="time from 120 BPM divisions"),
        _d(81, "delayfactorl", 0.0, "fx-delay", ONOFF, gate={**DELAY_GATE, "delaytime": 0.3},
           note="halves the left delay time"),
        _d(82, "delayfactorr", 0.0, "fx-delay", ONOFF, gate={**DELAY_GATE, "delaytime": 0.3},
           note="halves the right delay time"),
        _c(83, "delayhighshelf", 0.0, "fx-delay", unit="%", physical=pct,
           gate={**DELAY_GATE, "delaytime": 0.3, "delayfeedback": 0.8}, note="low-pass in the feedback loop"),
        _c(84, "delaylowshelf", 0.0, "fx-delay", unit="%", physical=pct,
           gate={**DELAY_GATE, "delaytime": 0.3, "delayfeedback": 0.8}, note="high-pass in the feedback loop"),
        _c(85, "delayfeedback", 0.5, "fx-delay", unit="%", physical=lambda v: 100 * (1 + _cube(v)) / 2,
           gate={**DELAY_GATE, "delaytime": 0.3}),
        _c(86, "midiclear", 0.0, "inert", inert=True, note="no audio function"),
        _c(87, "midilock", 0.0, "inert", inert=True, note="no audio function"),
    ]
    for i, s in enumerate(specs):
        assert s.index == i, (i, s.name)
    return tuple(specs)


NOISEMAKER_SPECS: tuple[ParamSpec, ...] = _build()
