"""The built-in TAL-NoiseMaker emulation, rendered for real through DawDreamer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synth_probe.cli import main
from synth_probe.errors import ParameterValueError, PatchFileError, UnknownParameterError
from synth_probe.synths import get_synth
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

# short renders keep the suite fast; the note is released inside the render so releases count
FAST = dict(note_length=0.4, render_length=0.9, sample_rate=22050)

# reference §6, in host order
CANONICAL = """unused volume filtertype cutoff resonance keyfollow filtercontour filterattack filterdecay
filtersustain filterrelease ampattack ampdecay ampsustain amprelease osc1volume osc2volume osc3volume
oscmastertune osc1tune osc2tune osc1finetune osc2finetune osc1waveform osc2waveform oscsync lfo1waveform
lfo2waveform lfo1rate lfo2rate lfo1amount lfo2amount lfo1destination lfo2destination lfo1phase lfo2phase
osc2fm osc2phase osc1pw osc1phase transpose freeadattack freeaddecay freeadamount freeaddestination
lfo1sync lfo1keytrigger lfo2sync lfo2keytrigger portamento portamentomode voices velocityvolume
velocitycontour velocitycutoff pitchwheelcutoff pitchwheelpitch ringmodulation chorus1enable chorus2enable
reverbwet reverbdecay reverbpredelay reverbhighcut reverblowcut oscbitcrusher highpass detune vintagenoise
panic midilearn envelopeeditordest1 envelopeeditorspeed envelopeeditoramount envelopeoneshot
envelopefixtempo envelopereset filterdrive delaywet delaytime delaysync delayfactorl delayfactorr
delayhighshelf delaylowshelf delayfeedback midiclear midilock""".split()

# reference §3: no audio function on one held note; and the envelope editor's speed, one-shot,
# fix-tempo and reset, which act on a curve that a patch's values leave flat (measured, §3a)
INERT = {"unused", "panic", "midilearn", "midiclear", "midilock", "voices", "pitchwheelcutoff",
         "pitchwheelpitch", "envelopeeditorspeed", "envelopeoneshot", "envelopefixtempo", "envelopereset"}


def test_88_parameters_in_host_order():
    assert [s.name for s in NOISEMAKER_SPECS] == CANONICAL
    assert [s.index for s in NOISEMAKER_SPECS] == list(range(88))
    assert {s.name for s in NOISEMAKER_SPECS if s.inert} == INERT


def test_startup_program_defaults():
    d = get_synth("noisemaker").default_patch()
    assert d["volume"] == 0.408 and d["osc1volume"] == 0.8 and d["osc3volume"] == 0.8
    assert d["osc1tune"] == 0.25 and d["cutoff"] == 1.0 and d["reverblowcut"] == 1.0
    assert d["oscbitcrusher"] == 1.0 and d["delaytime"] == 0.5 and d["delayfeedback"] == 0.5


def test_value_mappings_and_choice_rules():
    nm = get_synth("noisemaker")
    assert nm.spec("filtertype").display(0.0) == "LP24"
    assert nm.spec("filtertype").display(1.0) == "Off"
    # combo boxes round to the nearest item
    assert nm.spec("osc2waveform").display(0.13) == "pulse"
    # tune truncates toward zero: 48v-24 = 0.9 -> 0 st, -0.9 -> 0 st, 1.0 -> +1
    tune = nm.spec("osc1tune")
    assert tune.display(24.9 / 48) == "0 st" and tune.display(23.1 / 48) == "0 st"
    assert tune.display(25 / 48) == "+1 st" and tune.display(0.25) == "-12 st"
    # LFO waveform truncates: [0.6, 0.8) is square
    assert nm.spec("lfo1waveform").display(0.79) == "square"
    assert nm.spec("transpose").display(0.5) == "0 st" and nm.spec("transpose").display(1.0) == "+24 st"
    assert nm.spec("oscsync").display(0.01) == "on"
    # cutoff curve: v=.5 -> ~1.5 kHz
    assert 1400 < nm.spec("cutoff").to_physical(0.5) < 1600
    assert nm.spec("volume").display(0.5) == "+0.0 dB"
    for s in NOISEMAKER_SPECS:
        if s.is_discrete:  # the canonical unit value of each choice selects that choice
            assert [s.choice_index(v) for v in s.choice_values] == list(range(s.n_choices)), s.name


def _moved_values(spec):
    """Unit values to move a parameter to, away from its gate-open value."""
    if spec.is_discrete:
        return [v for v in spec.choice_values if spec.quantize(v) != spec.quantize(spec.default)]
    return [0.9 if spec.default < 0.5 else 0.1]


def _base(spec):
    patch = dict(spec.gate)
    patch.pop(spec.name, None)
    return patch


@pytest.mark.parametrize("spec", NOISEMAKER_SPECS, ids=lambda s: s.name)
def test_each_parameter_moved_alone(noisemaker, spec):
    base = _base(spec)
    ref = noisemaker.render(base, **FAST, seed=3)
    diffs = []
    for v in _moved_values(spec):
        moved = noisemaker.render({**base, spec.name: v}, **FAST, seed=3)
        diffs.append(float(np.max(np.abs(moved - ref))))
    if spec.inert:
        assert max(diffs) == 0.0, f"{spec.name} is documented inert but changed the render by {max(diffs)}"
    else:
        assert max(diffs) > 1e-4, f"{spec.name} did not change the render from its gate-open patch {base}"


def _check_audio(audio, what):
    assert audio.dtype == np.float32
    assert np.all(np.isfinite(audio)), f"non-finite audio for {what}"
    # No limiter, as on the real engine (10.9 peak at master volume 1, notch resonance +7 dBFS):
    # the bound only catches a blow-up.
    assert np.max(np.abs(audio)) <= 1000.0, f"audio blew up for {what}"


def test_every_choice_and_extreme_is_finite_and_bounded(noisemaker):
    rendered = 0
    for spec in NOISEMAKER_SPECS:
        values = spec.choice_values if spec.is_discrete else (0.0, 1.0)
        for v in values:
            patch = {**spec.gate, spec.name: v}
            audio = noisemaker.render(patch, **FAST)
            _check_audio(audio, patch)
            rendered += 1
            silent_by_design = (spec.name in ("volume", "cutoff") and v == 0.0)
            if not silent_by_design:
                assert np.sqrt(np.mean(audio**2)) > 1e-4, f"silent render for {spec.name}={v}"
    assert rendered > 200


def test_random_patches_are_finite_bounded_and_sound(noisemaker):
    rng = np.random.default_rng(1)
    silent = 0
    for i in range(30):
        vec = rng.uniform(size=88)
        patch = dict(zip(noisemaker.param_names, vec))
        audio = noisemaker.render(patch, **FAST, seed=i)
        _check_audio(audio, f"random patch {i}")
        if np.sqrt(np.mean(audio**2)) < 1e-4:
            silent += 1
            # silent by design: master volume near zero, the filter closed far below the note, the
            # envelope editor on volume (gain 0.25 v^2), or a bitcrusher below 0.3 (it silences osc 1
            # and 2, as on the real engine) with a quiet sub oscillator
            crushed = patch["oscbitcrusher"] < 0.3 and patch["osc3volume"] < 0.35
            ee_volume = noisemaker.spec("envelopeeditordest1").choice_index(patch["envelopeeditordest1"]) == 7
            assert patch["volume"] < 0.05 or patch["cutoff"] < 0.15 or crushed or ee_volume, patch
    assert silent <= 8


def test_same_patch_and_seed_give_identical_audio(noisemaker):
    patch = {"detune": 0.8, "vintagenoise": 0.5, "lfo1waveform": 0.8, "lfo1amount": 1.0,
             "lfo1destination": 1 / 7, "cutoff": 0.5, "reverbwet": 0.5}
    a = noisemaker.render(patch, **FAST, seed=11)
    b = noisemaker.render(patch, **FAST, seed=11)
    c = noisemaker.render(patch, **FAST, seed=12)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    # a fresh instance (a fresh engine) gives the same audio too
    fresh = get_synth("noisemaker")
    assert np.array_equal(a, fresh.render(patch, **FAST, seed=11))


def test_sub_oscillator_is_two_octaves_down(noisemaker):
    sr = 22050
    audio = noisemaker.render({"osc1volume": 0.0, "osc3volume": 1.0}, note=69, note_length=1.0,
                              render_length=1.0, sample_rate=sr)
    spectrum = np.abs(np.fft.rfft(audio[2000:] * np.hanning(len(audio) - 2000)))
    freqs = np.fft.rfftfreq(len(audio) - 2000, 1 / sr)
    assert abs(freqs[np.argmax(spectrum)] - 110.0) < 3.0  # A4 = 440 Hz, the sub at 110 Hz


def test_cutoff_darkens_the_sound(noisemaker):
    def centroid(a):
        s = np.abs(np.fft.rfft(a))
        return float((s * np.arange(len(s))).sum() / s.sum())

    bright = noisemaker.render({"cutoff": 0.9}, **FAST)
    dark = noisemaker.render({"cutoff": 0.3}, **FAST)
    assert centroid(dark) < 0.5 * centroid(bright)


def test_bad_input_is_refused_clearly(noisemaker, tmp_path):
    with pytest.raises(UnknownParameterError) as e:
        noisemaker.render({"cutof": 0.5})
    assert "Did you mean 'cutoff'" in str(e.value) and "synth-probe params SYNTH" in str(e.value)
    assert "midilock" not in str(e.value)  # the closest names, not all 88
    assert isinstance(e.value, KeyError)
    for bad in (1.5, -0.1, float("nan"), "loud"):
        with pytest.raises(ParameterValueError, match="resonance"):
            noisemaker.render({"resonance": bad})
    bad_file = tmp_path / "patch.json"
    bad_file.write_text("{not json")
    assert main(["render", "noisemaker", "--patch", str(bad_file), "-o", str(tmp_path / "x.wav")]) == 2
    bad_file.write_text("[1, 2]")
    assert main(["render", "noisemaker", "--patch", str(bad_file), "-o", str(tmp_path / "x.wav")]) == 2
    assert main(["render", "noisemaker", "--patch", str(tmp_path / "missing.json"),
                 "-o", str(tmp_path / "x.wav")]) == 2
    from synth_probe.synths.base import read_patch_file

    truncated = tmp_path / "truncated.json"
    truncated.write_text("{")
    with pytest.raises(PatchFileError, match="not valid JSON"):
        read_patch_file(truncated)


def test_cli_params_and_render(tmp_path, capsys):
    import soundfile as sf

    assert main(["params", "noisemaker", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 88 and rows[3]["name"] == "cutoff" and rows[2]["range"].startswith("LP24")
    patch = tmp_path / "p.json"
    patch.write_text(json.dumps({"cutoff": 0.4, "resonance": 0.5}))
    out = tmp_path / "out.wav"
    assert main(["render", "noisemaker", "--patch", str(patch), "--set", "osc2volume=0.7",
                 "--render-length", "0.5", "--note-length", "0.3", "--sample-rate", "22050",
                 "-o", str(out)]) == 0
    audio, sr = sf.read(str(out), dtype="float32")
    assert sr == 22050 and len(audio) == 11025
    ref = get_synth("noisemaker").render({"cutoff": 0.4, "resonance": 0.5, "osc2volume": 0.7},
                                         note_length=0.3, render_length=0.5, sample_rate=22050)
    assert np.array_equal(audio, ref)


def test_fresh_compile_and_bitcode_cache_render_identically(tmp_path):
    """A process that compiles the program and one that restores the cached bitcode agree bit for bit."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from synth_probe.synths.noisemaker import NoiseMaker\n"
        "a = NoiseMaker().render({'cutoff': 0.4, 'resonance': 0.6, 'filtertype': 8/11}, "
        "render_length=0.3, sample_rate=16000)\n"
        "np.save(sys.argv[1], a)\n"
    )
    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for name in ("compiled.npy", "restored.npy"):
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], env=env, check=True)
    assert list((tmp_path / "cache" / "synth_probe" / "faust").glob("*.bc"))
    assert np.array_equal(np.load(tmp_path / "compiled.npy"), np.load(tmp_path / "restored.npy"))


