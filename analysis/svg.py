"""Inline SVG line charts for the instructor's report (``analysis.report``), drawn with numpy:
no scripts, no fonts to load, nothing fetched.

Every chart carries ``class="plot"`` and ``data-points="N"``, N being its number of curves
(one per series with a finite point: a polyline, or markers only for a scatter), so a test or
a script can count what was drawn. Titles are fitted to the chart's width (a smaller font,
then cut with "…" and the whole title kept as a tooltip), since a title running off the
chart is what a reader sees first.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["CHAR_WIDTH_EM", "DASH", "Series", "esc", "fit_title", "num", "svg_plot"]

DASH = "—"  # shown for a missing value
CHAR_WIDTH_EM = 0.6  # a generous average glyph width of a sans-serif font, in em
_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_BOTTOM = 62, 16, 42


def esc(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def num(value: float, digits: int = 1) -> str:
    """A number with ``digits`` decimals, or a dash for a missing one."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return DASH
    return f"{v:.{digits}f}" if math.isfinite(v) else DASH


def fit_title(title: str, width_px: float, size_px: float = 13.0,
              smallest_px: float = 10.0) -> tuple[str, float]:
    """(text, font size) of ``title`` fitted into ``width_px``: the size shrinks down to
    ``smallest_px``, and a title still too long is cut with "…"."""
    size = size_px
    while size > smallest_px and len(title) * CHAR_WIDTH_EM * size > width_px:
        size -= 0.5
    fits = int(width_px / (CHAR_WIDTH_EM * size))
    if len(title) > fits:
        title = title[:max(fits - 1, 1)].rstrip() + "…"
    return title, size


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    ticks = []
    v = math.ceil(lo / step - 1e-9) * step
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _tick_label(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-9 else "0"


@dataclass
class Series:
    """One curve: values already in display units."""

    x: np.ndarray
    y: np.ndarray
    colour: str
    dashed: bool = False
    label: str = ""
    markers: bool = False
    line: bool = True  # False: its markers only, a scatter (e.g. a Bland-Altman plot)


@dataclass
class _Frame:
    """The plotting area and the data ranges it maps."""

    x0: float
    x1: float
    y0: float
    y1: float
    top: int
    width: int
    height: int

    @property
    def pw(self) -> int:
        return self.width - _MARGIN_LEFT - _MARGIN_RIGHT

    @property
    def ph(self) -> int:
        return self.height - self.top - _MARGIN_BOTTOM

    def px(self, v):
        return _MARGIN_LEFT + (np.asarray(v, dtype=np.float64) - self.x0) / (self.x1 - self.x0) \
            * self.pw

    def py(self, v):
        return self.top + self.ph - (np.asarray(v, dtype=np.float64) - self.y0) \
            / (self.y1 - self.y0) * self.ph


def _ranges(xs, ys, band, window, ymin, yrange) -> tuple[float, float, float, float]:
    xvals = [float(v) for a in xs if a.size for v in (a.min(), a.max())]
    yvals = [float(v) for a in ys if a.size for v in (a.min(), a.max())]
    if band is not None:
        yvals += [v for v in band if math.isfinite(v)]
    if window is not None:
        xvals += [v for v in window if math.isfinite(v)]
    x0, x1 = (min(xvals), max(xvals)) if xvals else (0.0, 1.0)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if yrange is not None:
        return x0, x1, float(yrange[0]), float(yrange[1])
    y0, y1 = (min(yvals), max(yvals)) if yvals else (0.0, 1.0)
    if ymin is not None:
        y0 = min(y0, ymin)
    if y1 <= y0:
        y0, y1 = y0 - 1.0, y1 + 1.0
    return x0, x1, y0, y1 + 0.05 * (y1 - y0)


def _band_and_window(fr: _Frame, band, window) -> list[str]:
    out = []
    ml, mt, pw, ph = _MARGIN_LEFT, fr.top, fr.pw, fr.ph
    if band is not None and all(math.isfinite(v) for v in band):
        b_hi, b_lo = max(float(fr.py(max(band))), mt), min(float(fr.py(min(band))), mt + ph)
        if b_lo > b_hi:
            out.append(f'<rect class="band" x="{ml}" y="{b_hi:.1f}" width="{pw}" '
                       f'height="{b_lo - b_hi:.1f}" fill="#2ca02c" fill-opacity="0.15"/>')
    if window is not None:
        w_lo, w_hi = window
        if math.isfinite(w_lo) and math.isfinite(w_hi) and w_hi > w_lo:
            a, b = float(fr.px(w_lo)), float(min(fr.px(w_hi), ml + pw))
            out.append(f'<rect class="window" x="{a:.1f}" y="{mt}" width="{max(b - a, 0):.1f}" '
                       f'height="{ph}" fill="#1f77b4" fill-opacity="0.07"/>')
        for v in window:
            if math.isfinite(v) and fr.x0 <= v <= fr.x1:
                xv = float(fr.px(v))
                out.append(f'<line x1="{xv:.1f}" y1="{mt}" x2="{xv:.1f}" y2="{mt + ph}" '
                           'stroke="#1f77b4" stroke-dasharray="2,3"/>')
    return out


def _axes(fr: _Frame, xticks, xlabel: str, ylabel: str) -> list[str]:
    """Ticks (an x tick label may hold a second line after a newline) and axis titles."""
    out = []
    ml, mt, pw, ph = _MARGIN_LEFT, fr.top, fr.pw, fr.ph
    ticks = xticks if xticks is not None else [(v, _tick_label(v))
                                               for v in _nice_ticks(fr.x0, fr.x1)]
    two_lines = any("\n" in lab for _, lab in ticks)
    for v, lab in ticks:
        xv = float(fr.px(v))
        lines = "".join(f'<tspan x="{xv:.1f}" dy="{0 if k == 0 else 12}">{esc(part)}</tspan>'
                        for k, part in enumerate(lab.split("\n")))
        out.append(f'<line x1="{xv:.1f}" y1="{mt + ph}" x2="{xv:.1f}" y2="{mt + ph + 4}" '
                   f'stroke="#555"/><text x="{xv:.1f}" y="{mt + ph + 15}" font-size="11" '
                   f'text-anchor="middle">{lines}</text>')
    for v in _nice_ticks(fr.y0, fr.y1):
        yv = float(fr.py(v))
        out.append(f'<line x1="{ml}" y1="{yv:.1f}" x2="{ml + pw}" y2="{yv:.1f}" '
                   f'stroke="#e5e5e5"/><text x="{ml - 5}" y="{yv + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{esc(_tick_label(v))}</text>')
    if xlabel and not two_lines:
        out.append(f'<text x="{ml + pw / 2:.0f}" y="{fr.height - 6}" font-size="12" '
                   f'text-anchor="middle">{esc(xlabel)}</text>')
    out.append(f'<text x="14" y="{mt + ph / 2:.0f}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {mt + ph / 2:.0f})">{esc(ylabel)}</text>')
    return out


def _curves(fr: _Frame, series: Sequence[Series], xs, ys) -> list[str]:
    out = []
    for s, x, y in zip(series, xs, ys, strict=True):
        y = np.clip(y, fr.y0, fr.y1)  # a fixed scale keeps an outlier on its edge
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(fr.px(x), fr.py(y), strict=True))
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        tip = f"<title>{esc(s.label)}</title>" if s.label else ""
        if s.line:
            out.append(f'<polyline points="{pts}" fill="none" stroke="{s.colour}" '
                       f'stroke-width="{2.2 if s.dashed else 1.6}"{dash}>{tip}</polyline>')
        if s.markers or not s.line:
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{s.colour}"/>'
                    for a, b in zip(fr.px(x), fr.py(y), strict=True)]
    return out


