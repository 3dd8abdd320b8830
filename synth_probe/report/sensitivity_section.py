"""The sensitivity part of the predictability report, and its CSV/JSON files.

:func:`write_sensitivity_report` takes the study's data (``SensitivityResult.to_dict()``,
its table rows and its media) and writes ``sensitivity.json`` and ``sensitivity.csv`` (the
same numbers), the part ``10-sensitivity`` of ``predictability.html`` (ranked table, bar
chart, per-parameter sweeps with spectrogram strips and audio, method), then rebuilds the
page (:func:`synth_probe.report.pages.rebuild_predictability_page`) and the index.
"""
from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.fileio import read_json
from synth_probe.report import write_part
from synth_probe.report.html import (
    Column,
    audio_player,
    bar_chart,
    details,
    esc,
    fmt_num,
    key_value_table,
    spectrogram_strip,
    table,
    wav_data_uri,
)
from synth_probe.report.pages import rebuild_predictability_page

__all__ = ["write_sensitivity_report", "rebuild_from_json", "sensitivity_html", "PART_KEY", "PART_TITLE"]

PART_KEY = "10-sensitivity"
PART_TITLE = "Sensitivity: how strongly each parameter shows up in the sound"
CLIP_RATE = 16000


def _badge(cls: str | None) -> str:
    if not cls:
        return "—"
    return f'<span class="badge {esc(cls)}">{esc(cls)}</span>'


def _anchor(name: str) -> str:
    return f"param-{name}"


def _gate_text(p: dict[str, Any]) -> str:
    if not p.get("gated"):
        return "—"
    closed = p.get("score_closed")
    return f"{fmt_num(closed)} → {fmt_num(p.get('score'))}"


def _mono_text(p: dict[str, Any]) -> str:
    m = p.get("monotonicity")
    if m is None:
        return "—"
    return fmt_num(m)


def _method_html(data: dict[str, Any]) -> str:
    text = data.get("method", "")
    items = []
    cur: list[str] = []
    for line in text.splitlines():
        s = line.strip()
        if s[:2].rstrip(".").isdigit() and s[1:3].startswith("."):
            if cur:
                items.append(" ".join(cur))
            cur = [s.split(".", 1)[1].strip()]
        elif s:
            cur.append(s)
    if cur:
        items.append(" ".join(cur))

    def md(s: str) -> str:
        s = esc(s).replace("``", "")
        parts = s.split("**")
        out = "".join(f"<strong>{x}</strong>" if i % 2 else x for i, x in enumerate(parts))
        return re.sub(r"\*([^*\s][^*]*?)\*", r"<em>\1</em>", out)

    return "<ol>" + "".join(f"<li>{md(i)}</li>" for i in items) + "</ol>"


def _summary_html(data: dict[str, Any], params: list[dict[str, Any]]) -> list[str]:
    cfg, synth, stab = data["config"], data["synth"], data.get("stability")
    counts = {c: sum(p["classification"] == c for p in params) for c in ("strong", "weak", "inaudible")}
    stat = [
        f'<span class="stat"><b>{len(params)}</b> parameters</span>',
        f'<span class="stat"><b>{counts["strong"]}</b> strong</span>',
        f'<span class="stat"><b>{counts["weak"]}</b> weak</span>',
        f'<span class="stat"><b>{counts["inaudible"]}</b> inaudible</span>',
        f'<span class="stat"><b>{data.get("n_renders", 0)}</b> renders in <b>{fmt_num(data.get("seconds"), 0)}</b> s</span>',
    ]
    if stab and stab.get("spearman") is not None:
        stat.append(f'<span class="stat" id="stability-figure">stability ρ = <b>{fmt_num(stab["spearman"])}</b> '
                    f'over {stab["n"]} parameters</span>')
    out = [f'<p>{"".join(stat)}</p>']
    out.append(
        f"<p>Synth <strong>{esc(synth.get('synth'))}</strong>: each parameter was swept over "
        f"{cfg['steps']} values (every choice of a discrete one) on {cfg['bases']} base patches, and the score "
        "is how far the sweep moves the log-mel spectrogram above the render-noise floor "
        "(interquartile mean over the bases, dB of mean log-mel change; 90 % bootstrap interval). "
        "The method is at the end.</p>"
    )
    if not data.get("complete", True):
        out.append('<p class="note">This run was interrupted: only the parameters finished are listed.</p>')
    if stab:
        if stab.get("spearman") is not None:
            out.append(
                f'<p class="note">Stability: a second run with seed {stab["seeds"][1]} (other random bases and render '
                f'seeds) ranks the {stab["n"]} parameters above the noise floor in both runs with Spearman '
                f'ρ = {fmt_num(stab["spearman"], 3)}; over all '
                f'{stab.get("n_all")} parameters ρ = {fmt_num(stab.get("spearman_all"), 3)}, and '
                f'{fmt_num(100 * (stab.get("class_agreement") or 0), 0)} % keep their class.</p>'
            )
        else:
            out.append('<p class="note">Stability: too few parameters above the floor in both runs to compare.</p>')
    return out


