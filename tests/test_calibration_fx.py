"""The emulation's effects and output level held to figures of the real TAL-NoiseMaker engine.

``tests/data/calibration_fx.json`` holds small figures of 24 real calibration renders (delay,
reverb, chorus, master volume; see ``calibration_figures.py`` for how they were derived):

    python tests/calibration_figures.py --ref ../shared/calibration/tal-noisemaker-gpl \\
        --probes '^(?:delay_0(?:03|09|16|18|21|24|27|28|31|34)_|reverb_0(?:02|04|06|07|08|11|13|16|19|22)_|sweep_35[57]_chorus|sweep_00[34]_volume_)' \\
        --out tests/data/calibration_fx.json

Each test renders the same patches with the emulation and compares the figures that the effect
under test decides: the delay's echo level and length, the reverb's tail level and audible
length, the chorus level, and the true peak of renders that go above full scale.
"""
from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np
import pytest

from calibration_figures import figures, load, render_probe

DATA = load(Path(__file__).parent / "data" / "calibration_fx.json")


def _ids(prefix: str) -> list[str]:
    return sorted(k for k in DATA if k.startswith(prefix))


@pytest.fixture(scope="module")
def emulated(noisemaker) -> dict[str, tuple[np.ndarray, dict]]:
    """Every probe of the figures file rendered once by the emulation: (audio, figures)."""
    out = {}
    for pid, entry in DATA.items():
        audio = render_probe(noisemaker, entry["probe"])
        out[pid] = (audio, figures(audio))
    return out


@pytest.mark.parametrize("pid", _ids("delay_"))
def test_delay_echo_level_and_length(emulated, pid: str) -> None:
    # loop gain 1+(2v-1)^3 through a tanh, loop EQ on every pass: echo level within 1.5 dB
    # from one echo (feedback 0) to saturation (feedback 1), as long as the real echoes
    real, emu = DATA[pid]["real"], emulated[pid][1]
    assert emu["level_db"] == pytest.approx(real["level_db"], abs=1.0), "level over the note"
    assert emu["tail_db"] == pytest.approx(real["tail_db"], abs=1.5), "echoes after note-off"
    assert emu["audible_s"] == pytest.approx(real["audible_s"], abs=0.1)


@pytest.mark.parametrize("pid", _ids("reverb_"))
def test_reverb_tail_level_and_length(emulated, pid: str) -> None:
    # the real modulation is random (2.3 dB between rand() seeds): the tolerances leave room for it
    real, emu = DATA[pid]["real"], emulated[pid][1]
    assert emu["tail_db"] == pytest.approx(real["tail_db"], abs=3.5), "reverb tail after note-off"
    assert emu["audible_s"] == pytest.approx(real["audible_s"], abs=0.15)
    assert emu["level_db"] == pytest.approx(real["level_db"], abs=3.5)


@pytest.mark.parametrize("pid", _ids("sweep_35"))
def test_chorus_level(emulated, pid: str) -> None:
    # each chorus adds its low-passed wet at x1.4: the real render is 4.7 dB above the dry one
    real, emu = DATA[pid]["real"], emulated[pid][1]
    assert emu["level_db"] == pytest.approx(real["level_db"], abs=1.0)
    assert emu["centroid_st"] == pytest.approx(real["centroid_st"], abs=3.0)


def test_renders_above_full_scale_stay_above_it(emulated) -> None:
    # no limiter: every probe whose real render peaks above 1 comes within 3 dB of the real true peak
    # or above it (the reverb's random modulation moves single peaks by about 2 dB between rand()
    # seeds; the saturated delay loop peaks higher here), and master volume reaches the real true
    # peaks (2.43 at 0.75, 10.9 at 1) within 1 dB
    over = [pid for pid in DATA if DATA[pid]["real"]["true_peak"] >= 1.0]
    assert len(over) >= 3
    for pid in over:
        ratio_db = 20.0 * np.log10(emulated[pid][1]["peak"] / DATA[pid]["real"]["true_peak"])
        assert ratio_db > -3.0, pid
    for pid in _ids("sweep_00"):
        ratio_db = 20.0 * np.log10(emulated[pid][1]["peak"] / DATA[pid]["real"]["true_peak"])
        assert abs(ratio_db) < 1.0, pid


def test_a_render_above_full_scale_survives_storage_and_playback(emulated) -> None:
    from synth_probe.dataset import decode_audio, encode_audio
    from synth_probe.report.html import wav_data_uri

    audio = emulated["sweep_004_volume_1.00"][0]
    peak = float(np.max(np.abs(audio)))
    assert peak > 5.0
    # dataset shards: int16 with one scale per row keep the level and the waveform
    q, scale = encode_audio(audio[None, :])
    back = decode_audio(q, scale)[0]
    assert float(np.max(np.abs(back))) == pytest.approx(peak, rel=1e-4)
    assert float(np.max(np.abs(back - audio))) <= peak / 32767.0
    # report players: scaled down to full scale, not clipped (the waveform keeps its shape)
    uri = wav_data_uri(audio, 44100)
    with wave.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    assert np.corrcoef(pcm, audio)[0, 1] > 0.9999