def svg_plot(series: Sequence[Series], *, xlabel: str, ylabel: str, title: str = "",
             band: tuple[float, float] | None = None,
             window: tuple[float, float] | None = None,
             width: int = 760, height: int = 300,
             xticks: Sequence[tuple[float, str]] | None = None,
             ymin: float | None = None,
             yrange: tuple[float, float] | None = None) -> str:
    """An inline SVG line chart: one polyline per series with finite points (series without
    any are left out), an optional shaded horizontal ``band`` and a vertical ``window``
    (shaded between, dotted edges). The y axis spans the data (down to ``ymin`` at least), or
    exactly ``yrange`` (values outside are drawn on its edge). Values must already be in
    display units."""
    keep = [np.isfinite(s.x) & np.isfinite(s.y) for s in series]
    series = [s for s, k in zip(series, keep, strict=True) if k.any()]
    xs = [s.x[np.isfinite(s.x) & np.isfinite(s.y)] for s in series]
    ys = [s.y[np.isfinite(s.x) & np.isfinite(s.y)] for s in series]
    fr = _Frame(*_ranges(xs, ys, band, window, ymin, yrange), top=26 if title else 12,
                width=width, height=height)
    out = [f'<svg class="plot" data-points="{len(series)}" xmlns="http://www.w3.org/2000/svg" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{esc(title or ylabel)}">']
    if title:
        text, size = fit_title(title, width - _MARGIN_LEFT - 4)
        out.append(f'<text class="title" x="{_MARGIN_LEFT}" y="16" font-size="{size:g}" '
                   f'font-weight="600"><title>{esc(title)}</title>{esc(text)}</text>')
    out.append(f'<rect x="{_MARGIN_LEFT}" y="{fr.top}" width="{fr.pw}" height="{fr.ph}" '
               'fill="#fcfcfc" stroke="#999"/>')
    out += _band_and_window(fr, band, window)
    out += _axes(fr, xticks, xlabel, ylabel)
    out += _curves(fr, series, xs, ys)
    out.append("</svg>")
    return "".join(out)
