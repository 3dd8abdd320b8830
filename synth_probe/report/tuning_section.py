"""The tuning report: ``tune_<param>.html`` from the plain data a tuning run returns.

:func:`write_tune_report` takes the dict that :func:`synth_probe.tuning.report_data`
builds (the run's summary, one row per trial, the importances) and never an Optuna
study: the ``tune`` command runs the study, then calls it.
"""
from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from synth_probe.report import write_index
from synth_probe.report.html import Column, Section, bar_chart, esc, fmt_num, key_value_table, render_page, table
from synth_probe.util import atomic_text

__all__ = ["write_tune_report", "history_svg"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _finite(v: Any) -> bool:
    return v is not None and math.isfinite(v)


def _history_points(trials: Sequence[Mapping[str, Any]]) -> tuple[list[tuple], list[tuple]]:
    """(number, value, family) of finished trials, and of pruned ones at their best intermediate skill."""
    pts = [(t["number"], t["value"], t.get("family") or "?") for t in trials if _finite(t.get("value"))]
    pruned = [(t["number"], t["best_intermediate"], t.get("family") or "?") for t in trials
              if t["state"] == "pruned" and _finite(t.get("best_intermediate"))]
    return pts, pruned


def history_svg(trials: Sequence[Mapping[str, Any]], families: Sequence[str], ref: Mapping[str, Any] | None,
                width: int = 760, height: int = 300) -> str:
    """SVG of every trial's validation score against its number, with the best so far and reference lines.

    Parameters
    ----------
    trials : sequence of dict
        ``{"number", "state", "family", "value", "best_intermediate"}`` per trial.
    families : sequence of str
        Families in legend order.
    ref : dict or None
        ``{"default": {"val"}, "mean": {"val"}}``: validation scores drawn as dashed lines.
    """
    pts, pruned = _history_points(trials)
    if not pts and not pruned:
        return "<p>No finished trial yet.</p>"
    refs = (("untuned default", (ref or {}).get("default", {}).get("val"), "6,3"),
            ("MeanBaseline", (ref or {}).get("mean", {}).get("val"), "2,3"))
    ys = [p[1] for p in pts] + [p[1] for p in pruned] + [v for _, v, _ in refs if _finite(v)]
    lo, hi = min(ys), max(ys)
    lo = max(lo, hi - 2.0) if hi - lo > 2 else lo
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    xs = [p[0] for p in pts] + [p[0] for p in pruned]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    x0, x1 = x0 - 0.02 * (x1 - x0), x1 + 0.02 * (x1 - x0)  # the outermost points stay clear of the labels
    L, R, T, B = 56, 110, 12, 38
    pw, ph = width - L - R, height - T - B

    def X(v: float) -> float:
        return L + pw * (v - x0) / (x1 - x0)

    def Y(v: float) -> float:
        return T + ph * (1 - (min(max(v, lo), hi) - lo) / (hi - lo))

    color = {f: _PALETTE[i % len(_PALETTE)] for i, f in enumerate(families)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="optimization history">']
    for k in range(6):
        v = lo + (hi - lo) * k / 5
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" class="grid"/>'
                   f'<text x="{L - 4}" y="{Y(v) + 4:.1f}" class="tick" style="text-anchor:end">{v:.2f}</text>')
    out.append(f'<line x1="{L}" x2="{L + pw}" y1="{T + ph}" y2="{T + ph}" stroke="#555"/>')
    for n in _int_ticks(x0, x1):
        out.append(f'<line x1="{X(n):.1f}" x2="{X(n):.1f}" y1="{T + ph}" y2="{T + ph + 4}" stroke="#555"/>'
                   f'<text x="{X(n):.1f}" y="{T + ph + 15}" class="tick" text-anchor="middle">{n}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{height - 2}" class="tick" text-anchor="middle">trial number</text>')
    label_ys: list[float] = []
    for label, v, dash in refs:
        if _finite(v):
            ly = Y(v) + 4
            while any(abs(ly - o) < 12 for o in label_ys):  # two close lines: their labels one under the other
                ly += 12
            label_ys.append(ly)
            out.append(f'<line x1="{L}" x2="{L + pw}" y1="{Y(v):.1f}" y2="{Y(v):.1f}" stroke="#555" '
                       f'stroke-dasharray="{dash}"/><text x="{L + pw + 6}" y="{ly:.1f}" class="tick" style="text-anchor:start">'
                       f'{esc(label)}</text>')
    best, path = -math.inf, []
    for n, v, _ in sorted(pts):
        best = max(best, v)
        path.append(f"{X(n):.1f},{Y(best):.1f}")
    if path:
        out.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="#222" stroke-width="1.5"/>')
    for n, v, fam in pts:
        out.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3.5" fill="{color.get(fam, "#999")}">'
                   f"<title>trial {n} ({esc(fam)}): {v:.4f}</title></circle>")
    for n, v, fam in pruned:
        out.append(f'<circle cx="{X(n):.1f}" cy="{Y(v):.1f}" r="3.5" fill="none" stroke="{color.get(fam, "#999")}">'
                   f"<title>trial {n} ({esc(fam)}) pruned; best intermediate skill {v:.4f}</title></circle>")
    out.append("</svg>")
    # the legend below the chart, in the page's flow: it never lies over the reference lines' labels
    keys = [f'<span style="white-space:nowrap"><svg width="10" height="10" aria-hidden="true"><circle cx="5" '
            f'cy="5" r="4" fill="{color[f]}"/></svg> {esc(f)}</span>' for f in families]
    keys.append('<span style="white-space:nowrap">— best so far</span>')
    keys.append('<span style="white-space:nowrap">filled: finished, hollow: pruned</span>')
    return "".join(out) + f'<p class="legend" id="history-legend">{" &nbsp; ".join(keys)}</p>'


