from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_probe.errors import ParameterValueError, UnknownParameterError
from synth_probe.metrics import (
    audio_report,
    grid_levels,
    mean_mpr,
    mpr_continuous,
    mpr_levels,
    parameter_report,
    percentile_ranks,
    summarize_audio,
)
from synth_probe.synths.base import RenderSettings


def test_percentile_ranks_definition():
    scores = np.array([[0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    pr = percentile_ranks(np.array([0, 1, 2, 0]), scores)
    # rank 0 of 3 -> 100, rank 1 -> 50, rank 2 -> 0; a two-way tie at the top shares rank 0.5 -> 75
    np.testing.assert_allclose(pr, [100.0, 50.0, 0.0, 75.0])
    with pytest.raises(ParameterValueError, match="at least 2 classes"):
        percentile_ranks(np.array([0]), np.array([[1.0]]))


def test_mpr_continuous_chance_and_perfect():
    rng = np.random.default_rng(1)
    t = rng.random(20000)
    assert mpr_continuous(t, t) == 100.0
    assert abs(mpr_continuous(t, rng.random(20000)) - 50.0) < 1.0  # chance is 50
    # a prediction off by one bin width ranks the true bin second or third
    near = mpr_continuous(t, np.clip(t + 1 / 16, 0, 1))
    assert 85.0 < near < 100.0
    assert mean_mpr(np.c_[t, t], np.c_[t, t]) == 100.0


def test_mpr_on_grid_levels():
    rng = np.random.default_rng(2)
    levels = np.linspace(0.3, 1.0, 16)  # the inversynth sampler's cutoff grid
    t = levels[rng.integers(0, 16, 16000)]
    # a constant prediction: 50 on the grid's own levels, far from 50 on 16 uniform bins of [0, 1]
    const = np.full_like(t, t.mean())
    assert mpr_levels(t, const, levels) == pytest.approx(50.0, abs=0.7)
    assert mpr_continuous(t, const) > 60
    assert mpr_levels(t, t, levels) == 100.0
    # off by one grid step: the true level ranks second or third of 16
    assert 85 < mpr_levels(t, t + np.diff(levels)[0] * 0.9, levels) < 95


def test_parameter_report_ranks_grid_levels_and_sampled_choices():
    rng = np.random.default_rng(4)
    n = 4000
    # lfo1destination sampled on 4 of its 8 choices, cutoff on 16 levels, resonance uniform
    params = pd.DataFrame({
        "cutoff": np.linspace(0.3, 1.0, 16)[rng.integers(0, 16, n)],
        "lfo1destination": np.array([0.0, 2 / 7, 3 / 7, 1.0])[rng.integers(0, 4, n)],
        "resonance": rng.random(n),
    })
    levels = grid_levels(params)
    assert sorted(levels) == ["cutoff", "lfo1destination"] and len(levels["cutoff"]) == 16
    const = pd.DataFrame({c: np.full(n, params[c].mean()) for c in params.columns})
    uniform = parameter_report(params, const, "noisemaker")
    gridded = parameter_report(params, const, "noisemaker", levels=levels)
    assert uniform.loc["cutoff", "mpr"] > 60  # the bias of 16 uniform bins
    assert gridded.loc["cutoff", "mpr"] == pytest.approx(50, abs=1.5)
    assert gridded.loc["lfo1destination", "mpr"] == pytest.approx(50, abs=1.5)
    assert gridded.loc["resonance", "mpr"] == uniform.loc["resonance", "mpr"]
    # probabilities over all 8 choices are restricted to the 4 sampled ones
    proba = np.full((n, 8), 0.01)
    truth = np.rint(params["lfo1destination"].to_numpy() * 7).astype(int)
    proba[np.arange(n), truth] = 0.5
    rep = parameter_report(params, params, "noisemaker", levels=levels, proba={"lfo1destination": proba})
    assert rep.loc["lfo1destination", "mpr"] == 100.0 and rep.loc["cutoff", "mpr"] == 100.0


def test_level_probabilities_rank_a_gridded_continuous_parameter():
    rng = np.random.default_rng(5)
    lv = np.linspace(0.3, 1.0, 16)
    y = pd.DataFrame({"cutoff": lv[rng.integers(0, 16, 500)]})
    middle = pd.DataFrame({"cutoff": np.full(500, 0.65)})  # a prediction that hedges to the middle
    truth = np.argmin(np.abs(y["cutoff"].to_numpy()[:, None] - lv), axis=1)
    proba = np.full((500, 16), 0.01)
    proba[np.arange(500), truth] = 0.9
    ranked = parameter_report(y, middle, levels={"cutoff": lv}, proba={"cutoff": proba})
    assert ranked.loc["cutoff", "mpr"] == 100.0  # by the probabilities, not by the distance to 0.65
    assert parameter_report(y, middle, levels={"cutoff": lv}).loc["cutoff", "mpr"] < 80
    with pytest.raises(ParameterValueError, match="one column per level"):
        parameter_report(y, middle, levels={"cutoff": lv}, proba={"cutoff": proba[:, :8]})
    # levels of equal probability (the unvoted levels of a neighbour vote) are ranked by their distance to
    # the prediction: a vote for the wrong end, with the prediction at the true level, ranks it first of the rest
    votes = np.zeros((500, 16))
    votes[:, 0] = 1.0
    votes[truth == 0, 15] = 1.0
    at_truth = pd.DataFrame({"cutoff": lv[truth]})
    mpr = parameter_report(y, at_truth, levels={"cutoff": lv}, proba={"cutoff": votes}).loc["cutoff", "mpr"]
    expected = np.where(truth == 0, 100.0, 100.0 * (1 - 1 / 15)).mean()
    assert mpr == pytest.approx(expected)


def test_parameter_report_continuous_and_discrete():
    rng = np.random.default_rng(0)
    n = 400
    y = pd.DataFrame({"cutoff": rng.random(n), "filtertype": rng.random(n)})
    pred = y.copy()
    pred["cutoff"] = np.clip(y["cutoff"] + rng.normal(0, 0.05, n), 0, 1)
    rep = parameter_report(y, pred, "noisemaker")
    assert list(rep.index) == ["cutoff", "filtertype"]
    c, d = rep.loc["cutoff"], rep.loc["filtertype"]
    assert c.kind == "continuous" and 0.9 < c.r2 < 1.0 and 0.02 < c.mae < 0.06 and c.mpr > 85
    assert d.kind == "discrete" and d.n_choices == 12
    assert d.accuracy == 1.0 and d.balanced_accuracy == 1.0 and d.mpr == 100.0
    assert d.chance_accuracy == pytest.approx(1 / 12) and 0 < d.majority_rate < 0.2

    bad = pd.DataFrame({"cutoff": rng.random(n), "filtertype": rng.random(n)})
    rep = parameter_report(y, bad, "noisemaker")
    assert rep.loc["cutoff"].r2 < 0 and abs(rep.loc["cutoff"].mpr - 50) < 6
    assert rep.loc["filtertype"].accuracy < 0.2 and abs(rep.loc["filtertype"].mpr - 50) < 8


def test_parameter_report_uses_probabilities_for_ranking():
    y = pd.DataFrame({"filtertype": [0.0, 0.0]})
    pred = pd.DataFrame({"filtertype": [1.0, 1.0]})  # wrong class, far away
    by_distance = parameter_report(y, pred, "noisemaker").loc["filtertype", "mpr"]
    proba = np.zeros((2, 12))
    proba[:, 11], proba[:, 0] = 0.6, 0.4  # the truth is the second choice
    by_proba = parameter_report(y, pred, "noisemaker", proba={"filtertype": proba}).loc["filtertype", "mpr"]
    assert by_distance == 0.0 and by_proba == pytest.approx(100 * (1 - 1 / 11))
    with pytest.raises(ParameterValueError, match="shape"):
        parameter_report(y, pred, "noisemaker", proba={"filtertype": proba[:, :3]})


def test_parameter_report_errors():
    y = pd.DataFrame({"cutoff": [0.1, 0.2]})
    with pytest.raises(ParameterValueError, match="lack parameters"):
        parameter_report(y, pd.DataFrame({"resonance": [0.1, 0.2]}))
    with pytest.raises(UnknownParameterError, match="cutof"):
        parameter_report(pd.DataFrame({"cutof": [0.1]}), pd.DataFrame({"cutof": [0.1]}), "noisemaker")
    with pytest.raises(ParameterValueError, match="outside"):
        parameter_report(pd.DataFrame({"cutoff": [1.5]}), pd.DataFrame({"cutoff": [0.1]}), "noisemaker")


def test_audio_report_prediction_beats_baseline(noisemaker):
    settings = RenderSettings(note_length=0.3, render_length=0.5, sample_rate=16000)
    rng = np.random.default_rng(3)
    patches = pd.DataFrame({"cutoff": rng.uniform(0.05, 0.95, 6), "resonance": rng.random(6)})
    exact = patches[["cutoff"]]
    dist = audio_report(noisemaker, patches, exact, settings, baseline={"cutoff": 0.5})
    assert list(dist.columns) == ["log_mel", "spectral_convergence", "mfcc", "baseline_log_mel",
                                  "baseline_spectral_convergence", "baseline_mfcc"]
    # the exact prediction re-renders the target (same seeds): distance ~0; the mean patch does not
    assert dist.log_mel.max() < 1e-3 and dist.baseline_log_mel.mean() > 1.0
    summary = summarize_audio(dist)
    assert list(summary.columns) == ["mean", "median"]
