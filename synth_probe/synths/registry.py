"""Find a synth by name or plugin path."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from synth_probe.errors import UnknownSynthError, closest_names
from synth_probe.synths.base import ParamSpec, SamplerPreset, Synth
from synth_probe.synths.noisemaker.samplers import NOISEMAKER_SAMPLERS
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

__all__ = ["BUILTIN_SYNTHS", "builtin_sampler_presets", "builtin_specs", "get_synth", "is_plugin_path"]

BUILTIN_SYNTHS = {"noisemaker": "TAL-NoiseMaker emulation in Faust, rendered by DawDreamer (88 parameters)"}
#: what is known of each built-in synth without opening it: its specs and its named samplers
_BUILTIN_KNOWLEDGE: dict[str, tuple[Sequence[ParamSpec], Mapping[str, SamplerPreset]]] = {
    "noisemaker": (NOISEMAKER_SPECS, NOISEMAKER_SAMPLERS),
}
PLUGIN_SUFFIXES = (".so", ".vst3", ".dll", ".vst", ".component", ".clap")


def is_plugin_path(name: str) -> bool:
    """True when ``name`` looks like a path to a plugin rather than a built-in synth's name."""
    return os.sep in name or name.lower().endswith(PLUGIN_SUFFIXES) or Path(name).exists()


def get_synth(name: str | os.PathLike, **kwargs) -> Synth:
    """Return the synth called ``name``: a built-in one or a plugin at a path.

    ``kwargs`` go to the synth's constructor (for plugins, e.g. ``isolate=True``).
    """
    key = str(name)
    if key in BUILTIN_SYNTHS:
        from synth_probe.synths.noisemaker import NoiseMaker

        return NoiseMaker(**kwargs)
    if is_plugin_path(key):
        try:
            from synth_probe.synths.plugin import PluginSynth
        except ImportError as e:  # pragma: no cover - plugin support is part of the package
            raise UnknownSynthError(f"plugin support is not available: {e}") from None
        return PluginSynth(key, **kwargs)
    hint = closest_names(key, BUILTIN_SYNTHS)
    extra = f" Did you mean {hint[0]!r}?" if hint else ""
    raise UnknownSynthError(
        f"unknown synth {key!r}.{extra} Built-in synths: {', '.join(BUILTIN_SYNTHS)}; "
        "or give the path of a VST2 (.so) or VST3 (.vst3) plugin."
    )


def builtin_specs(name: str) -> Sequence[ParamSpec] | None:
    """The parameter specs of the built-in synth called ``name``, without opening it; None for other names."""
    known = _BUILTIN_KNOWLEDGE.get(str(name))
    return known[0] if known else None


def builtin_sampler_presets() -> dict[str, SamplerPreset]:
    """The named samplers of every built-in synth, by name (the generic ``all`` is not among them)."""
    out: dict[str, SamplerPreset] = {}
    for _, presets in _BUILTIN_KNOWLEDGE.values():
        out.update(presets)
    return out