def _int_ticks(x0: float, x1: float, most: int = 10) -> list[int]:
    """At most ``most`` integer ticks from ``x0`` to ``x1`` on a 1-2-5 step."""
    span = max(1.0, x1 - x0)
    step = 1
    for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000):
        step = s
        if span / s <= most:
            break
    first = int(math.ceil(x0 / step) * step)
    return list(range(first, int(math.floor(x1)) + 1, step))


def _summary_rows(data: Mapping[str, Any], mname: str) -> list[tuple[str, Any]]:
    s = data["summary"]
    best = s["best"]
    fp = s["fingerprint"]
    verdict = ("beats" if s["beats_default"] else "does not beat") if best.get("test") is not None else "—"
    kv = [
        ("synth / parameter", f"{s['synth']} / {s['param']} ({s['kind']}; metric: {mname})"),
        ("study", f"{s['study']} — {s['n_trials']} trials ("
                  + ", ".join(f"{v} {k}" for k, v in sorted(s["states"].items())) + ")"),
        ("data", f"{data['data']}: {data['n']} rows — train {fp['n_train']}, validation {fp['n_val']} "
                 f"(the objective), test {fp['n_test']} (only for the refit best, the default and MeanBaseline)"),
        (f"best validation {mname}", fmt_num(best.get("val"), 4)),
        (f"test {mname}: tuned (refit on train+validation)", fmt_num(best.get("test"), 4)),
        (f"test {mname}: untuned default ({s['default']['family']})", fmt_num(s["default"]["test"], 4)),
        (f"test {mname}: MeanBaseline", fmt_num(s["mean"]["test"], 4)),
        ("gain over the untuned default (test / validation)",
         f"{fmt_num(s['gain_test']['over_default'], 4, signed=True)} / "
         f"{fmt_num(s['gain_val']['over_default'], 4, signed=True)} — tuning {verdict} the default"),
        ("gain over MeanBaseline (test / validation)",
         f"{fmt_num(s['gain_test']['over_mean'], 4, signed=True)} / "
         f"{fmt_num(s['gain_val']['over_mean'], 4, signed=True)}"),
    ]
    aud = data.get("audibility")
    if aud:
        kv.append(("sensitivity study", f"{aud.get('classification')} (score {fmt_num(aud.get('score'))} "
                                        f"dB, rank {aud.get('rank')})"))
    return kv


def _best_section(refit: Mapping[str, Any] | None) -> Section:
    if refit:
        rows = [("trial", refit.get("trial")), ("family", refit.get("family")),
                ("features", ", ".join(f"{k}={v}" for k, v in refit.get("features", {}).items()))]
        rows += [(k, v) for k, v in refit.get("params", {}).items()]
        rows += [("saved model", refit.get("path")), ("refit seconds", refit.get("fit_seconds"))]
        body = key_value_table(rows, id="best-config")
    else:
        body = "<p>No trial has finished yet.</p>"
    return Section("best", "Best configuration", body)


def _families_section(s: Mapping[str, Any], mname: str) -> Section:
    fam_rows = [dict(d) for d in s["families"]]
    if not fam_rows:
        return Section("families", "Best score per family", "<p>No trials yet.</p>")
    dval = s["default"]["val"]
    chart = bar_chart([d["family"] for d in fam_rows], [max(d["best"] or 0.0, 0.0) for d in fam_rows],
                      scale="linear", unit=mname, id="family-chart", title=f"best validation {mname} per family",
                      reference=dval if dval and dval > 0 else None, reference_label="untuned default")
    cols = [Column("family", "Family"), Column("best", f"Best {mname}", fmt=lambda v: fmt_num(v, 4), numeric=True),
            Column("best_trial", "Trial", numeric=True), Column("trials", "Trials", numeric=True),
            Column("complete", "Complete", numeric=True), Column("pruned", "Pruned", numeric=True),
            Column("failed", "Failed", numeric=True),
            Column("seconds", "Seconds", fmt=lambda v: fmt_num(v, 0), numeric=True)]
    return Section("families", "Best score per family", chart + table(cols, fam_rows, id="families"))


