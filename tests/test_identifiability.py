"""Identifiability in context, on real renders of the emulation: masked, confounded and distinct parameters."""
from __future__ import annotations

import json

import numpy as np
import pytest

from synth_probe.cli import main
from synth_probe.errors import ParameterValueError
from synth_probe.identifiability import (
    IdentifiabilityConfig,
    IdentifiabilityResult,
    moved_value,
    probe_base,
    run_identifiability,
)
from synth_probe.report.in_context import parameter_estimates, summary_rows
from synth_probe.report.pages import write_identifiability_report
from synth_probe.synths.base import RenderSettings

SETTINGS = RenderSettings(note=60, velocity=100, note_length=0.3, render_length=0.5, sample_rate=16000)


def _patch(synth, **values):
    v = np.array([s.default for s in synth.specs], dtype=np.float64)
    for name, x in values.items():
        j = synth.param_names.index(name)
        v[j] = synth.specs[j].quantize(x)
    return v


def test_moved_value_goes_half_the_range(noisemaker):
    spec = {s.name: s for s in noisemaker.specs}
    assert moved_value(spec["cutoff"], 0.2) == pytest.approx(0.7)
    assert moved_value(spec["cutoff"], 0.8) == pytest.approx(0.3)
    ft = spec["filtertype"]  # 12 choices: the one six steps round
    assert ft.choice_index(moved_value(ft, ft.choice_values[3])) == 9
    assert ft.choice_index(moved_value(ft, ft.choice_values[9])) == 3
    # the fine step moves toward the middle of the range, or to the neighbouring choice
    assert moved_value(spec["cutoff"], 0.2, 0.25) == pytest.approx(0.45)
    assert moved_value(spec["cutoff"], 0.2, 0.1) == pytest.approx(0.3)
    assert moved_value(spec["cutoff"], 0.95, 0.1) == pytest.approx(0.85)
    assert ft.choice_index(moved_value(ft, ft.choice_values[3], 0.1)) == 4
    assert ft.choice_index(moved_value(ft, ft.choice_values[11], 0.1)) == 10


def test_keyfollow_on_one_note_is_the_cutoff_in_disguise(noisemaker):
    # key-follow adds k^2 (note - 72) / 512 to the cutoff sum: on one note, a small cutoff change undoes it
    base = _patch(noisemaker, filtertype=0.0, cutoff=0.5, resonance=0.5, keyfollow=0.5)
    rec = probe_base(noisemaker, base, "keyfollow", SETTINGS, seed=1, compensate=["cutoff"], budget=60,
                     tolerance_db=0.2)
    # a saw through the filter: only the filter's injected noise (about -90 dB) differs between seeds
    assert rec["floor"] < 0.01
    assert rec["effect"] > 0.25 and rec["verdict"] == "confounded"
    assert rec["twin"] <= 0.2
    # key-follow 0.5 -> 0 removes a downward offset: the twin lowers the cutoff, by less than 0.02
    assert list(rec["compensators"]) == ["cutoff"] and -0.02 < rec["compensators"]["cutoff"] < 0.0
    # the resonance cannot stand in for it
    rec = probe_base(noisemaker, base, "keyfollow", SETTINGS, seed=1, compensate=["resonance"], budget=60,
                     tolerance_db=0.2)
    assert rec["verdict"] == "distinct" and rec["twin"] > 0.2
    # CMA-ES finds the same twin
    rec = probe_base(noisemaker, base, "keyfollow", SETTINGS, seed=1, compensate=["cutoff"], budget=60,
                     tolerance_db=0.2, search="cmaes")
    assert rec["verdict"] == "confounded" and list(rec["compensators"]) == ["cutoff"]
    assert -0.02 < rec["compensators"]["cutoff"] < 0.0
    with pytest.raises(ParameterValueError, match="search"):
        IdentifiabilityConfig(search="grid")


