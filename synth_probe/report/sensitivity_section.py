"""The sensitivity part of the predictability report, and its CSV/JSON files.

:func:`write_sensitivity_report` takes the study's data (``SensitivityResult.to_dict()``,
its table rows and its media) and writes ``sensitivity.json`` and ``sensitivity.csv`` (the
same numbers), the part ``10-sensitivity`` of ``predictability.html`` (ranked table, bar
chart, per-parameter sweeps with spectrogram strips and audio, method), then rebuilds the
page (:func:`synth_probe.report.pages.rebuild_predictability_page`) and the index.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from synth_probe.errors import DatasetError
from synth_probe.fileio import read_json
from synth_probe.report import write_part
from synth_probe.report.charts import spectrogram_figure
from synth_probe.report.html import (
    Column,
    audio_player,
    bar_chart,
    clip_plan,
    details,
    esc,
    fmt_num,
    key_value_table,
    resample_clip,
    table,
    wav_data_uri,
)
from synth_probe.report.pages import rebuild_predictability_page
from synth_probe.util import atomic_text

__all__ = ["write_sensitivity_report", "rebuild_from_json", "sensitivity_html", "PART_KEY", "PART_TITLE"]

PART_KEY = "10-sensitivity"
PART_TITLE = "Sensitivity: how strongly each parameter shows up in the sound"
CLIP_RATE = 16000  # the study's clips (synth_probe.sensitivity_analysis.clips)
STRIP_HOP = 1024 // 4  # the strips are the study's 1024/256 log-mel spectrograms
AUDIO_MB = 5.0


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


def _sweep_html(p: dict[str, Any], m: dict[str, Any] | None, audio: dict[str, Any]) -> str:
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
        body.append(spectrogram_figure([strip[i] for i in pick], labels, sample_rate=audio["sample_rate"],
                                       hop=STRIP_HOP, alt=f"log-mel spectrograms along the sweep of {name}"))
        if name in audio["names"] and "clips" in m:
            rate, sec = audio["rate"], audio["seconds"]
            for clip, lab in ((m["clips"][0], p["labels"][0]), (m["clips"][-1], p["labels"][-1])):
                body.append(audio_player(wav_data_uri(resample_clip(clip, CLIP_RATE, rate, sec), rate),
                                         f"{name} = {lab}"))
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


def _audio_plan(params: list[dict[str, Any]], media: dict[str, Any], audio_top: int | None,
                audio_mb: float, clip_seconds: float) -> dict[str, Any]:
    """Which sweeps get audio (the audible ones, or the top ``audio_top`` of them) and at what rate and length."""
    audible = [p["name"] for p in params if p["classification"] != "inaudible" and "clips" in media.get(p["name"], {})]
    names = audible if audio_top is None else audible[:audio_top]
    if names:
        clip_seconds = min(clip_seconds, media[names[0]]["clips"].shape[-1] / CLIP_RATE)
    rate, seconds = clip_plan(2 * len(names), clip_seconds, audio_mb)
    return {"names": set(names), "n": len(names), "rate": rate, "seconds": seconds, "mb": audio_mb}


def _sweeps_intro(params: list[dict[str, Any]], audio: dict[str, Any], audio_top: int | None) -> str:
    who = "every audible parameter (strong or weak)" if audio_top is None else \
        f"the top {audio_top} audible parameters"
    gate = " with the gate opened" if any(p.get("gated") for p in params) else ""
    if not audio["has_media"]:
        return ('<p class="muted" id="sweeps-note">This part was rebuilt from sensitivity.json alone: the '
                "spectrograms and audio of the sweeps come with a run of the study.</p>")
    return (f'<p class="muted" id="sweeps-note">Log-mel spectrograms (1024-sample frames, 64 mel bands, -80…0 dB) '
            f"along each sweep on the default patch{gate}. Audio players for the sweep's two ends of {who}: "
            f"{audio['n']} parameters, {2 * audio['n']} clips at {audio['rate'] / 1000:g} kHz, the first "
            f"{audio['seconds']:g} s of each render, chosen to keep all audio within a budget of "
            f"{audio['mb']:g} MB of this page.</p>")


def sensitivity_html(data: dict[str, Any], media: dict[str, Any] | None = None, *, audio_top: int | None = None,
                     audio_mb: float = AUDIO_MB) -> str:
    """The HTML body of the sensitivity part.

    Parameters
    ----------
    data : dict
        ``SensitivityResult.to_dict()`` (or the loaded ``sensitivity.json``).
    media : dict, optional
        Per parameter ``{"strip": (n_values, n_mels, n_frames) dB, "clips": (2, n) int16 at 16 kHz}``
        of the first base's sweep; without it the sweeps show no pictures or audio.
    audio_top : int or None
        Audio players for the sweep ends of the top ``audio_top`` audible parameters only
        (None: every audible parameter).
    audio_mb : float
        Size budget of all audio in the page (MB of data URIs): the clips are resampled to the highest of
        16, 12, 11.025 or 8 kHz that fits, and shortened if even 8 kHz does not.

    Returns
    -------
    html : str
    """
    media = media or {}
    params = sorted(data["params"], key=lambda p: p["rank"])
    cfg = data["config"]
    out = _summary_html(data, params) + _ranking_html(params, cfg)
    audio = _audio_plan(params, media, audio_top, audio_mb, float(cfg.get("media_clip", 1.0)))
    audio.update(sample_rate=int(cfg["sample_rate"]), has_media=bool(media))
    out.append('<h3 id="sweeps">Sweeps</h3>')
    out.append(_sweeps_intro(params, audio, audio_top))
    out += [_sweep_html(p, media.get(p["name"]), audio) for p in params]
    return "\n".join(out + _settings_html(data))


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    f = io.StringIO(newline="")
    if rows:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in r.items()})
    atomic_text(path, f.getvalue())


def write_sensitivity_report(data: dict[str, Any], rows: list[dict[str, Any]], reports_dir: str | os.PathLike, *,
                             media: dict[str, Any] | None = None, audio_top: int | None = None,
                             audio_mb: float = AUDIO_MB) -> dict[str, Path]:
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
    audio_top : int or None
        Only the top ``audio_top`` audible parameters get audio players (None: every audible one).
    audio_mb : float
        Size budget of the page's audio (see :func:`sensitivity_html`).

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``csv``, ``part``, ``html``, ``index``.
    """
    d = Path(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    jpath = d / "sensitivity.json"
    atomic_text(jpath, json.dumps(data, indent=1, allow_nan=False))
    cpath = d / "sensitivity.csv"
    _write_csv(rows, cpath)
    part = write_part(d, "predictability", PART_KEY, PART_TITLE, sensitivity_html(data, media, audio_top=audio_top,
                                                                               audio_mb=audio_mb))
    page = rebuild_predictability_page(d)
    return {"json": jpath, "csv": cpath, "part": part, "html": page, "index": d / "index.html"}


def rebuild_from_json(reports_dir: str | os.PathLike) -> Path:
    """Rebuild the part and the page from ``sensitivity.json`` alone (no spectrograms or audio)."""
    d = Path(reports_dir)
    data = read_json(d / "sensitivity.json", error=DatasetError, what="sensitivity results")
    write_part(d, "predictability", PART_KEY, PART_TITLE, sensitivity_html(data, None))
    return rebuild_predictability_page(d)
