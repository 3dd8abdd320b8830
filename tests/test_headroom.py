"""Headroom between the best measured skill and the in-context estimates (issue #19), on hand-made study data."""
from __future__ import annotations

import json
import re

import pytest

from synth_probe.report.in_context import (
    HEADROOM_MARGIN,
    choose_identifiability,
    headroom,
    headroom_rows,
    headroom_sentence,
    headroom_summary,
    limited_by,
    parameter_estimates,
    run_probe,
)
from synth_probe.report.predictability_section import predictability_html, refresh_part

PROBE = "notes=36,60,84"


def results(probe: str | None = "default", sampler: str = "timbral") -> dict:
    """A predictability.json of two models and four parameters (one discrete, one without an estimate)."""
    params = [{"parameter": "cutoff", "kind": "continuous", "r2": 0.80, "mpr": 90.0},
              {"parameter": "ampattack", "kind": "continuous", "r2": 0.30, "mpr": 70.0},
              {"parameter": "osc1waveform", "kind": "discrete", "accuracy": 0.50, "chance_accuracy": 0.25,
               "mpr": 75.0},
              {"parameter": "midilearn", "kind": "continuous", "r2": 0.01, "mpr": 50.0}]
    mean = [{**p, "r2": 0.0, "accuracy": 0.25} if p["kind"] == "discrete" else {**p, "r2": 0.0} for p in params]
    out = {"format": "synth_probe.predictability", "sampler": sampler, "synth": "noisemaker",
           "columns": [p["parameter"] for p in params], "config": {"models": ["mean", "cnn"]},
           "models": {"mean": {"parameters": mean, "mean_mpr": 50.0}, "cnn": {"parameters": params, "mean_mpr": 71.0}},
           "best": {"cutoff": {"model": "cnn", "skill": 0.80, "mpr": 90.0},
                    "ampattack": {"model": "cnn", "skill": 0.30, "mpr": 70.0},
                    "osc1waveform": {"model": "cnn", "skill": 1 / 3, "mpr": 75.0},
                    "midilearn": {"model": "cnn", "skill": 0.01, "mpr": 50.0}}}
    if probe is not None:
        out["probe"] = probe
    return out


def summary(cutoff: float = 0.85, ampattack: float = 0.90, distinct: float = 0.6) -> list[dict]:
    """identifiability.json's summary rows: cutoff and ampattack continuous, osc1waveform discrete."""
    return [{"parameter": "cutoff", "distinct": 0.9, "resolvable_r2": cutoff,
             "resolvable_r2_at": {"0.5": cutoff - 0.1, "1": cutoff - 0.2, "2": cutoff - 0.3}},
            {"parameter": "ampattack", "distinct": 1.0, "resolvable_r2": ampattack,
             "resolvable_r2_at": {"0.5": 0.8, "1": 0.7, "2": 0.6}},
            {"parameter": "osc1waveform", "distinct": distinct, "resolvable_r2": None, "resolvable_r2_at": {}}]


def identifiability(probe: str = "default", **kw) -> dict:
    cfg = {"sampler": "timbral", "tolerance_db": 0.2}
    if probe != "default":
        cfg["probe"] = probe
    return {"format": "synth_probe.identifiability", "config": cfg, "summary": summary(**kw)}


def probes_file(runs: dict[str, list[dict]], with_runs: bool = True) -> dict:
    """identifiability_probes.json of the given probe -> summary rows."""
    params = ["cutoff", "ampattack", "osc1waveform"]
    rows = []
    for p in params:
        cells = {t: {k: next(r for r in s if r["parameter"] == p)[k] for k in ("distinct", "resolvable_r2")}
                 for t, s in runs.items()}
        rows.append({"parameter": p, "discrete": p == "osc1waveform", "by_probe": cells, "best_probe": next(iter(runs))})
    out = {"format": "synth_probe.identifiability_probes", "config": {"sampler": "timbral", "tolerance_db": 0.2,
                                                                      "params": params},
           "probes": list(runs), "rows": rows}
    if with_runs:
        out["runs"] = {t: {"config": {"sampler": "timbral", "tolerance_db": 0.2,
                                      **({} if t == "default" else {"probe": t})}, "summary": s}
                       for t, s in runs.items()}
    return out


# ----------------------------------------------------------------------------- the pure functions
def test_the_verdict_at_the_margin():
    assert HEADROOM_MARGIN == 0.05
    assert headroom(0.80, 0.85) == pytest.approx(0.05)
    assert limited_by(headroom(0.80, 0.85)) == "models"  # the margin itself (0.0499999… in floats) is models
    assert limited_by(headroom(0.80, 0.849)) == "render"
    assert limited_by(headroom(0.90, 0.70)) == "render"  # the models beat the estimate: an estimate, no bound
    assert limited_by(headroom(0.10, 0.90)) == "models"
    assert limited_by(0.02, margin=0.01) == "models"
    for best, est in ((None, 0.5), (0.5, None), (float("nan"), 0.5), (0.5, float("inf"))):
        assert headroom(best, est) is None
    assert limited_by(None) is None


