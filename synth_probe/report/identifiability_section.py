"""The identifiability part of the predictability report (``15-identifiability``).

Built from ``identifiability.json`` (:mod:`synth_probe.identifiability`), with the
sensitivity class and the best measured skill beside each parameter when
``sensitivity.json`` and ``predictability.json`` are in the same folder.
:func:`synth_probe.report.pages.rebuild_predictability_page` rewrites it whenever a
study writes its part, so it follows whichever study ran last. :func:`csv_rows` is the
summary as the rows of ``identifiability.csv``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synth_probe.report import load_json, write_part
from synth_probe.report.html import Column, esc, fmt_num, key_value_table, table

__all__ = ["PART_KEY", "PART_TITLE", "RESULTS_NAME", "identifiability_html", "refresh_part", "csv_rows",
           "PROBES_PART_KEY", "PROBES_PART_TITLE", "PROBES_RESULTS_NAME", "probes_html"]

PART_KEY = "15-identifiability"
PART_TITLE = "Identifiability in context: masked, confounded or distinct among random patches"
RESULTS_NAME = "identifiability.json"
PROBES_PART_KEY = "16-identifiability-probes"
PROBES_PART_TITLE = "Which probe resolves which parameter"
#: written by ``synth-probe identifiability --probes`` (:func:`synth_probe.identifiability.compare_probes`)
PROBES_RESULTS_NAME = "identifiability_probes.json"


def _move(step: float) -> str:
    return "half its range (wrapping round; discrete: the choice half-way round)" if float(step) >= 0.5 else (
        f"{float(step):g} of its range toward the middle (discrete: to the neighbouring choice)")


def _pct(v: Any) -> str:
    return "—" if v is None else f"{100 * float(v):.0f} %"


def _columns(cfg: dict[str, Any], rows: list[dict[str, Any]], with_class: bool, with_skill: bool) -> list[Column]:
    """The table's columns; adds the step and tolerance columns to ``rows`` (in place)."""
    cols = [Column("parameter", "Parameter")]
    if with_class:
        cols.append(Column("cls", "Sensitivity class",
                           fmt=lambda v: f'<span class="badge {esc(v)}">{esc(v)}</span>' if v else "—"))
    steps = [f"{x:g}" for x in cfg.get("steps", [0.5])]
    looser = sorted({t for r in rows for t in r.get("resolvable_r2_at") or {}}, key=float)
    for r in rows:
        for x in steps[1:]:
            r[f"at_{x}"] = r.get("distinct_by_step", {}).get(x)
        for t in looser:
            r[f"r2_at_{t}"] = (r.get("resolvable_r2_at") or {}).get(t)
    cols += [
        Column("distinct", "Distinct", fmt=_pct, numeric=True, title="audible and no twin found"),
        Column("masked", "Masked", fmt=_pct, numeric=True, title="change within the render-noise floor + tolerance"),
        Column("confounded", "Confounded", fmt=_pct, numeric=True, title="a twin with the moved value was found"),
    ] + [
        Column(f"at_{x}", f"Distinct at {x}", fmt=_pct, numeric=True,
               title=f"share of patches where a move of {x} of the range (discrete: the neighbouring choice) is "
                     "audible and no twin was found")
        for x in steps[1:]
    ] + [
        Column("resolvable_r2", "Resolvable R² ≈", fmt=lambda v: fmt_num(v, 2), numeric=True,
               title="1 - 4 mean(Δ²), Δ the largest move not distinct at a patch (continuous parameters)"),
    ] + [
        Column(f"r2_at_{t}", f"… at {t} dB", fmt=lambda v: fmt_num(v, 2), numeric=True,
               title=f"the same with a tolerance of {t} dB above the floor: a move whose effect or twin lies "
                     "within it counts as not distinct (from the stored distances)")
        for t in looser
    ] + [
        Column("resolvable_r2_half_budget", "… half the search", fmt=lambda v: fmt_num(v, 2), numeric=True,
               title="the resolvable R² from the twins each search had after half its renders: above the full "
                     "search's, the searches were still finding twins (the same is no proof they had settled)"),
    ] * any(r.get("resolvable_r2_half_budget") is not None for r in rows) + [
        Column("resolvable_mpr", "Resolvable MPR ≈", fmt=lambda v: fmt_num(v, 1), numeric=True,
               title="the predictability study's MPR the verdicts leave reachable: at each patch the best mean "
                     "percentile rank one prediction gives the base and the patch it sounds like (100 where every "
                     "move is distinct, 50 where even the half-range move is masked)"),
    ] * any(r.get("resolvable_mpr") is not None for r in rows) + [
        Column("effect_db", "Effect (dB)", fmt=fmt_num, numeric=True, title="median distance of the moved render"),
        Column("floor_db", "Floor (dB)", fmt=fmt_num, numeric=True,
               title="median distance between two render seeds of the base"),
        Column("twin_db", "Twin (dB)", fmt=fmt_num, numeric=True, title="median distance the twin searches reached"),
        Column("comp", "Twins moved", title="parameters the twins changed most often (after putting back the "
                                            "moves that were not needed)"),
    ]
    if with_skill:
        cols.append(Column("skill", "Best skill", fmt=lambda v: fmt_num(v, 3), numeric=True,
                           title="best model's skill in predictability.json (R² or chance-corrected accuracy)"))
    return cols


