"""The measured-predictability part of the predictability report.

:func:`write_predictability_report` reads ``predictability.json`` (written by
:func:`synth_probe.predictability.run_predictability`), ``sensitivity.json``
when the sensitivity study has run, and ``predictability_media.npz`` (audio
clips) from a reports folder, writes the part ``20-measured`` of
``predictability.html`` and assembles the page. :func:`refresh_part` rewrites
the part alone; :func:`synth_probe.report.assemble` calls it before joining
the parts, so whichever study runs last, the page shows the sensitivity score
beside each measured parameter.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.fileio import read_json
from synth_probe.report import assemble, load_json, write_part
from synth_probe.report.html import (
    Column,
    nice_ceiling,
    audio_player,
    details,
    esc,
    fmt_num,
    key_value_table,
    table,
    wav_data_uri,
)

__all__ = ["PART_KEY", "PART_TITLE", "predictability_html", "write_predictability_report", "refresh_part",
           "scatter_svg", "line_chart_svg"]

PART_KEY = "20-measured"
PART_TITLE = "Measured predictability: how well each parameter is recovered"
RESULTS_NAME = "predictability.json"
MEDIA_NAME = "predictability_media.npz"
MODEL_LABELS = {"mean": "MeanBaseline", "knn": "kNN", "gbm": "LightGBM", "cnn": "CNN",
                "autoencoder": "Autoencoder+MLP", "transformer": "Transformer", "ensemble": "Ensemble"}
CLASS_COLOURS = {"strong": "#1f77b4", "weak": "#f0a030", "inaudible": "#b8bcc6", None: "#7a3ec8"}
LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


# ----------------------------------------------------------------------------- SVG charts
def scatter_svg(
    xs: list[float],
    ys: list[float],
    labels: list[str],
    *,
    colours: list[str] | None = None,
    x_label: str = "",
    y_label: str = "",
    x_scale: str = "sqrt",
    y_range: tuple[float, float] = (0.0, 1.0),
    width: int = 720,
    height: int = 420,
    id: str = "scatter",
) -> str:
    """A labelled scatter plot as inline SVG (points with tooltips; names beside the points).

    Parameters
    ----------
    xs, ys : list of float
        Coordinates; points with a non-finite coordinate are left out.
    labels : list of str
    colours : list of str, optional
        Fill colour of each point.
    x_scale : {"linear", "sqrt"}
    y_range : (float, float)
        Range of the y axis; values outside are drawn at the edge.

    Returns
    -------
    svg : str
    """
    pts = [(x, y, lab, (colours or [None] * len(xs))[i]) for i, (x, y, lab) in enumerate(zip(xs, ys, labels))
           if _finite(x) and _finite(y)]
    left, right, top, bottom = 56, 20, 16, 44
    pw, ph = width - left - right, height - top - bottom
    xmax = max([p[0] for p in pts] + [1e-9])
    xmax = nice_ceiling(xmax)
    tf = (lambda v: math.sqrt(max(v, 0.0))) if x_scale == "sqrt" else (lambda v: max(v, 0.0))
    y0, y1 = y_range

    def px(v: float) -> float:
        return left + pw * tf(v) / tf(xmax)

    def py(v: float) -> float:
        v = min(max(v, y0), y1)
        return top + ph * (1.0 - (v - y0) / (y1 - y0))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{esc(id)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(y_label)} against {esc(x_label)}">']
    xt = [0.0] + [m * 10 ** e for e in range(-2, 4) for m in (1, 2, 5) if m * 10 ** e <= xmax * 1.0000001]
    keep: list[float] = []
    for t in xt:
        if not keep or tf(t) - tf(keep[-1]) >= 0.08 * tf(xmax):
            keep.append(t)
    for t in keep:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#eceef3"/>')
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="11" text-anchor="middle" fill="#5b6475">{t:g}</text>')
    for t in np.linspace(y0, y1, 6):
        y = py(float(t))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceef3"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#5b6475">{t:.1f}</text>')
    if y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(0):.1f}" y2="{py(0):.1f}" stroke="#9aa1ad" '
                   'stroke-dasharray="4 3"/>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d9dde5"/>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 8}" font-size="12" text-anchor="middle" '
               f'fill="#1d2330">{esc(x_label)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" font-size="12" text-anchor="middle" '
               f'fill="#1d2330">{esc(y_label)}</text>')
    for x, y, lab, col in pts:
        cx, cy = px(x), py(y)
        out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{esc(col or "#1f77b4")}" fill-opacity="0.85">'
                   f'<title>{esc(lab)}: {x:.2f}, {y:.3f}</title></circle>')
        out.append(f'<text x="{cx + 5:.1f}" y="{cy - 4:.1f}" font-size="9" fill="#5b6475">{esc(lab)}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart_svg(
    series: dict[str, list[tuple[float, float]]],
    *,
    x_label: str = "epoch",
    y_label: str = "loss",
    width: int = 520,
    height: int = 260,
    id: str = "lines",
    dashed: set[str] | None = None,
) -> str:
    """Line chart of named (x, y) series as inline SVG, with a legend.

    Returns
    -------
    svg : str
    """
    dashed = dashed or set()
    allp = [(x, y) for s in series.values() for x, y in s if _finite(x) and _finite(y)]
    left, right, top, bottom = 52, 130, 12, 40
    pw, ph = width - left - right, height - top - bottom
    if not allp:
        return '<p class="muted">No history recorded.</p>'
    xmin, xmax = min(p[0] for p in allp), max(p[0] for p in allp)
    ymin, ymax = min(p[1] for p in allp), max(p[1] for p in allp)
    if xmax <= xmin:
        xmax = xmin + 1
    pad = 0.05 * (ymax - ymin or 1.0)
    ymin, ymax = ymin - pad, ymax + pad

    def px(v: float) -> float:
        return left + pw * (v - xmin) / (xmax - xmin)

    def py(v: float) -> float:
        return top + ph * (1.0 - (v - ymin) / (ymax - ymin))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{esc(id)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="{esc(y_label)} per {esc(x_label)}">']
    for t in np.linspace(ymin, ymax, 5):
        y = py(float(t))
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eceef3"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end" fill="#5b6475">{t:.3g}</text>')
    step = max(1, int(math.ceil((xmax - xmin) / 10)))
    for t in range(int(math.ceil(xmin)), int(xmax) + 1, step):
        x = px(t)
        out.append(f'<text x="{x:.1f}" y="{top + ph + 14}" font-size="10" text-anchor="middle" fill="#5b6475">{t}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d9dde5"/>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" font-size="11" text-anchor="middle">{esc(x_label)}</text>')
    out.append(f'<text transform="translate(12 {top + ph / 2:.1f}) rotate(-90)" font-size="11" '
               f'text-anchor="middle">{esc(y_label)}</text>')
    for i, (name, pts) in enumerate(series.items()):
        pts = [(x, y) for x, y in pts if _finite(x) and _finite(y)]
        col = LINE_COLOURS[i % len(LINE_COLOURS)]
        dash = ' stroke-dasharray="5 3"' if name in dashed else ""
        if pts:
            d = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{col}" stroke-width="1.8"{dash}>'
                       f"<title>{esc(name)}</title></polyline>")
            for x, y in pts:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="{col}">'
                           f"<title>{esc(name)} {x:g}: {y:.4f}</title></circle>")
        ly = top + 12 + 16 * i
        out.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 30}" y1="{ly - 4}" y2="{ly - 4}" stroke="{col}" '
                   f'stroke-width="2"{dash}/>')
        out.append(f'<text x="{left + pw + 34}" y="{ly}" font-size="11">{esc(name)}</text>')
    out.append("</svg>")
    return "".join(out)




# ----------------------------------------------------------------------------- the part
def _metric_cell(r: dict[str, Any] | None, base: dict[str, Any] | None, best: bool) -> str:
    if r is None:
        return "—"
    if r["kind"] == "continuous":
        v, b, name = r.get("r2"), (base or {}).get("r2"), "R²"
    else:
        v, b, name = r.get("accuracy"), (base or {}).get("accuracy"), "acc"
    gain = (v - b) if _finite(v) and _finite(b) else None
    txt = fmt_num(v, 3)
    if best:
        txt = f"<strong>{txt}</strong>"
    g = f' <span class="muted">({fmt_num(gain, 2, signed=True)})</span>' if gain is not None else ""
    return f'<span title="{name}; MPR {fmt_num(r.get("mpr"), 1)}">{txt}{g}</span>'


def predictability_html(results: dict[str, Any], sensitivity: dict[str, Any] | None = None,
                        media: dict[str, np.ndarray] | None = None,
                        identifiability: dict[str, Any] | None = None) -> str:
    """The HTML body of the measured-predictability part.

    Parameters
    ----------
    results : dict
        ``predictability.json``.
    sensitivity : dict, optional
        ``sensitivity.json``: adds the sensitivity score and class beside each
        parameter and the sensitivity-against-predictability scatter.
    media : dict of np.ndarray, optional
        ``predictability_media.npz``: ``target``, ``prediction``, ``mean`` int16
        clips and ``sample_rate`` for the listenable pairs.
    identifiability : dict, optional
        ``identifiability.json``: adds each parameter's distinct share (of the
        same sampler) beside it and to the figure checks.

    Returns
    -------
    html : str
    """
    from synth_probe.predictability import distinct_shares, figure_checks

    models = results.get("models", {})
    order = [m for m in results.get("config", {}).get("models", list(models)) if m in models]
    if "ensemble" in models and "ensemble" not in order:  # computed from the others, not a configured model
        order.append("ensemble")
    sens = {p["name"]: p for p in (sensitivity or {}).get("params", [])}
    best = results.get("best", {})
    by = {m: {r["parameter"]: r for r in models[m]["parameters"]} for m in order}
    out: list[str] = []

    # ---- summary
    stat = [f'<span class="stat"><b>{len(results.get("columns", []))}</b> parameters</span>',
            f'<span class="stat"><b>{len(order)}</b> models</span>',
            f'<span class="stat"><b>{results.get("n_train")}</b> train / <b>{results.get("n_test")}</b> test</span>',
            f'<span class="stat"><b>{fmt_num(results.get("seconds"), 0)}</b> s</span>']
    out.append(f'<p>{"".join(stat)}</p>')
    render = results.get("render", {})
    out.append(
        f"<p>Every model of the suite was trained on the same {results.get('n_train')} renders of "
        f"<strong>{esc(results.get('synth'))}</strong> (sampler <code>{esc(results.get('sampler'))}</code>, "
        f"{fmt_num(render.get('render_length'), 1)} s at {render.get('sample_rate')} Hz, dataset "
        f"<code>{esc(results.get('data'))}</code>) and scored on {results.get('n_test')} held-out renders. "
        "The table shows R² for continuous parameters and accuracy for discrete ones, with the gain over "
        "MeanBaseline (the training means: the research log's collapse) in brackets; hover a cell for the "
        "MPR (mean percentile rank, chance 50). <em>Skill</em> puts both on one scale: R², or "
        "(accuracy − chance) / (1 − chance).</p>")
    grids = results.get("mpr_levels") or {}
    if grids:
        listed = ", ".join(f"{esc(k)} ({v})" for k, v in sorted(grids.items()))
        out.append("<p>The dataset drew some parameters from a grid; their MPR ranks the grid's own levels (or "
                   f"the sampled choices), as InverSynth ranks its classes, not 16 bins: {listed}.</p>")
    if not results.get("complete", True):
        out.append('<p class="note">This run was interrupted or is still running: only the models finished are shown.</p>')
    if sensitivity is None:
        out.append('<p class="note">No <code>sensitivity.json</code> in this folder yet: run '
                   '<code>make sensitivity</code> to add sensitivity scores beside the measured ones.</p>')

    # ---- figures
    checks = figure_checks(results, sensitivity, identifiability)
    distinct = distinct_shares(identifiability, results)
    if checks:
        out.append('<h3 id="figures">Figures</h3>')
        rows = [{**c, "status": "yes" if c["ok"] else ("—" if c["ok"] is None else "no")} for c in checks]
        out.append(table([Column("name", "Figure"), Column("target", "Target"), Column("value", "Measured"),
                          Column("status", "Reached")], rows, id="predictability-figures", sortable=False))

    # ---- parameter x model table
    out.append('<h3 id="measured-table">Parameter × model</h3>')
    cols = [Column("parameter", "Parameter")]
    if sens:
        cols += [Column("sens", "Sensitivity (dB)", fmt=fmt_num, numeric=True,
                        title="sensitivity score from sensitivity.json"),
                 Column("cls", "Class", fmt=lambda v: f'<span class="badge {esc(v)}">{esc(v)}</span>' if v else "—")]
    if distinct:
        cols.append(Column("distinct", "Distinct", fmt=lambda v: "—" if v is None else f"{100 * v:.0f} %",
                           numeric=True, title="share of sampled patches where the parameter is audible and no "
                                               "other setting imitates it (identifiability.json; see above)"))
    cols += [Column("kind", "Kind"),
             Column("chance", "Chance", fmt=lambda v: fmt_num(v, 3), numeric=True,
                    title="discrete: 1 / number of choices (accuracy); continuous: R² of the mean is 0")]
    for m in order:
        cols.append(Column(f"m_{m}", _label(m), numeric=True, sort=lambda v: v[0] if v else None,
                           cell=(lambda mm: (lambda r: r[f"c_{mm}"]))(m),
                           title=f"{_label(m)}: R² or accuracy (gain over MeanBaseline)"))
    cols += [Column("best_model", "Best model", fmt=lambda v: esc(_label(v)) if v else "—"),
             Column("best_skill", "Best skill", fmt=lambda v: fmt_num(v, 3), numeric=True),
             Column("best_mpr", "Best MPR", fmt=lambda v: fmt_num(v, 1), numeric=True)]
    rows = []
    for p in results.get("columns", []):
        any_r = next((by[m][p] for m in order if p in by[m]), None)
        if any_r is None:
            continue
        b = best.get(p, {})
        row = {"parameter": p, "kind": any_r["kind"],
               "chance": any_r.get("chance_accuracy") if any_r["kind"] == "discrete" else 0.0,
               "sens": (sens.get(p) or {}).get("score"), "cls": (sens.get(p) or {}).get("classification"),
               "distinct": distinct.get(p),
               "best_model": b.get("model"), "best_skill": b.get("skill"), "best_mpr": b.get("mpr")}
        for m in order:
            r = by[m].get(p)
            v = None if r is None else (r.get("r2") if r["kind"] == "continuous" else r.get("accuracy"))
            row[f"m_{m}"] = (v,)
            row[f"c_{m}"] = _metric_cell(r, by.get("mean", {}).get(p), best=b.get("model") == m)
        rows.append(row)
    rows.sort(key=lambda r: -(r["best_skill"] if _finite(r["best_skill"]) else -9))
    out.append('<input class="filter-box" type="search" placeholder="filter rows" data-filter="measured-table-t" '
               'aria-label="filter the table">')
    out.append(table(cols, rows, id="measured-table-t",
                     row_class=lambda r: f"cls-{r['cls']}" if r.get("cls") else ""))

    # ---- per-model summary
    out.append('<h3 id="models">Models</h3>')
    mrows = []
    for m in order:
        e = models[m]
        mrows.append({"model": _label(m), "features": e.get("features"), "mean_skill": e.get("mean_skill"),
                      "mean_mpr": e.get("mean_mpr"), "fit": e.get("fit_seconds"),
                      "sps": e.get("samples_per_s"), "epochs": e.get("n_epochs"), "best_epoch": e.get("best_epoch"),
                      "n_best": sum(1 for b in best.values() if b.get("model") == m)})
    out.append(table([
        Column("model", "Model"), Column("features", "Features"),
        Column("mean_skill", "Mean skill", fmt=lambda v: fmt_num(v, 3), numeric=True),
        Column("mean_mpr", "Mean MPR", fmt=lambda v: fmt_num(v, 1), numeric=True),
        Column("n_best", "Best on", numeric=True, title="parameters where this model has the best skill"),
        Column("fit", "Fit (s)", fmt=lambda v: fmt_num(v, 1), numeric=True),
        Column("sps", "Train samples/s", fmt=lambda v: fmt_num(v, 0), numeric=True,
               title="training rows per second of optimizer steps (torch models)"),
        Column("epochs", "Epochs", numeric=True), Column("best_epoch", "Best epoch", numeric=True),
    ], mrows, id="measured-models"))

    # ---- scatter
    if sens:
        out.append('<h3 id="sens-vs-pred">Sensitivity against predictability</h3>')
        names = [p for p in results.get("columns", []) if p in sens and p in best]
        out.append(scatter_svg(
            [sens[p].get("score") for p in names], [best[p].get("skill") for p in names], names,
            colours=[CLASS_COLOURS.get(sens[p].get("classification"), "#7a3ec8") for p in names],
            x_label="sensitivity score (dB above the noise floor, square-root axis)",
            y_label="best skill (R² or chance-corrected accuracy)", y_range=(-0.2, 1.0), id="sens-pred-scatter"))
        out.append('<p class="muted">Blue: strong, orange: weak, grey: inaudible (sensitivity classes). A parameter '
                   "to the right but low is audible yet not recovered: a model or feature to improve, or a "
                   "parameter whose effect another parameter can imitate.</p>")

    # ---- learning curves
    torch_models = [m for m in order if models[m].get("history")]
    if torch_models:
        out.append('<h3 id="learning-curves">Learning curves</h3><div class="charts">')
        for m in torch_models:
            h = models[m]["history"]
            series = {"train": [(e["epoch"], e.get("train_loss")) for e in h],
                      "validation": [(e["epoch"], e.get("valid_loss")) for e in h]}
            if models[m].get("pretrain_history"):
                series["pretrain (AE)"] = [(e["epoch"], e.get("valid_loss", e.get("train_loss")))
                                          for e in models[m]["pretrain_history"]]
            out.append(f'<figure><figcaption>{esc(_label(m))}: {models[m].get("n_epochs")} epochs, best '
                       f'{models[m].get("best_epoch")}, {fmt_num(models[m].get("samples_per_s"), 0)} samples/s'
                       f'</figcaption>{line_chart_svg(series, id=f"curve-{m}", y_label="loss per target", dashed={"pretrain (AE)"})}'
                       "</figure>")
        out.append("</div><p class=\"muted\">Loss per target: z-scored MSE (continuous) and cross-entropy "
                   "(discrete) averaged over the parameters; the weights of the best validation epoch are kept.</p>")

    # ---- audio
    audio = results.get("audio")
    if audio:
        out.append('<h3 id="audio">Audio comparison</h3>')
        out.append(f"<p>The first {audio['n']} test patches were re-rendered with each model's predicted "
                   "parameters (the others as in the target) and compared with the target audio: multi-resolution "
                   "log-mel distance (dB), spectral convergence and MFCC distance; lower is better. MeanBaseline "
                   "is the mean patch.</p>")
        arows = []
        for m in order:
            a = audio["models"].get(m)
            if a:
                arows.append({"model": _label(m), **{f"{k}_{s}": a.get(k, {}).get(s)
                                                      for k in ("log_mel", "spectral_convergence", "mfcc")
                                                      for s in ("mean", "median")}})
        acols = [Column("model", "Model")]
        for k, lab in (("log_mel", "log-mel dB"), ("spectral_convergence", "spectral conv."), ("mfcc", "MFCC")):
            for s in ("mean", "median"):
                acols.append(Column(f"{k}_{s}", f"{lab} ({s})", fmt=lambda v: fmt_num(v, 3), numeric=True))
        out.append(table(acols, arows, id="audio-table"))
        if media and "target" in media and audio.get("pairs"):
            sr = int(media["sample_rate"])
            out.append(f"<p>Listen: target, {esc(_label(audio.get('pairs_model', '')))} prediction and the mean "
                       "patch (peak-normalised only if above full scale).</p>")
            for i, pair in enumerate(audio["pairs"][: len(media["target"])]):
                body = [audio_player(wav_data_uri(media["target"][i], sr), "target"),
                        audio_player(wav_data_uri(media["prediction"][i], sr),
                                     f"prediction ({_label(audio.get('pairs_model', ''))})")]
                if "mean" in media:
                    body.append(audio_player(wav_data_uri(media["mean"][i], sr), "mean patch"))
                diffs = sorted(pair["params"].items(), key=lambda kv: -abs(kv[1][0] - kv[1][1]))[:8]
                body.append(key_value_table([(k, f"target {v[0]:.3f}, predicted {v[1]:.3f}") for k, v in diffs]))
                name = f" — {esc(pair['label'])}" if pair.get("label") else ""  # a preset dataset's program name
                out.append(details(f"test patch {pair['row']}{name}", "".join(body), open=i == 0, id=f"pair-{i}"))

    # ---- method
    cfg = results.get("config", {})
    out.append('<h3 id="measured-method">Method</h3>')
    out.append(key_value_table([
        ("dataset", results.get("data")), ("rows", f"{results.get('n')} ({results.get('n_train')} train, "
                                                   f"{results.get('n_test')} test; seed {cfg.get('seed')})"),
        ("targets", f"{len(results.get('columns', []))} parameters that vary in the dataset"),
        ("features", "; ".join(f"{k}: {v}" for k, v in results.get("features", {}).items())),
        ("torch training", f"at most {cfg.get('epochs')} epochs, patience {cfg.get('patience')}, each model's own "
                           "seeded 10 % early-stopping validation split of the training rows"),
        ("feature time", f"{fmt_num(results.get('feature_seconds'), 1)} s"),
        ("CPU", f"{results.get('cpus')} cores, load average {fmt_num(results.get('load_average'), 1)} at the start"),
        ("command", results.get("command")), ("created", results.get("created")),
    ] + [(f"version {k}", v) for k, v in sorted(results.get("versions", {}).items())], id="measured-settings"))
    out.append('<p class="muted">The numbers are in <a href="predictability.json">predictability.json</a>.</p>')
    return "\n".join(out)


def _load(reports_dir: Path) -> tuple[dict | None, dict | None, dict | None, dict | None]:
    rp = reports_dir / RESULTS_NAME
    if not rp.exists():
        return None, None, None, None
    results = read_json(rp, error=DatasetError, what="predictability results")
    sens = load_json(reports_dir / "sensitivity.json")
    mp = reports_dir / MEDIA_NAME
    media = None
    if mp.exists():
        try:
            with np.load(mp, allow_pickle=False) as z:
                media = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            media = None
    return results, sens, media, load_json(reports_dir / "identifiability.json")


def refresh_part(reports_dir: str | os.PathLike) -> Path | None:
    """Rewrite the measured part from the files in ``reports_dir``; None when there are no results yet."""
    d = Path(reports_dir)
    results, sens, media, ident = _load(d)
    if results is None:
        return None
    return write_part(d, "predictability", PART_KEY, PART_TITLE, predictability_html(results, sens, media, ident))


def write_predictability_report(reports_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the measured part and assemble ``predictability.html`` (with the sensitivity part if present).

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``part``, ``html``.
    """
    from synth_probe.errors import SynthProbeError

    d = Path(reports_dir)
    if not (d / RESULTS_NAME).exists():
        raise SynthProbeError(f"{d / RESULTS_NAME} does not exist; run synth-probe predictability first")
    html = assemble(d, "predictability")  # rewrites the part first (see synth_probe.report.REFRESH)
    return {"json": d / RESULTS_NAME, "part": d / "_parts" / "predictability" / f"{PART_KEY}.html", "html": html}
