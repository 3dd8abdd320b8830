"""A fault-injecting wrapper around the real NoiseMaker, for the dataset's fault-handling tests.

Real plugins can blow up: a patch makes the engine output NaN, and the instance then
stays broken until it is loaded anew (reference tal-noisemaker.md §4). The emulation
never does, so this wrapper reproduces that behaviour around real renders:

* ``unused`` >= 0.99: the patch always blows up;
* ``unused`` in [0.5, 0.99): it blows up on the first attempt in a process only;
* once an instance blew up, every later render of it is NaN until it is re-created.

Importable by worker processes (tests put this folder on PYTHONPATH).
"""
from __future__ import annotations

import numpy as np

from synth_probe.synths.noisemaker import NoiseMaker


_TRIED: set[float] = set()  # per process, so a re-created instance renders the patch fine


class FlakyNoiseMaker(NoiseMaker):
    name = "noisemaker"

    def __init__(self) -> None:
        super().__init__()
        self.poisoned = False

    def _render_unit(self, vec, settings, seed):
        audio = super()._render_unit(vec, settings, seed)
        trigger = vec[0]
        if trigger >= 0.99 or (trigger >= 0.5 and trigger not in _TRIED):
            _TRIED.add(trigger)
            self.poisoned = True
        if self.poisoned:
            return np.full_like(audio, np.nan)
        return audio

    def __setstate__(self, state):
        super().__setstate__(state)
        self.poisoned = False


def sleeping_task(ctx, marker: str, seconds: float) -> int:
    """A pool task that says it started (its pid into ``marker``) and then sleeps."""
    import os
    import time
    from pathlib import Path

    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()
