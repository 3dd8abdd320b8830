"""PluginSynth on real plugins: Debian's amsynth VST2 and small VST2 libraries built here with gcc."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest

from synth_probe.errors import PluginError, UnknownParameterError
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS
from synth_probe.synths.plugin import (
    PluginSynth,
    cache_dir,
    find_plugins,
    parse_value_text,
    sanitize_name,
    specs_from_description,
)
from synth_probe.synths.registry import get_synth
from synth_probe.synths.tal_names import CANONICAL_NAMES, GPL_NAMES, V5_NAMES, match_tal_layout

pytestmark = pytest.mark.needs("amsynth", "gcc")

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SOURCE = Path(__file__).parent / "plugins" / "fake_vst.c"
SHORT = dict(note_length=0.3, render_length=0.5, sample_rate=22050)


def gcc(out: Path, *flags: str, source: Path = SOURCE) -> Path:
    subprocess.run(["gcc", "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(source), "-lm"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    """Plugin descriptions go to a fresh cache; DISPLAY is unset as on a headless server."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        mp.delenv("DISPLAY", raising=False)
        yield


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake-plugins")
    return {
        "ok": gcc(d / "fake_vst.so"),
        "exit": gcc(d / "fake_exit.so", "-DEXIT_ON_LOAD"),
        "segv": gcc(d / "fake_segv.so", "-DSEGV_ON_LOAD"),
    }


@pytest.fixture(scope="module")
def amsynth():
    synth = PluginSynth(AMSYNTH)  # isolated (child process), DISPLAY unset: amsynth needs no X to load
    yield synth
    synth.close()


