"""Synths: the interface, the built-in TAL-NoiseMaker emulation, and plugins."""
from __future__ import annotations

from synth_probe.synths.base import ParamSpec, RenderSettings, Synth
from synth_probe.synths.registry import BUILTIN_SYNTHS, get_synth

__all__ = ["ParamSpec", "RenderSettings", "Synth", "BUILTIN_SYNTHS", "get_synth"]
