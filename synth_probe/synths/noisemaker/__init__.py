"""The built-in TAL-NoiseMaker emulation: a Faust program rendered by DawDreamer.

The Faust source is ``noisemaker.dsp`` (voice, modulation, master section) plus
``fx.lib`` (delay, chorus, reverb), shipped as package data. It is compiled
once per process and sample rate, and the compiled engine is reused for every
render in that process (DESIGN.md, convention 5).
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from importlib import resources

import numpy as np

from synth_probe.errors import RenderError
from synth_probe.synths.base import ParamSpec, RenderSettings, Synth
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

__all__ = ["NoiseMaker", "dsp_source"]

BLOCK_SIZE = 512
# control sliders of the Faust program that are not synth parameters
CONTROLS = ("ctl_note", "ctl_velocity", "ctl_notelen", "ctl_seed")


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def dsp_source() -> str:
    """The complete Faust program (fx.lib inlined), as compiled."""
    return _read("noisemaker.dsp").replace('import("fx.lib");', _read("fx.lib"))


class _Engine:
    """One DawDreamer engine with the compiled program, for one process and sample rate."""

    def __init__(self, sample_rate: int, source: str, names: Sequence[str]) -> None:
        import dawdreamer as daw

        self.engine = daw.RenderEngine(int(sample_rate), BLOCK_SIZE)
        self.proc = self.engine.make_faust_processor("noisemaker")
        self.proc.set_dsp_string(source)
        if not self.proc.compile():  # pragma: no cover - the shipped program compiles
            raise RenderError("the noisemaker Faust program failed to compile")
        by_label = {d["label"]: d["index"] for d in self.proc.get_parameters_description()}
        missing = [n for n in list(names) + list(CONTROLS) if n not in by_label]
        if missing:  # pragma: no cover - guarded by tests
            raise RenderError(f"noisemaker.dsp lacks sliders for {missing}")
        self.param_index = [by_label[n] for n in names]
        self.control_index = {n: by_label[n] for n in CONTROLS}
        self.engine.load_graph([(self.proc, [])])


class NoiseMaker(Synth):
    """TAL-NoiseMaker's 88 parameters and signal path, emulated in Faust.

    Parameters
    ----------
    stereo : bool, default=False
        Return ``(2, n_samples)`` instead of the mono mix.
    """

    name = "noisemaker"

    def __init__(self, *, stereo: bool = False) -> None:
        self.stereo = stereo
        self._source = dsp_source()
        self._engines: dict[tuple[int, int], _Engine] = {}
        self._lock = threading.Lock()

    @property
    def specs(self) -> Sequence[ParamSpec]:
        return NOISEMAKER_SPECS

    def identity(self) -> dict:
        return {
            "synth": self.name,
            "kind": "builtin",
            "dsp_sha256": hashlib.sha256(self._source.encode()).hexdigest(),
            "n_params": len(NOISEMAKER_SPECS),
        }

    def _engine(self, sample_rate: int) -> _Engine:
        # engines are per process (a forked child builds its own) and per sample rate
        key = (os.getpid(), int(sample_rate))
        eng = self._engines.get(key)
        if eng is None:
            eng = _Engine(sample_rate, self._source, self.param_names)
            self._engines = {k: v for k, v in self._engines.items() if k[0] == key[0]}
            self._engines[key] = eng
        return eng

    def _render_unit(self, vec: np.ndarray, settings: RenderSettings, seed: int) -> np.ndarray:
        with self._lock:  # one engine is never shared by two threads at once
            eng = self._engine(settings.sample_rate)
            proc = eng.proc
            for idx, value in zip(eng.param_index, vec):
                proc.set_parameter(idx, float(value))
            ci = eng.control_index
            proc.set_parameter(ci["ctl_note"], float(settings.note))
            proc.set_parameter(ci["ctl_velocity"], float(settings.velocity))
            proc.set_parameter(ci["ctl_notelen"], float(settings.note_length))
            proc.set_parameter(ci["ctl_seed"], float(seed % 1_000_000))
            eng.engine.render(settings.render_length)
            audio = eng.engine.get_audio()
        n = settings.n_samples
        audio = audio[:, :n]
        if audio.shape[1] < n:  # pragma: no cover - DawDreamer renders whole lengths
            audio = np.pad(audio, ((0, 0), (0, n - audio.shape[1])))
        if self.stereo:
            return audio
        return audio.mean(axis=0)

    def close(self) -> None:
        self._engines.clear()

    def __getstate__(self) -> dict:
        # engines do not pickle; a worker process builds its own
        state = self.__dict__.copy()
        state["_engines"] = {}
        state.pop("_lock", None)
        state.pop("_by_name", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
