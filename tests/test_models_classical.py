from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline

from synth_probe.errors import ModelFileError, ParameterValueError, UnknownModelError, UnknownParameterError
from synth_probe.features import HandcraftedFeatures
from synth_probe.metrics import parameter_report
from synth_probe.models import (
    GBMEstimator,
    MeanBaseline,
    NearestNeighbours,
    ParamTargets,
    discrete_layout,
    load_model,
    model_class,
    save_model,
)
from synth_probe.pipeline import family_class, feature_step
from synth_probe.synths.base import RenderSettings
from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

SETTINGS = RenderSettings(note_length=0.3, render_length=0.5, sample_rate=16000)
VARY = ["cutoff", "resonance", "amprelease", "osc1waveform"]


def layout(columns: list[str]) -> dict:
    """The discrete layout of NoiseMaker parameters ``columns``, as the estimators take it."""
    return discrete_layout(NOISEMAKER_SPECS, columns)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """60 real NoiseMaker renders (0.5 s at 16 kHz) with four parameters varied."""
    from synth_probe.dataset import generate

    out = tmp_path_factory.mktemp("data") / "tiny"
    result = generate("noisemaker", out, 60, vary=VARY, settings=SETTINGS, seed=1)
    assert result.ok
    return out


@pytest.fixture(scope="module")
def features(dataset_dir):
    from synth_probe import load_dataset

    ds = load_dataset(dataset_dir)
    F = HandcraftedFeatures(sample_rate=16000, note_length=0.3).fit_transform(np.asarray(ds.audio[:]))
    return F, ds.params[VARY].reset_index(drop=True)


# ---------------------------------------------------------------- targets
def test_param_targets_split_and_decode():
    Y = pd.DataFrame({"cutoff": [0.1, 0.9, 0.5], "filtertype": [0.0, 1.0, 0.52], "osc1tune": [0.0, 0.5, 1.0]})
    t = ParamTargets(synth="noisemaker").fit(Y)
    assert t.continuous_columns == ["cutoff"] and t.discrete_columns == ["filtertype", "osc1tune"]
    assert t.n_classes == [12, 49]
    Yc, Yd = t.transform(Y)
    np.testing.assert_allclose(Yc[:, 0], [0.1, 0.9, 0.5])
    assert Yd[:, 0].tolist() == [0, 11, 6]  # round(0.52 * 11) = 6
    back = t.inverse_transform(np.array([[1.3], [-0.2], [0.4]]), Yd)
    assert back[:, 0].tolist() == [1.0, 0.0, 0.4]  # clipped to [0, 1]
    assert back[2, 1] == pytest.approx(6 / 11)  # the canonical choice value
    assert isinstance(t.format(back), pd.DataFrame)


def test_param_targets_discrete_mapping_and_errors():
    arr = np.array([[0.2, 0.0], [0.4, 1.0], [0.6, 0.5]])
    t = ParamTargets(discrete={1: 3}).fit(arr)
    assert t.discrete_index == [1] and t.transform(arr)[1][:, 0].tolist() == [0, 2, 1]
    t = ParamTargets(discrete={1: (0.0, 0.3, 1.0)}).fit(arr)
    assert t.transform(arr)[1][:, 0].tolist() == [0, 2, 1]  # nearest listed value: 0.5 -> 0.3
    with pytest.raises(UnknownParameterError, match="cutof"):
        ParamTargets(synth="noisemaker").fit(pd.DataFrame({"cutof": [0.1]}))
    with pytest.raises(ParameterValueError, match="outside \\[0, 1\\]"):
        ParamTargets(synth="noisemaker").fit(pd.DataFrame({"cutoff": [1.2]}))
    with pytest.raises(ParameterValueError, match="pass a DataFrame"):
        ParamTargets(synth="noisemaker").fit(np.zeros((3, 2)))
    with pytest.raises(ParameterValueError, match="at least 2 choices"):
        ParamTargets(discrete={0: 1}).fit(arr)


