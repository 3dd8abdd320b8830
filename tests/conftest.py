from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def noisemaker():
    """One emulation instance (and so one compiled engine) for the whole session."""
    from synth_probe.synths.noisemaker import NoiseMaker

    synth = NoiseMaker()
    yield synth
    synth.close()