def _centroid(audio: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    return float((spec * freqs).sum() / spec.sum())


# ---------------------------------------------------------------------------------- amsynth
def test_amsynth_lists_41_parameters_with_names_and_defaults(amsynth):
    import dawdreamer as daw

    engine = daw.RenderEngine(44100, 512)
    proc = engine.make_plugin_processor("direct", AMSYNTH)
    n = proc.get_plugin_parameter_size()
    assert n == 41 and len(amsynth.specs) == 41
    assert amsynth.param_names == [proc.get_parameter_name(i) for i in range(n)]
    for i, spec in enumerate(amsynth.specs):
        assert spec.index == i
        assert spec.default == pytest.approx(proc.get_parameter(i), abs=1e-7)
    assert amsynth.spec("filter_cutoff").default == 1.0
    assert amsynth.spec("master_vol").default == pytest.approx(0.67, abs=1e-6)
    # discrete parameters found from the plugin's own value texts
    wave = amsynth.spec("osc1_waveform")
    assert wave.is_discrete and wave.choices == ("0", "1", "2", "3", "4")
    assert wave.choice_index(0.5) == 2 and wave.quantize(0.55) == 0.5
    assert amsynth.spec("osc2_range").choices == ("0.125", "0.25", "0.5", "1", "2", "4", "8", "16")
    assert amsynth.spec("osc2_pitch").n_choices == 25
    assert not amsynth.spec("filter_cutoff").is_discrete
    # physical units from the value text and label: amsynth reports envelope times in seconds
    attack = amsynth.spec("amp_attack")
    assert attack.unit == "s"
    assert attack.to_physical(0.0) == pytest.approx(0.0005)
    assert attack.to_physical(1.0) > 10.0
    assert amsynth.spec("lfo_freq").unit == "Hz"


def test_amsynth_renders_a_note_that_changes_with_filter_cutoff(amsynth):
    dark = amsynth.render({"filter_cutoff": 0.1, "filter_resonance": 0.0}, **SHORT)
    bright = amsynth.render({"filter_cutoff": 0.9, "filter_resonance": 0.0}, **SHORT)
    assert dark.dtype == np.float32 and dark.shape == (int(0.5 * 22050),)
    assert np.all(np.isfinite(dark)) and np.abs(bright).max() > 0.01
    assert _centroid(bright, 22050) > 2 * _centroid(dark, 22050)


def test_exact_length_and_pre_roll_excluded(amsynth):
    settings = RenderSettings(note=60, velocity=100, note_length=0.2, render_length=0.3337, sample_rate=22050)
    audio = amsynth.render_vector(amsynth.patch_vector(), settings)
    assert audio.shape == (settings.n_samples,)
    # amsynth's default attack is 0.5 ms: with the pre-roll cut off, the note starts at sample 0
    assert np.abs(audio[:220]).max() > 1e-3


def test_unknown_parameter_lists_closest(amsynth):
    with pytest.raises(UnknownParameterError, match="filter_cutoff"):
        amsynth.render({"filter_cutof": 0.5}, **SHORT)


def test_identity_and_cache(amsynth):
    ident = amsynth.identity()
    sha = hashlib.sha256(Path(AMSYNTH).read_bytes()).hexdigest()
    assert ident["plugin"] == AMSYNTH and ident["sha256"] == sha and ident["n_params"] == 41
    cached = cache_dir() / f"{sha}.json"
    assert str(cached).startswith(os.environ["XDG_CACHE_HOME"])
    data = json.loads(cached.read_text())
    assert data["sha256"] == sha and len(data["params"]) == 41
    assert [p["name"] for p in data["params"]] == amsynth.param_names


def test_child_render_equals_in_process_render(amsynth):
    """Two fresh instances rendering the same sequence give the same samples."""
    rng = np.random.default_rng(3)
    patches = [dict(zip(amsynth.param_names, rng.uniform(0, 1, 41))) for _ in range(2)] + [{}]
    local = get_synth(AMSYNTH, isolate=False, reset="flush")  # registry routes paths to PluginSynth
    child = PluginSynth(AMSYNTH, isolate=True, reset="flush")
    try:
        assert isinstance(local, PluginSynth) and not local.isolate
        for patch in patches:
            a = local.render(patch, **SHORT)
            b = child.render(patch, **SHORT)
            assert np.abs(a).max() > 0 or np.abs(b).max() == 0
            np.testing.assert_array_equal(a, b)
    finally:
        local.close()
        child.close()


def test_batch_through_the_child_equals_renders_one_by_one(amsynth):
    """A batch answered in one round trip gives what the same renders one at a time give."""
    from synth_probe.synths.base import RenderSettings

    rng = np.random.default_rng(4)
    vectors = np.array([amsynth.patch_vector(dict(zip(amsynth.param_names, rng.uniform(0, 1, 41))))
                        for _ in range(3)])
    settings = RenderSettings(**SHORT)
    one_by_one = PluginSynth(AMSYNTH, isolate=False, reset="flush")
    batched = PluginSynth(AMSYNTH, isolate=True, reset="flush")
    try:
        expected = np.stack([one_by_one.render_vector(v, settings) for v in vectors])
        got = batched.render_batch(vectors, settings)
        assert got.shape == (3, settings.n_samples) and got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)
    finally:
        one_by_one.close()
        batched.close()


def test_pickles_into_a_fresh_instance(amsynth):
    copy = pickle.loads(pickle.dumps(amsynth))
    try:
        assert copy.param_names == amsynth.param_names and copy.isolate
        assert copy.render(**SHORT).shape == (int(0.5 * 22050),)
    finally:
        copy.close()


# ----------------------------------------------------------------------- crashing plugins
@pytest.mark.parametrize("reset", ["fork", "none"])
def test_plugin_that_segfaults_while_rendering_is_reported_and_restarted(fakes, reset):
    """Under ``fork`` the forked copy dies and the plugin process stays; else the process is restarted."""
    synth = PluginSynth(fakes["ok"], reset=reset)
    try:
        assert synth.param_names == ["level", "crash", "stuck"]
        assert synth.spec("level").unit == "dB"
        assert synth.spec("level").to_physical(1.0) == pytest.approx(0.0)
        before = synth.render(**SHORT)
        assert np.abs(before).max() > 0.05
        with pytest.raises(PluginError, match="SIGSEGV.*while rendering") as info:
            synth.render({"crash": 1.0}, **SHORT)
        assert "unharmed" in str(info.value)
        after = synth.render(**SHORT)  # a new child process
        assert np.abs(after).max() == pytest.approx(np.abs(before).max(), rel=1e-3)
    finally:
        synth.close()


def test_plugin_that_exits_on_load_like_juce_without_x(fakes):
    with pytest.raises(PluginError) as info:
        PluginSynth(fakes["exit"])
    msg = str(info.value)
    assert "exited with status 1" in msg
    assert "Failed to connect to the X Server." in msg
    assert "xvfb-run -a" in msg