def test_discrete_layout_is_data_that_chooses_as_the_synth_does():
    # the layout replaces the synth's choosers (functions) by their steps: the same choice for every value
    rng = np.random.default_rng(0)
    lay = discrete_layout(NOISEMAKER_SPECS)
    assert {k for k, v in lay.items() if v["rule"] == "bounds"} >= {"osc1tune", "lfo1waveform", "transpose"}
    json.dumps(lay)  # plain data
    for sp in (s for s in NOISEMAKER_SPECS if s.is_discrete):
        values = np.concatenate([rng.random(3000), np.linspace(0, 1, 961), np.asarray(sp.choice_values)])
        t = ParamTargets(discrete={sp.name: lay[sp.name]}).fit(pd.DataFrame({sp.name: [0.0, 1.0]}))
        assert t.to_class(0, values).tolist() == [sp.choice_index(float(v)) for v in values], sp.name


def test_estimators_never_open_the_synth(features):
    # synth= only names the synth: a plugin path that does not exist is never opened by fit
    F, Y = features
    est = MeanBaseline(synth="/nonexistent/plugin.so", discrete=layout(VARY)).fit(F, Y)
    assert est.targets_.discrete_columns == ["osc1waveform"] and est.targets_.n_classes == [3]


# -------------------------------------------------------------- estimators
def test_models_beat_the_mean_on_real_renders(features):
    F, Y = features
    tr, te = slice(0, 45), slice(45, 60)
    reports = {}
    nm = dict(synth="noisemaker", discrete=layout(VARY))
    for est in (MeanBaseline(**nm), NearestNeighbours(n_neighbors=3, **nm),
                GBMEstimator(n_estimators=200, min_child_samples=3, random_state=0, n_jobs=1, **nm)):
        pred = est.fit(F[tr], Y[tr]).predict(F[te])
        assert isinstance(pred, pd.DataFrame) and list(pred.columns) == VARY
        assert ((pred >= 0) & (pred <= 1)).all().all()
        reports[type(est).__name__] = parameter_report(Y[te].reset_index(drop=True), pred, "noisemaker")
    mean, knn, gbm = reports["MeanBaseline"], reports["NearestNeighbours"], reports["GBMEstimator"]
    assert mean.loc["osc1waveform", "kind"] == "discrete"
    for rep in (knn, gbm):  # the cutoff is heard: both must beat the mean clearly
        assert rep.loc["cutoff", "mae"] < 0.6 * mean.loc["cutoff", "mae"]
        assert rep.loc["cutoff", "mpr"] > 75
    assert gbm.loc["cutoff", "r2"] > 0.5


def test_single_parameter_and_array_targets(features):
    F, Y = features
    est = GBMEstimator(n_estimators=30, random_state=0, n_jobs=1, discrete=layout(["osc1waveform"]))
    s = est.fit(F, Y["osc1waveform"]).predict(F[:5])
    assert isinstance(s, pd.Series) and s.name == "osc1waveform"
    proba = est.predict_discrete_proba(F[:5])
    assert proba["osc1waveform"].shape == (5, est.targets_.n_classes[0])
    np.testing.assert_allclose(proba["osc1waveform"].sum(axis=1), 1.0)
    a = NearestNeighbours().fit(F, Y["cutoff"].to_numpy()).predict(F[:4])
    assert isinstance(a, np.ndarray) and a.shape == (4,)


def test_gbm_is_reproducible_and_stops_early(features):
    F, Y = features
    a = GBMEstimator(n_estimators=300, random_state=3, n_jobs=1, validation_fraction=0.3, early_stopping_rounds=5)
    b = clone(a)
    pa = a.fit(F, Y).predict(F)
    np.testing.assert_array_equal(pa, b.fit(F, Y).predict(F))
    assert all(n < 300 for n in a.best_iterations_[:1])  # the validation loss stops it
    assert a.feature_importances().shape == (4, F.shape[1])


def test_pipeline_and_cross_validation(dataset_dir):
    from synth_probe import load_dataset

    ds = load_dataset(dataset_dir)
    X = np.asarray(ds.audio[:])
    pipe = make_pipeline(HandcraftedFeatures(sample_rate=16000, note_length=0.3), NearestNeighbours(n_neighbors=3))
    scores = cross_val_score(pipe, X, ds.params["cutoff"].to_numpy(), cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))


def test_mean_baseline_collapse():
    X = np.zeros((6, 2))
    Y = pd.DataFrame({"cutoff": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "filtertype": [0, 0, 0, 1, 1, 0.5]})
    pred = MeanBaseline(discrete=layout(["filtertype"])).fit(X, Y).predict(np.ones((2, 2)))
    np.testing.assert_allclose(pred["cutoff"], [0.35, 0.35])
    assert pred["filtertype"].tolist() == [0.0, 0.0]  # the most frequent class