def test_masked_and_distinct(noisemaker):
    # the pulse width of a saw oscillator does nothing
    saw = _patch(noisemaker, osc1waveform=0.0, osc1pw=0.3)
    rec = probe_base(noisemaker, saw, "osc1pw", SETTINGS, seed=1, compensate=["cutoff"], budget=30, tolerance_db=0.2)
    assert rec["verdict"] == "masked" and rec["effect"] == 0.0 and rec["twin"] is None and rec["renders"] == 3
    # a discrete parameter's small steps are one neighbour: probed once
    rec = probe_base(noisemaker, saw, "osc2waveform", SETTINGS, seed=1, compensate=[], budget=0, tolerance_db=0.2,
                     steps=(0.5, 0.25, 0.1))
    assert rec["discrete"] and rec["steps"][1]["moved"] == rec["steps"][2]["moved"] != rec["steps"][0]["moved"]
    assert rec["renders"] == 2 + 2
    # the amp attack cannot be imitated by the oscillator level
    rec = probe_base(noisemaker, _patch(noisemaker), "ampattack", SETTINGS, seed=1, compensate=["osc1volume"],
                     budget=30, tolerance_db=0.2)
    assert rec["verdict"] == "distinct" and rec["effect"] > 1.0 and rec["twin"] > 0.2