def test_plugin_that_segfaults_on_load(fakes):
    with pytest.raises(PluginError, match="SIGSEGV"):
        PluginSynth(fakes["segv"], isolate=True)


# ------------------------------------------------------------------------------ bad input
def test_bad_input_gets_clear_errors(tmp_path):
    with pytest.raises(PluginError, match="does not exist"):
        PluginSynth(tmp_path / "nothing.so")
    text = tmp_path / "notes.so"
    text.write_text("not a plugin\n")
    with pytest.raises(PluginError, match="text file"):
        PluginSynth(text)
    dll = tmp_path / "TAL-NoiseMaker.dll"
    dll.write_bytes(b"MZ\x90\x00" + b"\x00" * 60 + b"This program cannot be run in DOS mode.")
    with pytest.raises(PluginError, match="Windows binary"):
        PluginSynth(dll)
    macho = tmp_path / "TAL-NoiseMaker"
    macho.write_bytes(b"\xcf\xfa\xed\xfe" + b"\x07\x00\x00\x01" + b"\x00" * 56)
    with pytest.raises(PluginError, match="macOS binary"):
        PluginSynth(macho)
    bundle = tmp_path / "Mac.vst" / "Contents" / "MacOS"
    bundle.mkdir(parents=True)
    with pytest.raises(PluginError, match="macOS plugin bundle"):
        PluginSynth(tmp_path / "Mac.vst")
    win3 = tmp_path / "Win.vst3" / "Contents" / "x86_64-win"
    win3.mkdir(parents=True)
    with pytest.raises(PluginError, match="Windows VST3 bundle"):
        PluginSynth(tmp_path / "Win.vst3")


def test_shared_library_that_is_not_a_plugin(tmp_path):
    src = tmp_path / "plain.c"
    src.write_text("int answer(void) { return 42; }\n")
    lib = gcc(tmp_path / "libplain.so", source=src)
    with pytest.raises(PluginError, match="without a plugin entry point"):
        PluginSynth(lib, isolate=False)  # refused before DawDreamer loads it into this process


def test_bad_options(tmp_path):
    with pytest.raises(PluginError, match="pre_roll"):
        PluginSynth(AMSYNTH, pre_roll=-1)
    with pytest.raises(PluginError, match="name_map"):
        specs_from_description([], name_map="tal")


# ------------------------------------------------------------------ specs from descriptions
def _desc(names, defaults=None):
    grid = np.linspace(0, 1, 257)
    return [
        {"index": i, "name": n, "default": (defaults or {}).get(i, 0.5), "label": "", "num_steps": 0x7FFFFFFF,
         "is_boolean": False, "value_strings": [], "texts": [f"{v:.4f}" for v in grid], "boundaries": []}
        for i, n in enumerate(names)
    ]


def test_value_text_parsing_and_names():
    assert parse_value_text("1.5 kHz") == (1500.0, "Hz")
    assert parse_value_text("250 ms") == (0.25, "s")
    assert parse_value_text("-12.0", "dB") == (-12.0, "dB")
    assert parse_value_text("-inf dB") == (float("-inf"), "dB")
    assert parse_value_text("Saw") is None
    assert sanitize_name("Filter Cutoff") == "filter_cutoff"
    assert sanitize_name("2nd Osc.") == "p_2nd_osc"
    specs, slots, fixed, layout = specs_from_description(_desc(["Cut off", "cut-off", "", "Bypass"]))
    assert [s.name for s in specs] == ["cut_off", "cut_off_2", "param_2"]
    assert fixed == {3: 0.0} and slots == [0, 1, 2] and layout == "generic"
    specs, slots, fixed, _ = specs_from_description(_desc(["a", "Bypass"]), name_map=None)
    assert [s.name for s in specs] == ["a", "bypass"] and fixed == {}


