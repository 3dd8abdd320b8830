"""Sound matching: target handling, pitch, the searches, and ``synth-probe match`` end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from synth_probe.errors import AudioError
from synth_probe.matching import (
    MatchObjective,
    cmaes_search,
    estimate_pitch,
    hill_climb,
    load_audio,
    note_for_pitch,
    prepare_audio,
)
from synth_probe.synths.base import RenderSettings

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"
SR = 22050


def tone(f0: float = 220.0, sr: int = SR, seconds: float = 0.6, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * f0 * t) * np.minimum(1, t * 50)).astype(np.float64)


@pytest.fixture(scope="module")
def amsynth():
    from synth_probe.synths.plugin import PluginSynth

    s = PluginSynth(AMSYNTH)
    yield s
    s.close()


# ------------------------------------------------------------------------------ input handling
def test_silence_nan_and_clipping_are_refused():
    n = SR // 2
    with pytest.raises(AudioError, match="silent"):
        prepare_audio(np.zeros(SR), SR, target_rate=SR, n_samples=n)
    with pytest.raises(AudioError, match="silent"):
        prepare_audio(tone(amp=1e-4), SR, target_rate=SR, n_samples=n)
    x = tone()
    x[100:110] = np.nan
    with pytest.raises(AudioError, match="10 non-finite samples"):
        prepare_audio(x, SR, target_rate=SR, n_samples=n)
    clipped = np.clip(tone(amp=3.0), -1.0, 1.0)
    with pytest.raises(AudioError, match="clipped"):
        prepare_audio(clipped, SR, target_rate=SR, n_samples=n)
    # a sine that merely peaks at full scale is not clipped
    ok = prepare_audio(tone(amp=1.0), SR, target_rate=SR, n_samples=n)
    assert ok.audio.shape == (n,)
    with pytest.raises(AudioError, match="no samples"):
        prepare_audio(np.zeros(0), SR, target_rate=SR, n_samples=n)
    with pytest.raises(AudioError, match="at least 50 ms"):
        prepare_audio(tone(seconds=0.01), SR, target_rate=SR, n_samples=n)


def test_unreadable_and_missing_files(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with pytest.raises(AudioError, match="cannot be read"):
        load_audio(fake, target_rate=SR, n_samples=SR)
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "missing.wav", target_rate=SR, n_samples=SR)
    with pytest.raises(AudioError, match="is a folder"):
        load_audio(tmp_path, target_rate=SR, n_samples=SR)


def test_resample_downmix_trim_and_pad_with_notices(tmp_path):
    sr_in = 44100
    left = tone(330.0, sr_in, seconds=2.0)
    stereo = np.stack([left, 0.5 * left], axis=1)
    lead = np.zeros((sr_in // 10, 2))  # 0.1 s of silence before the onset
    path = tmp_path / "stereo.wav"
    sf.write(str(path), np.vstack([lead, stereo]), sr_in, subtype="FLOAT")
    out = load_audio(path, target_rate=SR, n_samples=SR)
    text = " | ".join(out.notices)
    assert "downmixed 2 channels" in text
    assert "resampled from 44100 Hz to 22050 Hz" in text
    assert "leading silence" in text
    assert "trimmed from" in text
    assert out.audio.shape == (SR,) and out.audio.dtype == np.float32
    assert (out.original_rate, out.channels) == (sr_in, 2)
    assert abs(out.audio[0]) < 0.05  # onset now at the start
    short = prepare_audio(tone(seconds=0.3), SR, target_rate=SR, n_samples=SR)
    assert any("padded with silence" in n for n in short.notices)
    assert np.all(short.audio[int(0.31 * SR):] == 0)
    # (channels, n) arrays are accepted too
    both = prepare_audio(stereo.T, sr_in, target_rate=SR, n_samples=SR)
    assert both.channels == 2


# ------------------------------------------------------------------------------ pitch
def test_pitch_to_note():
    for f0, note in ((110.0, 45), (261.63, 60), (440.0, 69), (1000.0, 83)):
        p = estimate_pitch(tone(f0), SR)
        assert p.stable
        assert abs(p.midi - (69 + 12 * np.log2(f0 / 440))) < 0.15
        assert note_for_pitch(p.midi) == note
    assert note_for_pitch(59.6) == 60
    with pytest.raises(AudioError, match="out of range"):
        note_for_pitch(12.0)
    with pytest.raises(AudioError, match="out of range"):
        note_for_pitch(110.0)
    rng = np.random.default_rng(0)
    noise = estimate_pitch(rng.normal(0, 0.3, SR), SR)
    assert not noise.stable


# ------------------------------------------------------------------------------ the searches
class Bowl:
    """A real objective function (no synth): distance to a hidden point, on a grid for discrete specs."""

    def __init__(self, specs, goal):
        self.specs, self.goal, self.n_renders = specs, np.asarray(goal), 0

    def snap(self, v):
        return np.array([s.quantize(x) for s, x in zip(self.specs, np.clip(v, 0, 1))])

    def __call__(self, v):
        self.n_renders += 1
        return float(np.abs(self.snap(v) - self.goal).sum())


@pytest.mark.needs("amsynth")
def test_searches_improve_and_respect_the_budget(amsynth):
    specs = list(amsynth.specs)
    rng = np.random.default_rng(1)
    goal = np.array([s.quantize(x) for s, x in zip(specs, rng.uniform(size=len(specs)))])
    start = amsynth.patch_vector()
    for fn in (hill_climb, cmaes_search):
        obj = Bowl(specs, goal)
        res = fn(obj, start, 60, specs=specs, seed=0)
        assert res.n_renders == 60 == len(res.history)
        assert obj.n_renders <= 61
        assert res.distance < res.start_distance
        assert res.distance == pytest.approx(obj(res.vector))
        assert all(b <= a for a, b in zip(res.history, res.history[1:]))
    free = ["filter_cutoff", "filter_resonance"]
    res = hill_climb(Bowl(specs, goal), start, 20, specs=specs, free=free, seed=0)
    changed = {specs[j].name for j in np.flatnonzero(res.vector != start)}
    assert changed <= set(free)


@pytest.mark.needs("amsynth")
def test_refine_is_never_worse_than_its_start(amsynth):
    """Real renders: starting at the target's own patch, nothing beats it by chance alone forever."""
    from synth_probe.presets.amsynth import load_factory_presets, preset_to_unit

    settings = RenderSettings(60, 100, 0.3, 0.4, SR)
    preset = load_factory_presets()[5]
    vec = amsynth.patch_vector(preset_to_unit(preset, amsynth.param_names))
    target = amsynth.render_vector(vec, settings)
    for method_fn in (hill_climb, cmaes_search):
        obj = MatchObjective(amsynth, target, settings)
        d0 = obj(vec)
        res = method_fn(obj, vec, 5, specs=obj.specs, seed=3, start_distance=d0)
        assert res.distance <= d0
        assert res.start_distance == d0
        assert obj.n_renders == 1 + res.n_renders
        # the audio of the result is the render whose distance was measured
        assert obj.distance_of(obj.audio_for(res.vector)) == pytest.approx(res.distance)