def test_lfo_amount_sign_is_heard_only_on_some_destinations(noisemaker):
    """Why no model can predict the LFO amounts' sign in most patches (README, identifiability).

    With key-trigger on (as the ``timbral`` sampler holds it), a negative amount on a pitch
    destination sounds like the positive one half a cycle later for the symmetric waveforms
    (sine, triangle, square), and PW and FM use |amount|; the filter destination hears the sign.
    Compared as multi-resolution log-mel distance (dB), since a pitch-modulated pulse whose phase
    differs by rounding moves its edges by a sample.
    """
    from synth_probe.matching import audio_distances

    dest = {"filter": 1 / 7, "osc1": 2 / 7, "pw": 4 / 7, "fm": 5 / 7}
    base = {"lfo1keytrigger": 1.0, "lfo1rate": 0.45, "osc1waveform": 0.5, "osc2volume": 0.6, "osc2fm": 0.2,
            "cutoff": 0.6}  # osc 1 a pulse, so that PW modulation is heard

    def render(d, wave, amount, phase):
        return noisemaker.render({**base, "lfo1destination": dest[d], "lfo1waveform": wave, "lfo1amount": amount,
                                  "lfo1phase": phase}, **FAST)

    def db(a, b):
        return audio_distances(a, b, FAST["sample_rate"])["log_mel"]

    for wave in (0.0, 0.3, 0.7):  # sine, triangle, square
        pos = render("osc1", wave, 0.85, 0.1)
        assert db(pos, render("osc1", wave, 0.15, 0.6)) < 0.2, wave  # −amount, half a cycle on: the same
        assert db(pos, render("osc1", wave, 0.15, 0.1)) > 1.0, wave  # −amount at the same phase differs
    pos = render("osc1", 0.5, 0.85, 0.1)  # a saw reversed is another shape: the sign is heard
    assert db(pos, render("osc1", 0.5, 0.15, 0.6)) > 1.0
    for d in ("pw", "fm"):
        pos = render(d, 0.0, 0.85, 0.1)
        assert db(pos, render(d, 0.0, 0.5, 0.1)) > 0.5, d  # the modulation is heard ...
        assert db(pos, render(d, 0.0, 0.15, 0.1)) < 0.01, d  # ... but not its sign
    pos = render("filter", 0.0, 0.85, 0.1)
    assert min(db(pos, render("filter", 0.0, 0.15, p)) for p in (0.1, 0.6)) > 5.0