def identifiability_html(data: dict[str, Any], sensitivity: dict[str, Any] | None = None,
                         predictability: dict[str, Any] | None = None) -> str:
    """The HTML body of the part."""
    cfg = data.get("config", {})
    sens = {p["name"]: p for p in (sensitivity or {}).get("params", [])}
    best = (predictability or {}).get("best", {})
    rows = []
    for r in data.get("summary", []):
        p = r["parameter"]
        rows.append({**r, "cls": (sens.get(p) or {}).get("classification"),
                     "skill": (best.get(p) or {}).get("skill"), "comp": ", ".join(r.get("compensators") or [])})
    out = [
        f"<p>Each parameter was moved {esc(_move(cfg.get('steps', [0.5])[0]))} on {esc(cfg.get('bases'))} "
        "random "
        f"<code>{esc(cfg.get('sampler'))}</code> patches, every other parameter as the sampler drew it. "
        "<strong>Masked</strong>: the move changed the render (multi-resolution log-mel distance) by no more than "
        "two renders of the same patch with different render seeds differ, plus "
        f"{fmt_num(cfg.get('tolerance_db'), 2)} dB. <strong>Confounded</strong>: the move was audible, but a "
        f"search over the other varied parameters ({esc(cfg.get('budget'))} renders) found a twin, a patch with "
        "the moved value that sounds like the original within the same limit. <strong>Distinct</strong>: "
        "audible and no twin found. The same is done for smaller moves "
        f"({esc(', '.join(f'{x:g}' for x in cfg.get('steps', [0.5])[1:]))} of the range, toward the middle; "
        "discrete: the neighbouring choice), which tell how closely the sound resolves the value. "
        "<strong>Resolvable R²</strong> (continuous parameters): at each patch the value is taken as known to within "
        "Δ, the largest move that is not distinct (the whole range if the half-range move is not), and a uniform "
        "error of ±Δ costs 4Δ² of R², which gives 1 − 4·mean(Δ²). The columns after it judge the same stored "
        "distances at looser tolerances: how fast the estimate falls tells how fine a difference a model must "
        "hear to reach a given R². The last of them is the estimate from the twins each search had found after "
        "half its renders: when it is higher, the searches were still finding twins and a bigger budget would "
        "lower the estimate; when it is not, that is no proof they had settled. A twin proves a confound; a "
        "search that finds none proves nothing. The shares and the resolvable R² are estimates, not bounds: a "
        "missed twin would lower them, a model that hears differences below the "
        f"tolerance would beat them, and with {esc(cfg.get('bases'))} patches each share is uncertain by about "
        "±0.5/√patches.</p>",
        "<p>The sensitivity study opens a parameter's gate before sweeping it (the LFO amount with its "
        "destination set, for instance); here every other parameter is as random as in the training data. A "
        "parameter that is strong there and mostly masked or confounded here is audible, but not recoverable "
        "from random patches.</p>",
    ]
    if not data.get("complete", True):
        out.append('<p class="note">This run was interrupted: only the probes finished are counted.</p>')
    cols = _columns(cfg, rows, bool(sens), bool(best))
    out.append(table(cols, rows, id="identifiability-t",
                     row_class=lambda r: f"cls-{r['cls']}" if r.get("cls") else ""))
    render = cfg.get("render", {})
    out.append(key_value_table([
        ("sampler", cfg.get("sampler")), ("bases", cfg.get("bases")), ("seed", cfg.get("seed")),
        ("twin search", f"{'CMA-ES' if cfg.get('search') == 'cmaes' else 'hill climb'}, {cfg.get('budget')} "
                        "renders, over the sampler's other varied parameters"),
        ("tolerance", f"{cfg.get('tolerance_db')} dB above the floor"),
        ("render", f"note {render.get('note')}, velocity {render.get('velocity')}, {render.get('note_length')} s "
                   f"held in {render.get('render_length')} s at {render.get('sample_rate')} Hz"),
        ("time", f"{fmt_num(data.get('seconds'), 0)} s with {cfg.get('jobs')} job(s)"),
        ("command", data.get("command")), ("created", data.get("created")),
    ], id="identifiability-settings"))
    out.append('<p class="muted">Every probe is in <a href="identifiability.json">identifiability.json</a>; the '
               'summary in <a href="identifiability.csv">identifiability.csv</a>.</p>')
    return "\n".join(out)


