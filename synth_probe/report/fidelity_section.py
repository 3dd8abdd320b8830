"""The fidelity report: ``fidelity.html``, ``fidelity.csv`` (one row per probe) and ``fidelity.json`` (the summary).

Takes plain data only: the summary dict, the per-probe rows and, for the probes
to listen to, their clips and spectrograms (see :func:`write_fidelity_report`).
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from pathlib import Path
from typing import Any

from synth_probe.report import write_index
from synth_probe.report.charts import spectrogram_figure
from synth_probe.report.html import (
    Column,
    Section,
    audio_player,
    details,
    esc,
    fmt_num,
    key_value_table,
    render_page,
    table,
    wav_data_uri,
)
from synth_probe.util import atomic_text, json_clean

__all__ = ["write_fidelity_report", "fidelity_page"]

PAGE = "fidelity.html"


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.1f} %"


def _anchor(pid: str) -> str:
    return "probe-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in str(pid))


def _who(summary: dict[str, Any]) -> tuple[str, str]:
    a = summary["a"].get("synth", "A")
    b = summary["b"]
    return str(a), str(b.get("folder") or b.get("synth") or "B")


def _short(name: str) -> str:
    """A synth's name, or the last part of a folder's or plugin's path."""
    return Path(name.rstrip("/")).name or name


def _stat(label: str, value: str, id: str = "") -> str:
    i = f' id="{esc(id)}"' if id else ""
    return f'<span class="stat"{i}>{label} <b>{value}</b></span>'


def _summary_html(s: dict[str, Any]) -> str:
    o, fl, cfg = s["overall"], s["floor"], s["settings"]
    a, b = _who(s)
    stats = [
        _stat("probes", str(o["n"])),
        _stat("median distance", f"{fmt_num(o['median_db'])} dB", "median-distance"),
        _stat("mean", f"{fmt_num(o['mean_db'])} dB"),
        _stat("retrieval", _pct(o["retrieval"]), "retrieval-rate"),
        _stat("B sounds, A silent", str(o["b_sounds_a_silent"]), "silent-misses"),
        _stat("A sounds, B silent", str(o["a_sounds_b_silent"])),
        _stat("B's floor", f"{fmt_num(fl.get('median_db'))} dB" if fl.get("measurable") else "not measurable"),
    ]
    if s.get("contrast_db") is not None:
        stats.append(_stat("other patches", f"{fmt_num(s['contrast_db'])} dB"))
    kind = "the reference folder" if s["mode"] == "folder" else "the synth"
    text = (f"<p><b>A</b> = <code>{esc(a)}</code>, <b>B</b> = {kind} <code>{esc(b)}</code>, on {o['n']} probes "
            f"({s['probes']['distinct_patches']} distinct patches, from {esc(s['probes']['source'])}); one note from "
            f"0 s, released at {cfg['note_length']:g} s, {cfg['render_length']:g} s at {cfg['sample_rate']} Hz, mono. "
            "Distance: multi-resolution log-mel (dB, 0 = identical spectrograms). Retrieval: the share of A renders "
            "whose nearest B render, by the same distance, is their own patch. B's floor: how far B is from itself "
            f"({esc(fl.get('how', ''))}); 'other patches': the median distance of A renders to other patches' "
            "B renders, for scale.</p>")
    return f"<p>{''.join(stats)}</p>{text}"


def _group_table(rows: list[dict[str, Any]], id: str, label: str) -> str:
    cols = [
        Column("name", label),
        Column("n", "Probes", numeric=True),
        Column("median_db", "Median (dB)", fmt=fmt_num, numeric=True),
        Column("mean_db", "Mean (dB)", fmt=fmt_num, numeric=True),
        Column("retrieval", "Retrieval", fmt=_pct, numeric=True),
        Column("b_sounds_a_silent", "A silent", numeric=True, title="probes where B sounds and A is silent"),
        Column("a_sounds_b_silent", "B silent", numeric=True, title="probes where A sounds and B is silent"),
        Column("loudness_abs_db", "|Δ loudness| (dB)", fmt=fmt_num, numeric=True),
        Column("centroid_abs_st", "|Δ centroid| (st)", fmt=fmt_num, numeric=True),
        Column("f0_abs_st", "|Δ f0| (st)", fmt=fmt_num, numeric=True),
        Column("length_abs_s", "|Δ length| (s)", fmt=fmt_num, numeric=True),
    ]
    return table(cols, rows, id=id)