def test_bad_hyperparameters():
    X, y = np.random.default_rng(0).random((30, 3)), np.linspace(0, 1, 30)
    with pytest.raises(ParameterValueError, match="weights must be"):
        NearestNeighbours(weights="gaussian").fit(X, y)
    with pytest.raises(ParameterValueError, match="validation_fraction"):
        GBMEstimator(validation_fraction=1.5).fit(X, y)
    with pytest.raises(UnknownModelError, match="Did you mean 'gbm'"):
        family_class("gmb")
    with pytest.raises(UnknownModelError, match="Did you mean 'GBMEstimator'"):
        model_class("GBMEstimatr")
    with pytest.raises(ParameterValueError, match="needs the targets' layout as data"):
        MeanBaseline(synth="noisemaker").fit(X, y)


# ----------------------------------------------------------------- save/load
def test_gbm_learns_a_gridded_parameter_as_classes_over_its_levels(tmp_path):
    # a target drawn from 8 levels, heard through a noisy feature: learned as a class over the levels
    rng = np.random.default_rng(0)
    lv = np.linspace(0.2, 0.8, 8)
    y = lv[rng.integers(0, 8, 600)]
    X = np.c_[y + rng.normal(0, 0.04, 600), rng.normal(size=600)]
    Y = pd.DataFrame({"cutoff": y, "resonance": rng.random(600), "osc1waveform": rng.choice([0.0, 0.5], 600)})
    kw = dict(n_estimators=60, random_state=0, n_jobs=1, synth="noisemaker", discrete=layout(list(Y.columns)))
    # one mapping serves every subset: the discrete and absent columns named in it are ignored
    est = GBMEstimator(levels={"cutoff": list(lv), "osc1waveform": [0.0, 0.5], "tune": [0.0, 1.0]}, **kw)
    est.fit(X[:450], Y[:450])
    assert est.level_values_ == {"cutoff": list(lv)}
    proba = est.predict_level_proba(X[450:])
    assert list(proba) == ["cutoff"] and proba["cutoff"].shape == (150, 8)
    np.testing.assert_allclose(proba["cutoff"].sum(axis=1), 1.0)
    pred = est.predict(X[450:])
    np.testing.assert_allclose(pred["cutoff"], proba["cutoff"] @ lv)  # the mean of the levels
    both, together = est.predict_with_proba(X[450:])  # the three calls in one
    pd.testing.assert_frame_equal(both, pred)
    expected = {**est.predict_discrete_proba(X[450:]), **proba}
    assert list(together) == list(expected) and "cutoff" in together
    assert all(np.array_equal(together[k], v) for k, v in expected.items())
    # the MPR ranks the levels by their probabilities: right for nearly every row
    rep = parameter_report(Y[450:], pred, "noisemaker", levels={"cutoff": lv}, proba=proba)
    assert rep.loc["cutoff", "mpr"] > 95 and rep.loc["cutoff", "r2"] > 0.9
    # without levels the same column is regressed, as before
    plain = GBMEstimator(**kw).fit(X[:450], Y[:450])
    assert plain.level_values_ == {} and plain.predict_level_proba(X[450:]) == {}
    # a saved model keeps its levels
    loaded = load_model(save_model(est, tmp_path / "gbm-levels"))
    pd.testing.assert_frame_equal(loaded.predict(X[450:]), pred)
    with pytest.raises(ParameterValueError, match="levels must be a mapping"):
        GBMEstimator(levels=[0.1, 0.2], **kw).fit(X[:450], Y[:450])


def test_save_load_round_trip(features, tmp_path):
    F, Y = features
    nm = dict(synth="noisemaker", discrete=layout(VARY))
    for est in (GBMEstimator(n_estimators=20, random_state=0, n_jobs=1, **nm),
                NearestNeighbours(**nm), MeanBaseline(**nm)):
        est.fit(F, Y)
        path = save_model(est, tmp_path / type(est).__name__, metadata={"note": "test"})
        header = json.loads((path / "model.json").read_text())
        assert header["backend"] == "skops" and header["columns"] == VARY and header["synth"] == "noisemaker"
        loaded = load_model(path)
        pd.testing.assert_frame_equal(loaded.predict(F), est.predict(F))
        assert loaded.model_header_["metadata"] == {"note": "test"}


