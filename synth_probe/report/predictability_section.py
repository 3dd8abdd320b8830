"""The measured-predictability part of the predictability report (``20-measured``).

:func:`predictability_html` turns ``predictability.json`` (the results of
:func:`synth_probe.predictability.run_predictability`, as a dict) into the part's HTML;
``sensitivity.json`` and ``identifiability.json`` (or the run of the same probe in
``identifiability_probes.json``), when given, add the sensitivity score and class, the in-context
estimates, the headroom between them and the best skill and whether the render or the models limit
the parameter (:mod:`synth_probe.report.in_context`) beside each parameter.
:func:`refresh_part` rewrites the part from the files of a reports folder;
:mod:`synth_probe.report.pages` calls it whenever a study writes its part, so whichever
study runs last, the page shows every study's numbers side by side.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.fileio import read_json
from synth_probe.report import load_json, write_part
from synth_probe.report.charts import line_chart_svg, scatter_svg
from synth_probe.report.html import (
    Column,
    audio_player,
    details,
    esc,
    fmt_num,
    key_value_table,
    table,
    wav_data_uri,
)
from synth_probe.report.in_context import (
    HEADROOM_MARGIN,
    LOOSE_TOLERANCE_DB,
    choose_identifiability,
    headroom_rows,
    headroom_sentence,
    headroom_summary,
    parameter_estimates,
    summary_rows,
)
from synth_probe.report.identifiability_section import PROBES_RESULTS_NAME
from synth_probe.report.probe_section import comparison_html

__all__ = ["PART_KEY", "PART_TITLE", "RESULTS_NAME", "MEDIA_NAME", "predictability_html", "refresh_part",
           "load_media"]

PART_KEY = "20-measured"
PART_TITLE = "Measured predictability: how well each parameter is recovered"
RESULTS_NAME = "predictability.json"
MEDIA_NAME = "predictability_media.npz"
MODEL_LABELS = {"mean": "MeanBaseline", "knn": "kNN", "gbm": "LightGBM", "cnn": "CNN",
                "autoencoder": "Autoencoder+MLP", "transformer": "Transformer", "ensemble": "Ensemble",
                "posterior": "Flow-matching posterior", "neighbours": "Neighbour posterior"}
CLASS_COLOURS = {"strong": "#1f77b4", "weak": "#f0a030", "inaudible": "#b8bcc6", None: "#7a3ec8"}


def _label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


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


def _order(results: dict[str, Any]) -> list[str]:
    models = results.get("models", {})
    order = [m for m in results.get("config", {}).get("models", list(models)) if m in models]
    if "ensemble" in models and "ensemble" not in order:  # computed from the others, not a configured model
        order.append("ensemble")
    return order


def _intro_html(results: dict[str, Any], order: list[str], sensitivity: dict[str, Any] | None) -> list[str]:
    stat = [f'<span class="stat"><b>{len(results.get("columns", []))}</b> parameters</span>',
            f'<span class="stat"><b>{len(order)}</b> models</span>',
            f'<span class="stat"><b>{results.get("n_train")}</b> train / <b>{results.get("n_test")}</b> test</span>',
            f'<span class="stat"><b>{fmt_num(results.get("seconds"), 0)}</b> s</span>']
    out = [f'<p>{"".join(stat)}</p>']
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
    return out


def _summary_html(results: dict[str, Any], sensitivity: dict[str, Any] | None,
                  identifiability: dict[str, Any] | None) -> list[str]:
    rows = summary_rows(results, sensitivity, identifiability)
    if not rows:
        return []
    return ['<h3 id="figures">Figures</h3>',
            table([Column("name", "Figure"), Column("value", "Measured"),
                   Column("context", "In context ≈", title="what the sound allows among random patches, estimated "
                                                            "from identifiability.json (see its part)")],
                  rows, id="predictability-figures", sortable=False)]


def _context_text(e: dict[str, Any] | None) -> str:
    if not e or e.get("skill") is None:
        return "—"
    if "accuracy" in e:
        tip = (f"discrete: its distinct share ({100 * e['distinct']:.0f} %) is its in-context skill; accuracy ≈ "
               f"{e['accuracy']:.2f}, MPR ≈ {e['mpr']:.1f}")
    else:
        looser = "".join(f", {float(v):.2f} at {t} dB" for t, v in list(e.get("r2_at", {}).items())[:2])
        tip = f"resolvable R² ≈ {e['skill']:.2f}{looser}; distinct {100 * e['distinct']:.0f} %, MPR ≈ {e['mpr']:.1f}"
    return f'<span title="{esc(tip)}">{fmt_num(e["skill"], 2)}</span>'


def _table_columns(order: list[str], sens: dict[str, Any], context: dict[str, Any],
                   tolerance: float = 0.2) -> list[Column]:
    cols = [Column("parameter", "Parameter")]
    if sens:
        cols += [Column("sens", "Sensitivity (dB)", fmt=fmt_num, numeric=True,
                        title="sensitivity score from sensitivity.json"),
                 Column("cls", "Class", fmt=lambda v: f'<span class="badge {esc(v)}">{esc(v)}</span>' if v else "—")]
    if context:
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
    if context:
        cols += _headroom_columns(tolerance)
    return cols


def _verdict(v: str | None) -> str:
    return "—" if v is None else f'<span class="verdict-{esc(v)}">{esc(v)}</span>'


def _headroom_columns(tolerance: float) -> list[Column]:
    """The in-context estimates at two tolerances, the headroom and the verdict."""
    loose = f"{LOOSE_TOLERANCE_DB:g}"
    return [
        Column("context", f"Resolvable R² @{tolerance:g} dB", numeric=True, cell=lambda r: _context_text(r["ctx"]),
               title=f"in-context estimate of the skill at the identifiability run's {tolerance:g} dB tolerance: "
                     "resolvable R² of a continuous parameter; for a discrete one its distinct share (its "
                     "chance-corrected accuracy in context); hover for accuracy and MPR"),
        Column("loose", f"@{loose} dB", numeric=True,
               cell=lambda r: ('<span title="discrete: the distinct share is not re-judged at looser tolerances">'
                               "—</span>") if r["discrete"] else fmt_num(r["loose"], 2),
               title=f"resolvable R² at a {loose} dB tolerance (what a model that hears only coarser differences "
                     "could reach); — for a discrete parameter, whose distinct share is judged at the run's "
                     "tolerance only"),
        Column("headroom", "Headroom", fmt=lambda v: fmt_num(v, 2, signed=True), numeric=True,
               title="in-context estimate minus the best measured skill: what the sound would still allow"),
        Column("limited_by", "Limited by", fmt=_verdict,
               title=f"render: headroom below {HEADROOM_MARGIN:g} (the models reach what the sound tells apart); "
                     f"models: {HEADROOM_MARGIN:g} or more; — without an in-context estimate of this probe"),
    ]


def _source_text(source: dict[str, Any], synth: Any = None) -> str:
    """Where the in-context figures come from, for the table's caption and the summary."""
    f, probe, want = source["file"], source["probe"], source["run_probe"]
    what = "one note" if probe == "default" else f"the probe <code>{esc(probe)}</code>"
    if source["matches"]:
        return f"In-context estimates from <code>{esc(f)}</code> ({what}, as this run)."
    this = "one note" if want == "default" else f"the probe <code>{esc(want)}</code>"
    return (f"In-context estimates from <code>{esc(f)}</code> of {what}, beside a run of {this}: shown for "
            f"orientation, no headroom judged. Run <code>synth-probe identifiability {esc(synth or 'SYNTH')} "
            f"--probes {esc(want)}</code> into this folder to judge it.")


