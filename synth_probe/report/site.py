"""The reports as one site: the landing page's content and the "measured so far" part of the predictability page.

Plain functions of the studies' JSON data as they lie in a reports folder (``sensitivity.json``,
``predictability.json``, ``identifiability.json``, ``fidelity.json``, ``matching.json``, ``tune_<param>.json``);
any of them may be missing or hold less than a finished run (read defensively: a missing key is simply not
shown). :func:`synth_probe.report.write_index` reads the files and calls :func:`landing_sections`;
:func:`synth_probe.report.pages.rebuild_predictability_page` calls :func:`status_html`.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from synth_probe.report.html import Column, Section, esc, fmt_num, table

__all__ = ["Step", "STEPS", "synth_name", "status_html", "landing_sections", "STATUS_KEY", "STATUS_TITLE"]

STATUS_KEY = "00-status"
STATUS_TITLE = "What this page shows so far"


@dataclass(frozen=True)
class Step:
    """One study: its data file, the command that runs it, about how long it takes, what it adds, its page."""

    key: str
    data: str
    command: str
    time: str
    adds: str
    page: str


#: the studies in the order a user runs them; times are the README's figures (2-core machine), rounded
STEPS: tuple[Step, ...] = (
    Step("sensitivity", "sensitivity.json", "make sensitivity",
         "about 1 min on 2 cores; about 3 min from a fresh clone, with the install",
         "which parameters show up in the sound: strong, weak or inaudible", "predictability.html"),
    Step("predictability", "predictability.json", "make predictability", "about 20 min on 2 cores",
         "how well each parameter is recovered from the sound: six models trained on 20,000 renders",
         "predictability.html"),
    Step("identifiability", "identifiability.json", "make identifiability", "about 12 min on 2 cores",
         "whether each parameter is masked, confounded or distinct among random patches, and what that "
         "allows a model", "predictability.html"),
    Step("tune", "tune_*.json", "make tune PARAM=cutoff",
         "a 30 min search by default (--timeout), plus its 5,000-render dataset on a first run",
         "a tuned model for one parameter, against the untuned default", "tune_<param>.html"),
    Step("fidelity", "fidelity.json", "synth-probe compare noisemaker B",
         "under a minute for 800 reference probes at 2 jobs", "how close the emulation sounds to another synth "
         "or to reference audio", "fidelity.html"),
    Step("matching", "matching.json", "make match-eval", "8–12 min on 2 cores",
         "sound matching on amsynth's factory presets: model, local search and baselines", "matching.html"),
)
_BY_KEY = {s.key: s for s in STEPS}
_PAGE_STEPS = ("sensitivity", "predictability", "identifiability")  # the parts of predictability.html


def _get(d: Any, *keys: str) -> Any:
    """``d[k1][k2]...`` or None where any level is missing or not a dict."""
    for k in keys:
        if not isinstance(d, Mapping):
            return None
        d = d.get(k)
    return d


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def synth_name(data: Mapping[str, Any] | None) -> str | None:
    """The synth a study's data names (``synth`` as a string or as ``{"synth": name, ...}``)."""
    s = _get(data, "synth")
    if isinstance(s, Mapping):
        s = s.get("synth")
    if s is None:
        s = _get(data, "a", "synth") or _get(data, "config", "plugin")
    return None if s is None else str(s)


def _when(data: Mapping[str, Any] | None) -> str:
    """When the study ran: its ``created`` time, else its file's (``_modified``, added by the reader)."""
    return str(_get(data, "created") or _get(data, "_modified") or "—")


def _seconds(data: Mapping[str, Any] | None, key: str) -> float | None:
    if key == "matching":
        return _num(_get(data, "timings", "total_s"))
    return _num(_get(data, "seconds"))


