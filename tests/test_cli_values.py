"""Values as people write them on the command line: ``render --set`` and ``generate --fix``.

Physical values (``cutoff=1.5kHz``, ``ampattack=20ms``, ``volume=-6dB``), choice labels
(``filtertype=LP12``, ``osc1tune=+12st``), one NAME=VALUE per flag, clear refusals, the
closest names for a misspelt one, and ``--help`` that names each default once. The expected
unit values below come from the reference's closed-form mappings, not from the code under test.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from synth_probe.cli import build_parser, main
from synth_probe.errors import ParameterValueError, UnknownParameterError
from synth_probe.synths.base import CONTINUOUS, ParamSpec
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS
from synth_probe.synths.values import monotonic_direction, parse_value, patch_from_assignments

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SHORT = ["--note-length", "0.2", "--render-length", "0.3", "--sample-rate", "16000"]
SPECS = {s.name: s for s in NOISEMAKER_SPECS}
#: specs mapped through (2v-1)^3, flat at v = 0.5
CUBIC = {"filtercontour", "lfo1amount", "lfo2amount", "freeadamount", "delayfeedback"}

# unit values by the reference's formulas (independent of synths/values.py's bisection)
CUTOFF_1K5 = math.log(1 + 7 * math.sqrt(1500 / 22050)) / math.log(8)  # f = ((8^v-1)/7)^2 * 22050
ATTACK_20MS = 0.1 + 0.15 * math.log(20 / 9) / math.log(49 / 9)  # 9 ms at 0.1, 49 ms at 0.25, log-linear
VOLUME_M6DB = math.log(1 + 19 * 10 ** (-6 / 20)) / (2 * math.log(20))  # gain (20^(2v)-1)/19


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    return rc, capsys.readouterr().err


def refused(argv: list[str], capsys) -> str:
    rc, err = run_cli(argv, capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err)
    assert lines[0].startswith(f"synth-probe {argv[0]}: error: "), lines[0]
    return lines[0]


def read(path: Path) -> np.ndarray:
    audio, _ = sf.read(str(path), dtype="float32")
    return audio


# ------------------------------------------------------------------------------ through the real CLI
def test_physical_values_reach_the_rendered_patch(noisemaker, tmp_path, capsys):
    out = tmp_path / "phys.wav"
    assert main(["render", "noisemaker", *SHORT, "-o", str(out), "--set", "cutoff=1.5kHz", "--set", "ampattack=20ms",
                 "--set", "volume=-6dB", "--set", "filtertype=lp12", "--set", "osc1tune=+12 st",
                 "--set", "resonance=40%"]) == 0
    expected = {"cutoff": CUTOFF_1K5, "ampattack": ATTACK_20MS, "volume": VOLUME_M6DB, "filtertype": 2 / 11,
                "osc1tune": 36 / 48, "resonance": 0.4}
    settings = dict(note_length=0.2, render_length=0.3, sample_rate=16000)
    np.testing.assert_allclose(read(out), noisemaker.render(expected, **settings), atol=1e-6)
    # the control: the render does depend on the cutoff written
    other = noisemaker.render({**expected, "cutoff": 0.4}, **settings)
    assert np.max(np.abs(read(out) - other)) > 1e-3
    assert "wrote" in capsys.readouterr().err


def test_set_before_the_synth_does_not_swallow_it(tmp_path, capsys):
    out = tmp_path / "x.wav"
    rc, err = run_cli(["render", "--set", "cutoff=0.4", "noisemaker", *SHORT, "-o", str(out)], capsys)
    assert rc == 0 and out.exists(), err
    # several values after one flag: the second is refused, never taken for the synth
    err = refused(["render", "noisemaker", "--set", "cutoff=0.4", "resonance=0.2", "-o", str(tmp_path / "y.wav")],
                  capsys)
    assert "unrecognized arguments: resonance=0.2" in err


def test_generate_fix_takes_physical_values_and_labels(tmp_path, capsys):
    from synth_probe.dataset_load import load_dataset

    out = tmp_path / "d"
    assert main(["generate", "noisemaker", "--n", "2", "--out", str(out), "--sampler", "timbral", "--no-progress",
                 "--fix", "cutoff=1.5kHz", "--fix", "filtertype=BP12", "--fix", "ampattack=20ms", *SHORT]) == 0
    params = load_dataset(out).params
    np.testing.assert_allclose(params["cutoff"], CUTOFF_1K5, rtol=1e-9)
    np.testing.assert_allclose(params["ampattack"], ATTACK_20MS, rtol=1e-9)
    np.testing.assert_allclose(params["filtertype"], 5 / 11, rtol=1e-9)
    assert params["resonance"].nunique() == 2  # the others still vary


@pytest.mark.parametrize("item, expect", [
    ("cutoff=40kHz", "cutoff=40kHz is outside 0 Hz … 22.1 kHz"),
    ("ampattack=1ms", "ampattack=1ms is outside 3 ms … 25 s"),
    ("volume=+30dB", "volume=+30dB is outside -inf dB … +26.4 dB"),
    ("cutoff=20ms", "cutoff is in Hz (0 Hz … 22.1 kHz), not s"),
    ("cutoff=1.5kHzz", "unknown unit 'kHzz'"),
    ("cutoff=1500", "outside [0, 1]"),
    ("filtertype=LP99", "not one of its choices: LP24=0, LP18=0.0909"),
    ("osc1tune=+30st", "(49 choices)"),
    ("voices=2", "choice"),
    ("unused=3Hz", "no physical unit"),
    ("=0.5", "no name"),
    ("cutoff=choice:LP24", "continuous and has no choices"),
    ("filtertype=choice:LP99", "'LP99' is not one of its choices"),
])
def test_bad_values_are_refused_in_the_specs_units(item, expect, tmp_path, capsys):
    err = refused(["render", "noisemaker", "-o", str(tmp_path / "x.wav"), "--set", item], capsys)
    assert expect in err
    assert not any(tmp_path.iterdir())


def test_misspelt_name_shows_the_closest_names_only(tmp_path, capsys):
    err = refused(["render", "noisemaker", "-o", str(tmp_path / "x.wav"), "--set", "ampatack=20ms"], capsys)
    assert "Did you mean 'ampattack'" in err and "88 names in all" in err and "synth-probe params SYNTH" in err
    assert "midilock" not in err
    many = UnknownParameterError("filter", [s.name for s in NOISEMAKER_SPECS], synth="noisemaker")
    assert 1 <= len(many.suggestions) <= 5 and "filtertype" in many.suggestions
    short = UnknownParameterError("x", ["a", "b"], synth="t")
    assert "Valid names: a, b" in str(short)  # a short list is still given whole


def test_help_names_each_default_once():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        text = " ".join(p.format_help().split())
        assert "(default: None)" not in text, name
        fmt = p._get_formatter()
        for action in p._actions:  # a help text that states its default gets no second one
            if action.help and "default" in action.help.lower() and "%(default)" not in action.help:
                assert "%(default)" not in fmt._get_help_string(action), (name, action.dest)
    tune = " ".join(sub.choices["tune"].format_help().split())
    assert "(default: 2)" in tune  # --jobs: a default the help text does not state gets one note


# ------------------------------------------------------------------------------ the library
@pytest.mark.parametrize("name", [s.name for s in NOISEMAKER_SPECS if not s.is_discrete and s.physical is not None
                                  and s.unit])
def test_physical_round_trip_through_the_specs_own_mapping(name):
    spec = SPECS[name]
    assert monotonic_direction(spec) == 1
    for v in (0.13, 0.5, 0.87):
        x = spec.physical(v)
        u = parse_value(spec, f"{x!r}{spec.unit}" if spec.unit != "x" else f"x{x!r}")
        assert spec.physical(u) == pytest.approx(x, rel=1e-9, abs=1e-9), (name, v, x, u)
        # a cube's flat middle (depths, delay feedback) leaves the unit value loose by ~1e-5 at the same physical value
        assert u == pytest.approx(v, abs=1e-9 if name not in CUBIC else 1e-4), (name, v, x, u)


def test_physical_end_points_as_displayed_are_accepted():
    assert parse_value(SPECS["cutoff"], "22.1kHz") == 1.0  # displays 22.1 kHz for 22.05 kHz
    assert parse_value(SPECS["volume"], "-inf dB") == 0.0
    with pytest.raises(ParameterValueError, match="outside"):
        parse_value(SPECS["detune"], "0.3%")  # 0.25 % at most; "0 %" as displayed is no licence


def test_non_monotonic_mapping_refuses_physical_values():
    bowl = ParamSpec(0, "bowl", CONTINUOUS, 0.5, "test", unit="Hz", physical=lambda v: 100 + 1000 * (v - 0.5) ** 2)
    assert monotonic_direction(bowl) == 0
    with pytest.raises(ParameterValueError, match="not monotonic"):
        parse_value(bowl, "150Hz")
    assert parse_value(bowl, "0.3") == 0.3  # unit values still work
    falling = ParamSpec(1, "fall", CONTINUOUS, 0.5, "test", unit="s", physical=lambda v: 2.0 - v)
    assert monotonic_direction(falling) == -1
    assert parse_value(falling, "1500ms") == pytest.approx(0.5, abs=1e-12)


def test_choice_labels(noisemaker):
    for text, k in [("LP24", 0), ("lp24", 0), ("LP24 Moog", 10), ("lp24moog", 10), ("sv-bp", 9), ("off", 11)]:
        assert parse_value(SPECS["filtertype"], text) == pytest.approx(k / 11), text
    tune = SPECS["osc1tune"]
    for text in ("+12st", "+12 st", "12 semitones", "choice:+12 st"):
        assert tune.choice_index(parse_value(tune, text)) == 36, text
    assert tune.choices[tune.choice_index(parse_value(tune, "-7st"))] == "-7 st"
    assert patch_from_assignments(noisemaker, {"transpose": "+24 st", "cutoff": 0.25}) == {"transpose": 1.0,
                                                                                           "cutoff": 0.25}


@pytest.mark.needs("amsynth")
def test_plugin_values_units_and_labels(tmp_path, capsys):
    """A plugin's generic specs: physical values from its value texts, numeric labels as choice:LABEL."""
    from synth_probe.synths import get_synth

    with get_synth(AMSYNTH) as synth:
        patch = patch_from_assignments(synth, ["amp_attack=20ms", "osc2_pitch=choice:-7", "filter_cutoff=0.3"])
        attack = synth.spec("amp_attack")
        assert attack.unit == "s" and attack.physical(patch["amp_attack"]) == pytest.approx(0.020, rel=1e-6)
        assert synth.spec("osc2_pitch").display(patch["osc2_pitch"]) == "-7"
        assert patch["filter_cutoff"] == 0.3
    a, b = tmp_path / "phys.wav", tmp_path / "unit.wav"
    pitch = ["--set", "osc2_pitch=choice:-7"]
    assert main(["render", AMSYNTH, *SHORT, "-o", str(a), "--set", "amp_attack=20ms", *pitch]) == 0
    assert main(["render", AMSYNTH, *SHORT, "-o", str(b), "--set", f"amp_attack={patch['amp_attack']!r}",
                 "--set", f"osc2_pitch={patch['osc2_pitch']!r}"]) == 0
    np.testing.assert_array_equal(read(a), read(b))
    c = tmp_path / "control.wav"  # the control: a slower attack sounds different
    assert main(["render", AMSYNTH, *SHORT, "-o", str(c), "--set", "amp_attack=200ms", *pitch]) == 0
    assert np.max(np.abs(read(a) - read(c))) > 1e-3
    capsys.readouterr()
    err = refused(["render", AMSYNTH, "-o", str(tmp_path / "c.wav"), "--set", "osc2_pitch=-7"], capsys)
    assert "choice:LABEL" in err