def _ranking_html(params: list[dict[str, Any]], cfg: dict[str, Any]) -> list[str]:
    cols = [
        Column("rank", "Rank", numeric=True),
        Column("name", "Parameter", fmt=lambda v: f'<a href="#{_anchor(v)}">{esc(v)}</a>'),
        Column("score", "Score (dB)", fmt=fmt_num, numeric=True,
               title="interquartile mean over the bases of the sweep's log-mel spread above the noise floor"),
        Column("interval", "90 % interval", sort=lambda v: v[0] if v else None, numeric=True,
               fmt=lambda v: f"{fmt_num(v[0])} … {fmt_num(v[1])}" if v else "—",
               title="bootstrap over the bases"),
        Column("classification", "Class", fmt=_badge, sort=lambda v: {"strong": 0, "weak": 1}.get(v, 2)),
        Column("group", "Group"),
        Column("kind", "Kind"),
        Column("aspect", "Aspect moved", fmt=lambda v: esc(v or "—"),
               title="loudness, brightness, pitch, time envelope or modulation"),
        Column("monotonicity", "Monotonicity", fmt=lambda v: fmt_num(v), numeric=True,
               title="|Spearman ρ| of sweep position vs. 1-D embedding of the spectra (1 = invertible)"),
        Column("gate", "Gate closed → open (dB)", numeric=True, cell=_gate_text,
               title="score with the gate's parameters at their defaults, and with the gate opened"),
        Column("floor", "Floor (dB)", fmt=fmt_num, numeric=True, title="median render-noise floor of the bases"),
        Column("snr", "Spread / floor", fmt=lambda v: fmt_num(v, 1), numeric=True),
        Column("static_spread", "Static (dB)", fmt=fmt_num, numeric=True,
               title="spread of the time-averaged spectra (phase-robust)"),
    ]
    rows = [{**p, "interval": (p["ci_low"], p["ci_high"]),
             "gate": p.get("score_closed") if p.get("gated") else None} for p in params]
    out = ['<h3 id="ranking">Ranking</h3>',
           '<input class="filter-box" type="search" placeholder="filter rows (name, group, class…)" '
           'data-filter="sensitivity-table" aria-label="filter the table">',
           table(cols, rows, id="sensitivity-table", row_class=lambda r: f"cls-{r['classification']}")]
    out.append('<h3 id="chart">Scores with 90 % intervals</h3>')
    out.append(bar_chart(
        [p["name"] for p in params], [p["score"] for p in params],
        lows=[p["ci_low"] for p in params], highs=[p["ci_high"] for p in params],
        classes=[p["classification"] for p in params], links=[f"#{_anchor(p['name'])}" for p in params],
        unit="dB above floor", scale="sqrt", id="sensitivity-chart",
        reference=float(cfg.get("strong_db", 1.0)), reference_label=f"strong ≥ {cfg.get('strong_db', 1.0):g} dB",
    ))
    out.append('<p class="muted">Square-root axis. Blue: strong, orange: weak, grey: inaudible. '
               "Whiskers: 90 % bootstrap interval over the bases. Click a name for its sweep.</p>")
    return out