# ------------------------------------------------------------------------------ the CLI
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, amsynth):
    from synth_probe.pipeline import build_pipeline
    from synth_probe.training import target_layout
    from synth_probe.models.io import save_model
    from synth_probe.render import render_many
    from synth_probe.sampling import sample_patches

    settings = RenderSettings(60, 100, 0.35, 0.5, SR)
    patches = sample_patches(amsynth, 24, sampler="all", seed=0)
    audio = render_many(amsynth, patches.to_numpy(), settings)
    pipe = build_pipeline("knn", features="logmel-stats", synth=AMSYNTH, sample_rate=SR, note_length=0.35,
                          n_samples=audio.shape[1], overrides={"n_neighbors": 3},
                          discrete=target_layout(list(patches.columns), synth=amsynth))
    pipe.fit(audio, patches.reset_index(drop=True))
    d = tmp_path_factory.mktemp("model")
    save_model(pipe, d, metadata={"render": settings.to_dict()})
    return d


@pytest.mark.needs("amsynth")
def test_match_cli_end_to_end(tiny_model, amsynth, tmp_path, capsys):
    from synth_probe.cli import main
    from synth_probe.synths.base import read_patch_file

    # a stereo 44.1 kHz recording of note 64 (E4), longer than the model's 0.5 s
    note_audio = amsynth.render(amsynth.default_patch(), note=64, note_length=0.8, render_length=1.0,
                                sample_rate=44100)
    wav = tmp_path / "target.wav"
    sf.write(str(wav), np.stack([note_audio, note_audio], axis=1), 44100)
    out = tmp_path / "out"
    rc = main(["match", str(wav), "--model", str(tiny_model), "--synth", AMSYNTH, "--refine", "4",
               "--out", str(out)])
    assert rc == 0
    cap = capsys.readouterr()
    assert "resampled from 44100 Hz" in cap.err and "downmixed 2 channels" in cap.err
    assert "rendering note 64" in cap.err
    doc = json.loads((out / "patch.json").read_text())
    assert doc["settings"]["note"] == 64
    assert set(doc["params"]) == set(amsynth.param_names)
    assert doc["display"]["filter_cutoff"] == amsynth.spec("filter_cutoff").display(doc["params"]["filter_cutoff"])
    for key in ("log_mel", "spectral_convergence", "mfcc"):
        assert np.isfinite(doc["distances"][key]) and np.isfinite(doc["model_distances"][key])
    assert doc["distances"]["log_mel"] <= doc["model_distances"]["log_mel"] + 1e-9
    assert doc["refine"]["renders"] == 4
    assert read_patch_file(out / "patch.json") == doc["params"]
    audio, sr = sf.read(str(out / "render.wav"))
    assert sr == SR and audio.shape == (int(0.5 * SR),)
    assert (out / "patch.amSynth.bank").exists()


@pytest.mark.needs("amsynth")
def test_match_cli_errors(tiny_model, tmp_path, capsys):
    from synth_probe.cli import main

    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(SR), SR)
    assert main(["match", str(silent), "--model", str(tiny_model), "--synth", AMSYNTH]) == 2
    assert "silent" in capsys.readouterr().err
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF....WAVEjunk")
    assert main(["match", str(junk), "--model", str(tiny_model), "--synth", AMSYNTH]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["match", str(junk), "--model", str(tmp_path), "--synth", AMSYNTH]) == 2
    assert "not a saved model" in capsys.readouterr().err