def test_study_files_report_and_in_context_estimates(noisemaker, tmp_path):
    cfg = IdentifiabilityConfig(bases=3, budget=10, params=("ampattack", "osc2phase"), render_length=0.5,
                                note_length=0.3, sample_rate=16000)
    res = run_identifiability(noisemaker, cfg)
    assert res.complete and set(res.records) == {"ampattack", "osc2phase"}
    rows = {r["parameter"]: r for r in res.summary()}
    for r in rows.values():
        assert r["bases"] == 3 and r["masked"] + r["confounded"] + r["distinct"] == pytest.approx(1.0)
        assert set(r["distinct_by_step"]) == {"0.5", "0.25", "0.1"}
        assert r["distinct_by_step"]["0.5"] == r["distinct"]
    assert rows["ampattack"]["distinct"] == 1.0
    # the rough resolvable R²: each base's value known to within the largest move that is not distinct
    widths = [max([m["step"] for m in rec["steps"] if m["verdict"] != "distinct"], default=0.0)
              for rec in res.records["ampattack"]]
    assert rows["ampattack"]["resolvable_r2"] == pytest.approx(1 - 4 * np.mean(np.square(widths)))
    # a twin found by half way is still there at the end: the half-search estimate is never below the full one
    assert rows["ampattack"]["resolvable_r2_half_budget"] >= rows["ampattack"]["resolvable_r2"] - 1e-12
    for rec in res.records["ampattack"]:
        assert [m["step"] for m in rec["steps"]] == [0.5, 0.25, 0.1]
        for m in rec["steps"]:
            limit = rec["floor"] + cfg.tolerance_db
            assert (m["verdict"] == "masked") == (m["effect"] <= limit)
            assert m["verdict"] != "confounded" or m["twin"] <= limit
            assert m["verdict"] == "masked" or m["twin_half_budget"] >= m["twin"] - 1e-9
    assert rows["ampattack"]["effect_db"] > rows["osc2phase"]["effect_db"]
    paths = write_identifiability_report(res.to_dict(), tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["config"]["sampler"] == "timbral" and len(data["records"]["ampattack"]) == 3
    assert paths["csv"].read_text().splitlines()[0].startswith(
        "parameter,bases,masked,confounded,distinct,distinct_at_0.25,distinct_at_0.1,resolvable_r2,"
        "resolvable_r2_at_0.5db,resolvable_r2_at_1db,resolvable_r2_at_2db,resolvable_r2_half_budget,resolvable_mpr,")
    page = paths["html"].read_text()
    assert 'id="identifiability-t"' in page and "ampattack" in page

    # the summary names what a loser's distinct share is, and counts the parameters distinct in context
    results = {"sampler": "timbral", "models": {
        m: {"parameters": [{"parameter": p, "kind": "continuous", "mae": mae, "r2": 0.0} for p, mae in maes.items()],
            "mean_mpr": 50.0}
        for m, maes in {"mean": {"ampattack": 0.25, "osc2phase": 0.25},
                        "cnn": {"ampattack": 0.05, "osc2phase": 0.26}}.items()}}
    sens = {"params": [{"name": "ampattack", "classification": "strong"},
                       {"name": "osc2phase", "classification": "strong"}]}
    summary = {r["name"]: r for r in summary_rows(results, sens, data)}
    plain = summary["strong parameters where the CNN beats MeanBaseline"]
    assert plain["value"].startswith("1/2 (not: osc2phase [distinct")
    for r in rows.values():  # continuous, drawn from the whole range: ranked over the metric's 16 bins
        assert 50.0 <= r["resolvable_mpr"] <= 100.0
    if all(m["verdict"] == "distinct" for rec in res.records["ampattack"] for m in rec["steps"]):
        assert rows["ampattack"]["resolvable_mpr"] == 100.0
    resolvable = np.mean([rows["ampattack"]["resolvable_mpr"], rows["osc2phase"]["resolvable_mpr"]])
    assert summary["best model mean MPR"]["context"] == f"≈ {resolvable:.1f}"
    # each parameter's estimate on the scale of its measured skill, with the looser tolerances beside it
    est = parameter_estimates(results, data)
    at = rows["ampattack"]["resolvable_r2_at"]
    assert set(at) == {"0.5", "1", "2"}
    assert est["ampattack"]["skill"] == pytest.approx(rows["ampattack"]["resolvable_r2"])
    assert est["ampattack"]["r2_at"] == at and list(est["ampattack"]["r2_at"]) == ["0.5", "1", "2"]
    assert est["osc2phase"]["mpr"] == pytest.approx(rows["osc2phase"]["resolvable_mpr"])
    # a run from before the resolvable MPR: the rough rule
    old = {**data, "summary": [{k: v for k, v in r.items() if k != "resolvable_mpr"} for r in data["summary"]]}
    assert parameter_estimates(results, old)["osc2phase"]["mpr"] == pytest.approx(
        50 + 50 * rows["osc2phase"]["distinct"])
    if rows["osc2phase"]["distinct"] < 0.5:
        assert plain["context"].startswith("1/1 of the strong parameters distinct in ≥ 50 %")
    # a discrete parameter's estimate is its distinct share, and accuracy ≈ distinct + (1 − distinct) × chance
    disc = {**results, "models": {"cnn": {"parameters": [{"parameter": "ampattack", "kind": "discrete",
                                                          "chance_accuracy": 0.25, "accuracy": 0.5}]}}}
    e = parameter_estimates(disc, data)["ampattack"]
    d = rows["ampattack"]["distinct"]
    assert e["skill"] == d and e["accuracy"] == pytest.approx(d + (1 - d) * 0.25) and "r2_at" not in e
    # another sampler's identifiability is not used
    other = {**data, "config": {**data["config"], "sampler": "inversynth"}}
    assert parameter_estimates(results, other) == {}
    assert summary_rows(results, sens, other)[1]["context"] == "—"


def test_resolvable_r2_at_looser_tolerances_rejudges_the_stored_distances():
    # one base, floor 0.1 dB, run tolerance 0.2 dB (limit 0.3): distinct at 0.5 and 0.25, masked at 0.1
    steps = [{"step": 0.5, "effect": 5.0, "twin": 0.55, "verdict": "distinct"},
             {"step": 0.25, "effect": 2.0, "twin": 1.2, "verdict": "distinct"},
             {"step": 0.1, "effect": 0.25, "twin": None, "verdict": "masked"}]
    rec = {"value": 0.3, "floor": 0.1, "effect": 5.0, "twin": 0.55, "verdict": "distinct", "steps": steps,
           "discrete": False}
    masked = {**rec, "effect": 0.2, "twin": None, "verdict": "masked",
              "steps": [{**m, "effect": 0.2, "twin": None, "verdict": "masked"} for m in steps]}
    res = IdentifiabilityResult(synth={}, config={"tolerance_db": 0.2}, records={"p": [rec, masked]})
    (row,) = res.summary()
    assert row["resolvable_r2"] == pytest.approx(1 - 4 * (0.1 ** 2 + 0.5 ** 2) / 2)
    # 0.5 dB (limit 0.6): the half-range twin now counts; 1 dB: as well; 2 dB: everything
    assert row["resolvable_r2_at"] == pytest.approx({"0.5": 1 - 4 * (0.5 ** 2 + 0.5 ** 2) / 2,
                                                     "1": 1 - 4 * (0.5 ** 2 + 0.5 ** 2) / 2,
                                                     "2": 1 - 4 * (0.5 ** 2 + 0.5 ** 2) / 2})
    rec["steps"][0]["twin"] = 0.9  # the half-range twin misses 0.5 dB: only the 0.1 move is not distinct there
    (row,) = res.summary()
    assert row["resolvable_r2_at"]["0.5"] == pytest.approx(1 - 4 * (0.1 ** 2 + 0.5 ** 2) / 2)
    assert row["resolvable_r2_at"]["1"] == pytest.approx(1 - 4 * (0.5 ** 2 + 0.5 ** 2) / 2)
    # looser tolerances only: a run at 1 dB gives 2 dB alone; a discrete parameter has none
    assert set(IdentifiabilityResult({}, {"tolerance_db": 1.0}, {"p": [rec]}).summary()[0]["resolvable_r2_at"]) == {"2"}
    disc = IdentifiabilityResult({}, {"tolerance_db": 0.2}, {"p": [{**rec, "discrete": True}]}).summary()[0]
    assert disc["resolvable_r2"] is None and disc["resolvable_r2_at"] == {}
    assert row["resolvable_r2_half_budget"] is None  # records without the half-budget distances


def test_resolvable_mpr_scores_each_patch_with_the_patch_it_sounds_like():
    def rec(value, *moves, discrete=False):
        steps = [{"step": st, "moved": mv, "effect": 5.0, "twin": 1.0, "verdict": v} for st, mv, v in moves]
        return {"value": value, "floor": 0.1, "effect": 5.0, "twin": 1.0, "verdict": steps[0]["verdict"],
                "steps": steps, "discrete": discrete}

    distinct = rec(0.2, (0.5, 0.7, "distinct"), (0.25, 0.45, "distinct"), (0.1, 0.3, "distinct"))
    masked = rec(0.2, (0.5, 0.7, "masked"), (0.25, 0.45, "masked"), (0.1, 0.3, "masked"))
    near = rec(0.2, (0.5, 0.7, "distinct"), (0.25, 0.45, "distinct"), (0.1, 0.3, "confounded"))
    far = rec(0.2, (0.5, 0.7, "distinct"), (0.25, 0.45, "confounded"), (0.1, 0.3, "confounded"))

    def mpr(recs, classes=None, name="p"):
        cfg = {"tolerance_db": 0.2, **({"mpr_classes": {name: classes}} if classes else {})}
        return IdentifiabilityResult({}, cfg, {name: recs}).summary()[0]["resolvable_mpr"]

    assert mpr([distinct]) == 100.0 and mpr([masked]) == 50.0  # told apart everywhere / not heard: chance
    assert 50.0 < mpr([far]) < mpr([near]) < 100.0  # a twin further away costs more rank
    assert mpr([distinct, masked]) == 75.0
    # three grid levels, a twin one level away: predicting between them ties the two (rank 0.5 of 2): 75
    assert mpr([rec(0.0, (0.5, 0.5, "confounded"))], [0.0, 0.5, 1.0]) == pytest.approx(75.0)
    # discrete, K choices: the two alike ranked first, 100 - 50 / (K - 1); unknown K (an old run): None
    assert mpr([rec(0.0, (0.5, 0.6, "confounded"), discrete=True)], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]) == 90.0
    assert mpr([rec(0.0, (0.5, 0.6, "confounded"), discrete=True)]) is None


