"""The sensitivity study on the real emulation (small, fast configuration) and on the amsynth plugin."""
from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from synth_probe.cli import main
from synth_probe.errors import ParameterValueError, UnknownParameterError
from synth_probe.report.sensitivity_section import write_sensitivity_report
from synth_probe.sensitivity import SensitivityConfig, run_sensitivity, stability, sweep_values

AMSYNTH = "/usr/lib/vst/amsynth_vst.so"

# short renders at a low rate; discrete sweeps capped so the 49-step tunes stay cheap
SMALL = SensitivityConfig(bases=6, steps=5, floor_seeds=2, max_choices=6, render_length=0.6, note_length=0.4,
                          sample_rate=16000, jobs=2, seed=0)

STRONG = ["cutoff", "resonance", "osc1volume", "osc2volume", "osc3volume", "ampattack", "filtertype"]
INAUDIBLE = ["midilearn", "panic", "unused"]


@pytest.fixture(scope="module")
def study(noisemaker):
    return run_sensitivity(noisemaker, SMALL)


def _describe(p) -> str:
    bases = ", ".join(f"{b['spread']:.2f}/{b['floor']:.2f}" for b in p.per_base)
    return f"{p.name}: score {p.score:.2f} [{p.ci_low:.2f}, {p.ci_high:.2f}] {p.classification}; spread/floor {bases}"


def test_all_88_parameters_are_ranked(study):
    assert study.complete
    assert len(study.params) == 88
    assert sorted(p.rank for p in study.params) == list(range(1, 89))
    assert study.n_renders > 1000
    ranked = study.ranked()
    order = {"strong": 0, "weak": 1, "inaudible": 2}
    keys = [(order[p.classification], -p.score) for p in ranked]
    assert keys == sorted(keys)


@pytest.mark.parametrize("name", STRONG)
def test_required_parameters_are_strong(study, name):
    p = study.by_name()[name]
    assert p.classification == "strong", _describe(p)
    assert p.score >= SMALL.strong_db and p.audible_fraction >= 0.5


@pytest.mark.parametrize("name", INAUDIBLE)
def test_inert_slots_are_inaudible(study, name):
    p = study.by_name()[name]
    assert p.classification == "inaudible", _describe(p)
    assert p.aspect is None
    assert abs(p.score) < 0.2


def test_descriptors_gates_and_monotonicity(study):
    by = study.by_name()
    assert by["cutoff"].aspect == "brightness"
    assert by["cutoff"].monotonicity is not None and by["cutoff"].monotonicity >= 0.9
    assert by["ampattack"].aspect in ("loudness", "envelope")
    # an LFO's rate does nothing while its amount is neutral (gate closed)
    lfo = by["lfo1rate"]
    assert lfo.gated and lfo.class_closed == "inaudible" and lfo.score_closed is not None
    assert lfo.score > lfo.score_closed
    # parameters without a gate have no closed score
    assert by["cutoff"].score_closed is None and not by["cutoff"].gated
    for p in study.params:
        assert p.ci_low <= p.score + 1e-9 <= p.ci_high + 2e-9
        assert len(p.per_base) == SMALL.bases


def test_report_files_hold_the_same_numbers(study, tmp_path):
    paths = write_sensitivity_report(study.to_dict(), study.table_rows(), tmp_path, media=study.media, audio_top=5)
    data = json.loads(paths["json"].read_text())
    with paths["csv"].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["params"]) == 88
    for row, p in zip(rows, data["params"]):
        assert row["param"] == p["name"] and int(row["rank"]) == p["rank"]
        assert float(row["score_db"]) == pytest.approx(p["score"], rel=1e-5, abs=1e-6)
        assert row["class"] == p["classification"]
    assert data["synth"]["dsp_sha256"] == study.synth["dsp_sha256"]
    assert data["config"]["seed"] == 0 and data["versions"]["numpy"] == np.__version__
    page = paths["html"].read_text()
    assert page.count('<tr class="cls-') == 88
    assert "<svg" in page and 'id="sensitivity-chart"' in page
    assert page.count("data:audio/wav;base64,") == 10  # both ends of the top 5
    assert "data:image/png;base64," in page
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page
    index = (tmp_path / "index.html").read_text()
    assert 'href="predictability.html"' in index and 'href="sensitivity.csv"' in index