def _importance_section(importances: Sequence[Mapping[str, Any]]) -> Section:
    parts = []
    for imp in importances:
        fam = imp.get("family")
        label = "all trials (parameters every trial has)" if fam is None else f"{fam} trials"
        values = imp.get("values") or {}
        if values:
            names = list(values)[:15]
            parts.append(bar_chart(names, [values[n] for n in names], scale="linear", id=f"imp-{fam or 'all'}",
                                   title=f"importance — {label}", label_width=220))
        else:
            parts.append(f"<p><b>{esc(label)}</b>: {esc(imp.get('why', ''))}.</p>")
    return Section("importance", "Hyperparameter importances",
                   "<p>fANOVA importances (optuna.importance, seed 0) of the validation score, over "
                   "completed trials.</p>" + "".join(parts))


def _wrapping(v: Any) -> str:
    """Cell text that wraps at its commas and spaces (a long configuration never widens the table past the page)."""
    return f'<span style="white-space:normal;display:inline-block;min-width:16em">{esc("" if v is None else v)}</span>'


def _verdict_section(v: Mapping[str, Any] | None) -> Section:
    if not v or not v.get("headline"):
        return Section("verdict", "Verdict", "<p>No verdict: the run has no test score.</p>")
    body = f"<p><strong>{esc(v['headline'][:1].upper() + v['headline'][1:])}.</strong></p>"
    if v.get("reasons"):
        body += "<p>Why it may not:</p><ul>" + "".join(f"<li>{esc(r)}</li>" for r in v["reasons"]) + "</ul>"
    if v.get("next"):
        body += "<p>What to try:</p><ul>" + "".join(f"<li>{esc(r)}</li>" for r in v["next"]) + "</ul>"
    return Section("verdict", "Verdict", body)


def _trials_section(trials: Sequence[Mapping[str, Any]], mname: str) -> Section:
    cols = [Column("number", "#", numeric=True), Column("state", "State"), Column("family", "Family"),
            Column("value", f"Validation {mname}", fmt=lambda v: fmt_num(v, 4), numeric=True),
            Column("pruned_at", "Pruned at %", numeric=True),
            Column("seconds", "Seconds", fmt=lambda v: fmt_num(v, 1), numeric=True),
            Column("params", "Configuration", fmt=_wrapping), Column("worker", "Worker"),
            Column("note", "Note", fmt=_wrapping)]
    return Section("trials", "All trials", table(cols, [dict(t) for t in trials], id="trials"))


def write_tune_report(data: Mapping[str, Any], out: str | os.PathLike) -> Path:
    """Write ``<out>/tune_<param>.html`` and ``.json`` (the summary), and update ``<out>/index.html``.

    Parameters
    ----------
    data : dict
        From :func:`synth_probe.tuning.report_data`: ``summary`` (the run's summary), ``data`` and ``n``
        (dataset path and rows), ``families`` (present in the study), ``trials`` (one dict per trial),
        ``importances`` (per family, None for all trials) and ``audibility``.
    out : path
        The reports folder.

    Returns
    -------
    Path of the HTML page.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    s = data["summary"]
    mname = "R²" if s["metric"] == "r2" else "balanced accuracy"
    ref = {"default": s["default"], "mean": s["mean"]}
    sections = [
        Section("summary", "Summary", key_value_table(_summary_rows(data, mname), id="summary-table")),
        _verdict_section(s.get("verdict")),
        Section("history", "Optimization history", history_svg(data["trials"], data["families"], ref)
                + f"<p>Validation {esc(mname)} of each finished trial (filled), the best intermediate "
                  "skill of pruned trials (hollow), the best so far, and the untuned default and "
                  "MeanBaseline on the same validation rows.</p>"),
        _best_section(s["best"].get("refit")),
        _families_section(s, mname),
        _importance_section(data["importances"]),
        _trials_section(data["trials"], mname),
    ]
    page = render_page(f"Tuning: {s['param']} ({s['synth']})", sections,
                       subtitle=f"Optuna study {s['study']} — {mname} on a fixed validation split",
                       generated=time.strftime("%Y-%m-%d %H:%M"))
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(s["param"])).strip("_") or "param"
    path = out / f"tune_{stem}.html"
    atomic_text(path, page)
    atomic_text(out / f"tune_{stem}.json", json.dumps(s, indent=2, default=str))
    write_index(out)
    return path