def _headroom_html(hrows: list[dict[str, Any]], source: dict[str, Any], synth: Any = None) -> list[str]:
    """The line above the table: how many parameters the render limits, how many the models."""
    if source["file"] is None:
        return []
    line = headroom_sentence(headroom_summary(hrows)) if source["matches"] else "Headroom not judged."
    return [f'<p id="headroom-summary"><strong>{esc(line)}</strong> {_source_text(source, synth)} Headroom = '
            "in-context estimate − best skill; below "
            f"{HEADROOM_MARGIN:g} the parameter is limited by the render, else by the models.</p>"]


def _parameter_table_html(results: dict[str, Any], order: list[str], sens: dict[str, Any],
                          context: dict[str, Any], source: dict[str, Any] | None = None,
                          tolerance: float = 0.2) -> list[str]:
    models, best = results.get("models", {}), results.get("best", {})
    source = source or {"file": None, "probe": None, "run_probe": "default", "matches": False}
    hby = {r["parameter"]: r for r in headroom_rows(results, context, judge=source["matches"])}
    by = {m: {r["parameter"]: r for r in models[m]["parameters"]} for m in order}
    rows = []
    for p in results.get("columns", []):
        any_r = next((by[m][p] for m in order if p in by[m]), None)
        if any_r is None:
            continue
        b, ctx = best.get(p, {}), context.get(p)
        row = {"parameter": p, "kind": any_r["kind"],
               "chance": any_r.get("chance_accuracy") if any_r["kind"] == "discrete" else 0.0,
               "sens": (sens.get(p) or {}).get("score"), "cls": (sens.get(p) or {}).get("classification"),
               "distinct": (ctx or {}).get("distinct"), "ctx": ctx, "context": (ctx or {}).get("skill"),
               "best_model": b.get("model"), "best_skill": b.get("skill"), "best_mpr": b.get("mpr")}
        h = hby.get(p) or {}
        row.update({"discrete": h.get("discrete", any_r["kind"] == "discrete"), "loose": h.get("loose"),
                    "headroom": h.get("headroom"), "limited_by": h.get("limited_by")})
        for m in order:
            r = by[m].get(p)
            v = None if r is None else (r.get("r2") if r["kind"] == "continuous" else r.get("accuracy"))
            row[f"m_{m}"] = (v,)
            row[f"c_{m}"] = _metric_cell(r, by.get("mean", {}).get(p), best=b.get("model") == m)
        rows.append(row)
    rows.sort(key=lambda r: -(r["best_skill"] if _finite(r["best_skill"]) else -9))
    synth = results.get("synth")
    caption = _source_text(source, synth) if context and source["file"] else None
    summary = _headroom_html(list(hby.values()), source, synth) if context else []
    return ['<h3 id="measured-table">Parameter × model</h3>', *summary,
            '<input class="filter-box" type="search" placeholder="filter rows" data-filter="measured-table-t" '
            'aria-label="filter the table">',
            table(_table_columns(order, sens, context, tolerance), rows, id="measured-table-t", caption=caption,
                  row_class=lambda r: f"cls-{r['cls']}" if r.get("cls") else "")]


