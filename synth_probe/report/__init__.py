"""Self-contained HTML reports, assembled from parts.

Everything under ``synth_probe.report`` takes plain data (dicts and lists as the
studies save them in JSON, NumPy arrays of audio) and never imports a study.
A report such as ``reports/predictability.html`` is built from *parts*: HTML
fragments written with :func:`write_part` under
``reports/_parts/<report>/<key>.html``. :func:`assemble` joins the parts of a
report in key order into one page (inline CSS/JS from ``templates/``), and
:func:`write_index` makes ``reports/index.html`` the landing page of the folder (what was run, when, on
which synth, the headline answers, the commands not run yet and a link to every report; every report's
header links back to it).

So the sensitivity part is ``10-sensitivity`` of the predictability report, the
identifiability part ``15-identifiability`` and the measured part ``20-measured``;
:func:`synth_probe.report.pages.rebuild_predictability_page` rewrites the parts
that show other studies' numbers from the JSON files of the folder and assembles
the page, so it is current whichever study ran last.
"""
from __future__ import annotations

from html import unescape as _unescape
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from synth_probe.errors import SynthProbeError
from synth_probe.fileio import read_json
from synth_probe.report.html import Column, Section, esc, render_page, table
from synth_probe.report.site import landing_sections
from synth_probe.util import atomic_text

__all__ = [
    "REPORT_TITLES",
    "Part",
    "write_part",
    "read_parts",
    "assemble",
    "write_index",
    "parts_dir",
    "load_json",
]

#: page titles and subtitles of the reports that are assembled from parts
REPORT_TITLES: dict[str, tuple[str, str]] = {
    "predictability": (
        "Predictability report",
        "Which synthesizer parameters show up in the sound — and how well they can be recovered.",
    ),
}

_TITLE_RE = re.compile(r"^<!-- part-title: (.*?) -->\n", re.S)
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Part:
    """One fragment of a report: ``key`` orders the parts; ``title`` heads its section."""

    key: str
    title: str
    html: str
    path: Path


def load_json(path: str | os.PathLike) -> dict | None:
    """A study's JSON file in a reports folder, or None when it is missing or unreadable."""
    p = Path(path)
    if not p.exists():
        return None
    try:
        return read_json(p, error=SynthProbeError, what="report data")
    except SynthProbeError:
        return None


def parts_dir(reports_dir: str | os.PathLike, report: str) -> Path:
    """Where the parts of ``report`` live: ``<reports_dir>/_parts/<report>/``."""
    return Path(reports_dir) / "_parts" / report


def _check_key(kind: str, key: str) -> None:
    if not _KEY_RE.match(key):
        raise ValueError(f"{kind} {key!r} must be letters, digits, '_', '-' or '.', starting with a letter or digit")


def write_part(reports_dir: str | os.PathLike, report: str, key: str, title: str, body: str) -> Path:
    """Write (or replace) one part of a report.

    Parameters
    ----------
    reports_dir : path
    report : str
        The report's name, e.g. ``"predictability"`` (the page is ``<report>.html``).
    key : str
        Sort key and anchor, e.g. ``"10-sensitivity"``.
    title : str
        Section heading.
    body : str
        The section's HTML (self-contained: data URIs, no external links).

    Returns
    -------
    path : Path
    """
    _check_key("report", report)
    _check_key("part key", key)
    d = parts_dir(reports_dir, report)
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{key}.html"
    atomic_text(p, f"<!-- part-title: {title.replace('--', '- -')} -->\n{body}")
    return p


def read_parts(reports_dir: str | os.PathLike, report: str) -> list[Part]:
    """The parts of ``report`` in key order."""
    d = parts_dir(reports_dir, report)
    out = []
    for p in sorted(d.glob("*.html")) if d.is_dir() else []:
        text = p.read_text(encoding="utf-8")
        m = _TITLE_RE.match(text)
        title, body = (m.group(1), text[m.end():]) if m else (p.stem, text)
        out.append(Part(p.stem, title, body, p))
    return out