def test_the_classes_are_the_ones_the_predictability_study_ranks(noisemaker):
    # inversynth draws from grids (the levels MPR ranks there); timbral draws continuous values from the whole
    # range (16 bins: left out) and discrete ones from every choice
    import pandas as pd

    from synth_probe.identifiability import mpr_classes
    from synth_probe.metrics import grid_levels
    from synth_probe.sampling import make_plan

    for sampler in ("inversynth", "timbral"):
        plan = make_plan(noisemaker, sampler)
        classes = mpr_classes(noisemaker, plan, plan.varied)
        V, _ = plan.rows(0, 0, 4000)
        drawn = grid_levels(pd.DataFrame(V, columns=plan.names)[plan.varied], max_levels=64)
        for p in plan.varied:
            if noisemaker.spec(p).is_discrete or sampler == "inversynth":
                assert classes[p] == pytest.approx(list(drawn[p])), p
            else:
                assert p not in classes


def test_resolvable_r2_half_budget_uses_the_twin_each_search_had_half_way():
    # the half-range twin was found late (confounded in the end, 0.9 dB half way); the 0.25 twin early
    steps = [{"step": 0.5, "effect": 5.0, "twin": 0.25, "twin_half_budget": 0.9, "verdict": "confounded"},
             {"step": 0.25, "effect": 2.0, "twin": 0.28, "twin_half_budget": 0.29, "verdict": "confounded"},
             {"step": 0.1, "effect": 0.25, "twin": None, "verdict": "masked"}]
    rec = {"value": 0.3, "floor": 0.1, "effect": 5.0, "twin": 0.25, "verdict": "confounded", "steps": steps,
           "discrete": False}
    (row,) = IdentifiabilityResult({}, {"tolerance_db": 0.2}, {"p": [rec]}).summary()
    assert row["resolvable_r2"] == pytest.approx(1 - 4 * 0.5 ** 2)
    assert row["resolvable_r2_half_budget"] == pytest.approx(1 - 4 * 0.25 ** 2)