def _models_html(results: dict[str, Any], order: list[str]) -> list[str]:
    models, best = results.get("models", {}), results.get("best", {})
    mrows = []
    for m in order:
        e = models[m]
        mrows.append({"model": _label(m), "features": e.get("features"), "mean_skill": e.get("mean_skill"),
                      "mean_mpr": e.get("mean_mpr"), "fit": e.get("fit_seconds"),
                      "sps": e.get("samples_per_s"), "epochs": e.get("n_epochs"), "best_epoch": e.get("best_epoch"),
                      "n_best": sum(1 for b in best.values() if b.get("model") == m)})
    return ['<h3 id="models">Models</h3>', table([
        Column("model", "Model"), Column("features", "Features"),
        Column("mean_skill", "Mean skill", fmt=lambda v: fmt_num(v, 3), numeric=True),
        Column("mean_mpr", "Mean MPR", fmt=lambda v: fmt_num(v, 1), numeric=True),
        Column("n_best", "Best on", numeric=True, title="parameters where this model has the best skill"),
        Column("fit", "Fit (s)", fmt=lambda v: fmt_num(v, 1), numeric=True),
        Column("sps", "Train samples/s", fmt=lambda v: fmt_num(v, 0), numeric=True,
               title="training rows per second of optimizer steps (torch models)"),
        Column("epochs", "Epochs", numeric=True), Column("best_epoch", "Best epoch", numeric=True),
    ], mrows, id="measured-models")]


