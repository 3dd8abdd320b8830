"""Plugin renders that depend only on the patch: the reset between renders and ``srand`` seeding.

On Debian's amsynth VST2 and on small VST2 libraries built here with gcc (tests/plugins/fake_vst.c).
"""
from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from synth_probe.cli import main
from synth_probe.errors import PluginError
from synth_probe.spectral import multi_resolution_log_mel_distance
from synth_probe.synths.plugin import RESET_ENV, PluginSynth

pytestmark = pytest.mark.needs("amsynth", "gcc")

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SOURCE = Path(__file__).parent / "plugins" / "fake_vst.c"
SR = 22050
SHORT = dict(note_length=0.3, render_length=1.0, sample_rate=SR)
HELD = dict(note_length=1.0, render_length=1.0, sample_rate=SR)  # the note still sounds when the render ends
#: long release into a large reverb: a patch whose sound outlasts its render
TAIL = {"amp_release": 0.5, "reverb_wet": 0.6, "reverb_roomsize": 0.85, "filter_cutoff": 0.5}
#: a loud, held, reverberant predecessor with another master volume and osc 2 pitch (smoothed per voice)
LOUD = {"amp_release": 0.7, "reverb_wet": 1.0, "reverb_roomsize": 1.0, "osc1_waveform": 0.5, "osc2_pitch": 0.8,
        "master_vol": 1.0}
#: osc 1 on amsynth's noise waveform alone: drawn from amsynth's private generator, not rand()
NOISE = {"osc1_waveform": 0.75, "osc_mix": 0.0}


def gcc(out: Path, *flags: str) -> Path:
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(SOURCE), "-lm"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.delenv("DISPLAY", raising=False)
        mp.delenv(RESET_ENV, raising=False)
        yield


@pytest.fixture(scope="module")
def amsynths():
    synths = {m: PluginSynth(AMSYNTH, reset=m) for m in ("fork", "flush", "none")}
    yield synths
    for s in synths.values():
        s.close()


def _after(synth: PluginSynth, predecessor: dict, patch: dict, pred_settings: dict = SHORT) -> np.ndarray:
    synth.render(predecessor, **pred_settings)
    return synth.render(patch, **SHORT)


def test_tail_patch_after_two_predecessors(amsynths):
    """The same long-tail patch after a loud held reverberant note and after the default patch."""
    d = {}
    for mode, synth in amsynths.items():
        a = _after(synth, LOUD, TAIL, HELD)
        b = _after(synth, {}, TAIL)
        assert np.abs(a).max() > 0.05
        d[mode] = multi_resolution_log_mel_distance(a, b, SR)
        if mode == "fork":
            np.testing.assert_array_equal(a, b)  # each render starts from the same loaded instance
    print("distance between the two renders (dB):", {m: round(float(x), 3) for m, x in d.items()})
    assert d["flush"] < 0.05
    assert d["none"] > 5.0  # the predecessor's held note and reverb carry into the render
    stats = amsynths["flush"].reset_stats()
    assert stats["flushes"] >= 2 and stats["bounded"] == 0


def test_fork_repeats_a_plugins_private_generator(amsynths):
    """srand cannot reach amsynth's own noise generator; a forked copy of the loaded instance can."""
    fork = [_after(amsynths["fork"], p, NOISE) for p in (LOUD, {})]
    np.testing.assert_array_equal(fork[0], fork[1])
    flush = [_after(amsynths["flush"], p, NOISE) for p in (LOUD, {})]
    assert multi_resolution_log_mel_distance(flush[0], flush[1], SR) > 0.3  # 0.86 dB measured


@pytest.mark.parametrize("reset", ["reload", "fork"])
def test_seed_repeats_a_plugin_that_draws_from_rand(tmp_path, reset):
    """A plugin adding rand() noise renders the same audio for the same seed, other audio for another.

    ``reload`` starts each render from a new instance in the same process, whose rand() state
    runs on unless it is seeded; the fake's sine phase runs freely, so flush and none keep it.
    """
    synth = PluginSynth(gcc(tmp_path / "fake_rand.so", "-DRAND_NOISE"), reset=reset)
    try:
        a, b, c = (synth.render({"level": 0.5}, seed=s, **SHORT) for s in (5, 5, 6))
        assert np.abs(a).max() > 0.01
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 1e-3
    finally:
        synth.close()


def test_reset_survives_pickling_and_is_part_of_the_identity():
    synth = PluginSynth(AMSYNTH, reset="reload", isolate=False)
    copy = pickle.loads(pickle.dumps(synth))
    try:
        assert copy.reset == "reload" and copy.identity()["reset"] == "reload"
    finally:
        synth.close()
        copy.close()


def test_bad_reset_values_give_clean_errors(monkeypatch, tmp_path, capsys):
    with pytest.raises(PluginError, match=r"reset must be one of fork, flush, reload, none .* got 'sometimes'"):
        PluginSynth(AMSYNTH, reset="sometimes")
    with pytest.raises(PluginError, match="needs|isolate=True"):
        PluginSynth(AMSYNTH, reset="fork", isolate=False)
    assert PluginSynth(AMSYNTH, isolate=False).reset == "flush"  # the default without a child process
    monkeypatch.setenv(RESET_ENV, "bogus")
    with pytest.raises(PluginError, match=f"{RESET_ENV} must be one of"):
        PluginSynth(AMSYNTH)
    assert main(["params", AMSYNTH]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"synth-probe params: error: {RESET_ENV} must be one of")
    monkeypatch.delenv(RESET_ENV)
    with pytest.raises(SystemExit) as info:
        main(["render", AMSYNTH, "--plugin-reset", "bogus", "-o", str(tmp_path / "x.wav")])
    assert info.value.code == 2 and "invalid choice: 'bogus'" in capsys.readouterr().err


def test_cli_option_reaches_the_plugin_and_the_dataset_identity(tmp_path, capsys):
    out = tmp_path / "ds"
    args = ["generate", AMSYNTH, "--n", "2", "--out", str(out), "--render-length", "0.3", "--note-length", "0.2",
            "--sample-rate", str(SR), "--no-progress"]
    assert main([*args, "--plugin-reset", "reload"]) == 0
    assert RESET_ENV not in os.environ  # set for the command only
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["synth"]["reset"] == "reload"
    capsys.readouterr()
    assert main(["--plugin-reset", "none", *args]) == 2  # audio made under another reset is not extended
    assert "synth.reset" in capsys.readouterr().err
