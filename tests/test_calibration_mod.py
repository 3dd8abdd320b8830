"""The emulation's modulation, oscillator and envelope sections against figures of the real engine.

Figures (``tests/data/calibration_mod.json``) come from the real TAL-NoiseMaker calibration renders
(``python tests/calibration_figures.py --probes ... --out tests/data/calibration_mod.json``); each
test renders the same probes with the emulation. Where a filter setting is shared by a probe and
its reference probe, the figures are compared as differences between the two, so that what the
filter section gets wrong does not decide these tests.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration_figures import figures, load, render_probe

DATA = load(Path(__file__).parent / "data" / "calibration_mod.json")


@pytest.fixture(scope="module")
def emu(noisemaker):
    """Emulation renders and figures of the probes, rendered once per module."""
    cache: dict[str, tuple[np.ndarray, dict]] = {}

    def get(probe_id: str) -> tuple[np.ndarray, dict]:
        if probe_id not in cache:
            audio = render_probe(noisemaker, DATA[probe_id]["probe"])
            cache[probe_id] = (audio, figures(audio))
        return cache[probe_id]

    return get


def real(probe_id: str) -> dict:
    return DATA[probe_id]["real"]


def _key(fragment: str) -> str:
    (key,) = [k for k in DATA if fragment in k]
    return key


def _relative(emu, probe: str, reference: str, figure: str) -> tuple[float, float]:
    """(emulation, real) change of ``figure`` from the reference probe to the probe."""
    p, r = _key(probe), _key(reference)
    return emu(p)[1][figure] - emu(r)[1][figure], real(p)[figure] - real(r)[figure]


# ------------------------------------------------------------------ envelope editor
def test_envelope_editor_volume_is_a_static_gain(emu):
    # the flat default curve: amount v scales the volume by 0.25 v^2 (-24.1 dB at 0.5, -12.0 dB at 1)
    for probe in ("enveditor_084", "enveditor_090"):
        e, r = _relative(emu, probe, "enveditor_000", "level_db")
        assert abs(e - r) < 0.5, (probe, e, r)


def test_envelope_editor_filter_is_a_static_cutoff_offset(emu):
    # 0.5 v^2 added to the cutoff before squaring: the centroid rises by 15.5 semitones at amount 1
    for probe in ("enveditor_012", "enveditor_018"):
        e, r = _relative(emu, probe, "enveditor_000", "centroid_st")
        assert abs(e - r) < 2.5, (probe, e, r)
        assert abs(emu(_key(probe))[1]["level_db"] - real(_key(probe))["level_db"]) < 0.8


def test_envelope_editor_speed_one_shot_and_pitch_destinations_change_nothing(emu):
    # real engine: speed x32 with one-shot renders like speed x1 looping; osc1 like off
    assert real(_key("enveditor_023")) == real(_key("enveditor_018"))
    assert real(_key("enveditor_030")) == real(_key("enveditor_000"))
    assert np.array_equal(emu(_key("enveditor_023"))[0], emu(_key("enveditor_018"))[0])
    assert np.array_equal(emu(_key("enveditor_030"))[0], emu(_key("enveditor_000"))[0])


# ------------------------------------------------------------------ free AD
def test_free_ad_fm_uses_the_size_of_the_amount(emu):
    # amounts 0 and 1 are the same on the real engine; the FM is heard (level within 0.5 dB)
    assert real(_key("freead_041")) == real(_key("freead_047"))
    assert np.array_equal(emu(_key("freead_041"))[0], emu(_key("freead_047"))[0])
    for probe in ("freead_041", "freead_043"):
        assert abs(emu(_key(probe))[1]["level_db"] - real(_key(probe))["level_db"]) < 0.5, probe


# ------------------------------------------------------------------ bitcrusher
def test_bitcrusher_silences_osc_1_and_2_at_a_quarter(emu):
    for probe in ("crush_022", "crush_023"):  # osc 2 sine alone at 0.2 and 0: silent on the real engine
        assert not real(_key(probe))["sounds"]
        assert not emu(_key(probe))[1]["sounds"], probe
    for probe in ("crush_006", "crush_014"):  # the sub alone is left
        e, r = emu(_key(probe))[1], real(_key(probe))
        assert abs(e["level_db"] - r["level_db"]) < 0.5, probe
        assert abs(e["centroid_st"] - r["centroid_st"]) < 3.0, probe


def test_bitcrusher_quantization_level(emu):
    # at 0.4 the truncation toward zero costs the sine 0.44 dB
    e, r = _relative(emu, "crush_021", "crush_016", "level_db")
    assert abs(e - r) < 0.25, (e, r)


# ------------------------------------------------------------------ LFOs
@pytest.mark.parametrize("probe", ["sweep_215", "sweep_216", "sweep_217", "sweep_218", "sweep_319"])
def test_lfo_start_phase_and_shape(emu, probe):
    # LFO 1 to the filter at full amount: at the slowest rate the waveform's value at phase 0 sets
    # the cutoff (sine/triangle 0, saw -1, square +1); a synced LFO stands at the song position of
    # the reference renders (0.1 s of transport before the note)
    e, r = _relative(emu, probe, "sweep_239", "centroid_st")
    assert abs(e - r) < 3.5, (probe, e, r)


def test_free_running_lfo_starts_at_phase_0(emu):
    # real engine, fresh instance: key-trigger off renders bit-identical to key-trigger on at phase 0
    assert real(_key("sweep_320")) == real(_key("sweep_321"))
    assert np.array_equal(emu(_key("sweep_320"))[0], emu(_key("sweep_321"))[0])


def test_lfo2_pan_is_linear(emu):
    # mono level of a linear pan with amount a: 1 - a/2 (-2.6 dB at amount 0.9)
    e, r = _relative(emu, "sweep_259", "sweep_239", "level_db")
    assert abs(e - r) < 0.5, (e, r)


# ------------------------------------------------------------------ envelope times
def test_amp_decay_falls_to_its_sustain_at_the_documented_time(emu):
    # decay heads below zero and stops at the sustain (0.3): at 0.5 it gets there within the note
    for probe in ("sweep_063", "sweep_064"):
        e, r = emu(_key(probe))[1]["level_db"], real(_key(probe))["level_db"]
        assert abs(e - r) < 0.5, (probe, e, r)


def test_amp_release_tail(emu):
    for probe in ("sweep_074", "sweep_075"):
        e, r = emu(_key(probe))[1], real(_key(probe))
        assert abs(e["tail_db"] - r["tail_db"]) < 0.6, probe
        assert abs(e["audible_s"] - r["audible_s"]) < 0.05, probe


# ------------------------------------------------------------------ oscillators and mixer
def test_ring_modulation_level(emu):
    e, r = emu(_key("sweep_353"))[1], real(_key("sweep_353"))
    assert abs(e["level_db"] - r["level_db"]) < 0.6


def test_osc2_pulse_phase_against_osc1(emu):
    # osc 2's pulse sums with osc 1's saw on shared harmonics: its polarity sets the level
    e, r = emu(_key("sweep_209"))[1], real(_key("sweep_209"))
    assert abs(e["level_db"] - r["level_db"]) < 0.6
    assert abs(e["centroid_st"] - r["centroid_st"]) < 2.0


def test_pulse_width_extremes_leave_a_narrow_pulse(emu):
    e, r = emu(_key("sweep_283"))[1], real(_key("sweep_283"))
    assert abs(e["centroid_st"] - r["centroid_st"]) < 2.5
    assert abs(e["level_db"] - r["level_db"]) < 0.5


def test_vintage_noise_is_a_soft_crackle(emu):
    # at 1 it barely changes the default patch on the real engine, no broadband hiss
    e, r = _relative(emu, "sweep_402", "crush_000", "centroid_st")  # crush_000 is the default patch
    assert abs(e - r) < 3.0, (e, r)
