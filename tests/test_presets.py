"""amsynth banks: parsing, the unit mapping, and its check against the real plugin."""
from __future__ import annotations


import pytest

from synth_probe.errors import PresetFileError, UnknownParameterError
from synth_probe.presets.amsynth import (
    AMSYNTH_NAMES,
    AMSYNTH_PARAMS,
    FACTORY_BANK_DIR,
    Preset,
    check_value_texts,
    load_factory_presets,
    preset_to_unit,
    read_bank,
    readback,
    unit_to_preset,
    write_bank,
)

pytestmark = pytest.mark.needs("amsynth")

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"


@pytest.fixture(scope="module")
def factory() -> list[Preset]:
    return load_factory_presets()


@pytest.fixture(scope="module")
def amsynth():
    from synth_probe.synths.plugin import PluginSynth

    s = PluginSynth(AMSYNTH)
    yield s
    s.close()


def test_factory_banks_count_and_known_preset(factory):
    banks = sorted(FACTORY_BANK_DIR.glob("*.bank"))
    assert len(banks) == 28
    assert len(factory) == 3482
    assert len({p.key for p in factory}) == len(factory)
    first = read_bank(FACTORY_BANK_DIR / "BriansBank01.amSynth.bank")
    assert len(first) == 128
    p = first[0]
    assert (p.name, p.index, p.bank) == ("basic11", 0, "BriansBank01.amSynth.bank")
    assert p.values["amp_decay"] == pytest.approx(1.70001)
    assert p.values["filter_cutoff"] == pytest.approx(-0.279528)
    assert p.values["osc1_waveform"] == 2
    assert p.values["osc2_range"] == 0
    assert not p.unknown


def test_missing_parameters_take_amsynth_defaults(factory):
    old = next(p for p in factory if "portamento_mode" not in p.values)
    full = old.complete()
    assert set(full) == set(AMSYNTH_NAMES)
    assert full["portamento_mode"] == 0.0
    assert preset_to_unit(old)["portamento_mode"] == 0.0


def test_unit_mapping_round_trip(factory, tmp_path):
    sample = factory[::97]
    for p in sample:
        unit = preset_to_unit(p)
        assert all(0.0 <= v <= 1.0 for v in unit.values())
        back = unit_to_preset(unit).complete()
        for name, v in p.complete().items():
            assert back[name] == pytest.approx(v, abs=1e-9), (p.key, name)
    # known values: osc2_range 0 in -3..4 -> 3/7; filter_cutoff -0.279528 in -0.5..1.5
    u = preset_to_unit(sample[0])
    assert u["osc2_range"] == pytest.approx(3 / 7)
    assert u["filter_cutoff"] == pytest.approx((-0.279528 + 0.5) / 2.0)
    # writing a bank and reading it back gives the same presets
    path = write_bank(sample, tmp_path / "x.amSynth.bank")
    again = read_bank(path)
    assert [q.name for q in again] == [q.name for q in sample]
    for a, b in zip(again, sample):
        assert preset_to_unit(a) == pytest.approx(preset_to_unit(b), abs=1e-5)


def test_stepped_values_snap_and_clamp():
    spec = {p.name: p for p in AMSYNTH_PARAMS}
    assert spec["osc2_pitch"].snap(3.4) == 3.0
    assert spec["osc2_pitch"].snap(40) == 12.0
    assert spec["filter_resonance"].to_unit(5.0) == 1.0
    assert spec["osc2_range"].control(1) == 2.0  # exponential law: 2 ** 1
    assert spec["amp_attack"].control(1.0) == pytest.approx(1.0005)  # power law: v ** 3 + 0.0005


def test_bad_bank_files(tmp_path):
    with pytest.raises(PresetFileError, match="does not exist"):
        read_bank(tmp_path / "nope.bank")
    bad = tmp_path / "bad.bank"
    bad.write_text("hello\n<preset> <name> x\n")
    with pytest.raises(PresetFileError, match="not an amsynth bank"):
        read_bank(bad)
    bad.write_text("amSynth\n<preset> <name> x\n<parameter> amp_attack abc\n")
    with pytest.raises(PresetFileError, match=r"bad.bank:3: parameter 'amp_attack'"):
        read_bank(bad)
    bad.write_text("amSynth\n<parameter> amp_attack 0.1\n")
    with pytest.raises(PresetFileError, match="before any <preset>"):
        read_bank(bad)
    with pytest.raises(PresetFileError, match="no amsynth banks"):
        load_factory_presets(tmp_path / "empty")
    with pytest.raises(UnknownParameterError, match="filter_cutoff"):
        preset_to_unit({"filter_cutof": 0.2})


def test_mapping_matches_the_plugins_value_texts(amsynth):
    """Every parameter at 257 unit values: the plugin's text equals the control value of the mapping."""
    assert amsynth.param_names == list(AMSYNTH_NAMES)
    rows = check_value_texts(amsynth.description)
    assert len(rows) == 41
    bad = [r for r in rows if r["mismatches"]]
    assert not bad, bad


def test_presets_written_to_the_plugin_read_back(factory):
    """Whole presets written to a real amsynth instance, rendered, read back as value texts."""
    chosen = [factory[0], factory[1000], factory[3000]]
    rows = readback(AMSYNTH, chosen, render_length=0.2)
    assert [r["preset"] for r in rows] == [p.key for p in chosen]
    for r in rows:
        assert r["mismatches"] == [], r
    assert any(r["peak"] > 0.01 for r in rows)
