"""The named samplers of TAL-NoiseMaker: which parameters vary, on which grids, what is held.

Defined on the synth's canonical parameter names and offered through
:attr:`NoiseMaker.sampler_presets <synth_probe.synths.base.Synth.sampler_presets>`; the generic
sampler ``all`` lives in :mod:`synth_probe.sampling`.

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

import numpy as np

from synth_probe.synths.base import SamplerPreset

__all__ = [
    "TIMBRAL_HELD", "TIMBRAL_FIXED", "TIMBRAL_VARIED", "INVERSYNTH_GRIDS", "INVERSYNTH_FIXED", "INVERSYNTH_RENDER",
    "NOISEMAKER_SAMPLERS",
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


#: InverSynth II's value grids on TAL-NoiseMaker; discrete values
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


#: the named samplers TAL-NoiseMaker offers, by name
NOISEMAKER_SAMPLERS: dict[str, SamplerPreset] = {
    "timbral": SamplerPreset(
        "timbral",
        "the 43 timbral parameters vary; LFO key-triggers on; effects, velocity, pitch wheel, voices, "
        "portamento, envelope editor, LFO sync, transpose, high-pass, drive and inert slots at defaults",
        TIMBRAL_VARIED,
        fixed=TIMBRAL_FIXED,
        held=TIMBRAL_HELD,
    ),
    "inversynth": SamplerPreset(
        "inversynth",
        "InverSynth II's parameters on its grids (LFO key-triggers on, effects off)",
        tuple(INVERSYNTH_GRIDS),
        grids=INVERSYNTH_GRIDS,
        fixed=INVERSYNTH_FIXED,
        render_defaults=INVERSYNTH_RENDER,
    ),
}
