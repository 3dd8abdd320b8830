"""Models that read a probe: ProbeFeatures, the builder over a probe's renders, predictability with a probe."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from synth_probe.dataset import generate, load_dataset
from synth_probe.errors import DatasetError, ParameterValueError
from synth_probe.features import HandcraftedFeatures, LogMelSpectrogram, ProbeFeatures
from synth_probe.pipeline import build_pipeline, feature_step, input_shape
from synth_probe.predictability import PredictabilityConfig, default_dataset_path, run_predictability
from synth_probe.predictability_probe import patches_for_budget, probe_slug, read_against
from synth_probe.probe import DEFAULT_PROBE, parse_probe
from synth_probe.report.predictability_section import predictability_html
from synth_probe.synths.base import RenderSettings
from synth_probe.training import audio_rows, dataset_context, probe_renders

SMALL = RenderSettings(note=60, velocity=100, note_length=0.3, render_length=0.5, sample_rate=8000)
PROBE = "notes=48,72"


@parametrize_with_checks([
    ProbeFeatures(LogMelSpectrogram(n_fft=64, hop_length=16, n_mels=8), renders=((60, 100, 1.0),)),
    ProbeFeatures(HandcraftedFeatures(n_fft=64, hop_length=16, n_mfcc=4), renders=((60, 100, 1.0),), context=False),
])
def test_probe_features_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def probe_ds(noisemaker, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe") / "ds"
    assert generate(noisemaker, out, 24, sampler="timbral", settings=SMALL, probe=PROBE, shard_size=12).ok
    return load_dataset(out)


def test_probe_features_apply_the_step_to_each_render_and_add_note_velocity():
    rng = np.random.default_rng(0)
    X = (0.3 * rng.standard_normal((5, 3, 2000))).astype(np.float32)
    step = LogMelSpectrogram(sample_rate=8000, n_fft=256, hop_length=128, n_mels=8, time_pool=2)
    renders = ((36, 64, 0.1), (60, 100, 0.2), (84, 127, 0.1))
    f = ProbeFeatures(step, renders=renders).fit(X.reshape(5, -1))
    F = f.transform(X.reshape(5, -1))
    each = [step.fit_transform(X[:, r]) for r in range(3)]
    assert F.shape == (5, 3 * 16 + 6) and F.dtype == np.float32
    np.testing.assert_allclose(F[:, :48], np.hstack(each))
    np.testing.assert_array_equal(F[0, 48:], [36, 64, 60, 100, 84, 127])
    assert list(f.get_feature_names_out()[-2:]) == ["r2_note", "r2_velocity"]
    # the rows of another width are refused, in one line
    with pytest.raises(ValueError):
        f.transform(X[:, :2].reshape(5, -1))
    with pytest.raises(ParameterValueError, match="n_renders"):
        ProbeFeatures(step, renders=renders).fit(np.zeros((2, 1001), dtype=np.float32))


def test_probe_features_set_each_renders_note_length():
    step = feature_step("combined", sample_rate=8000, note_length=1.0,
                        renders=parse_probe("lengths=0.1,0.3").renders(SMALL))
    X = np.zeros((2, 2 * SMALL.n_samples), dtype=np.float32)
    X[:, 100:2000] = 0.1
    step.fit(X)
    hands = [s.get_params()["handcrafted__note_length"] for s in step.steps_]
    assert hands == [0.1, 0.3] and step.step.get_params()["handcrafted__note_length"] == 1.0


def test_training_reads_a_probe_dataset_flattened(probe_ds, noisemaker, tmp_path):
    ctx = dataset_context(probe_ds)
    assert [r.note for r in ctx["renders"]] == [48, 72] and ctx["settings"] == SMALL
    X = audio_rows(probe_ds, np.array([3, 1]))
    assert X.shape == (2, 2 * SMALL.n_samples)
    np.testing.assert_array_equal(X[0, SMALL.n_samples:], probe_ds.audio[3][1])
    one = tmp_path / "one"
    generate(noisemaker, one, 2, sampler="timbral", settings=SMALL, shard_size=2)
    ds1 = load_dataset(one)
    assert probe_renders(ds1) is None and audio_rows(ds1).shape == (2, SMALL.n_samples)


@pytest.mark.parametrize("model", ["gbm", "cnn"])
def test_pipeline_over_a_probe_fits_and_predicts(probe_ds, model):
    renders = probe_renders(probe_ds)
    cols = ["cutoff", "keyfollow"]
    kw = dict(max_epochs=1, channels=(4, 8), hidden=16) if model == "cnn" else dict(n_estimators=5, min_child_samples=2)
    pipe = build_pipeline(model, sample_rate=SMALL.sample_rate, note_length=SMALL.note_length,
                          n_samples=SMALL.n_samples, renders=renders, overrides=kw, jobs=1)
    step = pipe.named_steps["features"]
    assert isinstance(step, ProbeFeatures) and step.context == (model == "gbm")
    X = audio_rows(probe_ds)
    pipe.fit(X[:20], probe_ds.params[cols].iloc[:20].reset_index(drop=True))
    assert np.asarray(pipe.predict(X[20:])).shape == (4, 2)
    if model == "cnn":
        one = input_shape(feature_step("logmel", sample_rate=SMALL.sample_rate, note_length=None), SMALL.n_samples)
        assert input_shape(step, SMALL.n_samples) == (2, *one)  # the renders as input channels
        assert pipe.named_steps["estimator"].module_.features[0][0].in_channels == 2


def test_predictability_with_a_probe_records_it_and_compares_runs(probe_ds, tmp_path):
    cfg = PredictabilityConfig(models=("mean", "gbm"), params="cutoff,keyfollow,ampattack", audio=2, pairs=1, jobs=1,
                               overrides={"gbm": {"n_estimators": 5, "min_child_samples": 2}})
    res = run_predictability(probe_ds, cfg, out=tmp_path / "a", cache_dir=tmp_path / "cache", log=lambda s: None)
    assert (res["probe"], res["n_renders"], res["renders_total"]) == (PROBE, 2, 48)
    assert [r["note"] for r in res["probe_renders"]] == [48, 72]
    assert res["audio"]["pairs_render"]["note"] == 48 and "gbm" in res["audio"]["models"]
    assert res["models"]["gbm"]["n_train"] == res["n_train"]
    # a second run compared with the first: the section names both and the per-parameter difference
    against = read_against([tmp_path / "a"])
    assert against[0]["renders_total"] == 48 and "gbm" in against[0]["skills"]["cutoff"]
    res2 = run_predictability(probe_ds, cfg, out=tmp_path / "b", cache_dir=tmp_path / "cache", log=lambda s: None,
                              against=against)
    html = predictability_html(json.loads(json.dumps(res2)))
    assert 'id="probe-comparison"' in html and "equal renders and patches" in html
    assert "keyfollow" in html.split('id="probe-comparison"')[1]
    # a run without --against has no such section
    assert 'id="probe-comparison"' not in predictability_html(json.loads(json.dumps(res)))
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(DatasetError, match="not a predictability.json"):
        read_against([bad])


def test_budget_and_default_paths():
    p3 = parse_probe("notes=36,60,84")
    assert patches_for_budget(3000, p3) == 1000 and patches_for_budget(3000, DEFAULT_PROBE) == 3000
    with pytest.raises(ParameterValueError, match="at least 20"):
        patches_for_budget(30, p3)
    assert probe_slug(DEFAULT_PROBE) == "" and probe_slug(parse_probe("notes=36,60/velocities=64,127")) == \
        "notes36-60_velocities64-127"
    assert str(default_dataset_path("noisemaker", "timbral", 20000)) == "data/noisemaker-timbral-20k"
    assert str(default_dataset_path("noisemaker", "timbral", 1000, probe=p3)) == "data/noisemaker-timbral-1k-notes36-60-84"


def test_predictability_cli_refuses_another_probe_and_a_bad_budget(probe_ds, tmp_path):
    def cli(*a):
        return subprocess.run([sys.executable, "-m", "synth_probe", "predictability", "noisemaker", *a,
                               "--out", str(tmp_path / "r")], capture_output=True, text=True, cwd=tmp_path)
    p = cli("--data", str(probe_ds.path), "--probe", "notes=60")
    assert p.returncode == 2 and "made with the probe 'notes=48,72'" in p.stderr and len(p.stderr.splitlines()) == 1
    p = cli("--renders", "40", "--probe", "notes=36,60,84")
    assert p.returncode == 2 and "at least 20" in p.stderr
    p = cli("--probe", "notes=300")
    assert p.returncode == 2 and "0..127" in p.stderr
    assert not (tmp_path / "data").exists()


def test_tune_on_a_probe_dataset_matrix_matches_the_saved_pipeline(probe_ds, tmp_path):
    from synth_probe.cli import main
    from synth_probe.synths.registry import get_synth
    from synth_probe.tuning import TuneConfig, TuneContext

    cfg = TuneConfig(synth="noisemaker", param="cutoff", data=str(probe_ds.path), studies_root=str(tmp_path / "s"),
                     probe=PROBE)
    ctx = TuneContext(cfg, get_synth("noisemaker"))
    X = audio_rows(probe_ds, slice(0, 3))
    for fs in ({"kind": "combined", "n_mels": 32, "hop": 256, "pool": 4}, {"kind": "handcrafted"},
               {"kind": "logmel_stats", "n_mels": 32, "hop": 256, "pool": 4}, {"kind": "mel", "n_mels": 32, "hop": 512}):
        step = ctx.features.pipeline_steps(fs)[0][1]
        np.testing.assert_allclose(ctx.features.matrix(fs)[:3], step.transform(X), rtol=1e-5, atol=1e-4)
    mel = {"kind": "mel", "n_mels": 32, "hop": 512}
    est = ctx.estimator("cnn", {}, mel)
    assert est.input_shape == (2, 32, ctx.features.matrix(mel).shape[1] // 64)  # two renders as input channels
    assert int(np.prod(est.input_shape)) == ctx.features.matrix(mel).shape[1]
    with pytest.raises(DatasetError, match="made with the probe 'notes=48,72'"):
        TuneContext(TuneConfig(synth="noisemaker", param="cutoff", data=str(probe_ds.path), probe="notes=60",
                               studies_root=str(tmp_path / "s")), get_synth("noisemaker"))
    rc = main(["tune", "noisemaker", "--param", "cutoff", "--data", str(probe_ds.path), "--probe", PROBE,
               "--studies", str(tmp_path / "s"), "--out", str(tmp_path / "r"), "--families", "gbm,knn",
               "--max-rounds", "20", "--trials", "2", "--jobs", "1"])
    assert rc == 0
    summary = json.loads((tmp_path / "r" / "tune_cutoff.json").read_text())
    assert summary["best"]["test"] is not None


def test_a_probe_pipeline_saves_and_loads(probe_ds, tmp_path):
    from synth_probe.models import load_model, save_model

    pipe = build_pipeline("knn", sample_rate=SMALL.sample_rate, note_length=SMALL.note_length,
                          n_samples=SMALL.n_samples, renders=probe_renders(probe_ds), jobs=1)
    X = audio_rows(probe_ds)
    pipe.fit(X[:20], probe_ds.params[["cutoff"]].iloc[:20].reset_index(drop=True))
    save_model(pipe, tmp_path / "m")
    back = load_model(tmp_path / "m")
    np.testing.assert_allclose(np.asarray(back.predict(X[20:])), np.asarray(pipe.predict(X[20:])))


def test_train_and_evaluate_a_probe_dataset(probe_ds, tmp_path):
    def cli(*a):
        return subprocess.run([sys.executable, "-m", "synth_probe", *a], capture_output=True, text=True)

    p = cli("train", "knn", "--data", str(probe_ds.path), "--params", "cutoff,keyfollow", "--out", str(tmp_path / "m"))
    assert p.returncode == 0, p.stderr
    assert "keyfollow" in p.stdout
    p = cli("evaluate", str(tmp_path / "m"), "--data", str(probe_ds.path))
    assert p.returncode == 0, p.stderr
    p = cli("evaluate", str(tmp_path / "m"), "--data", str(probe_ds.path), "--audio", "2")
    assert p.returncode == 2 and "probe of 2 renders" in p.stderr