def test_tal_v5_names_with_vst3_bypass_map_to_canonical():
    names = list(V5_NAMES) + ["Bypass"]
    tal = match_tal_layout(names)
    assert tal is not None and tal.layout == "v5+bypass" and tal.fixed == {88: 0.0}
    assert tal.host_slots == tuple(range(88))
    specs, slots, fixed, layout = specs_from_description(_desc(names, {3: 0.8}))
    assert [s.name for s in specs] == list(CANONICAL_NAMES) == [s.name for s in NOISEMAKER_SPECS]
    assert "bypass" not in [s.name for s in specs] and fixed == {88: 0.0}
    # mislabelled slots: 24 says "Osc 1 Waveform", 38 "Osc 2 PW", 39 "Osc 2 Phase"
    assert specs[24].name == "osc2waveform" and specs[38].name == "osc1pw" and specs[39].name == "osc1phase"
    assert specs[5].name == "keyfollow"  # "Fitler Keyfollow"
    assert specs[3].default == 0.8  # defaults come from the plugin
    assert specs[2].is_discrete and specs[2].n_choices == NOISEMAKER_SPECS[2].n_choices


def test_tal_v4_names_and_spelling_variants():
    tal = match_tal_layout(list(CANONICAL_NAMES))
    assert tal is not None and tal.layout == "v4" and tal.fixed == {}
    variant = list(V5_NAMES)
    variant[46] = "LFO 1 Key Trigger"
    variant[70] = "MIDI Learn"
    tal5 = match_tal_layout(variant)
    assert tal5 is not None and tal5.layout == "v5"


def test_tal_gpl_92_slot_layout():
    tal = match_tal_layout(list(GPL_NAMES))
    assert tal is not None and tal.layout == "gpl"
    canon = dict(zip(CANONICAL_NAMES, tal.host_slots))
    assert canon["cutoff"] == 3 and canon["envelopereset"] == 76
    assert canon["filterdrive"] == 81 and canon["delaywet"] == 82 and canon["delayfeedback"] == 89
    assert canon["midiclear"] is None and canon["midilock"] is None  # GPL 90/91 are preset buttons
    assert set(tal.hidden) == {77, 78, 79, 80, 90, 91}
    specs, slots, fixed, _ = specs_from_description(_desc(list(GPL_NAMES)))
    assert [s.name for s in specs] == list(CANONICAL_NAMES)
    assert 77 not in slots and 90 not in slots and None in slots


def test_non_tal_names_are_not_mapped(amsynth):
    assert match_tal_layout(amsynth.param_names) is None
    shuffled = list(V5_NAMES)
    shuffled[3], shuffled[11] = shuffled[11], shuffled[3]
    assert match_tal_layout(shuffled) is None  # anchors out of place
    assert match_tal_layout([f"param {i}" for i in range(88)]) is None
    assert match_tal_layout(list(V5_NAMES) + ["Volume"]) is None  # 89th slot is not Bypass


def test_find_plugins(tmp_path, fakes):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.so").write_bytes(Path(fakes["ok"]).read_bytes())
    (tmp_path / "B.vst3" / "Contents" / "x86_64-linux").mkdir(parents=True)
    (tmp_path / "readme.txt").write_text("x")
    found = find_plugins([tmp_path])
    assert ("vst2", tmp_path / "sub" / "a.so") in found and ("vst3", tmp_path / "B.vst3") in found
    assert len(found) == 2


def _render_peak(synth, q):
    q.put(float(np.abs(synth.render(**SHORT)).max()))


def test_forked_worker_starts_its_own_child_process(amsynth):
    """A forked copy (e.g. a dataset worker) must not talk over its parent's socket."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_render_peak, args=(amsynth, q))
    p.start()
    peak = q.get(timeout=60)
    p.join(timeout=30)
    assert p.exitcode == 0 and peak > 0.01
    assert np.abs(amsynth.render(**SHORT)).max() > 0.01  # the parent's child process still answers


def test_identifiability_on_the_real_plugin(amsynth):
    from synth_probe.identifiability import IdentifiabilityConfig, run_identifiability

    cfg = IdentifiabilityConfig(bases=2, budget=5, params=("filter_cutoff",), render_length=0.5, note_length=0.3,
                                sample_rate=22050)
    res = run_identifiability(amsynth, cfg)
    assert res.complete and res.config["sampler"] == "all"  # no 'timbral' sampler for amsynth's names
    (row,) = res.summary()
    assert row["bases"] == 2 and row["effect_db"] > row["floor_db"]
