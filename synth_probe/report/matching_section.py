"""The sound-matching page (``reports/matching.html``) of ``python -m synth_probe.bench.match_eval``.

:func:`write_matching_report` takes the evaluation's summary (what ``matching.json`` holds),
its per-preset distances as plain rows and a few listenable examples, and writes the page. The page shows the measured distances, paired comparisons, search curves and
examples; it passes no verdict (the benchmark prints its targets).
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.report.charts import box_svg, curve_svg
from synth_probe.report.html import (
    Column,
    Section,
    audio_player,
    esc,
    fmt_num,
    key_value_table,
    render_page,
    table,
    wav_data_uri,
)

__all__ = ["matching_page", "write_matching_report", "PAGE"]

PAGE = "matching.html"
METRICS = ("log_mel", "spectral_convergence", "mfcc")


def _column(rows: Sequence[Mapping[str, Any]], key: str) -> np.ndarray:
    """The finite values of ``key`` over the per-preset rows."""
    vals = [r.get(key) for r in rows]
    return np.asarray([float(v) for v in vals if v is not None and math.isfinite(float(v))], dtype=np.float64)


def _summary_section(out: dict[str, Any]) -> Section:
    cfg, summ, pm = out["config"], out["summary"], out["paired"]["log_mel"]
    s_lm = summ["log_mel"]
    measured = [
        ("model + hill climber vs hill climber from default, median log-mel distance",
         f"{s_lm['model_hill']['median']:.2f} vs {s_lm['default_hill']['median']:.2f} dB"),
        ("model + hill better than hill from default, per preset",
         f"{100 * pm['model_hill_vs_default_hill']['a_better']:.0f} % (Wilcoxon p = "
         f"{pm['model_hill_vs_default_hill']['wilcoxon_p']:.2g})"),
        ("model only better than the mean patch, per preset", f"{100 * pm['model_vs_mean']['a_better']:.1f} %"),
    ]
    if "model_hill_vs_model_cmaes" in pm:
        c = pm["model_hill_vs_model_cmaes"]
        measured.append(("hill climber vs CMA-ES from the model, same budget, per preset",
                         f"hill better on {100 * c['a_better']:.0f} % of {c['n']} presets (median difference "
                         f"{c['median_difference']:+.2f} dB)"))
    st = cfg["settings"]
    setup = [
        ("targets", f"{cfg['n_presets']} amsynth factory presets (of {cfg['n_presets_requested']} drawn; skipped: "
                    + (", ".join(f"{len(v)} {k}" for k, v in out["skipped"].items()) or "none") + ")"),
        ("model", f"{cfg['model']} on {cfg['features']}, trained on {cfg['n_train']} random amsynth patches "
                  f"(sampler 'all', {cfg['predicted_params']} of {cfg['n_params']} parameters predicted)"),
        ("renders", f"note {st['note']}, {st['note_length']} s held, {st['render_length']} s at {st['sample_rate']} Hz"),
        ("refine budget", f"{cfg['budget']} renders per search (the start's own render not counted); "
                          f"CMA-ES on the first {cfg['cmaes_presets']} presets"),
        ("time", ", ".join(f"{k} {v:.0f} s" for k, v in out["timings"].items())),
        ("command", cfg["command"]),
    ]
    return Section("summary", "Summary", key_value_table(measured) + "<h3>Setup</h3>" + key_value_table(setup))


def _distance_section(out: dict[str, Any], rows: Sequence[Mapping[str, Any]], m: str, label: str,
                      conditions: Mapping[str, str]) -> Section:
    summ, paired = out["summary"], out["paired"]
    conds = list(summ[m])
    groups = [(conditions[c], _column(rows, f"{c}.{m}")) for c in conds]
    trows = [{"condition": conditions[c], **summ[m][c]} for c in conds]
    cols = [Column("condition", "condition"), Column("n", "n", numeric=True),
            Column("median", "median", fmt=lambda v: fmt_num(v, 3), numeric=True),
            Column("mean", "mean", fmt=lambda v: fmt_num(v, 3), numeric=True),
            Column("q25", "25 %", fmt=lambda v: fmt_num(v, 3), numeric=True),
            Column("q75", "75 %", fmt=lambda v: fmt_num(v, 3), numeric=True)]
    body = (box_svg(groups, unit=label)
            + "<p>Boxes: quartiles; whiskers: 5–95 %; line: median; diamond: mean. Lower is closer.</p>"
            + table(cols, trows, id=f"t-{m}"))
    pr = [{"comparison": k.replace("_vs_", " vs ").replace("_", " "), **v} for k, v in paired[m].items()]
    pcols = [Column("comparison", "A vs B"), Column("n", "n", numeric=True),
             Column("a_better", "A closer (share)", fmt=lambda v: fmt_num(v, 3), numeric=True),
             Column("median_difference", "median A−B", fmt=lambda v: fmt_num(v, 3, signed=True), numeric=True),
             Column("wilcoxon_p", "Wilcoxon p", fmt=lambda v: f"{v:.2g}" if v == v else "—", numeric=True)]
    body += "<h3>Paired comparisons</h3>" + table(pcols, pr, id=f"p-{m}")
    return Section(f"dist-{m}", label, body)


def _examples_section(examples: Sequence[Mapping[str, Any]], sr: int) -> Section:
    ex_html = []
    for e in examples:
        d = e["dist"]
        cap = (f"model {d['model']['log_mel']:.2f} dB → refined {d['model_hill']['log_mel']:.2f} dB "
               f"(hill from default {d['default_hill']['log_mel']:.2f} dB; the preset rendered again "
               f"{d['rerender']['log_mel']:.2f} dB)")
        players = "".join([
            audio_player(wav_data_uri(e["target"], sr), "target (preset)"),
            audio_player(wav_data_uri(e["model"], sr), "model"),
            audio_player(wav_data_uri(e["refined"], sr), "model + hill"),
            audio_player(wav_data_uri(e["default_hill"], sr), "hill from default"),
        ])
        ex_html.append(f"<h3>{esc(e['preset'])}</h3><p>{esc(cap)}</p><div class='players'>{players}</div>")
    return Section("examples", "Listen", "<p>Presets spread from the best to the worst match "
                   "(by model + hill distance).</p>" + "".join(ex_html))


_NOTES = (
    "<ul><li>amsynth renders are not repeatable: its oscillators run free and effect tails carry over "
    "between renders, so a second render of the target's own patch is not at distance 0 (row "
    "'target preset, rendered again'): that is the floor of any match.</li>"
    "<li>Distances are computed on the renders the search measured, so the reported refined distance "
    "is the one the search accepted; the players below play those same renders.</li>"
    "<li>Preset values were mapped from amsynth's internal units into the plugin's unit values with "
    "amsynth's own parameter ranges, verified against the plugin's value texts "
    "(synth_probe.presets.amsynth.check_value_texts / readback).</li></ul>"
)


def matching_page(out: dict[str, Any], rows: Sequence[Mapping[str, Any]], examples: Sequence[Mapping[str, Any]], *,
                  conditions: Mapping[str, str], distance_labels: Mapping[str, str]) -> str:
    """The HTML page of the evaluation.

    Parameters
    ----------
    out : dict
        What ``matching.json`` holds: ``config``, ``summary``, ``paired``, ``curves``, ``skipped``, ``timings``.
    rows : sequence of dict
        One per preset: ``"<condition>.<metric>"`` -> distance.
    examples : sequence of dict
        ``preset``, ``dist`` (condition -> metric -> distance) and int16 clips [shape=(n_samples,)]
        ``target``, ``model``, ``refined``, ``default_hill``.
    conditions : dict of str to str
        Label of each condition.
    distance_labels : dict of str to str
        Label of each distance.

    Returns
    -------
    html : str
    """
    sections = [_summary_section(out)]
    sections += [_distance_section(out, rows, m, distance_labels[m], conditions) for m in METRICS]
    if out["curves"]:
        sections.append(Section("curves", "Search progress",
                                curve_svg(out["curves"], dict(conditions)) + "<p>Median over presets of the best "
                                "log-mel distance after each render (render 0: the start).</p>"))
    sections.append(_examples_section(examples, int(out["config"]["settings"]["sample_rate"])))
    sections.append(Section("notes", "Notes", _NOTES))
    return render_page("Sound matching on amsynth's factory presets", sections,
                       subtitle="From a recording to a patch: model, local search and baselines on human-made presets",
                       generated=time.strftime("%Y-%m-%d %H:%M"))


def write_matching_report(out: dict[str, Any], rows: Sequence[Mapping[str, Any]],
                          examples: Sequence[Mapping[str, Any]], reports_dir: str | os.PathLike, *,
                          conditions: Mapping[str, str], distance_labels: Mapping[str, str]) -> Path:
    """Write ``matching.html`` (see :func:`matching_page`).

    Returns
    -------
    path : Path
    """
    d = Path(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    page = d / PAGE
    page.write_text(matching_page(out, rows, examples, conditions=conditions, distance_labels=distance_labels),
                    encoding="utf-8")
    return page