def probes_html(data: dict[str, Any]) -> str:
    """The HTML body of the probes part, from ``identifiability_probes.json`` (plain data).

    One row per parameter, two columns per probe (distinct share and resolvable R²), the probe
    with the highest distinct share named; a last table gives each probe's means and time.
    """
    probes = list(data.get("probes", []))
    cfg = data.get("config", {})
    nr = data.get("n_renders", {})
    rows, cols = [], [Column("parameter", "Parameter")]
    for i, p in enumerate(probes):
        cols += [Column(f"d{i}", f"Distinct: {p}", fmt=_pct, numeric=True,
                        title=f"share of patches where the half-range move is distinct with the probe {p}"),
                 Column(f"r{i}", f"R² ≈: {p}", fmt=lambda v: fmt_num(v, 2), numeric=True,
                        title=f"rough resolvable R² with the probe {p} (continuous parameters)")]
    cols.append(Column("best", "Most distinct with"))
    for r in data.get("rows", []):
        row = {"parameter": r["parameter"], "best": r.get("best_probe")}
        for i, p in enumerate(probes):
            c = r["by_probe"].get(p) or {}
            row[f"d{i}"], row[f"r{i}"] = c.get("distinct"), c.get("resolvable_r2")
        rows.append(row)
    summary = [{"probe": p, "renders": nr.get(p), "mean_distinct": data.get("mean_distinct", {}).get(p),
                "mean_r2": data.get("mean_resolvable_r2", {}).get(p),
                "mean_mpr": (data.get("mean_resolvable_mpr") or {}).get(p), "seconds": data.get("seconds", {}).get(p)}
               for p in probes]
    out = [
        f"<p>The same study on the same {esc(cfg.get('bases'))} <code>{esc(cfg.get('sampler'))}</code> patches "
        f"(seed {esc(cfg.get('seed'))}), once per candidate <strong>probe</strong>: the renders taken of each "
        "patch (notes × velocities × note lengths; <code>default</code> is the one note). With several renders "
        "every distance — effect, render-noise floor and twin — is the sum of the renders' distances, so a "
        "twin must sound alike on every note and velocity, and a difference heard on one render keeps its "
        "full size. A parameter more distinct with a probe is one a single note hides.</p>",
        table(cols, rows, id="identifiability-probes-t"),
        table([Column("probe", "Probe"), Column("renders", "Renders per patch", numeric=True),
               Column("mean_distinct", "Mean distinct share", fmt=lambda v: fmt_num(v, 3), numeric=True),
               Column("mean_r2", "Mean resolvable R²", fmt=lambda v: fmt_num(v, 3), numeric=True),
               Column("mean_mpr", "Mean resolvable MPR", fmt=lambda v: fmt_num(v, 1), numeric=True,
                      title="over the parameters with an estimate (see the study's table)"),
               Column("seconds", "Time (s)", fmt=lambda v: fmt_num(v, 0), numeric=True)],
              summary, id="identifiability-probes-summary"),
        f'<p class="muted">Command: <code>{esc(data.get("command"))}</code>; every run in '
        '<a href="identifiability_probes.json">identifiability_probes.json</a>.</p>',
    ]
    if not data.get("complete", True):
        out.insert(1, '<p class="note">This comparison was interrupted: the probes after the interrupted one '
                      'are missing.</p>')
    return "\n".join(out)


def refresh_part(reports_dir: str | os.PathLike) -> Path | None:
    """Rewrite the part (and the probes part) from the files in ``reports_dir``.

    Returns None when there is no ``identifiability.json``.
    """
    d = Path(reports_dir)
    probes = load_json(d / PROBES_RESULTS_NAME)
    if probes is not None:
        write_part(d, "predictability", PROBES_PART_KEY, PROBES_PART_TITLE, probes_html(probes))
    data = load_json(d / RESULTS_NAME)
    if data is None:
        return None
    return write_part(d, "predictability", PART_KEY, PART_TITLE,
                      identifiability_html(data, load_json(d / "sensitivity.json"),
                                           load_json(d / "predictability.json")))


def _num(v: float | None) -> str:
    return "" if v is None else f"{v:.3f}"


def csv_rows(data: dict[str, Any]) -> list[list[str]]:
    """The summary of ``identifiability.json`` as the rows of ``identifiability.csv``, header first."""
    rows = data["summary"]
    steps = [f"{x:g}" for x in data.get("config", {}).get("steps", [])]
    looser = sorted({t for r in rows for t in r["resolvable_r2_at"]}, key=float)
    out = [["parameter", "bases", "masked", "confounded", "distinct"]
           + [f"distinct_at_{x}" for x in steps[1:]] + ["resolvable_r2"]
           + [f"resolvable_r2_at_{t}db" for t in looser]
           + ["resolvable_r2_half_budget", "resolvable_mpr", "effect_db", "floor_db", "twin_db", "compensators"]]
    for r in rows:
        out.append([r["parameter"], r["bases"], f"{r['masked']:.3f}", f"{r['confounded']:.3f}", f"{r['distinct']:.3f}"]
                   + [_num(r["distinct_by_step"].get(x)) for x in steps[1:]]
                   + [_num(r["resolvable_r2"])] + [_num(r["resolvable_r2_at"].get(t)) for t in looser]
                   + [_num(r["resolvable_r2_half_budget"]), _num(r.get("resolvable_mpr"))]
                   + [f"{r['effect_db']:.3f}", f"{r['floor_db']:.3f}",
                      "" if r["twin_db"] is None else f"{r['twin_db']:.3f}", " ".join(r["compensators"])])
    return out