def _spread_html(results: dict[str, Any], context: dict[str, Any]) -> list[str]:
    """The posterior's draws per parameter: their width and the share of sounds where they split in modes."""
    out: list[str] = []
    for m, e in results.get("models", {}).items():
        spread = e.get("spread")
        if not spread:
            continue
        rows = [{"parameter": p, "kind": v["kind"], "std": v["mean_std"], "multi": v["multimodal_share"],
                 "distinct": context.get(p, {}).get("distinct")} for p, v in spread.items()]
        any_v = next(iter(spread.values()))
        out += [f'<h3 id="spread-{esc(m)}">Spread of the {esc(_label(m))}\'s draws</h3>',
                f"<p>{any_v['n_draws']} draws for each of {any_v['n_sounds']} test sounds. Multi-modal: the draws "
                "split in two groups of at least 20 % each (two choices drawn that often, or a gap of at least "
                "0.15 between the sorted values). Where the identifiability study finds a parameter confounded "
                "(a low distinct share), a posterior that sees it should draw several modes.</p>",
                table([Column("parameter", "Parameter"), Column("kind", "Kind"),
                       Column("std", "Mean std of draws", fmt=lambda v: fmt_num(v, 3), numeric=True),
                       Column("multi", "Sounds multi-modal", fmt=lambda v: fmt_num(100 * v, 0) + " %",
                              numeric=True),
                       Column("distinct", "Distinct in context", numeric=True,
                              fmt=lambda v: "—" if v is None else fmt_num(100 * v, 0) + " %",
                              title="identifiability study: share of sounds this parameter changes audibly")],
                      rows, id=f"spread-{m}")]
    return out


def _scatter_html(results: dict[str, Any], sens: dict[str, Any]) -> list[str]:
    if not sens:
        return []
    best = results.get("best", {})
    names = [p for p in results.get("columns", []) if p in sens and p in best]
    return ['<h3 id="sens-vs-pred">Sensitivity against predictability</h3>', scatter_svg(
        [sens[p].get("score") for p in names], [best[p].get("skill") for p in names], names,
        colours=[CLASS_COLOURS.get(sens[p].get("classification"), "#7a3ec8") for p in names],
        x_label="sensitivity score (dB above the noise floor, square-root axis)",
        y_label="best skill (R² or chance-corrected accuracy)", y_range=(-0.2, 1.0), id="sens-pred-scatter"),
        '<p class="muted">Blue: strong, orange: weak, grey: inaudible (sensitivity classes). A parameter '
        "to the right but low is audible yet not recovered: a model or feature to improve, or a "
        "parameter whose effect another parameter can imitate.</p>"]


def _curves_html(results: dict[str, Any], order: list[str]) -> list[str]:
    models = results.get("models", {})
    torch_models = [m for m in order if models[m].get("history")]
    if not torch_models:
        return []
    out = ['<h3 id="learning-curves">Learning curves</h3><div class="charts">']
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
    return out


def _pairs_html(audio: dict[str, Any], media: dict[str, np.ndarray]) -> list[str]:
    sr = int(media["sample_rate"])
    who = _label(audio.get("pairs_model", ""))
    out = [f"<p>Listen: target, {esc(who)} prediction and the mean patch (peak-normalised only if above full "
           "scale).</p>"]
    for i, pair in enumerate(audio["pairs"][: len(media["target"])]):
        body = [audio_player(wav_data_uri(media["target"][i], sr), "target"),
                audio_player(wav_data_uri(media["prediction"][i], sr), f"prediction ({who})")]
        if "mean" in media:
            body.append(audio_player(wav_data_uri(media["mean"][i], sr), "mean patch"))
        diffs = sorted(pair["params"].items(), key=lambda kv: -abs(kv[1][0] - kv[1][1]))[:8]
        body.append(key_value_table([(k, f"target {v[0]:.3f}, predicted {v[1]:.3f}") for k, v in diffs]))
        name = f" — {esc(pair['label'])}" if pair.get("label") else ""  # a preset dataset's program name
        out.append(details(f"test patch {pair['row']}{name}", "".join(body), open=i == 0, id=f"pair-{i}"))
    return out


def _audio_html(results: dict[str, Any], order: list[str], media: dict[str, np.ndarray] | None) -> list[str]:
    audio = results.get("audio")
    if not audio:
        return []
    out = ['<h3 id="audio">Audio comparison</h3>',
           f"<p>The first {audio['n']} test patches were re-rendered with each model's predicted "
           "parameters (the others as in the target) and compared with the target audio: multi-resolution "
           "log-mel distance (dB), spectral convergence and MFCC distance; lower is better. MeanBaseline "
           "is the mean patch.</p>"]
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
        out += _pairs_html(audio, media)
    return out


