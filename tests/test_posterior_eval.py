"""``synth-probe evaluate --samples k`` and ``synth-probe match`` with a posterior model, on tiny real data.

A tiny NoiseMaker dataset (80 renders), a posterior trained for a few epochs and a
nearest-neighbour regressor: the figures are not the point (the models are too small
to be good), the contracts are: the same number of renders per sound for both, a
chosen answer never further than the start it came from, the metrics of the chosen
patches, and clear errors.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from synth_probe.synths.base import RenderSettings

SETTINGS = RenderSettings(note_length=0.3, render_length=0.5, sample_rate=16000)
PARAMS = "cutoff,resonance,osc1waveform"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(dataset folder, posterior model folder, knn model folder)."""
    from synth_probe.cli import main
    from synth_probe.dataset import generate

    root = tmp_path_factory.mktemp("post_eval")
    data = root / "tiny"
    assert generate("noisemaker", data, 80, vary=PARAMS.split(","), settings=SETTINGS, seed=1).ok
    post, knn = root / "post", root / "knn"
    assert main(["train", "posterior", "--data", str(data), "--params", PARAMS, "--features", "handcrafted",
                 "--set", "max_epochs=5", "--set", "num_threads=1", "--set", "hidden=32", "--set", "context_dim=16",
                 "--out", str(post), "--jobs", "1"]) == 0
    assert main(["train", "knn", "--data", str(data), "--params", PARAMS, "--features", "handcrafted",
                 "--out", str(knn), "--jobs", "1"]) == 0
    return data, post, knn


def test_evaluate_samples_against_a_regressor_at_the_same_renders(trained, tmp_path, capsys):
    from synth_probe.cli import main

    data, post, knn = trained
    out = tmp_path / "e.json"
    rc = main(["evaluate", str(post), "--data", str(data), "--split", "test", "--samples", "4", "--audio", "6",
               "--against", str(knn), "--json", str(out)])
    assert rc == 0
    assert "at 4 renders per sound, on 6 sounds" in capsys.readouterr().out
    doc = json.loads(out.read_text())["best_of_k"]
    assert doc["k"] == 4 and doc["n"] == 6 and list(doc["models"]) == ["post", "knn"]
    p, r = doc["models"]["post"], doc["models"]["knn"]
    assert p["method"] == "best of 4 posterior draws" and r["method"] == "prediction + 3-render hill climb"
    assert 1.0 <= p["renders_per_sound"] <= 4.0 and r["renders_per_sound"] == 4.0
    for m in (p, r):
        assert len(m["per_sound"]) == 6 and all(np.isfinite(m["per_sound"]))
        assert m["log_mel"]["median"] <= m["start_log_mel_median"] + 1e-9  # keeping the best never loses
        assert {row["parameter"] for row in m["parameters"]} == set(PARAMS.split(","))
        assert 0.0 <= m["mean_mpr"] <= 100.0


def test_evaluate_samples_matches_the_library(trained):
    from synth_probe import load_dataset
    from synth_probe.best_of_k import best_of_k
    from synth_probe.models import load_model
    from synth_probe.spectral import multi_resolution_log_mel_distance
    from synth_probe.synths.registry import get_synth

    data, post, _ = trained
    ds = load_dataset(data)
    synth = get_synth("noisemaker")
    audio = np.asarray(ds.audio[:3])
    base = ds.params.iloc[:3].to_dict("records")
    res = best_of_k(load_model(post), synth, SETTINGS, audio, k=3, base=base, seed=list(ds.seeds[:3]))
    for i, patch in enumerate(res.patches):
        # the true values stay where the model predicts nothing; the chosen render is the measured one
        assert patch["amprelease"] == pytest.approx(synth.patch_vector(base[i])[synth.param_names.index("amprelease")])
        rerender = synth.render_vector(synth.patch_vector(patch), SETTINGS, seed=int(ds.seeds[i]))
        d = multi_resolution_log_mel_distance(audio[i], rerender, SETTINGS.sample_rate)
        assert d == pytest.approx(res.distances[i], abs=1e-6)


def test_evaluate_samples_errors(trained, capsys):
    from synth_probe.cli import main

    data, post, knn = trained
    assert main(["evaluate", str(post), "--data", str(data), "--against", str(knn)]) == 2
    assert "--samples" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:  # argparse refuses it
        main(["evaluate", str(post), "--data", str(data), "--samples", "0"])
    assert e.value.code == 2 and "--samples: must be >= 1" in capsys.readouterr().err


def test_match_starts_from_the_closest_draw_within_the_budget(trained, tmp_path, capsys):
    import soundfile as sf

    from synth_probe import load_dataset
    from synth_probe.cli import main

    data, post, knn = trained
    wav = tmp_path / "t.wav"
    sf.write(str(wav), np.asarray(load_dataset(data).audio[70]), SETTINGS.sample_rate)
    out = tmp_path / "m"
    assert main(["match", str(wav), "--model", str(post), "--samples", "3", "--refine", "5", "--note", "60",
                 "--out", str(out)]) == 0
    assert "best of 3 draws" in capsys.readouterr().out
    doc = json.loads((out / "patch.json").read_text())
    # 3 draws + a search of 5 - (3 - 1) renders: the 6 renders a regression model gets with --refine 5
    assert doc["samples"]["draws"] == 3 and doc["refine"]["renders"] == 3
    assert doc["model_distances"]["log_mel"] == pytest.approx(min(doc["samples"]["log_mel"]), abs=1e-6)
    assert doc["distances"]["log_mel"] <= doc["model_distances"]["log_mel"] + 1e-9
    # the default: 8 draws, no search without --refine
    assert main(["match", str(wav), "--model", str(post), "--note", "60", "--out", str(tmp_path / "d")]) == 0
    doc = json.loads((tmp_path / "d" / "patch.json").read_text())
    assert doc["samples"]["draws"] == 8 and "refine" not in doc
    # a regression model draws nothing
    assert main(["match", str(wav), "--model", str(knn), "--samples", "3", "--out", str(tmp_path / "k")]) == 2
    assert "needs a posterior model" in capsys.readouterr().err
    assert not (tmp_path / "k" / "patch.json").exists()