def test_missing_data_gives_no_verdict():
    res = results()
    rows = {r["parameter"]: r for r in headroom_rows(res, parameter_estimates(res, identifiability()))}
    assert set(rows) == {"cutoff", "ampattack", "osc1waveform", "midilearn"}
    assert rows["midilearn"] == {"parameter": "midilearn", "discrete": False, "best_skill": 0.01, "estimate": None,
                                 "loose": None, "headroom": None, "limited_by": None}
    assert rows["cutoff"]["estimate"] == 0.85 and rows["cutoff"]["loose"] == pytest.approx(0.75)
    assert rows["cutoff"]["limited_by"] == "models"
    assert rows["ampattack"]["headroom"] == pytest.approx(0.6) and rows["ampattack"]["limited_by"] == "models"
    # a discrete parameter: its distinct share is the estimate, nothing at the looser tolerance
    d = rows["osc1waveform"]
    assert d["discrete"] and d["estimate"] == 0.6 and d["loose"] is None
    assert d["headroom"] == pytest.approx(0.6 - 1 / 3)
    # no identifiability run at all: every row without a verdict
    bare = headroom_rows(res, {})
    assert all(r["limited_by"] is None and r["estimate"] is None for r in bare)
    assert [r["discrete"] for r in bare] == [False, False, True, False]  # the run's kind, estimate or not
    # figures of another probe: the estimates stay, nothing is judged
    unjudged = headroom_rows(res, parameter_estimates(res, identifiability()), judge=False)
    assert [r["estimate"] for r in unjudged][:2] == [0.85, 0.90]
    assert all(r["headroom"] is None and r["limited_by"] is None for r in unjudged)


def test_summary_counts_and_the_largest_headrooms():
    rows = [{"parameter": f"p{i}", "headroom": h, "limited_by": limited_by(h)}
            for i, h in enumerate([0.01, 0.30, -0.10, 0.20, 0.05, 0.60, 0.40, None])]
    s = headroom_summary(rows)
    assert (s["total"], s["render"], s["models"], s["unjudged"]) == (8, 2, 5, 1)
    assert [p for p, _ in s["largest"]] == ["p5", "p6", "p1", "p3", "p4"]
    assert headroom_sentence(s) == ("2 of 8 parameters limited by the render, 5 by the models (1 without an "
                                    "in-context estimate); largest headroom: p5 +0.60, p6 +0.40, p1 +0.30, "
                                    "p3 +0.20, p4 +0.05.")
    assert headroom_summary([]) == {"total": 0, "render": 0, "models": 0, "unjudged": 0, "largest": []}


def test_the_probe_matching_rule():
    one_note = identifiability()
    probed = summary(cutoff=0.95, ampattack=0.92, distinct=0.8)
    both = probes_file({"default": summary(), PROBE: probed})
    assert run_probe(results()) == "default" and run_probe(results(None)) == "default"
    assert run_probe(results(PROBE)) == PROBE and run_probe(identifiability(PROBE)) == PROBE
    # a probe run with the probe in identifiability_probes.json: that probe's figures, looser tolerances too
    data, src = choose_identifiability(results(PROBE), one_note, both)
    assert src == {"file": "identifiability_probes.json", "probe": PROBE, "run_probe": PROBE, "matches": True}
    est = parameter_estimates(results(PROBE), data)
    assert est["cutoff"]["skill"] == 0.95 and est["cutoff"]["r2_at"]["0.5"] == pytest.approx(0.85)
    assert est["osc1waveform"]["skill"] == 0.8
    # a probes file without its runs: the per-probe cells (no looser tolerances)
    data, src = choose_identifiability(results(PROBE), None, probes_file({PROBE: probed}, with_runs=False))
    assert src["matches"] and parameter_estimates(results(PROBE), data)["cutoff"] == {
        "distinct": 0.9, "mpr": 95.0, "skill": 0.95, "r2_at": {}}
    # a probe run with only a one-note identifiability.json: shown, marked, not judged
    for probes in (None, probes_file({"default": summary(), "velocities=64,127": probed})):
        data, src = choose_identifiability(results(PROBE), one_note, probes)
        assert data is one_note or data == one_note
        assert src == {"file": "identifiability.json", "probe": "default", "run_probe": PROBE, "matches": False}
    # identifiability.json run with the same probe matches
    data, src = choose_identifiability(results(PROBE), identifiability(PROBE), None)
    assert src["matches"] and src["file"] == "identifiability.json"
    # a one-note run: identifiability.json of one note first, else the default run of the probes file
    data, src = choose_identifiability(results(), one_note, both)
    assert src["file"] == "identifiability.json" and src["matches"] and data == one_note
    data, src = choose_identifiability(results(), identifiability(PROBE), both)
    assert src["file"] == "identifiability_probes.json" and src["matches"]
    assert parameter_estimates(results(), data)["cutoff"]["skill"] == 0.85
    # another sampler's figures are never used
    assert choose_identifiability(results(sampler="inversynth"), one_note, both) == (
        None, {"file": None, "probe": None, "run_probe": "default", "matches": False})