def _sensitivity_html(ag: dict[str, Any]) -> str:
    la, lb = ag["labels"]
    stats = [
        _stat("Spearman ρ, all", f"{fmt_num(ag['spearman_all'], 3)}", "rho-all"),
        _stat(f"over the {ag['n_audible']} above the floor in either", fmt_num(ag["spearman_audible"], 3)),
        _stat("same class", f"{ag['class_agree']} of {ag['n']}", "class-agree"),
    ]
    conf = ag["confusion"]
    classes = ("strong", "weak", "inaudible")
    head = "".join(f"<th>B {c}</th>" for c in classes)
    body = "".join(f"<tr><th>A {r}</th>" + "".join(f"<td class='num'>{conf[f'{r}/{c}']}</td>" for c in classes)
                   + "</tr>" for r in classes)
    cols = [Column("name", "Parameter"),
            Column("rank_a", "Rank A", fmt=lambda v: fmt_num(v, 0), numeric=True),
            Column("rank_b", "Rank B", fmt=lambda v: fmt_num(v, 0), numeric=True),
            Column("score_a", "Score A (dB)", fmt=fmt_num, numeric=True),
            Column("score_b", "Score B (dB)", fmt=fmt_num, numeric=True),
            Column("class_a", "Class A"), Column("class_b", "Class B")]
    only = ""
    if ag["only_a"] or ag["only_b"]:
        only = (f"<p class='note'>Only in A: {esc(', '.join(ag['only_a']) or '—')}; only in B: "
                f"{esc(', '.join(ag['only_b']) or '—')}.</p>")
    return (f"<p>{''.join(stats)}</p><p>A = <code>{esc(la)}</code>, B = <code>{esc(lb)}</code>; ranks over the "
            f"{ag['n']} parameters in both (1 = strongest); 'above the floor' = not classed inaudible.</p>{only}"
            f"<table class='kv' id='class-confusion'><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table><h3>Largest rank disagreements</h3>{table(cols, ag['disagreements'], id='rank-disagreements')}")


def _listen_html(s: dict[str, Any], rows: list[dict[str, Any]], media: dict[str, dict[str, Any]]) -> str:
    a, b = (_short(x) for x in _who(s))
    labels = s["probes"]["labels"]
    by_id = {r["id"]: r for r in rows}
    out = []
    for k, (pid, m) in enumerate(media.items()):
        r = by_id[pid]
        taken = (f"; taken for {r['nearest_other']} ({fmt_num(r['nearest_other_db'])} dB)"
                 if r["nearest_other"] else "; retrieved")
        info = [("distance", f"{fmt_num(r['distance_db'])} dB (own patch ranks {r['own_rank']}{taken})"),
                ("note, velocity", f"{r['note']}, {r['velocity']}"),
                ("loudness A / B", f"{fmt_num(r['loudness_a_db'], 1)} / {fmt_num(r['loudness_b_db'], 1)} dB"),
                ("centroid A − B", f"{fmt_num(r['centroid_diff_st'], 1)} st"),
                ("f0 A / B", f"{fmt_num(r['f0_a_st'], 1)} / {fmt_num(r['f0_b_st'], 1)} st"),
                ("audible length A / B", f"{fmt_num(r['length_a_s'])} / {fmt_num(r['length_b_s'])} s"),
                ("peak A / B", f"{fmt_num(r['peak_a'], 3)} / {fmt_num(r['peak_b'], 3)}")]
        info += [(c, r.get(c, "")) for c in labels]
        info.append(("changed from the default", ", ".join(m["changed"]) or "nothing (the default patch)"))
        fig = spectrogram_figure([m["mel_a"], m["mel_b"]], [f"A: {a}", f"B: {b}"], max_frames=180,
                                 sample_rate=int(s["settings"]["sample_rate"]), hop=256,
                                 alt=f"log-mel spectrograms of A and B for {pid}")
        body = (key_value_table(info) + fig
                + audio_player(wav_data_uri(m["clip_a"], m["clip_rate"]), f"A: {a}")
                + audio_player(wav_data_uri(m["clip_b"], m["clip_rate"]), f"B: {b}"))
        flag = f" · <b>{esc(r['flag'])}</b>" if r["flag"] else ""
        where = f" · {esc(r['set'])}" if r.get("set") else ""
        summ = (f"{esc(pid)} <span class='muted'>{fmt_num(r['distance_db'])} dB{where}"
                f"{'' if r['retrieved'] else ' · not retrieved'}</span>{flag}")
        out.append(details(summ, body, open=k < 3, id=_anchor(pid)))
    return "".join(out)