def test_cli_names_an_unknown_parameter(capsys, tmp_path):
    rc = main(["identifiability", "noisemaker", "--params", "cutof", "--bases", "1", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err
    assert "cutof" in err and "cutoff" in err


def test_a_base_that_does_not_render_is_recorded_and_left_out(noisemaker):
    import sys
    from pathlib import Path

    from synth_probe.identifiability import IdentifiabilityResult, _probe_task
    from synth_probe.render import LocalContext

    sys.path.insert(0, str(Path(__file__).parent))
    from faulty_synth import FlakyNoiseMaker

    flaky = FlakyNoiseMaker()  # a patch with `unused` >= 0.99 renders NaN, as a broken plugin does
    try:
        good = _patch(flaky)
        bad = _patch(flaky, unused=1.0)
        out = _probe_task(LocalContext(flaky), [("ampattack", 0, bad, 1)], SETTINGS, ["osc1volume"], 5, 0.2, (0.5,))
        assert "non-finite" in out[0][2]["error"]
        flaky = FlakyNoiseMaker()  # the broken instance stays broken: a fresh one for the good base
        out += _probe_task(LocalContext(flaky), [("ampattack", 1, good, 1)], SETTINGS, ["osc1volume"], 5, 0.2,
                           (0.5,))
    finally:
        flaky.close()
    res = IdentifiabilityResult({"synth": "noisemaker"}, {}, {"ampattack": [rec for _, _, rec in out]})
    (row,) = res.summary()
    assert row["bases"] == 1 and row["distinct"] == 1.0


def test_cli_refuses_bad_steps(capsys, tmp_path):
    assert main(["identifiability", "noisemaker", "--steps", "0.1,0.5", "--out", str(tmp_path)]) == 2
    assert "largest first" in capsys.readouterr().err