def _duration(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _next_item(step: Step) -> str:
    return f"<li><code>{esc(step.command)}</code> ({esc(step.time)}) adds {esc(step.adds)}.</li>"


def status_html(datas: Mapping[str, Mapping[str, Any] | None]) -> str:
    """The first part of the predictability page: which of its studies are measured, and the commands that add the rest.

    Parameters
    ----------
    datas : dict
        ``"sensitivity"``, ``"predictability"``, ``"identifiability"`` -> the loaded JSON, or None.

    Returns
    -------
    html : str
    """
    done = [k for k in _PAGE_STEPS if datas.get(k)]
    todo = [k for k in _PAGE_STEPS if not datas.get(k)]
    names = {"sensitivity": "Sensitivity", "predictability": "Measured predictability",
             "identifiability": "Identifiability in context"}
    if done:
        measured = "; ".join(f"<strong>{names[k]}</strong> ({esc(_when(datas[k]))}, {esc(synth_name(datas[k]) or '?')})"
                             for k in done)
        out = [f'<p id="measured-so-far">Measured so far: {measured}.</p>']
    else:
        out = ['<p id="measured-so-far">Nothing is measured in this folder yet.</p>']
    if todo:
        out.append('<p>Still to run (times are approximate, from the README\'s figures):</p><ul class="next" '
                   'id="still-to-run">' + "".join(_next_item(_BY_KEY[k]) for k in todo) + "</ul>")
    else:
        out.append('<p id="still-to-run">All three studies of this page are in: each parameter\'s sensitivity, '
                   "its measured predictability and its identifiability in context sit side by side below.</p>")
    out.append('<p class="muted"><a href="index.html">All reports of this folder</a>, with the headline answers.</p>')
    return "\n".join(out)


def _runs_table(datas: Mapping[str, Any], tunes: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for step in STEPS:
        if step.key == "tune":
            for t in tunes:
                rows.append({"study": f"tune {t.get('param', '?')}", "synth": synth_name(t) or "—",
                             "when": _when(t), "time": "—", "page": f"tune_{t.get('_stem', '')}.html"})
            continue
        d = datas.get(step.key)
        if d:
            rows.append({"study": step.key, "synth": synth_name(d) or "—", "when": _when(d),
                         "time": _duration(_seconds(d, step.key)), "page": step.page})
    cols = [Column("study", "Study"), Column("synth", "Synth"), Column("when", "When"),
            Column("time", "Run time"),
            Column("page", "Report", fmt=lambda v: f'<a href="{esc(v)}">{esc(v)}</a>')]
    return table(cols, rows, id="runs", sortable=False)


def _param_link(name: str) -> str:
    return f'<a href="predictability.html#param-{esc(name)}">{esc(name)}</a>'


def _sensitivity_answer(d: Mapping[str, Any]) -> str:
    params = sorted((p for p in d.get("params", []) if isinstance(p, Mapping) and "rank" in p),
                    key=lambda p: p["rank"])
    if not params:
        return ""
    counts = {c: sum(p.get("classification") == c for p in params) for c in ("strong", "weak", "inaudible")}
    audible = [p for p in params if p.get("classification") != "inaudible"]

    def names(ps: Sequence[Mapping[str, Any]]) -> str:
        return ", ".join(f"{_param_link(p['name'])} ({fmt_num(p.get('score'))} dB)" for p in ps)

    return (f'<div id="answer-sensitivity"><h3>Which parameters show up in the sound</h3>'
            f"<p>{len(params)} parameters: <b>{counts['strong']}</b> strong, <b>{counts['weak']}</b> weak, "
            f"<b>{counts['inaudible']}</b> inaudible.</p><p>Strongest: {names(params[:5])}.</p>"
            + (f"<p>Weakest still audible: {names(audible[5:][-5:][::-1])}.</p>" if audible[5:] else "")
            + "</div>")


def _predictability_answer(d: Mapping[str, Any]) -> str:
    best = d.get("best") if isinstance(d.get("best"), Mapping) else {}
    rows = [{"parameter": p, "model": _get(b, "model"), "skill": _num(_get(b, "skill"))}
            for p, b in best.items() if isinstance(b, Mapping)]
    if not rows:
        return ""
    rows.sort(key=lambda r: -(r["skill"] if r["skill"] is not None else -9))
    wins: dict[str, int] = {}
    for r in rows:
        wins[str(r["model"])] = wins.get(str(r["model"]), 0) + 1
    top = ", ".join(f"{esc(m)} on {n}" for m, n in sorted(wins.items(), key=lambda kv: -kv[1]))
    cols = [Column("parameter", "Parameter"), Column("model", "Best model"),
            Column("skill", "Skill", fmt=lambda v: fmt_num(v, 3), numeric=True,
                   title="R² (continuous) or chance-corrected accuracy (discrete) on held-out renders")]
    tab = table(cols, rows, id="answer-best-models").replace('class="table-wrap"', 'class="table-wrap tall"', 1)
    return (f'<div id="answer-predictability"><h3>How well each parameter is recovered</h3>'
            f"<p>Best model per parameter ({len(rows)} parameters; best: {top}). Skill: R², or "
            f'(accuracy − chance) / (1 − chance). Details in <a href="predictability.html#measured">the '
            f"predictability report</a>.</p>{tab}</div>")


def _identifiability_answer(d: Mapping[str, Any]) -> str:
    summ = [r for r in d.get("summary", []) if isinstance(r, Mapping) and _num(r.get("distinct")) is not None]
    if not summ:
        return ""
    mean = sum(float(r["distinct"]) for r in summ) / len(summ)
    most = sorted(summ, key=lambda r: -float(r["distinct"]))[:5]
    return (f'<div id="answer-identifiability"><h3>Distinct among random patches</h3>'
            f"<p>Mean distinct share <b>{mean:.2f}</b> over {len(summ)} parameters "
            f"(<code>{esc(_get(d, 'config', 'sampler') or '?')}</code> patches). Most often distinct: "
            + ", ".join(f"{esc(r['parameter'])} ({100 * float(r['distinct']):.0f} %)" for r in most)
            + ".</p></div>")


def _fidelity_answer(d: Mapping[str, Any]) -> str:
    med = _num(_get(d, "overall", "median_db"))
    if med is None:
        return ""
    b = _get(d, "b", "folder") or _get(d, "b", "synth") or "B"
    ret = _num(_get(d, "overall", "retrieval"))
    r = f", retrieval {100 * ret:.1f} %" if ret is not None else ""
    return (f'<div id="answer-fidelity"><h3>How close the emulation sounds</h3><p><code>{esc(synth_name(d))}'
            f"</code> against <code>{esc(b)}</code>: median distance <b>{med:.2f} dB</b> over "
            f"{esc(_get(d, 'overall', 'n'))} probes{r}.</p></div>")


def _tune_answer(tunes: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for t in tunes:
        tuned, default = _num(_get(t, "best", "test")), _num(_get(t, "default", "test"))
        verdict = "—" if tuned is None or default is None else (
            "beats the default" if t.get("beats_default") else "does not beat the default")
        rows.append({"param": t.get("param"), "metric": "R²" if t.get("metric") == "r2" else "balanced accuracy",
                     "trials": t.get("n_trials"), "tuned": tuned, "default": default, "verdict": verdict,
                     "page": f"tune_{t.get('_stem', '')}.html"})
    if not rows:
        return ""
    cols = [Column("param", "Parameter"), Column("metric", "Metric"), Column("trials", "Trials", numeric=True),
            Column("tuned", "Test: tuned", fmt=lambda v: fmt_num(v, 4), numeric=True),
            Column("default", "Test: untuned default", fmt=lambda v: fmt_num(v, 4), numeric=True),
            Column("verdict", "Outcome"), Column("page", "Report", fmt=lambda v: f'<a href="{esc(v)}">{esc(v)}</a>')]
    return f'<div id="answer-tuning"><h3>Tuning</h3>{table(cols, rows, id="answer-tunes", sortable=False)}</div>'


def _matching_answer(d: Mapping[str, Any]) -> str:
    lm = _get(d, "summary", "log_mel")
    mh, dh = _num(_get(lm, "model_hill", "median")), _num(_get(lm, "default_hill", "median"))
    if mh is None or dh is None:
        return ""
    return (f'<div id="answer-matching"><h3>Sound matching</h3><p>Median log-mel distance on '
            f"{esc(_get(d, 'config', 'n_presets'))} amsynth presets: model + hill climber <b>{mh:.2f} dB</b>, "
            f"hill climber from the default patch {dh:.2f} dB.</p></div>")


def landing_sections(datas: Mapping[str, Mapping[str, Any] | None], tunes: Sequence[Mapping[str, Any]],
                     files_html: str) -> list[Section]:
    """The sections of ``reports/index.html``.

    Parameters
    ----------
    datas : dict
        Study key (``sensitivity``, ``predictability``, ``identifiability``, ``fidelity``, ``matching``) ->
        its loaded JSON, or None when the folder has none.
    tunes : sequence of dict
        The ``tune_<param>.json`` summaries, each with ``_stem`` (the ``<param>`` of its file name).
    files_html : str
        The table of every file of the folder.

    Returns
    -------
    sections : list of Section
    """
    ran = any(datas.values()) or bool(tunes)
    answers = [_sensitivity_answer(datas["sensitivity"]) if datas.get("sensitivity") else "",
               _predictability_answer(datas["predictability"]) if datas.get("predictability") else "",
               _identifiability_answer(datas["identifiability"]) if datas.get("identifiability") else "",
               _tune_answer(tunes), _fidelity_answer(datas["fidelity"]) if datas.get("fidelity") else "",
               _matching_answer(datas["matching"]) if datas.get("matching") else ""]
    answers = [a for a in answers if a]
    sections = []
    if ran:
        sections.append(Section("runs", "What was run", _runs_table(datas, tunes)))
    if answers:
        sections.append(Section("answers", "Headline answers", f'<div class="answers">{"".join(answers)}</div>'))
    todo = [s for s in STEPS if not (tunes if s.key == "tune" else datas.get(s.key))]
    if todo:
        intro = "" if ran else "<p>No study has written to this folder yet. Start with the first command.</p>"
        sections.append(Section("next", "Not run yet", intro + '<ul class="next" id="not-run">'
                                + "".join(_next_item(s) for s in todo) + "</ul>"
                                + '<p class="muted">Times are approximate, from the README\'s figures.</p>'))
    sections.append(Section("files", "Reports and data in this folder", files_html))
    return sections