def _probe_table(s: dict[str, Any], rows: list[dict[str, Any]], media: dict[str, Any]) -> str:
    cols = [Column("id", "Probe", cell=lambda r: (f'<a href="#{_anchor(r["id"])}">{esc(r["id"])}</a>'
                                                  if r["id"] in media else esc(r["id"])))]
    if s["probes"]["sets"] is not None:
        cols.append(Column("set", "Set"))
    cols += [Column(c, c) for c in s["probes"]["labels"]]
    cols += [
        Column("distance_db", "Distance (dB)", fmt=fmt_num, numeric=True),
        Column("retrieved", "Retrieved", fmt=lambda v: "yes" if v else "no"),
        Column("own_rank", "Own rank", numeric=True, title="1 + other patches' B renders closer than its own"),
        Column("nearest_other", "Taken for", title="the nearest other patch's B render, where it is closer than "
                                                   "the own one"),
        Column("loudness_diff_db", "Δ loudness (dB)", fmt=lambda v: fmt_num(v, 1, signed=True), numeric=True),
        Column("centroid_diff_st", "Δ centroid (st)", fmt=lambda v: fmt_num(v, 1, signed=True), numeric=True),
        Column("f0_diff_st", "Δ f0 (st)", fmt=lambda v: fmt_num(v, 1, signed=True), numeric=True),
        Column("length_diff_s", "Δ length (s)", fmt=lambda v: fmt_num(v, 2, signed=True), numeric=True),
        Column("flag", "Silence"),
        Column("groups", "Groups changed"),
    ]
    ordered = sorted(rows, key=lambda r: -r["distance_db"])
    return ('<input class="filter-box" type="search" placeholder="filter rows (id, set, flag, group…)" '
            'data-filter="fidelity-probes" aria-label="filter the table">'
            + table(cols, ordered, id="fidelity-probes", row_class=lambda r: "silent-miss" if r["flag"] else ""))


def _method_html(s: dict[str, Any], n_media: int, budget_mb: float) -> str:
    cfg, fl = s["settings"], s["floor"]
    items = [
        ("A", json.dumps(s["a"])), ("B", json.dumps(json_clean(s["b"]))),
        ("render", f"note-on at 0 s, note-off at {cfg['note_length']:g} s, {cfg['render_length']:g} s at "
                   f"{cfg['sample_rate']} Hz, render seed {cfg['seed']}; mono = mean of channels"),
        ("distance", "multi-resolution log-mel: mean |dB difference| at (n_fft, hop) "
                     + ", ".join(f"{n}/{h}" for n, h in cfg["resolutions"]) + ", floor −80 dB, averaged"),
        ("descriptors", "loudness: mean power (dB); centroid of the long-term spectrum (semitones); f0 by "
                        "autocorrelation of the loudest 0.2 s (semitones, only where both are pitched); "
                        "audible length: "
                        f"until the last 1024-sample frame above {cfg['audible_db']:g} dBFS RMS"),
        ("silent", f"peak below {cfg['silent_peak']:g}"),
        ("retrieval", f"exact over all {s['matrix']['entries']} A×B pairs: {s['matrix']['computed_in_full']} "
                      "computed in full, the rest excluded by a lower bound (block sums of the log-mel features) "
                      "above the own-patch distance; probes with identical patches count as the own patch, and "
                      "ties count for it"),
        ("B's floor", (f"{fl.get('how', '')}: median {fmt_num(fl.get('median_db'))} dB, 95th percentile "
                       f"{fmt_num(fl.get('p95_db'))} dB, max {fmt_num(fl.get('max_db'))} dB over {fl.get('n')}")
                      if fl.get("measurable") else f"not measurable: {fl.get('why', '')}"),
        ("listening", f"{n_media} pairs, worst first plus the worst of each set, {cfg['clip_rate']} Hz mono 16-bit, "
                      f"first {cfg['clip_seconds']:g} s; audio and pictures within {budget_mb:g} MB"),
        ("time", f"{fmt_num(s['seconds'], 1)} s (" + ", ".join(f"{k} {v:.1f} s" for k, v in
                                                              s["stage_seconds"].items()) + f"), jobs {cfg['jobs']}"),
        ("created", s.get("created")),
    ]
    return (key_value_table(items, id="fidelity-method")
            + '<p class="muted">Per probe: <a href="fidelity.csv">fidelity.csv</a>; the summary: '
              '<a href="fidelity.json">fidelity.json</a>.</p>')