def test_sweep_values():
    from synth_probe.synths.noisemaker.specs import NOISEMAKER_SPECS

    by = {s.name: s for s in NOISEMAKER_SPECS}
    np.testing.assert_allclose(sweep_values(by["cutoff"], 5), [0, 0.25, 0.5, 0.75, 1])
    assert len(sweep_values(by["filtertype"], 5)) == 12
    tune = sweep_values(by["osc1tune"], 5, max_choices=6)
    assert len(tune) == 6 and tune[0] == 0.0 and tune[-1] == 1.0


def test_stability_of_two_seeds_and_an_interrupted_run(noisemaker, monkeypatch):
    cfg = replace(SMALL, bases=2, params=("cutoff", "ampattack", "osc1volume", "resonance", "unused"), jobs=1)
    a = run_sensitivity(noisemaker, cfg)
    b = run_sensitivity(noisemaker, replace(cfg, seed=1))
    s = stability(a, b)
    assert s["seeds"] == [0, 1] and s["n"] >= 3 and "unused" not in s["params"]
    assert -1.0 <= s["spearman"] <= 1.0
    assert stability(a, a)["spearman"] == pytest.approx(1.0)

    calls = []

    def interrupt(msg: str) -> None:
        calls.append(msg)
        if len(calls) == 3:  # the plan line, then after the second batch
            raise KeyboardInterrupt

    import synth_probe.sensitivity as sens

    monkeypatch.setattr(sens, "PROGRESS_INTERVAL", 0.0)  # a progress line after every task
    part = run_sensitivity(noisemaker, replace(cfg, chunk=8), log=interrupt)
    assert not part.complete
    assert 0 < part.n_renders < a.n_renders
    assert all(p.name in cfg.params for p in part.params)


def test_bad_settings_are_named(noisemaker):
    with pytest.raises(UnknownParameterError, match="cutof.*Did you mean 'cutoff'"):
        run_sensitivity(noisemaker, replace(SMALL, params=("cutof",)))
    with pytest.raises(ParameterValueError, match="bases must be >= 1"):
        SensitivityConfig(bases=0)
    with pytest.raises(ParameterValueError, match="steps must be >= 3"):
        SensitivityConfig(steps=2)
    with pytest.raises(ParameterValueError, match="note_length"):
        SensitivityConfig(note_length=-1.0)
    with pytest.raises(ParameterValueError, match="sample_rate"):
        SensitivityConfig(sample_rate=100)


def test_cli_bad_parameter_name(capsys, tmp_path):
    rc = main(["sensitivity", "noisemaker", "--params", "cutoff,resonanse", "--out", str(tmp_path), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'resonanse'" in err and "resonance" in err


@pytest.mark.needs("amsynth")
def test_cli_ranks_the_amsynth_plugin(capsys, tmp_path):
    rc = main(["sensitivity", AMSYNTH, "--bases", "2", "--steps", "3", "--render-length", "0.5",
               "--sample-rate", "16000", "--out", str(tmp_path), "--quiet", "--audio-top", "2"])
    assert rc == 0
    out = capsys.readouterr().out
    assert re.search(r"time taken: \d+\.\d s", out)
    assert "41 parameters of amsynth" in out
    with (tmp_path / "sensitivity.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 41
    by = {r["param"]: r for r in rows}
    # amsynth's cutoff and amp attack move the sound; its levels all come out somewhere in the ranking
    assert by["filter_cutoff"]["class"] != "inaudible"
    assert by["amp_attack"]["class"] != "inaudible"
    data = json.loads((tmp_path / "sensitivity.json").read_text())
    assert data["synth"]["kind"] == "plugin" and data["synth"]["sha256"]
    assert Path(tmp_path / "predictability.html").stat().st_size > 10_000
