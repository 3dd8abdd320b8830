"""A small toolkit for self-contained HTML reports.

Everything a report needs is inline: CSS and JavaScript from the package's
``templates/`` folder, charts as SVG, spectrograms as PNG data URIs and audio
as WAV data URIs — a report opens offline and can be mailed as one file.

The helpers return HTML strings; :func:`render_page` wraps sections into a page.
Tables made by :func:`table` are sortable by clicking a header (the page's
script sorts on each cell's ``data-sort`` value).
"""
from __future__ import annotations

import base64
import html
import io
import math
import wave
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np
from scipy.signal import resample_poly

__all__ = [
    "Section",
    "Column",
    "esc",
    "fmt_num",
    "table",
    "bar_chart",
    "spectrogram_strip",
    "png_data_uri",
    "wav_data_uri",
    "wav_uri_bytes",
    "clip_plan",
    "resample_clip",
    "audio_player",
    "details",
    "key_value_table",
    "render_page",
    "template_text",
]


def esc(x: Any) -> str:
    """HTML-escape ``str(x)`` (quotes too)."""
    return html.escape("" if x is None else str(x), quote=True)


def fmt_num(x: Any, digits: int = 2, *, signed: bool = False, none: str = "—") -> str:
    """Format a number for a table cell; None and non-finite values become ``none``."""
    if x is None:
        return none
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if not math.isfinite(v):
        return none
    s = f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
    return s


@dataclass
class Section:
    """One section of a page: an anchor id, a heading and its HTML body."""

    id: str
    title: str
    html: str
    level: int = 2


@dataclass
class Column:
    """A table column.

    Parameters
    ----------
    key : str
        Key of the row dicts.
    label : str
        Header text.
    fmt : callable, optional
        Value -> cell HTML (escaped text by default).
    sort : callable, optional
        Value (or the whole row, with ``sort_row=True``) -> sort key; numbers sort numerically.
    title : str
        Header tooltip.
    numeric : bool
        Right-align and sort numerically.
    cell : callable, optional
        Whole row -> cell HTML, for cells that show more than their own value
        (the sort value is still ``sort(row[key])``).
    """

    key: str
    label: str
    fmt: Callable[[Any], str] | None = None
    sort: Callable[[Any], Any] | None = None
    title: str = ""
    numeric: bool = False
    cls: str = ""
    cell: Callable[[dict[str, Any]], str] | None = None


def _sort_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        return repr(f) if math.isfinite(f) else ""
    return str(v)


def table(
    columns: Sequence[Column],
    rows: Iterable[dict[str, Any]],
    *,
    id: str,
    caption: str | None = None,
    sortable: bool = True,
    row_class: Callable[[dict[str, Any]], str] | None = None,
    row_id: Callable[[dict[str, Any]], str] | None = None,
) -> str:
    """A table; with ``sortable`` a click on a header sorts by that column (again: reversed).

    Returns
    -------
    html : str
    """
    head = []
    for c in columns:
        typ = "num" if c.numeric else "text"
        t = f' title="{esc(c.title)}"' if c.title else ""
        head.append(f'<th data-type="{typ}"{t} class="{esc(c.cls)}">{esc(c.label)}</th>')
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c.key)
            sv = c.sort(v) if c.sort is not None else v
            if c.cell is not None:
                shown = c.cell(r)
            else:
                shown = c.fmt(v) if c.fmt is not None else esc("" if v is None else v)
            cls = ("num " if c.numeric else "") + c.cls
            cells.append(f'<td class="{cls.strip()}" data-sort="{esc(_sort_value(sv))}">{shown}</td>')
        rc = f' class="{esc(row_class(r))}"' if row_class else ""
        rid = f' id="{esc(row_id(r))}"' if row_id else ""
        body.append(f"<tr{rc}{rid}>{''.join(cells)}</tr>")
    cap = f"<caption>{caption}</caption>" if caption else ""
    cls = "data sortable" if sortable else "data"
    return (
        f'<div class="table-wrap"><table id="{esc(id)}" class="{cls}">{cap}<thead><tr>{"".join(head)}</tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table></div>'
    )


