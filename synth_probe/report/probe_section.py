"""The comparison of predictability runs per parameter: one note against a probe, at a render budget.

A probe (:mod:`synth_probe.probe`) spends several renders on each patch, so the same number of
renders buys fewer patches. ``synth-probe predictability --against OTHER/predictability.json``
keeps a summary of each other run (:func:`comparison_summary`, plain data) under ``against`` in
this run's ``predictability.json``; :func:`comparison_html` sets their per-parameter skills beside
this run's, naming which runs spent an equal number of renders and which an equal number of patches.
"""
from __future__ import annotations

import math
from typing import Any

from synth_probe.report.html import Column, esc, fmt_num, table

__all__ = ["comparison_summary", "comparison_html"]


def _skill(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def comparison_summary(results: dict[str, Any], source: str) -> dict[str, Any]:
    """A ``predictability.json`` reduced to what the comparison shows.

    Parameters
    ----------
    results : dict
        A ``predictability.json``.
    source : str
        Where it was read (shown in the report).

    Returns
    -------
    dict with ``source``, ``probe``, ``n`` (patches), ``n_renders``, ``renders_total``, ``data``,
    ``models`` (names) and ``skills`` (parameter -> {model: skill, ``best``: skill, ``best_model``: name}).
    """
    n = int(results.get("n") or 0)
    nr = int(results.get("n_renders") or 1)
    skills: dict[str, dict[str, Any]] = {}
    for model, entry in (results.get("models") or {}).items():
        for r in entry.get("parameters", []):
            skills.setdefault(str(r.get("parameter")), {})[model] = _skill(r.get("skill"))
    for p, b in (results.get("best") or {}).items():
        skills.setdefault(str(p), {}).update(best=_skill(b.get("skill")), best_model=b.get("model"))
    return {"source": str(source), "probe": results.get("probe", "default"), "n": n, "n_renders": nr,
            "renders_total": int(results.get("renders_total") or n * nr), "data": results.get("data"),
            "models": list(results.get("models") or {}), "skills": skills}


def _run_label(s: dict[str, Any], this: dict[str, Any] | None = None) -> str:
    probe = "one note" if s.get("probe") in (None, "default") else f"probe {s['probe']}"
    label = f"{probe}: {s.get('n', 0):,} patches × {s.get('n_renders', 1)} = {s.get('renders_total', 0):,} renders"
    if this is not None:
        same = [w for w, k in (("renders", "renders_total"), ("patches", "n")) if s.get(k) == this.get(k)]
        label += f" (equal {' and '.join(same)})" if same else ""
    return label


def comparison_html(results: dict[str, Any]) -> list[str]:
    """The comparison section of a run with ``against`` runs ([] without them).

    Each run's column is its best skill per parameter (R², or chance-corrected accuracy), with the
    model; the models every run trained get a column each.
    """
    others = [a for a in results.get("against") or [] if isinstance(a, dict)]
    if not others:
        return []
    runs = [comparison_summary(results, "this run")] + others
    common = [m for m in runs[0]["models"] if m not in ("mean", "ensemble") and all(m in r["models"] for r in runs)]
    rows = []
    for p in results.get("columns", []):
        row: dict[str, Any] = {"parameter": p}
        for i, r in enumerate(runs):
            sk = r["skills"].get(p, {})
            row[f"best_{i}"], row[f"bm_{i}"] = sk.get("best"), sk.get("best_model")
            for m in common:
                row[f"{m}_{i}"] = sk.get(m)
        for i in range(1, len(runs)):
            a, b = row["best_0"], row[f"best_{i}"]
            row[f"gain_{i}"] = None if a is None or b is None else a - b
        rows.append(row)
    cols = [Column("parameter", "Parameter")]
    for i in range(len(runs)):
        name = "this run" if i == 0 else f"run {i}"
        cols.append(Column(f"best_{i}", f"Best, {name}", numeric=True, title=_run_label(runs[i]),
                           cell=(lambda k: lambda r: f'<span title="{esc(r[f"bm_{k}"] or "")}">'
                                                     f'{fmt_num(r[f"best_{k}"], 3)}</span>')(i)))
        cols += [Column(f"{m}_{i}", f"{m}, {name}", fmt=lambda v: fmt_num(v, 3), numeric=True) for m in common]
        if i:
            cols.append(Column(f"gain_{i}", f"This run − run {i}", fmt=lambda v: fmt_num(v, 3, signed=True),
                               numeric=True, title="best skill of this run minus that of the other run"))
    names = ["this run"] + [f"run {i} ({esc(r['source'])})" for i, r in enumerate(runs) if i]
    items = "".join(f"<li>{names[i]}: {esc(_run_label(r, None if i == 0 else runs[0]))}</li>"
                    for i, r in enumerate(runs))
    return ['<h3 id="probe-comparison">Probe against one note, per parameter</h3>',
            '<p>The same study on other datasets: a probe spends several renders on each patch, so an equal number '
            'of renders means fewer patches. Skill is R² (continuous) or chance-corrected accuracy (discrete); '
            'each run\'s own seeded test split.</p>', f"<ul>{items}</ul>",
            table(cols, rows, id="probe-comparison-t")]
