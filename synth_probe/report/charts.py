"""Inline charts of the reports: scatter, line, box and search-curve plots, and spectrogram figures.

Each plot function takes plain numbers and returns an ``<svg>`` string (class ``chart``, styled by the page's
CSS); :func:`spectrogram_figure` returns a strip of spectrograms with its axes and colour scale as HTML.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from synth_probe.report.html import esc, nice_ceiling, spectrogram_strip

__all__ = ["scatter_svg", "line_chart_svg", "box_svg", "curve_svg", "spectrogram_figure", "LINE_COLOURS"]

LINE_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, (int, float)) and math.isfinite(v)


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


def box_svg(groups: Sequence[tuple[str, np.ndarray]], *, unit: str, width: int = 760, row: int = 26) -> str:
    """Horizontal box plots (quartiles, whiskers at 5/95 %, mean as a diamond, median as a line)."""
    label_w, pad = 230, 20
    allv = np.concatenate([g[1] for g in groups if len(g[1])])
    hi = float(np.percentile(allv, 99)) if allv.size else 1.0
    hi = hi if hi > 0 else 1.0
    plot_w = width - label_w - pad

    def px(x: float) -> float:
        return label_w + plot_w * min(max(x, 0.0), hi) / hi

    h = len(groups) * row + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{h}" '
             f'viewBox="0 0 {width} {h}" role="img" aria-label="distance distributions">']
    for k in range(6):
        v = hi * k / 5
        x = px(v)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{len(groups) * row + 4}" class="grid"/>')
        parts.append(f'<text x="{x:.1f}" y="{len(groups) * row + 18}" class="tick">{v:.3g}</text>')
    parts.append(f'<text x="{label_w + plot_w / 2:.0f}" y="{len(groups) * row + 34}" class="tick">{esc(unit)}</text>')
    for i, (label, v) in enumerate(groups):
        y = 4 + i * row
        ym = y + row / 2
        parts.append(f'<text x="{label_w - 6}" y="{ym + 4:.1f}" class="label">{esc(label)}</text>')
        if not len(v):
            continue
        p5, q1, med, q3, p95 = np.percentile(v, [5, 25, 50, 75, 95])
        mean = float(np.mean(v))
        parts.append(f'<line x1="{px(p5):.1f}" x2="{px(p95):.1f}" y1="{ym:.1f}" y2="{ym:.1f}" class="whisker"/>')
        parts.append(f'<rect x="{px(q1):.1f}" y="{y + 5}" width="{max(px(q3) - px(q1), 1):.1f}" height="{row - 10}" '
                     f'class="bar"><title>{esc(label)}: median {med:.2f}, mean {mean:.2f}, IQR {q1:.2f}-{q3:.2f}'
                     f'</title></rect>')
        parts.append(f'<line x1="{px(med):.1f}" x2="{px(med):.1f}" y1="{y + 3}" y2="{y + row - 3}" '
                     f'stroke="black" stroke-width="2"/>')
        xm = px(mean)
        parts.append(f'<path d="M{xm:.1f},{ym - 5:.1f} L{xm + 5:.1f},{ym:.1f} L{xm:.1f},{ym + 5:.1f} '
                     f'L{xm - 5:.1f},{ym:.1f} Z" fill="white" stroke="black"><title>mean {mean:.2f}</title></path>')
    parts.append("</svg>")
    return "".join(parts)


def curve_svg(curves: dict[str, dict[str, Any]], labels: dict[str, str], *, width: int = 760, height: int = 260) -> str:
    """Median search curves (best distance after each render) as inline SVG, one line per search.

    Parameters
    ----------
    curves : dict of str to dict
        Per search: ``median`` (list of float, one per render, render 0 the start) and ``n`` (searches).
    labels : dict of str to str
        Legend label of each search.

    Returns
    -------
    svg : str
    """
    colors = {"model_hill": "#1f77b4", "default_hill": "#ff7f0e", "model_cmaes": "#2ca02c", "default_cmaes": "#d62728"}
    allv = np.concatenate([np.asarray(c["median"]) for c in curves.values()])
    lo, hi = float(allv.min()), float(allv.max())
    lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)
    n = max(len(c["median"]) for c in curves.values())
    L, R, T, B = 50, 170, 10, 30
    pw, ph = width - L - R, height - T - B

    def xy(i: int, v: float) -> tuple[float, float]:
        return L + pw * i / max(n - 1, 1), T + ph * (1 - (v - lo) / (hi - lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-label="search curves">']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        _, y = xy(0, v)
        out.append(f'<line x1="{L}" x2="{L + pw}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{L - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">{v:.2f}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{height - 4}" class="tick">renders of the search</text>')
    for j, (name, c) in enumerate(curves.items()):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(c["median"])))
        col = colors.get(name, "#555")
        out.append(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="2"/>')
        out.append(f'<text x="{L + pw + 8}" y="{T + 14 + 16 * j}" fill="{col}" class="label" text-anchor="start">'
                   f'{esc(labels.get(name, name))} (n={c["n"]})</text>')
    out.append("</svg>")
    return "".join(out)


def _mel(f: float) -> float:
    """Slaney's mel scale (librosa's default, which :mod:`synth_probe.spectral` uses)."""
    return f / (200.0 / 3.0) if f < 1000.0 else 15.0 + math.log(f / 1000.0) / (math.log(6.4) / 27.0)


def _band_position(f: float, n_mels: int, fmin: float, fmax: float) -> float:
    """Height of frequency ``f`` in a spectrogram image of ``n_mels`` rows, 0 (bottom) to 1 (top)."""
    m0, m1 = _mel(fmin), _mel(fmax)
    c0 = m0 + (m1 - m0) / (n_mels + 1)  # centres of the first and last band
    c1 = m0 + (m1 - m0) * n_mels / (n_mels + 1)
    return (0.5 + (n_mels - 1) * (_mel(f) - c0) / (c1 - c0)) / n_mels


def _hz(f: float) -> str:
    return f"{f / 1000:g} kHz" if f >= 1000 else f"{f:g} Hz"


def _pooled(n: int, max_frames: int | None) -> int:
    if max_frames is None or n <= max_frames:
        return n
    return n // int(math.ceil(n / max_frames))


def _time_ticks(seconds: float, max_ticks: int) -> np.ndarray:
    """Tick times of a panel: the finest of 0.05 … 10 s steps that gives at most ``max_ticks`` ticks."""
    for step in (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0):
        t = np.arange(0.0, seconds * 0.999, step)
        if len(t) <= max_ticks:
            return t
    return np.array([0.0])


#: matplotlib's "magma" (the strips' colour map) at 9 evenly spaced levels, low to high
MAGMA_STOPS = ("#000004", "#1d1147", "#51127c", "#832681", "#b73779", "#e75263", "#fc8961", "#fec488", "#fcfdbf")


def _colour_bar(vmin: float, vmax: float) -> str:
    """The dB scale beside a strip: a CSS gradient of the strips' colour map with its levels."""
    ticks = np.linspace(vmax, vmin, 5)
    labels = "".join(f'<span style="top:{100 * i / 4:.1f}%">{t:g}</span>' for i, t in enumerate(ticks))
    gradient = ", ".join(MAGMA_STOPS[::-1])
    return (f'<div class="spec-cbar" role="img" aria-label="colour scale from {vmin:g} to {vmax:g} dB">'
            f'<div class="spec-cbar-ramp" style="background: linear-gradient({gradient})"></div>'
            f'<div class="spec-cbar-labels">{labels}</div><span class="spec-unit">dB</span></div>')