def fidelity_page(summary: dict[str, Any], rows: list[dict[str, Any]], media: dict[str, dict[str, Any]],
                  *, budget_mb: float = 10.0) -> str:
    """The complete fidelity page.

    Parameters
    ----------
    summary : dict
        The comparison's summary (what ``fidelity.json`` holds).
    rows : list of dict
        One per probe (what ``fidelity.csv`` holds).
    media : dict
        Probe id to ``{"clip_a", "clip_b": int16 (n,), "clip_rate": int, "mel_a", "mel_b": (n_mels, n_frames) dB,
        "changed": list of str}``, worst first.
    budget_mb : float
        The size budget the listening pairs were chosen under (stated in the page).

    Returns
    -------
    html : str
    """
    a, b = _who(summary)
    sections = [Section("summary", "Summary", _summary_html(summary))]
    groups = ""
    if summary.get("by_set"):
        groups += "<h3>By probe set</h3>" + _group_table(summary["by_set"], "fidelity-sets", "Set")
    groups += ("<h3>By parameter group changed from the default patch</h3>"
               '<p class="muted">A probe counts in every group of the parameters it changes.</p>'
               + _group_table(summary["by_group"], "fidelity-groups", "Group"))
    sections.append(Section("groups", "Where they differ", groups))
    if summary.get("sensitivity"):
        sections.append(Section("sensitivity", "Sensitivity ranks", _sensitivity_html(summary["sensitivity"])))
    if media:
        sections.append(Section("listen", "Listen: the worst probes first", _listen_html(summary, rows, media)))
    sections.append(Section("probes", "Every probe, worst first", _probe_table(summary, rows, media)))
    sections.append(Section("method", "Method and settings", _method_html(summary, len(media), budget_mb)))
    return render_page(f"Fidelity: {_short(a)} against {_short(b)}", sections,
                       subtitle="How close A sounds to B, probe by probe, on the same parameter values.",
                       generated=time.strftime("%Y-%m-%d %H:%M"))


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)) for k, v in r.items()})
    return buf.getvalue()


def write_fidelity_report(summary: dict[str, Any], rows: list[dict[str, Any]], media: dict[str, dict[str, Any]],
                          reports_dir: str | os.PathLike, *, budget_mb: float = 10.0) -> dict[str, Path]:
    """Write ``fidelity.json``, ``fidelity.csv``, ``fidelity.html`` and update ``index.html``.

    Parameters
    ----------
    summary, rows, media
        See :func:`fidelity_page`.
    reports_dir : path
    budget_mb : float

    Returns
    -------
    paths : dict of str to Path
        ``json``, ``csv``, ``html``, ``index``.
    """
    d = Path(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"json": d / "fidelity.json", "csv": d / "fidelity.csv", "html": d / PAGE}
    atomic_text(paths["json"], json.dumps(json_clean(summary), indent=1, allow_nan=False))
    atomic_text(paths["csv"], _csv_text(rows))
    atomic_text(paths["html"], fidelity_page(summary, rows, media, budget_mb=budget_mb))
    paths["index"] = write_index(d)
    return paths