def test_draw_spread_counts_modes_and_width():
    from synth_probe.best_of_k import draw_spread

    rng = np.random.default_rng(0)
    n, m = 50, 40
    two = 0.5 + rng.choice([-0.3, 0.3], size=(n, m)) + rng.normal(0, 0.02, (n, m))  # two modes
    one = 0.5 + rng.normal(0, 0.05, (n, m))  # one mode
    lonely = one.copy()
    lonely[:, 0] = 0.95  # one outlier draw is not a mode
    wave = np.where(rng.uniform(size=(n, m)) < 0.5, 0.0, 1.0)  # two choices, half each
    fixed = np.zeros((n, m))
    spread = draw_spread(np.stack([two, one, lonely, wave, fixed], axis=2), ["two", "one", "lonely", "wave", "fixed"],
                         [False, False, False, True, True])
    assert spread["two"]["multimodal_share"] == 1.0 and spread["two"]["mean_std"] == pytest.approx(0.3, abs=0.02)
    assert spread["one"]["multimodal_share"] == 0.0 and spread["one"]["mean_std"] == pytest.approx(0.05, abs=0.01)
    assert spread["lonely"]["multimodal_share"] == 0.0
    assert spread["wave"]["multimodal_share"] > 0.9 and spread["wave"]["kind"] == "discrete"
    assert spread["fixed"] == {"kind": "discrete", "mean_std": 0.0, "multimodal_share": 0.0, "n_sounds": n,
                               "n_draws": m}


def test_predictability_with_the_posterior_end_to_end(trained, tmp_path):
    from synth_probe.cli import main
    from synth_probe.families import SUITE

    data, _, _ = trained
    assert "posterior" not in SUITE  # trained on demand only
    out = tmp_path / "rep"
    assert main(["predictability", "noisemaker", "--data", str(data), "--models", "mean,posterior", "--params",
                 PARAMS, "--epochs", "3", "--audio", "2", "--pairs", "1", "--jobs", "1", "--out", str(out),
                 "--no-cache", "--set", "posterior.num_threads=1", "--set", "posterior.hidden=32"]) == 0
    res = json.loads((out / "predictability.json").read_text())
    post = res["models"]["posterior"]
    assert post["estimator"] == "FlowMatchingPosterior" and post["n_epochs"] <= 3
    assert set(post["spread"]) == set(PARAMS.split(","))
    for name, v in post["spread"].items():
        assert v["n_draws"] == 32 and v["n_sounds"] == post["n_test"]
        assert 0.0 <= v["multimodal_share"] <= 1.0 and 0.0 <= v["mean_std"] <= 0.5
    assert post["spread"]["osc1waveform"]["kind"] == "discrete"
    page = (out / "predictability.html").read_text()
    assert "Spread of the Flow-matching posterior" in page and 'id="spread-posterior"' in page


def test_a_saved_neighbour_posterior_draws_in_evaluate_match_and_the_suite(trained, tmp_path, capsys):
    """`train neighbours` saves a model that loads (a trusted type), and every place that takes a posterior takes it."""
    import soundfile as sf

    from synth_probe import load_dataset
    from synth_probe.cli import main
    from synth_probe.models import load_model

    data, _, knn = trained
    nb = tmp_path / "nb"
    assert main(["train", "neighbours", "--data", str(data), "--params", PARAMS, "--features", "handcrafted",
                 "--set", "n_neighbors=8", "--out", str(nb), "--jobs", "1"]) == 0
    assert type(load_model(nb)[-1]).__name__ == "NeighbourPosterior"
    out = tmp_path / "e.json"
    assert main(["evaluate", str(nb), "--data", str(data), "--split", "test", "--samples", "4", "--audio", "4",
                 "--against", str(knn), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())["best_of_k"]["models"]["nb"]
    assert doc["method"] == "best of 4 posterior draws" and 1.0 <= doc["renders_per_sound"] <= 4.0
    assert doc["log_mel"]["median"] <= doc["start_log_mel_median"] + 1e-9
    wav = tmp_path / "t.wav"
    sf.write(str(wav), np.asarray(load_dataset(data).audio[70]), SETTINGS.sample_rate)
    assert main(["match", str(wav), "--model", str(nb), "--samples", "3", "--refine", "4", "--note", "60",
                 "--out", str(tmp_path / "m")]) == 0
    m = json.loads((tmp_path / "m" / "patch.json").read_text())
    assert m["samples"]["draws"] == 3 and m["refine"]["renders"] == 2
    rep = tmp_path / "rep"
    assert main(["predictability", "noisemaker", "--data", str(data), "--models", "mean,neighbours", "--params",
                 PARAMS, "--audio", "0", "--pairs", "1", "--jobs", "1", "--out", str(rep), "--no-cache"]) == 0
    entry = json.loads((rep / "predictability.json").read_text())["models"]["neighbours"]
    assert entry["estimator"] == "NeighbourPosterior" and set(entry["spread"]) == set(PARAMS.split(","))
    assert "Spread of the Neighbour posterior" in (rep / "predictability.html").read_text()