def spectrogram_figure(images: Sequence[np.ndarray], labels: Sequence[str], *, sample_rate: int, hop: int,
                       fmin: float = 30.0, fmax: float | None = None, vmin: float = -80.0, vmax: float = 0.0,
                       max_frames: int | None = 72, alt: str = "spectrograms") -> str:
    """Log-mel spectrograms side by side with a frequency axis, a time axis under each and a dB colour scale.

    The strip is one PNG (:func:`synth_probe.report.html.spectrogram_strip`, colour map "magma"); the axes and
    the colour scale are HTML and CSS around it.

    Parameters
    ----------
    images : sequence of np.ndarray [shape=(n_mels, n_frames)]
        Log-mel spectrograms (dB) on :mod:`synth_probe.spectral`'s mel bands, ``hop`` samples per frame.
    labels : sequence of str
        A caption under each panel.
    sample_rate : int
        Of the audio the spectrograms were computed from.
    fmin, fmax : float
        Edges of the mel bands (``fmax``: Nyquist by default).
    max_frames : int or None
        Frames per panel after mean-pooling (file size; see :func:`spectrogram_strip`).

    Returns
    -------
    html : str
    """
    arrs = [np.asarray(im) for im in images]
    n_mels = arrs[0].shape[0]
    fmax = float(fmax) if fmax is not None else sample_rate / 2.0
    gap = 2
    widths = [_pooled(a.shape[1], max_frames) for a in arrs]
    total = sum(widths) + gap * (len(widths) - 1)
    ticks: list[tuple[float, float]] = []  # (frequency, height), from the top down, at least 11 % apart
    for f in (20000, 10000, 5000, 2000, 1000, 500, 200, 100, 50):
        y = _band_position(f, n_mels, fmin, fmax)
        if fmin * 1.3 <= f <= fmax * 0.97 and 0.0 <= y <= 1.0 and (not ticks or ticks[-1][1] - y >= 0.11):
            ticks.append((f, y))
    fax = "".join(f'<span style="bottom:{100 * y:.1f}%">{_hz(f)}</span>' for f, y in ticks)
    panels, left = [], 0
    for a, w, lab in zip(arrs, widths, labels):
        seconds = a.shape[1] * hop / sample_rate
        marks = "".join(f'<span{" class=end" if t > 0.75 * seconds else ""} style="left:{100 * t / seconds:.1f}%">'
                        f"{t:g}</span>" for t in _time_ticks(seconds, max(2, min(6, int(900 / len(arrs) / 25)))))
        panels.append(f'<div class="spec-panel" style="left:{100 * left / total:.2f}%;width:{100 * w / total:.2f}%">'
                      f'<div class="spec-ticks">{marks}</div><div class="spec-label">{esc(lab)}</div></div>')
        left += w + gap
    uri = spectrogram_strip(arrs, vmin=vmin, vmax=vmax, gap=gap, cmap="magma", max_frames=max_frames)
    return (f'<figure class="spec"><div class="spec-row"><div class="spec-faxis">{fax}</div>'
            f'<div class="spec-main"><img class="strip" alt="{esc(alt)}" src="{uri}">'
            f'<div class="spec-taxis">{"".join(panels)}</div></div>{_colour_bar(vmin, vmax)}</div>'
            f'<figcaption class="muted">Frequency on a mel scale; time in seconds from the note-on under each '
            f'panel; colour: level in dB ({vmin:g} to {vmax:g}).</figcaption></figure>')