def _sweep_html(p: dict[str, Any], m: dict[str, Any] | None, audio_top: int) -> str:
    name = p["name"]
    info = [
        ("score", f"{fmt_num(p['score'])} dB [{fmt_num(p['ci_low'])}, {fmt_num(p['ci_high'])}]"),
        ("class", p["classification"]),
        ("spread / floor (median)", f"{fmt_num(p['spread'])} / {fmt_num(p['floor'])} dB"),
        ("neighbour distance", f"{fmt_num(p['neighbour'])} dB"),
        ("bases showing it", f"{fmt_num(100 * p['audible_fraction'], 0)} %"),
        ("aspects (× just-noticeable)", ", ".join(f"{a} {fmt_num(v, 1)}" for a, v in p["aspects"].items())),
    ]
    if p.get("gated"):
        info.append(("gate", ", ".join(f"{k}={v:.3g}" for k, v in p["gate"].items())))
        info.append(("gate closed", f"{fmt_num(p.get('score_closed'))} dB ({p.get('class_closed')})"))
    if p.get("inert_spec"):
        info.append(("spec", "marked inert on a held note"))
    body = [key_value_table(info)]
    if m is not None:
        strip = np.asarray(m["strip"], dtype=np.float32)
        n = strip.shape[0]
        pick = np.unique(np.round(np.linspace(0, n - 1, min(n, 9))).astype(int))
        labels = [p["labels"][i] if i < len(p["labels"]) else "" for i in pick]
        body.append(f'<img class="strip" alt="log-mel spectrograms along the sweep of {esc(name)}" '
                    f'src="{spectrogram_strip([strip[i] for i in pick])}">')
        body.append('<div class="strip-labels">' + "".join(f"<span>{esc(x)}</span>" for x in labels) + "</div>")
        if p["rank"] <= audio_top and "clips" in m:
            clips = m["clips"]
            body.append(audio_player(wav_data_uri(clips[0], CLIP_RATE), f"{name} = {p['labels'][0]}"))
            body.append(audio_player(wav_data_uri(clips[-1], CLIP_RATE), f"{name} = {p['labels'][-1]}"))
    summary = (f"#{p['rank']} {esc(name)} {_badge(p['classification'])} "
               f"<span class=\"muted\">{fmt_num(p['score'])} dB · {esc(p['group'])}"
               f"{' · ' + esc(p['aspect']) if p.get('aspect') else ''}</span>")
    return details(summary, "".join(body), id=_anchor(name))


def _settings_html(data: dict[str, Any]) -> list[str]:
    cfg, synth = data["config"], data["synth"]
    settings = [
        ("synth", synth.get("synth")),
        *[(f"synth {k}", v) for k, v in synth.items() if k != "synth"],
        ("bases (K)", cfg["bases"]),
        ("sweep steps (S)", cfg["steps"]),
        ("discrete sweeps", "every choice" if cfg.get("max_choices") is None else f"at most {cfg['max_choices']} choices"),
        ("noise-floor renders per base (R)", cfg["floor_seeds"]),
        ("sampler of random bases", data.get("sampler_used")),
        ("seed", cfg["seed"]),
        ("render", f"note {cfg['note']}, velocity {cfg['velocity']}, note {cfg['note_length']:g} s in a "
                   f"{cfg['render_length']:g} s render at {cfg['sample_rate']} Hz"),
        ("log-mel resolutions", "512/128, 1024/256, 2048/512 (n_fft/hop); 32/64/128 bands; floor -80 dB"),
        ("thresholds", f"strong: score ≥ {cfg['strong_db']:g} dB; audible base: spread > "
                       f"max({cfg['floor_factor']:g}×floor, {cfg['audible_db']:g} dB)"),
        ("aspect scales", ", ".join(f"{k} {v:g}" for k, v in data.get("aspect_scales", {}).items())),
        ("bootstrap resamples", cfg["bootstrap"]),
        ("jobs", cfg["jobs"]),
        ("renders", data.get("n_renders")),
        ("time", f"{fmt_num(data.get('seconds'), 1)} s (rendering and analysis {fmt_num(data.get('render_seconds'), 1)} s)"),
        ("noise floor over all measurements", f"median {fmt_num(data['floors'].get('median_db'), 3)} dB, "
                                              f"max {fmt_num(data['floors'].get('max_db'), 3)} dB"),
        ("created", data.get("created")),
    ]
    return ['<h3 id="method">Method</h3>', _method_html(data), key_value_table(settings, id="method-settings"),
            "<h3>Library versions</h3>", key_value_table(sorted(data.get("versions", {}).items())),
            "<h3>Base patches</h3>",
            "<ul>" + "".join(
                f"<li>base {b['base']}: {esc(b['kind'])}, {b['n_changed']} parameters differ from the default</li>"
                for b in data.get("bases", [])) + "</ul>",
            '<p class="muted">The numbers are also in <a href="sensitivity.csv">sensitivity.csv</a> and '
            '<a href="sensitivity.json">sensitivity.json</a>.</p>']


