"""The predictability study on a tiny real dataset: results JSON, report part, one page with the sensitivity part."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from synth_probe.cli import main
from synth_probe.errors import ParameterValueError, UnknownModelError
from synth_probe.predictability import PredictabilityConfig, ensure_dataset, run_predictability, skill
from synth_probe.report.charts import line_chart_svg, scatter_svg
from synth_probe.report.in_context import summary_rows
from synth_probe.report.pages import write_predictability_report
from synth_probe.report.sensitivity_section import write_sensitivity_report
from synth_probe.sensitivity import SensitivityConfig, run_sensitivity

N = 60
PARAMS = "cutoff,ampattack,osc1waveform"
CONFIG = dict(models=("mean", "gbm", "cnn"), params=PARAMS, test_fraction=0.25, epochs=2, patience=2, jobs=2,
              audio=4, pairs=2, overrides={"gbm": {"n_estimators": 20}, "cnn": {"channels": [8, 16]}})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "tiny"
    ds = ensure_dataset("noisemaker", path, N, sampler="timbral", jobs=2, sample_rate=16000, render_length=0.5,
                        note_length=0.3, progress=False)
    return ds


@pytest.fixture(scope="module")
def study(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    lines: list[str] = []
    results = run_predictability(dataset, PredictabilityConfig(**CONFIG), out=out, cache_dir=out / "cache",
                                 log=lines.append)
    assert not (out / "predictability.html").exists()  # the study writes data; the report is the caller's
    write_predictability_report(results, out)
    return out, results, lines


def test_results_json_holds_every_model_and_parameter(study, dataset):
    out, results, _ = study
    data = json.loads((out / "predictability.json").read_text())
    assert data["complete"] and data["n"] == N and data["n_test"] == 15 and data["n_train"] == 45
    assert data["columns"] == PARAMS.split(",")
    assert set(data["models"]) == {"mean", "gbm", "cnn", "ensemble"}
    assert data["models"]["ensemble"]["members"] == ["gbm", "cnn"]
    for m, e in data["models"].items():
        assert [r["parameter"] for r in e["parameters"]] == PARAMS.split(",")
        assert 0 <= e["mean_mpr"] <= 100
        kinds = {r["parameter"]: r["kind"] for r in e["parameters"]}
        assert kinds == {"cutoff": "continuous", "ampattack": "continuous", "osc1waveform": "discrete"}
    # the baseline predicts the training mean: R² ≤ 0 on the test rows, MAE equal to |y - mean|
    mean = {r["parameter"]: r for r in data["models"]["mean"]["parameters"]}
    assert mean["cutoff"]["r2"] <= 0.0
    Y = dataset.params.reset_index(drop=True)
    from synth_probe.training import split_indices

    tr, te = split_indices(N, 0.25, 0)
    expect = float(np.mean(np.abs(Y.cutoff.iloc[te] - Y.cutoff.iloc[tr].mean())))
    assert mean["cutoff"]["mae"] == pytest.approx(expect, rel=1e-6)
    # torch models keep their learning curve and speed
    cnn = data["models"]["cnn"]
    assert cnn["n_epochs"] == len(cnn["history"]) >= 1 and cnn["samples_per_s"] > 0
    assert all(h["train_loss"] > 0 for h in cnn["history"])
    # audio-domain metrics for every model, and clips of the best model
    assert set(data["audio"]["models"]) == {"mean", "gbm", "cnn", "ensemble"}
    # the ensemble averages the members' full test predictions, kept beside the results for reruns
    with np.load(out / "predictability_predictions.npz") as z:
        mean_pred = (z["pred:gbm"] + z["pred:cnn"]) / 2
        proba = (z["proba:gbm:osc1waveform"] + z["proba:cnn:osc1waveform"]) / 2
    head = np.asarray(data["models"]["ensemble"]["test_predictions_head"])
    cols = data["columns"]
    assert np.allclose(head[:, cols.index("cutoff")], mean_pred[: len(head), cols.index("cutoff")])
    assert np.allclose(head[:, cols.index("osc1waveform")], np.array([0.0, 0.5, 1.0])[proba[: len(head)].argmax(1)])
    assert data["audio"]["models"]["cnn"]["log_mel"]["mean"] >= 0
    with np.load(out / "predictability_media.npz") as z:
        assert z["target"].shape == z["prediction"].shape == (2, 8000)
        assert z["target"].dtype == np.int16 and np.abs(z["target"]).max() > 0
    assert data["best"]["cutoff"]["model"] in ("gbm", "cnn")


def test_report_part_and_page(study):
    out, _, _ = study
    page = (out / "predictability.html").read_text()
    assert (out / "_parts" / "predictability" / "20-measured.html").exists()
    for anchor in ("measured-table-t", "measured-models", "learning-curves", "audio-table", "curve-cnn"):
        assert f'id="{anchor}"' in page
    assert page.count("data:audio/wav;base64,") >= 4  # 2 pairs x (target, prediction[, mean patch])
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "No <code>sensitivity.json</code>" in page  # no sensitivity run in this folder yet


def test_listenable_pairs_show_a_preset_datasets_program_name(study):
    from synth_probe.report.predictability_section import predictability_html

    out, _, _ = study
    results = json.loads((out / "predictability.json").read_text())
    assert all("label" not in p for p in results["audio"]["pairs"])  # a sampled dataset has no program names
    results["audio"]["pairs"][0]["label"] = "Fat <Bass>"  # what Dataset.labels gives for a preset table's row
    with np.load(out / "predictability_media.npz") as z:
        media = {k: z[k] for k in z.files}
    html = predictability_html(results, media=media)
    assert f"test patch {results['audio']['pairs'][0]['row']} — Fat &lt;Bass&gt;</summary>" in html


def test_rerun_keeps_finished_models(study, dataset):
    out, results, _ = study
    lines: list[str] = []
    again = run_predictability(dataset, PredictabilityConfig(**CONFIG), out=out, cache_dir=out / "cache",
                               log=lines.append)
    assert sum("kept from the earlier run" in s for s in lines) == 3
    assert any("from cache" in s for s in lines) is False  # nothing had to be recomputed
    assert again["models"]["cnn"]["parameters"] == results["models"]["cnn"]["parameters"]
    # the ensemble is rebuilt from the saved predictions of the kept members
    assert again["models"]["ensemble"]["parameters"] == results["models"]["ensemble"]["parameters"]


def test_rerun_refits_the_models_on_changed_descriptors(study, dataset, tmp_path, monkeypatch):
    # a newer descriptor set (DESCRIPTORS_VERSION) means new tabular features: LightGBM and the baseline
    # are fitted again on them, the CNN (log-mel input) is kept
    import shutil

    import synth_probe.features as features_module

    out, results, _ = study
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    monkeypatch.setattr(features_module, "DESCRIPTORS_VERSION", features_module.DESCRIPTORS_VERSION + 1)
    lines: list[str] = []
    again = run_predictability(dataset, PredictabilityConfig(**CONFIG), out=copy, cache_dir=copy / "cache",
                               log=lines.append)
    kept = [s for s in lines if "kept from the earlier run" in s]
    assert len(kept) == 1 and kept[0].startswith("cnn")
    assert any(s.startswith("gbm: fitting") for s in lines) and any(s.startswith("mean: fitting") for s in lines)
    assert again["models"]["gbm"]["fingerprint"] != results["models"]["gbm"]["fingerprint"]
    assert again["models"]["cnn"]["fingerprint"] == results["models"]["cnn"]["fingerprint"]


def test_another_log_mel_image_refits_only_the_spectrogram_models(study, dataset, tmp_path):
    # --mel-bands / --mel-hop change the image the CNN reads: a rerun refits it on the new image, keeps the
    # tabular models, and the report names the image
    import shutil

    out, results, _ = study
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    lines: list[str] = []
    again = run_predictability(dataset, PredictabilityConfig(**CONFIG, mel_bands=32, mel_hop=256), out=copy,
                               cache_dir=copy / "cache", log=lines.append)
    kept = sorted(s.split(":")[0] for s in lines if "kept from the earlier run" in s)
    assert kept == ["gbm", "mean"] and any(s.startswith("cnn: fitting") for s in lines)
    frames = 1 + int(dataset.settings.n_samples) // 256
    assert again["features"]["logmel"].startswith(f"log-mel 32 bands x {frames} frames (n_fft 1024, hop 256)")
    assert again["config"]["mel_bands"] == 32 and again["config"]["mel_hop"] == 256
    assert again["models"]["cnn"]["fingerprint"] != results["models"]["cnn"]["fingerprint"]
    assert again["models"]["gbm"]["fingerprint"] == results["models"]["gbm"]["fingerprint"]
    # the default image adds nothing to the fingerprint: runs from before the option stay valid
    assert results["config"]["mel_bands"] == 64 and results["config"]["mel_hop"] == 512
    with pytest.raises(ParameterValueError, match="mel_bands must be an int >= 1"):
        PredictabilityConfig(mel_bands=0)
    with pytest.raises(SystemExit):
        main(["predictability", "noisemaker", "--mel-hop", "0"])


def test_rerun_without_saved_predictions_says_why_there_is_no_ensemble(study, dataset, tmp_path):
    import shutil

    from synth_probe.errors import DatasetError
    from synth_probe.predictability import load_run_dataset, load_saved_run

    out, _, _ = study
    # what the studies under studies/ compare with: the results, each model's test predictions, the ensemble's members
    results, saved, members = load_saved_run(out)
    assert members == ["gbm", "cnn"] and saved["pred:cnn"].shape == (15, len(results["columns"]))
    # and the dataset it was trained on, refused when its rows no longer match the run's split
    assert len(load_run_dataset(results).params) == N
    with pytest.raises(DatasetError, match=f"has {N} rows, the predictability run used {N + 1}"):
        load_run_dataset({**results, "n": N + 1})
    copy = tmp_path / "reports"
    shutil.copytree(out, copy)
    (copy / "predictability_predictions.npz").unlink()  # as after a run of an older synth_probe
    with pytest.raises(DatasetError, match="make predictability"):
        load_saved_run(copy)
    lines: list[str] = []
    again = run_predictability(dataset, PredictabilityConfig(**CONFIG), out=copy, cache_dir=out / "cache",
                               log=lines.append)
    assert "ensemble" not in again["models"] and again["complete"]
    assert any(s.startswith("ensemble: left out") and "--fresh" in s for s in lines)


def test_one_page_with_sensitivity_in_either_order(study, noisemaker, tmp_path):
    out, _, _ = study
    sens = run_sensitivity(noisemaker, SensitivityConfig(bases=2, steps=3, floor_seeds=2, max_choices=3,
                                                         render_length=0.4, note_length=0.3, sample_rate=16000,
                                                         jobs=2, bootstrap=50,
                                                         params=("cutoff", "ampattack", "osc1waveform")))
    # sensitivity after predictability: the measured part is rebuilt with the scores beside each parameter
    write_sensitivity_report(sens.to_dict(), sens.table_rows(), out, media=sens.media, audio_top=1)
    page = (out / "predictability.html").read_text()
    assert page.count("<!DOCTYPE html>") == 1 or page.lower().count("<html") == 1
    assert 'id="sensitivity-table"' in page and 'id="measured-table-t"' in page
    assert page.index('id="sensitivity-table"') < page.index('id="measured-table-t"')
    assert 'id="sens-pred-scatter"' in page and "No <code>sensitivity.json</code>" not in page
    # the scatter has one point per parameter studied by both
    svg = re.search(r'<svg[^>]*id="sens-pred-scatter".*?</svg>', page, re.S).group(0)
    assert svg.count("<circle") == 3
    # figures that need the classes are answered, with no verdict
    results = json.loads((out / "predictability.json").read_text())
    rows = summary_rows(results, json.loads((out / "sensitivity.json").read_text()))
    assert "strong parameters where the CNN beats MeanBaseline" in [r["name"] for r in rows]
    assert all(set(r) == {"name", "value", "context"} for r in rows)
    figures = re.search(r'<table id="predictability-figures".*?</table>', page, re.S).group(0)
    assert "In context" in figures and "Reached" not in figures and "Target" not in figures


def test_cli_on_an_existing_dataset(dataset, tmp_path, capsys):
    rc = main(["predictability", "noisemaker", "--data", str(dataset.path), "--models", "mean,knn",
               "--params", "cutoff", "--audio", "2", "--pairs", "1", "--out", str(tmp_path / "new" / "run"),
               "--no-cache"])
    assert rc == 0  # the --out folder did not exist: it is made
    out = tmp_path / "new" / "run"
    data = json.loads((out / "predictability.json").read_text())
    assert list(data["models"]) == ["mean", "knn"] and data["columns"] == ["cutoff"]
    assert (out / "predictability.html").exists() and (out / "predictability_predictions.npz").exists()


def test_bad_input_is_named():
    with pytest.raises(UnknownModelError, match="cnnn"):
        PredictabilityConfig(models=("mean", "cnnn"))
    with pytest.raises(ParameterValueError, match="test_fraction"):
        PredictabilityConfig(test_fraction=1.5)
    with pytest.raises(ParameterValueError, match="twice"):
        PredictabilityConfig(models=("mean", "mean"))


def test_skill_and_charts():
    assert skill({"kind": "continuous", "r2": 0.7}) == pytest.approx(0.7)
    assert skill({"kind": "discrete", "accuracy": 0.5, "chance_accuracy": 0.25}) == pytest.approx(1 / 3)
    assert np.isnan(skill({"kind": "continuous", "r2": None}))
    svg = scatter_svg([0.0, 4.0, float("nan")], [0.1, 0.9, 0.5], ["a", "b", "c"])
    assert svg.count("<circle") == 2 and ">a<" in svg and ">c<" not in svg
    lines = line_chart_svg({"train": [(1, 1.0), (2, 0.5)], "validation": [(1, 1.1), (2, None)]})
    assert lines.count("<polyline") == 2


def test_ensemble_averages_values_and_probabilities():
    from synth_probe.predictability import ensemble

    Y = pd.DataFrame({"cutoff": [0.1, 0.9, 0.5], "osc1waveform": [0.0, 0.5, 1.0]})
    preds = {"gbm": pd.DataFrame({"cutoff": [0.2, 0.8, 0.4], "osc1waveform": [0.0, 0.5, 0.5]}),
             "cnn": pd.DataFrame({"cutoff": [0.4, 0.6, 0.6], "osc1waveform": [1.0, 0.5, 1.0]}),
             "knn": pd.DataFrame({"cutoff": [0.0, 0.0, 0.0], "osc1waveform": [0.0, 0.0, 0.0]})}  # not a member
    probas = {"gbm": {"osc1waveform": np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4]])},
              "cnn": None}  # hard classes only: certain of its choice
    pred, proba, members = ensemble(preds, probas, "noisemaker", Y)
    assert members == ["gbm", "cnn"]
    assert np.allclose(pred["cutoff"], [0.3, 0.7, 0.5])
    assert np.allclose(proba["osc1waveform"], [[0.3, 0.15, 0.55], [0.1, 0.85, 0.05], [0.05, 0.25, 0.7]])
    assert list(pred["osc1waveform"]) == [1.0, 0.5, 1.0]
    assert "cutoff" not in proba  # no grid given: the continuous values alone
    # one member alone is no ensemble
    assert ensemble({"gbm": preds["gbm"]}, {}, "noisemaker", Y)[2] == []
    # cutoff drawn from a grid: the members' level probabilities are averaged (a member without them
    # counts as certain of the level nearest its prediction); the value stays the mean of the predictions
    grid = [0.0, 0.5, 1.0]
    probas["gbm"]["cutoff"] = np.array([[0.8, 0.2, 0.0], [0.0, 0.4, 0.6], [0.2, 0.6, 0.2]])
    pred, proba, _ = ensemble(preds, probas, "noisemaker", Y, levels={"cutoff": grid, "osc1waveform": grid})
    assert np.allclose(pred["cutoff"], [0.3, 0.7, 0.5])
    assert np.allclose(proba["cutoff"], [[0.4, 0.6, 0.0], [0.0, 0.7, 0.3], [0.1, 0.8, 0.1]])
    # a grid no member learned as classes: ranked by the values, as before
    del probas["gbm"]["cutoff"]
    assert "cutoff" not in ensemble(preds, probas, "noisemaker", Y, levels={"cutoff": grid})[1]


def test_refine_discrete_study_never_moves_away_from_the_target(study, capsys):
    """synth_probe.research.refine_discrete on the tiny run: each stage of its searches keeps or lowers the distance."""
    from synth_probe.research import refine_discrete as mod

    out, _, _ = study
    args = ["--reports", str(out), "--rows", "3", "--params", "osc1waveform", "--continuous", "cutoff",
            "--climb", "4", "--passes", "1", "--jobs", "1"]
    assert mod.main(args) == 0
    text = capsys.readouterr().out
    starts = re.findall(r"^start: (.+?) \(", text, re.M)
    assert starts == ["ensemble", "known continuous", "ensemble, hill-climbed over all 3 targets"]
    for row in re.findall(r"^  distance \(dB\)\s+(.+)$", text, re.M):
        d = [float(x) for x in row.split()]
        assert d == sorted(d, reverse=True) and d[0] > 0, text
    accuracies = [float(x) for row in re.findall(r"^  osc1waveform\s+(.+)$", text, re.M) for x in row.split()]
    assert len(accuracies) == 3 + 3 + 4 and all(0.0 <= a <= 1.0 for a in accuracies)
    assert len(re.findall(r"^  cutoff R²", text, re.M)) == 2  # not for the start that is given the true values
    assert mod.main(args[:4] + ["--params", "osc1wavefrom"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'osc1wavefrom' for the run. Did you mean 'osc1waveform'?" in err
    assert mod.main(args[:4] + ["--params", "cutoff", "--continuous", "cutoff"]) == 2
    assert "not discrete: cutoff" in capsys.readouterr().err


def test_a_finished_runs_test_predictions_answer_for_its_test_rows(study, dataset, tmp_path, capsys):
    from synth_probe.predictability import load_saved_run, saved_ensemble
    from synth_probe.saved_run import saved_answers
    from synth_probe.training import split_indices

    out, results, _ = study
    _, saved, _ = load_saved_run(out)
    _, test = split_indices(N, CONFIG["test_fraction"], 0)
    columns = list(results["columns"])
    rows = test[[3, 0, 7]]  # any test rows, in any order
    gbm = saved_answers(out, dataset.path, N, rows, "gbm")
    np.testing.assert_array_equal(gbm.predict(np.zeros((3, 5))).to_numpy(), saved["pred:gbm"][[3, 0, 7]])
    assert gbm.targets_.named and list(gbm.targets_.columns) == columns
    ens = saved_answers(out, dataset.path, N, rows)
    whole, _ = saved_ensemble(results, saved, dataset.params[columns].iloc[test].reset_index(drop=True))
    pd.testing.assert_frame_equal(ens.predict(np.zeros((3, 5))), whole.iloc[[3, 0, 7]].reset_index(drop=True))
    assert ens.label == "ensemble of gbm, cnn"
    with pytest.raises(ParameterValueError, match="predictions of 3 rows, asked for 2"):
        ens.predict(np.zeros((2, 5)))
    train_row = int(np.setdiff1d(np.arange(N), test)[0])
    with pytest.raises(ParameterValueError, match=f"e.g. {train_row}.*not test rows"):
        saved_answers(out, dataset.path, N, np.array([train_row]))
    with pytest.raises(ParameterValueError, match="saved no predictions of 'knn'; it has cnn, gbm, mean, ensemble"):
        saved_answers(out, dataset.path, N, rows, "knn")
    with pytest.raises(ParameterValueError, match="was on"):
        saved_answers(out, tmp_path / "other", N, rows)
    with pytest.raises(ParameterValueError, match=f"split {N} rows"):
        saved_answers(out, dataset.path, N + 1, rows)

    # `synth-probe evaluate --samples K --against-run`: the run's ensemble beside a saved model, K renders each
    knn = tmp_path / "knn"
    assert main(["train", "knn", "--data", str(dataset.path), "--params", PARAMS, "--features", "handcrafted",
                 "--test-fraction", str(CONFIG["test_fraction"]), "--out", str(knn), "--jobs", "1"]) == 0
    capsys.readouterr()
    doc = tmp_path / "e.json"
    assert main(["evaluate", str(knn), "--data", str(dataset.path), "--split", "test", "--samples", "3",
                 "--audio", "4", "--against-run", str(out), "--json", str(doc)]) == 0
    models = json.loads(doc.read_text())["best_of_k"]["models"]
    assert list(models) == ["knn", f"ensemble of gbm, cnn ({out.name})"]
    for m in models.values():
        assert m["method"] == "prediction + 2-render hill climb" and m["renders_per_sound"] == 3.0
        assert len(m["per_sound"]) == 4 and m["log_mel"]["median"] <= m["start_log_mel_median"] + 1e-9
    assert main(["evaluate", str(knn), "--data", str(dataset.path), "--samples", "2", "--against-run", str(out)]) == 2
    assert "not test rows" in capsys.readouterr().err  # --split all: the run's training rows are among them


def test_data_scaling_fits_nested_training_rows_and_matches_the_suite_at_full_size(dataset, tmp_path, capsys):
    """synth_probe.research.data_scaling: the suite's fit at every size, the full size equal to the study's own fit,
    finished fits kept on a rerun, the extrapolation's arithmetic, and bad input refused with what to do."""
    from synth_probe.research import data_scaling as mod

    params = "cutoff,ampattack"
    config = PredictabilityConfig(models=("gbm",), params=params, test_fraction=0.25, jobs=1, audio=0)
    suite = run_predictability(dataset, config, out=tmp_path / "suite", cache_dir=tmp_path / "cache",
                               log=lambda s: None)
    out = tmp_path / "scaling"
    args = ["--data", str(dataset.path), "--models", "gbm", "--params", params, "--test-fraction", "0.25",
            "--jobs", "1", "--sizes", "12,24,45", "--target", "ampattack=0.999", "--target", "mean_mpr=0",
            "--target", "cutoff:mpr=101", "--cache", str(tmp_path / "cache"), "--out", str(out)]
    assert mod.main(args) == 0
    text = capsys.readouterr().out
    res = json.loads((out / "data_scaling.json").read_text())
    fits = res["models"]["gbm"]["fits"]
    assert sorted(fits, key=int) == ["12", "24", "45"]
    assert [fits[k]["n_train"] for k in ("12", "24", "45")] == [12, 24, 45]
    assert fits["45"]["mean_mpr"] == pytest.approx(suite["models"]["gbm"]["mean_mpr"])  # the suite's own fit
    for p in ("cutoff", "ampattack"):
        assert fits["45"]["parameters"][p]["skill"] == pytest.approx(
            next(r["skill"] for r in suite["models"]["gbm"]["parameters"] if r["parameter"] == p))
    trends = res["models"]["gbm"]["trends"]
    assert trends["mean_mpr"]["rows_to_reach"] == 0.0 and "mean_mpr: " in text and "0 reached" in text
    assert "ampattack" in trends and "target" not in trends["cutoff"]
    assert trends["cutoff:mpr"]["values"][-1] == pytest.approx(fits["45"]["parameters"]["cutoff"]["mpr"])
    assert trends["cutoff:mpr"]["target"] == 101 and "101 " in text  # an MPR above 100: never reached, or extrapolated
    # a rerun keeps every finished fit: nothing is fitted again
    assert mod.main(args) == 0
    assert "fitting" not in capsys.readouterr().err
    # the arithmetic: +0.1 per doubling reaches 0.8 at 8,000 rows; a falling line never does
    line = mod.trend([1000, 2000, 4000], [0.5, 0.6, 0.7])
    assert line["per_doubling"] == pytest.approx(0.1) and line["last_doubling"] == pytest.approx(0.1)
    assert mod.rows_to_reach(line, 0.8, 0.7) == pytest.approx(8000)
    assert mod.rows_to_reach(mod.trend([10, 20], [0.5, 0.4]), 0.8, 0.4) is None
    assert mod.trend([10, 20], [0.5, None]) is None
    # bad input: a size beyond the split, an unknown target, a target without a value
    assert mod.main(args[:8] + ["--sizes", "12,46"]) == 2
    assert "the dataset's split has 45" in capsys.readouterr().err
    assert mod.main(args[:8] + ["--target", "cutof=0.8"]) == 2
    assert "Did you mean 'cutoff'?" in capsys.readouterr().err
    assert mod.main(args[:8] + ["--target", "cutoff"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err
    # another run into the same folder is refused, and the earlier fits stay as they were
    before = (out / "data_scaling.json").read_bytes()
    assert mod.main([a if a != params else params + ",osc1waveform" for a in args]) == 2
    assert "holds the fits of another dataset or other settings" in capsys.readouterr().err
    assert (out / "data_scaling.json").read_bytes() == before