def _method_html(results: dict[str, Any]) -> list[str]:
    cfg = results.get("config", {})
    return ['<h3 id="measured-method">Method</h3>', key_value_table([
        ("dataset", results.get("data")),
        ("probe", f"{results.get('probe', 'default')} ({results.get('n_renders', 1)} render(s) per patch, "
                  f"{results.get('renders_total', results.get('n'))} renders in all)"), ("rows", f"{results.get('n')} ({results.get('n_train')} train, "
                                                   f"{results.get('n_test')} test; seed {cfg.get('seed')})"),
        ("targets", f"{len(results.get('columns', []))} parameters that vary in the dataset"),
        ("features", "; ".join(f"{k}: {v}" for k, v in results.get("features", {}).items())),
        ("torch training", f"at most {cfg.get('epochs')} epochs, patience {cfg.get('patience')}, each model's own "
                           "seeded 10 % early-stopping validation split of the training rows"),
        ("feature time", f"{fmt_num(results.get('feature_seconds'), 1)} s"),
        ("CPU", f"{results.get('cpus')} cores, load average {fmt_num(results.get('load_average'), 1)} at the start"),
        ("command", results.get("command")), ("created", results.get("created")),
    ] + [(f"version {k}", v) for k, v in sorted(results.get("versions", {}).items())], id="measured-settings"),
        '<p class="muted">The numbers are in <a href="predictability.json">predictability.json</a>.</p>']


def predictability_html(results: dict[str, Any], sensitivity: dict[str, Any] | None = None,
                        media: dict[str, np.ndarray] | None = None,
                        identifiability: dict[str, Any] | None = None,
                        identifiability_probes: dict[str, Any] | None = None) -> str:
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
        clips [shape=(n_pairs, n_samples)] and ``sample_rate`` for the listenable pairs.
    identifiability : dict, optional
        ``identifiability.json``: adds each parameter's distinct share, in-context
        estimates (of the same sampler), headroom and verdict beside it and to the summary figures.
    identifiability_probes : dict, optional
        ``identifiability_probes.json``: when it holds a run of this run's probe, that run's figures
        are used instead (:func:`synth_probe.report.in_context.choose_identifiability`; the table's
        caption names the source, and figures of another probe are marked and judge no headroom).

    Returns
    -------
    html : str
    """
    order = _order(results)
    sens = {p["name"]: p for p in (sensitivity or {}).get("params", [])}
    chosen, source = choose_identifiability(results, identifiability, identifiability_probes)
    context = parameter_estimates(results, chosen)
    tolerance = float((chosen or {}).get("config", {}).get("tolerance_db") or 0.2)
    out = (_intro_html(results, order, sensitivity) + _summary_html(results, sensitivity, chosen)
           + _parameter_table_html(results, order, sens, context, source, tolerance) + comparison_html(results) + _models_html(results, order)
           + _spread_html(results, context) + _scatter_html(results, sens) + _curves_html(results, order) + _audio_html(results, order, media)
           + _method_html(results))
    return "\n".join(out)


def load_media(reports_dir: str | os.PathLike) -> dict[str, np.ndarray] | None:
    """The clips of ``predictability_media.npz`` in ``reports_dir``; None when missing or unreadable."""
    mp = Path(reports_dir) / MEDIA_NAME
    if not mp.exists():
        return None
    try:
        with np.load(mp, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError):
        return None


def refresh_part(reports_dir: str | os.PathLike, results: dict[str, Any] | None = None,
                 media: dict[str, np.ndarray] | None = None) -> Path | None:
    """Rewrite the measured part from the data files in ``reports_dir``; None when there are no results yet.

    Parameters
    ----------
    reports_dir : path
    results, media : optional
        The results and clips when the caller has them (default: read from the folder).
    """
    d = Path(reports_dir)
    if results is None:
        if not (d / RESULTS_NAME).exists():
            return None
        results = read_json(d / RESULTS_NAME, error=DatasetError, what="predictability results")
    if media is None:
        media = load_media(d)
    html = predictability_html(results, load_json(d / "sensitivity.json"), media,
                               load_json(d / "identifiability.json"), load_json(d / PROBES_RESULTS_NAME))
    return write_part(d, "predictability", PART_KEY, PART_TITLE, html)