def key_value_table(items: Iterable[tuple[str, Any]], *, id: str | None = None) -> str:
    """A two-column table of labels and (escaped) values."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items)
    i = f' id="{esc(id)}"' if id else ""
    return f'<table class="kv"{i}><tbody>{rows}</tbody></table>'


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    lows: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    classes: Sequence[str] | None = None,
    links: Sequence[str] | None = None,
    unit: str = "",
    scale: str = "sqrt",
    width: int = 760,
    row_height: int = 15,
    label_width: int = 170,
    title: str = "",
    id: str = "chart",
    reference: float | None = None,
    reference_label: str = "",
    axis_top: bool | None = None,
) -> str:
    """A horizontal bar chart with interval whiskers, as inline SVG.

    Parameters
    ----------
    labels, values : sequences of equal length
        One bar per label; negative values draw as zero-length bars.
    lows, highs : sequences, optional
        Interval ends drawn as whiskers.
    classes : sequence of str, optional
        CSS class of each bar (e.g. "strong", "weak", "inaudible").
    links : sequence of str, optional
        Anchor each label links to.
    scale : {"linear", "sqrt"}
        Axis scale; "sqrt" keeps small values visible next to large ones.
    reference : float, optional
        Draw a dashed vertical line at this value (e.g. a threshold).
    axis_top : bool, optional
        Repeat the axis (ticks and unit) above the bars; by default when there are more than 25 bars,
        so a tall chart has its axis where the eye starts.

    Returns
    -------
    svg : str
    """
    n = len(labels)
    if axis_top is None:
        axis_top = n > 25
    vals = np.array([v if v is not None and np.isfinite(v) else 0.0 for v in values], dtype=float)
    lo = np.array([v if v is not None and np.isfinite(v) else np.nan for v in (lows or [None] * n)], dtype=float)
    hi = np.array([v if v is not None and np.isfinite(v) else np.nan for v in (highs or [None] * n)], dtype=float)
    vmax = float(np.nanmax(np.concatenate([vals, hi[np.isfinite(hi)], [1e-9]])))
    vmax = nice_ceiling(vmax)
    tf = (lambda x: math.sqrt(max(x, 0.0))) if scale == "sqrt" else (lambda x: max(x, 0.0))
    plot_w = width - label_width - 20
    top, axis_h = (36 if title else 20) + (30 if axis_top else 0), 34

    def px(x: float) -> float:
        return label_width + plot_w * tf(x) / tf(vmax)

    h = top + n * row_height + axis_h + 4
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{esc(id)}" width="{width}" height="{h}" '
        f'viewBox="0 0 {width} {h}" role="img" aria-label="{esc(title or "bar chart")}">'
    ]
    if title:
        out.append(f'<text x="{label_width}" y="14" class="chart-title">{esc(title)}</text>')
    ticks = _ticks(vmax, scale)
    for t in ticks:
        x = px(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 2}" y2="{top + n * row_height}" class="grid"/>')
        out.append(f'<text x="{x:.1f}" y="{top + n * row_height + 14}" class="tick">{_tick_label(t)}</text>')
        if axis_top:
            out.append(f'<text x="{x:.1f}" y="{top - 8}" class="tick">{_tick_label(t)}</text>')
    if unit:
        out.append(f'<text x="{label_width + plot_w / 2:.1f}" y="{top + n * row_height + 29}" class="tick">'
                   f"{esc(unit)}</text>")
        if axis_top:
            out.append(f'<text x="{label_width - 6}" y="{top - 8}" class="tick unit">{esc(unit)}</text>')
    for i in range(n):
        out.extend(_bar_row(i, top + i * row_height, labels, values, vals, lo, hi, px, classes=classes, links=links,
                            unit=unit, label_width=label_width, row_height=row_height))
    if reference is not None and np.isfinite(reference) and reference <= vmax:
        x = px(reference)
        y0 = top - (20 if axis_top else 4)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0}" y2="{top + n * row_height}" class="ref"/>')
        if reference_label:
            y_ref = top - 24 if axis_top else top - 6
            out.append(f'<text x="{x + 3:.1f}" y="{y_ref}" class="tick ref-label">{esc(reference_label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _bar_row(i: int, y: float, labels: Sequence[str], values: Sequence[float], vals: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, px: Any, *, classes: Sequence[str] | None, links: Sequence[str] | None, unit: str,
             label_width: int, row_height: int) -> list[str]:
    """The SVG of bar ``i`` of :func:`bar_chart`: its label (linked), bar with tooltip and whisker."""
    out = []
    cls = esc(classes[i]) if classes else ""
    tip = f"{labels[i]}: {fmt_num(values[i])}"
    if np.isfinite(lo[i]) and np.isfinite(hi[i]):
        tip += f" [{fmt_num(lo[i])}, {fmt_num(hi[i])}]"
    tip += f" {unit}".rstrip()
    text = f'<text x="{label_width - 6}" y="{y + row_height * 0.72:.1f}" class="label">{esc(labels[i])}</text>'
    out.append(f'<a href="{esc(links[i])}">{text}</a>' if links else text)
    w = max(px(vals[i]) - label_width, 0.0)
    out.append(f'<rect x="{label_width}" y="{y + 2}" width="{w:.1f}" height="{row_height - 4}" class="bar {cls}">'
               f"<title>{esc(tip)}</title></rect>")
    if np.isfinite(lo[i]) and np.isfinite(hi[i]):
        x1, x2 = px(lo[i]), px(hi[i])
        ym = y + row_height / 2
        out.append(f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{ym:.1f}" y2="{ym:.1f}" class="whisker"/>')
        for xx in (x1, x2):
            out.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{ym - 3:.1f}" y2="{ym + 3:.1f}" class="whisker"/>')
    return out


def nice_ceiling(v: float) -> float:
    """The smallest 1-2-2.5-5 x 10^k at or above ``v`` (an axis maximum); 1 for v <= 0."""
    if v <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * e * 1.0000001:
            return m * e
    return 10 * e  # pragma: no cover


def _ticks(vmax: float, scale: str) -> list[float]:
    if scale == "sqrt":
        cands = [0.0] + [m * 10**e for e in range(-2, 4) for m in (1, 2, 5)]
        t = [c for c in cands if c <= vmax * 1.0000001]
        # keep ticks that are not crowded on the sqrt axis
        out: list[float] = []
        for c in t:
            if not out or math.sqrt(c) - math.sqrt(out[-1]) >= 0.07 * math.sqrt(vmax):
                out.append(c)
        return out
    return list(np.linspace(0, vmax, 6))


def _tick_label(t: float) -> str:
    return f"{t:g}"


def png_data_uri(rgb: np.ndarray) -> str:
    """PNG data URI of an image array (H, W, 3 or 4; uint8 or floats in 0..1)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.image as mpimg

    buf = io.BytesIO()
    mpimg.imsave(buf, rgb, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def spectrogram_strip(
    images: Sequence[np.ndarray],
    *,
    vmin: float = -80.0,
    vmax: float = 0.0,
    gap: int = 2,
    cmap: str = "magma",
    max_frames: int | None = 72,
) -> str:
    """One PNG (data URI) of spectrograms side by side, low frequencies at the bottom.

    Parameters
    ----------
    images : sequence of np.ndarray [shape=(n_bands, n_frames)]
        Spectrograms in dB, all with the same number of bands.
    vmin, vmax : float
        Colour range (dB).
    gap : int
        White pixels between panels.
    max_frames : int or None
        Frames are mean-pooled to at most this many per panel (smaller file).

    Returns
    -------
    uri : str
        ``data:image/png;base64,...``
    """
    import matplotlib

    cm = matplotlib.colormaps[cmap]
    panels = []
    for im in images:
        a = np.asarray(im, dtype=np.float32)
        if max_frames is not None and a.shape[1] > max_frames:
            f = int(math.ceil(a.shape[1] / max_frames))
            t = (a.shape[1] // f) * f
            a = a[:, :t].reshape(a.shape[0], -1, f).mean(axis=-1)
        z = np.clip((a - vmin) / max(vmax - vmin, 1e-9), 0.0, 1.0)[::-1]
        panels.append((cm(z)[..., :3] * 255).astype(np.uint8))
    if not panels:
        raise ValueError("spectrogram_strip needs at least one image")
    h = max(p.shape[0] for p in panels)
    white = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for i, p in enumerate(panels):
        if p.shape[0] < h:
            p = np.vstack([np.full((h - p.shape[0], p.shape[1], 3), 255, np.uint8), p])
        if i:
            parts.append(white)
        parts.append(p)
    return png_data_uri(np.hstack(parts))


def wav_data_uri(audio: np.ndarray, sample_rate: int) -> str:
    """WAV data URI (mono, 16-bit) of int16 samples or floats.

    Floats above full scale (a synth without a limiter) are scaled down to a peak of 1 rather
    than clipped; floats within [-1, 1] keep their level.
    """
    a = np.asarray(audio)
    if a.dtype != np.int16:
        a = np.asarray(a, dtype=np.float64)
        a = a / max(1.0, float(np.max(np.abs(a))) if a.size else 1.0)
        a = np.clip(np.round(a * 32767.0), -32768, 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(np.ascontiguousarray(a.reshape(-1)).astype("<i2").tobytes())
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def wav_uri_bytes(n_samples: int) -> int:
    """Characters of the data URI :func:`wav_data_uri` makes of ``n_samples`` mono 16-bit samples."""
    return len("data:audio/wav;base64,") + 4 * math.ceil((44 + 2 * int(n_samples)) / 3)


def clip_plan(n_clips: int, seconds: float, budget_mb: float,
              rates: Sequence[int] = (16000, 12000, 11025, 8000)) -> tuple[int, float]:
    """Sample rate and length at which ``n_clips`` clips fit a page budget.

    The highest of ``rates`` at which ``n_clips`` clips of ``seconds`` (as WAV data URIs) take at most
    ``budget_mb`` MB (10^6 bytes); when even the lowest rate does not fit, the clips are shortened
    (to no less than 0.1 s).

    Returns
    -------
    rate : int
    seconds : float
    """
    per_clip = budget_mb * 1e6 / max(int(n_clips), 1)
    for r in rates:
        if wav_uri_bytes(int(r * seconds)) <= per_clip:
            return int(r), float(seconds)
    r = int(rates[-1])
    fit = (per_clip * 3 / 4 - 44 - 30) / (2 * r)
    return r, float(max(0.1, min(seconds, math.floor(fit * 100) / 100)))


def resample_clip(clip: np.ndarray, rate: int, new_rate: int, seconds: float) -> np.ndarray:
    """The first ``seconds`` of a clip at ``new_rate`` (polyphase resampling), int16 [shape=(n,)]."""
    x = np.asarray(clip)
    scale = 32767.0 if x.dtype == np.int16 else 1.0
    y = x.astype(np.float64) / scale
    if int(new_rate) != int(rate):
        g = math.gcd(int(rate), int(new_rate))
        y = resample_poly(y, int(new_rate) // g, int(rate) // g)
    y = y[: int(round(seconds * new_rate))]
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16)


def audio_player(uri: str, label: str = "") -> str:
    """An ``<audio controls>`` element with a caption."""
    cap = f'<span class="audio-label">{esc(label)}</span>' if label else ""
    return f'<figure class="audio">{cap}<audio controls preload="none" src="{uri}"></audio></figure>'


def details(summary: str, body: str, *, open: bool = False, id: str | None = None) -> str:
    """A collapsible ``<details>`` block; ``summary`` is HTML."""
    o = " open" if open else ""
    i = f' id="{esc(id)}"' if id else ""
    return f"<details{i}{o}><summary>{summary}</summary>{body}</details>"


def template_text(name: str) -> str:
    """Text of a file in the package's ``templates/`` folder."""
    return resources.files("synth_probe.report").joinpath("templates", name).read_text(encoding="utf-8")


def render_page(
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str = "",
    generated: str = "",
    toc: bool = True,
    home: str | None = "index.html",
) -> str:
    """A complete, self-contained HTML page (inline CSS and JS, no external resources).

    Parameters
    ----------
    title : str
    sections : sequence of Section
        Their ``html`` is inserted as is; titles are escaped.
    subtitle, generated : str
        Shown under the title and in the footer.
    toc : bool
        Add a table of contents of the sections.
    home : str or None
        The landing page of the reports folder, linked from the page's header (None: no link, for the
        landing page itself).

    Returns
    -------
    html : str
    """
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    tpl = env.from_string(template_text("page.html.j2"))
    return tpl.render(
        title=title,
        subtitle=subtitle,
        generated=generated,
        toc=toc,
        home=home or "",
        sections=[{"id": s.id, "title": s.title, "html": _markup(s.html), "level": s.level} for s in sections],
        css=_markup(template_text("report.css")),
        js=_markup(template_text("report.js")),
    )


def _markup(s: str):
    from markupsafe import Markup

    return Markup(s)