def test_load_refuses_untrusted_and_missing(tmp_path, features):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    F, Y = features
    path = save_model(MeanBaseline().fit(F, Y), tmp_path / "m")
    # a model file holding a type outside the trusted list is refused, not loaded
    sio.dump(make_pipeline(FunctionTransformer(os.system), MeanBaseline().fit(F, Y)), path / "model.skops")
    with pytest.raises(ModelFileError, match="not trusted.*system"):
        load_model(path)
    with pytest.raises(ModelFileError, match="model.json is missing"):
        load_model(tmp_path / "nothing")


# ----------------------------------------------------------------------- CLI
def test_cli_train_and_evaluate(dataset_dir, tmp_path, capsys):
    from synth_probe.cli import main

    out = tmp_path / "models" / "gbm"
    rc = main(["train", "gbm", "--data", str(dataset_dir), "--params", "cutoff,osc1waveform",
               "--features", "handcrafted", "--out", str(out), "--set", "n_estimators=40", "--jobs", "1"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "cutoff" in text and "osc1waveform" in text and "mean MPR" in text
    report = tmp_path / "eval.json"
    rc = main(["evaluate", str(out), "--data", str(dataset_dir), "--split", "test", "--json", str(report),
               "--audio", "3"])
    assert rc == 0
    result = json.loads(report.read_text())
    assert result["n"] == 12 and {p["parameter"] for p in result["parameters"]} == {"cutoff", "osc1waveform"}
    assert set(result["audio"]["mean"]) >= {"log_mel", "baseline_log_mel"}


def test_cli_train_learns_the_inversynth_grids_as_classes(tmp_path, capsys):
    from synth_probe import load_dataset
    from synth_probe.cli import main
    from synth_probe.families import GRID_LEVEL_SMOOTHING
    from synth_probe.metrics import grid_levels
    from synth_probe.training import audio_rows, predict_with_proba

    data = tmp_path / "inv"
    assert main(["generate", "noisemaker", "--sampler", "inversynth", "--n", "80", "--out", str(data),
                 "--jobs", "1", "--no-progress"]) == 0
    out = tmp_path / "models" / "gbm"
    assert main(["train", "gbm", "--data", str(data), "--params", "cutoff,osc2finetune,lfo1destination",
                 "--out", str(out), "--set", "n_estimators=20", "--jobs", "1", "--test-fraction", "0.25"]) == 0
    model = load_model(out)
    est = model.steps[-1][1]
    ds = load_dataset(data)
    levels = grid_levels(ds.params[["cutoff", "osc2finetune", "lfo1destination"]])
    # the two gridded continuous parameters are classes over their levels (16 and 9); the discrete one stays a class
    assert {k: len(v) for k, v in est.level_values_.items()} == {"cutoff": 16, "osc2finetune": 9}
    X = audio_rows(ds, np.arange(8))
    pred, proba = predict_with_proba(model, X, levels)
    assert proba["cutoff"].shape == (8, 16) and proba["lfo1destination"].shape[0] == 8
    pd.testing.assert_frame_equal(pred, model.predict(X))
    # a report on another grid ranks by the prediction's distance instead of failing
    assert "cutoff" not in predict_with_proba(model, X, {"cutoff": (0.0, 0.5, 1.0)})[1]
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(data), "--json", str(tmp_path / "e.json")]) == 0
    result = json.loads((tmp_path / "e.json").read_text())
    assert {p["parameter"] for p in result["parameters"]} == {"cutoff", "osc2finetune", "lfo1destination"}
    # a torch model learns them as class heads the same way, and its saved folder keeps the levels
    cnn_out = tmp_path / "models" / "cnn"
    assert main(["train", "cnn", "--data", str(data), "--params", "cutoff,osc2finetune,lfo1destination",
                 "--out", str(cnn_out), "--set", "max_epochs=1", "--set", "channels=[4,8]", "--jobs", "1",
                 "--test-fraction", "0.25"]) == 0
    cnn = load_model(cnn_out)
    assert {k: len(v) for k, v in cnn.steps[-1][1].level_values_.items()} == {"cutoff": 16, "osc2finetune": 9}
    assert cnn.steps[-1][1].level_smoothing == GRID_LEVEL_SMOOTHING  # as the predictability suite trains it
    assert predict_with_proba(cnn, X, levels)[1]["osc2finetune"].shape == (8, 9)