def assemble(reports_dir: str | os.PathLike, report: str, *, title: str | None = None,
             subtitle: str | None = None) -> Path:
    """Join the parts of ``report`` into ``<reports_dir>/<report>.html`` and update the index.

    Returns
    -------
    path : Path
        The page written.
    """
    reports_dir = Path(reports_dir)
    parts = read_parts(reports_dir, report)
    t, sub = REPORT_TITLES.get(report, (report.replace("-", " ").capitalize(), ""))
    title = title or t
    subtitle = subtitle if subtitle is not None else sub
    if not parts:
        sections = [Section("empty", "No results yet", "<p>No study has written a part of this report yet.</p>")]
    else:
        sections = [Section(re.sub(r"^\d+-", "", p.key), p.title, p.html) for p in parts]
    page = render_page(title, sections, subtitle=subtitle, generated=time.strftime("%Y-%m-%d %H:%M"))
    reports_dir.mkdir(parents=True, exist_ok=True)
    out = reports_dir / f"{report}.html"
    atomic_text(out, page)
    write_index(reports_dir)
    return out


def _page_title(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except OSError:
        return path.stem
    m = re.search(r"<title>(.*?)</title>", head, re.S | re.I)
    return _unescape(m.group(1).strip()) if m else path.stem


def _study_data(d: Path) -> tuple[dict[str, dict | None], list[dict]]:
    """The studies' JSON files of the folder (None where missing or unreadable) and the tuning summaries.

    Each dict gains ``_modified`` (its file's time); a tuning summary also ``_stem`` (``<param>`` of its name).
    """
    def read(p: Path) -> dict | None:
        data = load_json(p)
        if not isinstance(data, dict):
            return None
        return {**data, "_modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(p.stat().st_mtime))}

    datas = {key: read(d / f"{key}.json") for key in ("sensitivity", "predictability", "identifiability",
                                                      "fidelity", "matching")}
    tunes = [{**t, "_stem": p.stem[len("tune_"):]} for p in sorted(d.glob("tune_*.json")) if (t := read(p))]
    return datas, tunes


def _files_table(d: Path) -> str:
    pages = sorted(p for p in d.glob("*.html") if p.name != "index.html")
    data = sorted(list(d.glob("*.csv")) + list(d.glob("*.json")))

    def row(p: Path, kind: str) -> dict:
        st = p.stat()
        return {"name": p.name, "title": _page_title(p) if kind == "report" else p.suffix[1:].upper() + " data",
                "modified": time.strftime("%Y-%m-%d %H:%M", time.localtime(st.st_mtime)),
                "size": st.st_size, "kind": kind}

    rows = [row(p, "report") for p in pages] + [row(p, "data") for p in data]
    cols = [
        Column("name", "File", fmt=lambda v: f'<a href="{esc(v)}">{esc(v)}</a>'),
        Column("title", "Title"),
        Column("kind", "Kind"),
        Column("modified", "Modified"),
        Column("size", "Size", fmt=_size, numeric=True),
    ]
    return (table(cols, rows, id="reports") if rows
            else "<p>No reports yet. Run <code>make sensitivity</code> to make the predictability report.</p>")


def write_index(reports_dir: str | os.PathLike) -> Path:
    """Write ``<reports_dir>/index.html``, the landing page of a reports folder.

    It reads the studies' JSON files present (``sensitivity.json``, ``predictability.json``,
    ``identifiability.json``, ``fidelity.json``, ``matching.json``, ``tune_*.json``; a missing or unreadable
    one is simply left out) and shows what was run, when and on which synth, the headline answers, the
    commands not run yet with their approximate times, and a table of every report (``*.html``) and data
    file (``*.csv``, ``*.json``) of the folder. Links are relative, so the folder can be moved or zipped.

    Returns
    -------
    path : Path
    """
    d = Path(reports_dir)
    d.mkdir(parents=True, exist_ok=True)
    datas, tunes = _study_data(d)
    sections = landing_sections(datas, tunes, _files_table(d))
    page = render_page("synth_probe reports", sections, subtitle=str(d.resolve()),
                       generated=time.strftime("%Y-%m-%d %H:%M"), home=None)
    out = d / "index.html"
    atomic_text(out, page)
    return out


def _size(n: int) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.1f} MB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} kB"
    return f"{n} B"
