"""synth_probe: which synthesizer parameters can be recovered from audio, and how well."""
from __future__ import annotations

from synth_probe._version import __version__
from synth_probe.errors import SynthProbeError
from synth_probe.synths import ParamSpec, RenderSettings, Synth, get_synth


__all__ = ["ParamSpec", "RenderSettings", "Synth", "SynthProbeError", "get_synth", "load_dataset", "__version__"]


def __getattr__(name: str):
    # load_dataset lives in dataset.py, which pulls in pandas; import it on first use
    if name == "load_dataset":
        from synth_probe.dataset import load_dataset

        return load_dataset
    raise AttributeError(f"module 'synth_probe' has no attribute {name!r}")