def test_models_on_other_descriptors_are_refused(dataset_dir, tmp_path, monkeypatch):
    # a model fitted on one version of the handcrafted descriptors must not meet another's columns
    import synth_probe.features as features_module
    from synth_probe import load_dataset
    from synth_probe.features import DESCRIPTORS_VERSION
    from synth_probe.predictability import _feature_key

    ds = load_dataset(dataset_dir)
    X = np.asarray(ds.audio[:12], dtype=np.float32)
    hand = feature_step("combined", sample_rate=16000, note_length=0.3, jobs=1)
    model = make_pipeline(hand, MeanBaseline(discrete=layout(VARY))).fit(X, ds.params[VARY].iloc[:12])
    path = save_model(model, tmp_path / "m")
    header = json.loads((path / "model.json").read_text())
    assert header["descriptors_version"] == DESCRIPTORS_VERSION
    load_model(path)
    header["descriptors_version"] = DESCRIPTORS_VERSION - 1
    (path / "model.json").write_text(json.dumps(header))
    with pytest.raises(ModelFileError, match=f"descriptors version {DESCRIPTORS_VERSION - 1}.*Train it again"):
        load_model(path)
    # feature caches: a new descriptor version gets a new key; a log-mel step keeps its key
    rows = np.arange(12)
    logmel = feature_step("logmel", sample_rate=16000, note_length=0.3, jobs=1)
    keys = (_feature_key(ds, "tabular", hand, rows), _feature_key(ds, "logmel", logmel, rows))
    monkeypatch.setattr(features_module, "DESCRIPTORS_VERSION", DESCRIPTORS_VERSION + 1)
    assert _feature_key(ds, "tabular", hand, rows) != keys[0]
    assert _feature_key(ds, "logmel", logmel, rows) == keys[1]


def test_cli_errors(dataset_dir, tmp_path, capsys):
    from synth_probe.cli import main

    rc = main(["train", "gbm", "--data", str(dataset_dir), "--params", "cutof", "--out", str(tmp_path / "x")])
    assert rc == 2 and "Did you mean" in capsys.readouterr().err
    rc = main(["train", "gbm", "--data", str(dataset_dir), "--params", "cutoff", "--out", str(tmp_path / "x"),
               "--set", "n_estimatrs=3"])
    assert rc == 2 and "did you mean 'n_estimators'" in capsys.readouterr().err
    rc = main(["evaluate", str(tmp_path / "missing"), "--data", str(dataset_dir)])
    assert rc == 2 and "not a saved model" in capsys.readouterr().err


def test_knn_votes_rank_the_levels_of_a_gridded_parameter():
    rng = np.random.default_rng(1)
    lv = np.linspace(0.0, 1.0, 8)
    y = lv[rng.integers(0, 8, 500)]
    X = np.c_[y + rng.normal(0, 0.05, 500), rng.normal(size=500)]
    Y = pd.DataFrame({"cutoff": y, "resonance": rng.random(500)})
    kw = dict(n_neighbors=7, synth="noisemaker", discrete={})
    est = NearestNeighbours(levels={"cutoff": lv, "tune": [0.0, 1.0]}, **kw).fit(X[:400], Y[:400])
    assert est.level_values_ == {"cutoff": list(lv)}
    proba = est.predict_level_proba(X[400:])
    assert list(proba) == ["cutoff"] and proba["cutoff"].shape == (100, 8)
    np.testing.assert_allclose(proba["cutoff"].sum(axis=1), 1.0)
    pred = est.predict(X[400:])
    # the neighbours' weights are the votes: their mean over the levels is the prediction, unchanged by levels
    np.testing.assert_allclose(pred["cutoff"], proba["cutoff"] @ lv)
    pd.testing.assert_frame_equal(pred, NearestNeighbours(**kw).fit(X[:400], Y[:400]).predict(X[400:]))
    by_votes = parameter_report(Y[400:], pred, "noisemaker", levels={"cutoff": lv}, proba=proba)
    by_distance = parameter_report(Y[400:], pred, "noisemaker", levels={"cutoff": lv})
    assert by_votes.loc["cutoff", "mpr"] > 90
    assert by_votes.loc["cutoff", "mpr"] >= by_distance.loc["cutoff", "mpr"] - 1