def sensitivity_html(data: dict[str, Any], media: dict[str, Any] | None = None, *, audio_top: int = 20) -> str:
    """The HTML body of the sensitivity part.

    Parameters
    ----------
    data : dict
        ``SensitivityResult.to_dict()`` (or the loaded ``sensitivity.json``).
    media : dict, optional
        Per parameter ``{"strip": (n_values, n_mels, n_frames) dB, "clips": (2, n) int16}``
        of the first base's sweep; without it the sweeps show no pictures or audio.
    audio_top : int
        Audio players for the sweep ends of the top-ranked parameters only (file size).

    Returns
    -------
    html : str
    """
    media = media or {}
    params = sorted(data["params"], key=lambda p: p["rank"])
    cfg = data["config"]
    out = _summary_html(data, params) + _ranking_html(params, cfg)
    out.append('<h3 id="sweeps">Sweeps</h3>')
    out.append(f"<p class=\"muted\">Log-mel spectrograms (1024-sample frames, -80…0 dB) along each sweep on the "
               f"default patch{' with the gate opened' if any(p.get('gated') for p in params) else ''}; audio "
               f"players ({CLIP_RATE // 1000} kHz, first {cfg.get('media_clip', 1.0):g} s) for the sweep's ends of the "
               f"top {audio_top} parameters.</p>")
    out += [_sweep_html(p, media.get(p["name"]), audio_top) for p in params]
    return "\n".join(out + _settings_html(data))


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in r.items()})
    os.replace(tmp, path)


def write_sensitivity_report(data: dict[str, Any], rows: list[dict[str, Any]], reports_dir: str | os.PathLike, *,
                             media: dict[str, Any] | None = None, audio_top: int = 20) -> dict[str, Path]:
    """Write ``sensitivity.json``, ``sensitivity.csv``, the report part, ``predictability.html`` and the index.

    Parameters
    ----------
    data : dict
        ``SensitivityResult.to_dict()``.
    rows : list of dict
        ``SensitivityResult.table_rows()``: the CSV's rows.
    reports_dir : path
    media : dict, optional
        ``SensitivityResult.media`` (see :func:`sensitivity_html`).
    audio_top : int
        Parameters (by rank) whose sweep ends get audio players.

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``csv``, ``part``, ``html``, ``index``.
    """
    d = Path(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    jpath = d / "sensitivity.json"
    tmp = jpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, jpath)
    cpath = d / "sensitivity.csv"
    _write_csv(rows, cpath)
    part = write_part(d, "predictability", PART_KEY, PART_TITLE, sensitivity_html(data, media, audio_top=audio_top))
    page = rebuild_predictability_page(d)
    return {"json": jpath, "csv": cpath, "part": part, "html": page, "index": d / "index.html"}


def rebuild_from_json(reports_dir: str | os.PathLike) -> Path:
    """Rebuild the part and the page from ``sensitivity.json`` alone (no spectrograms or audio)."""
    d = Path(reports_dir)
    data = read_json(d / "sensitivity.json", error=DatasetError, what="sensitivity results")
    write_part(d, "predictability", PART_KEY, PART_TITLE, sensitivity_html(data, None))
    return rebuild_predictability_page(d)