# ----------------------------------------------------------------------------- the page
def _table(html: str) -> tuple[list[str], dict[str, list[str]]]:
    t = re.search(r'<table id="measured-table-t".*?</table>', html, re.S).group(0)
    head = [re.sub(r"<.*?>", "", h) for h in re.findall(r"<th [^>]*>(.*?)</th>", t)]
    rows = {}
    for tr in re.findall(r"<tr class=[^>]*>(.*?)</tr>", t, re.S):
        cells = [re.sub(r"<.*?>", "", c).strip() for c in re.findall(r"<td [^>]*>(.*?)</td>", tr, re.S)]
        rows[cells[0]] = cells
    return head, rows


def test_page_shows_the_new_columns_and_the_summary():
    html = predictability_html(results(), identifiability=identifiability())
    head, rows = _table(html)
    cols = ["Resolvable R² @0.2 dB", "@0.5 dB", "Headroom", "Limited by"]
    assert head[-4:] == cols
    got = {p: dict(zip(cols, r[-4:])) for p, r in rows.items()}
    assert got["cutoff"] == {"Resolvable R² @0.2 dB": "0.85", "@0.5 dB": "0.75", "Headroom": "+0.05",
                             "Limited by": "models"}
    assert got["ampattack"] == {"Resolvable R² @0.2 dB": "0.90", "@0.5 dB": "0.80", "Headroom": "+0.60",
                                "Limited by": "models"}
    assert got["osc1waveform"] == {"Resolvable R² @0.2 dB": "0.60", "@0.5 dB": "—", "Headroom": "+0.27",
                                   "Limited by": "models"}
    assert got["midilearn"] == dict.fromkeys(cols, "—")
    assert "is not re-judged at looser tolerances" in html and "is its in-context skill" in html
    line = re.search(r'<p id="headroom-summary">(.*?)</p>', html, re.S).group(1)
    assert ("0 of 4 parameters limited by the render, 3 by the models (1 without an in-context estimate); "
            "largest headroom: ampattack +0.60, osc1waveform +0.27, cutoff +0.05.") in line
    assert "<code>identifiability.json</code> (one note, as this run)" in line
    assert html.index('id="headroom-summary"') < html.index('id="measured-table-t"')
    # the render limits cutoff when the estimate is within the margin of the best skill
    html = predictability_html(results(), identifiability=identifiability(cutoff=0.82))
    assert _table(html)[1]["cutoff"][-1] == "render"
    assert "1 of 4 parameters limited by the render, 2 by the models" in html
    # without an identifiability run: no estimate columns and no summary
    plain = predictability_html(results())
    assert "Headroom" not in plain and 'id="headroom-summary"' not in plain


def test_probe_run_page_reads_the_probes_file_of_the_folder(tmp_path):
    (tmp_path / "predictability.json").write_text(json.dumps(results(PROBE)))
    (tmp_path / "identifiability.json").write_text(json.dumps(identifiability()))
    part = refresh_part(tmp_path)
    html = part.read_text()
    # only a one-note run beside a probe run: marked, not judged
    assert "Headroom not judged." in html and f"beside a run of the probe <code>{PROBE}</code>" in html
    assert f"<code>synth-probe identifiability noisemaker --probes {PROBE}</code>" in html
    assert {r[-1] for r in _table(html)[1].values()} == {"—"}
    assert _table(html)[1]["cutoff"][-4] == "0.85"
    probed = summary(cutoff=0.95, ampattack=0.32, distinct=0.8)
    (tmp_path / "identifiability_probes.json").write_text(json.dumps(probes_file({"default": summary(),
                                                                                    PROBE: probed})))
    html = refresh_part(tmp_path).read_text()
    rows = _table(html)[1]
    assert rows["cutoff"][-4:] == ["0.95", "0.85", "+0.15", "models"]
    assert rows["ampattack"][-2:] == ["+0.02", "render"]
    assert f"<code>identifiability_probes.json</code> (the probe <code>{PROBE}</code>, as this run)" in html
    assert "1 of 4 parameters limited by the render, 2 by the models" in html
