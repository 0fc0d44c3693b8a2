"""Instructor's report: one self-contained HTML page of holds, metrics and progress.

``build_report`` turns recordings (``schemas.reader.Recording``) into a single HTML string
with inline CSS and inline SVG plots (drawn here with numpy; no scripts, no network):

* a header naming the trainee(s), session dates, protocol(s) and the display unit;
* per trigger point with holds: the holds overlaid (force or pressure against time since the
  hold began, each decimated to at most ``MAX_PLOT_POINTS`` points) on the shaded target band
  and the min/max hold window, an instructor's reference holds dashed, and a table with one
  row per hold and flags as badges; with a reference, each hold's DTW distance and median
  absolute difference to the first reference hold at the same point;
* progress across sessions for a trainee with several recordings (ordered by
  ``session_start``): per point, plateau-mean error and CV by session, charted and tabled.

Every number is shown in the protocol's unit (converted in ``schemas.units``; a
pressure unit uses the protocol's contact area). Every SVG carries ``class="plot"`` and
``data-points="N"``, N being its number of polylines (one per curve).

``write_report`` opens files, skips unreadable ones with a warning shown in the page, and
writes the page atomically.
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.decimate import peak_decimate
from analysis.metrics import (
    HoldMetrics,
    dtw_distance,
    median_abs_difference,
    recording_metrics,
    resample_curve,
)
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording
from schemas.session_protocol import SessionProtocol, protocol_of
from schemas.units import from_newtons, is_pressure

__all__ = [
    "DTW_DT_S",
    "MAX_PLOT_POINTS",
    "OVERSHOOT_FLAG_PCT",
    "STEADINESS_FLAG_FRAC",
    "TIME_IN_BAND_FLAG_FRAC",
    "build_report",
    "write_report",
]

MAX_PLOT_POINTS = 400  # per curve
OVERSHOOT_FLAG_PCT = 15.0  # overshoot badge above this
STEADINESS_FLAG_FRAC = 0.05  # unsteady badge: steadiness above this fraction of the target
TIME_IN_BAND_FLAG_FRAC = 0.5  # outside-band badge: time in band below this fraction of duration
DTW_DT_S = 0.05  # grid of the curves compared by DTW (20 Hz keeps it quick)

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f")
_REF_COLOUR = "#222222"
_DASH = "—"  # shown for a missing value

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;
color:#222;max-width:1150px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ccc}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
.badge{display:inline-block;padding:1px 6px;margin:1px;border-radius:8px;font-size:.8em;
color:#fff;white-space:nowrap}
.b-short{background:#b45309}.b-over{background:#b91c1c}.b-unsteady{background:#7c3aed}
.b-band{background:#0369a1}.b-ok{background:#15803d}
.warn{background:#fff4e5;border:1px solid #f0b36b;padding:6px 10px;margin:.4em 0}
svg.plot{background:#fff;border:1px solid #ddd;margin:4px 0}
.note{color:#555;font-size:.85em}
.swatch{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;
margin-right:4px}
"""


# ---------------------------------------------------------------------------- small helpers
def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float, digits: int = 1) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return _DASH
    return f"{v:.{digits}f}" if math.isfinite(v) else _DASH


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(n, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + 1e-9 * step:
        ticks.append(round(v, 10))
        v += step
    return ticks


def _tick_label(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-9 else "0"


@dataclass
class _Series:
    x: np.ndarray
    y: np.ndarray
    colour: str
    dashed: bool = False
    label: str = ""
    markers: bool = False


def _svg_plot(series: Sequence[_Series], *, xlabel: str, ylabel: str, title: str = "",
              band: tuple[float, float] | None = None,
              window: tuple[float, float] | None = None,
              width: int = 760, height: int = 300,
              xticks: Sequence[tuple[float, str]] | None = None,
              ymin: float | None = None) -> str:
    """An inline SVG line chart: one polyline per series with finite points (``data-points``
    counts them; series without any are left out), an
    optional shaded horizontal ``band`` and a vertical ``window`` (shaded between, dashed
    edges). Values must already be in display units."""
    series = [s for s in series if np.any(np.isfinite(s.x) & np.isfinite(s.y))]
    ml, mr, mt, mb = 62, 16, 26 if title else 12, 42
    pw, ph = width - ml - mr, height - mt - mb
    xs = [s.x[np.isfinite(s.x) & np.isfinite(s.y)] for s in series]
    ys = [s.y[np.isfinite(s.x) & np.isfinite(s.y)] for s in series]
    xvals = [float(v) for a in xs if a.size for v in (a.min(), a.max())]
    yvals = [float(v) for a in ys if a.size for v in (a.min(), a.max())]
    if band is not None:
        yvals += [v for v in band if math.isfinite(v)]
    if window is not None:
        xvals += [v for v in window if math.isfinite(v)]
    x0, x1 = (min(xvals), max(xvals)) if xvals else (0.0, 1.0)
    y0, y1 = (min(yvals), max(yvals)) if yvals else (0.0, 1.0)
    if ymin is not None:
        y0 = min(y0, ymin)
    if x1 <= x0:
        x0, x1 = x0 - 0.5, x1 + 0.5
    if y1 <= y0:
        y0, y1 = y0 - 1.0, y1 + 1.0
    y1 += 0.05 * (y1 - y0)

    def px(v):
        return ml + (np.asarray(v, dtype=np.float64) - x0) / (x1 - x0) * pw

    def py(v):
        return mt + ph - (np.asarray(v, dtype=np.float64) - y0) / (y1 - y0) * ph

    out = [f'<svg class="plot" data-points="{len(series)}" xmlns="http://www.w3.org/2000/svg" '
           f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{_e(title or ylabel)}">']
    if title:
        out.append(f'<text x="{ml}" y="16" font-size="13" font-weight="600">{_e(title)}</text>')
    out.append(f'<rect x="{ml}" y="{mt}" width="{pw}" height="{ph}" fill="#fcfcfc" '
               'stroke="#999"/>')
    if band is not None and all(math.isfinite(v) for v in band):
        b_hi, b_lo = float(py(max(band))), float(py(min(band)))
        b_hi, b_lo = max(b_hi, mt), min(b_lo, mt + ph)
        if b_lo > b_hi:
            out.append(f'<rect class="band" x="{ml}" y="{b_hi:.1f}" width="{pw}" '
                       f'height="{b_lo - b_hi:.1f}" fill="#2ca02c" fill-opacity="0.15"/>')
    if window is not None:
        w_lo, w_hi = window
        if math.isfinite(w_lo) and math.isfinite(w_hi) and w_hi > w_lo:
            a, b = float(px(w_lo)), float(min(px(w_hi), ml + pw))
            out.append(f'<rect class="window" x="{a:.1f}" y="{mt}" width="{max(b - a, 0):.1f}" '
                       f'height="{ph}" fill="#1f77b4" fill-opacity="0.07"/>')
        for v in window:
            if math.isfinite(v) and x0 <= v <= x1:
                xv = float(px(v))
                out.append(f'<line x1="{xv:.1f}" y1="{mt}" x2="{xv:.1f}" y2="{mt + ph}" '
                           'stroke="#1f77b4" stroke-dasharray="2,3"/>')
    ticks = xticks if xticks is not None else [(v, _tick_label(v)) for v in _nice_ticks(x0, x1)]
    for v, lab in ticks:
        xv = float(px(v))
        out.append(f'<line x1="{xv:.1f}" y1="{mt + ph}" x2="{xv:.1f}" y2="{mt + ph + 4}" '
                   'stroke="#555"/>')
        out.append(f'<text x="{xv:.1f}" y="{mt + ph + 16}" font-size="11" '
                   f'text-anchor="middle">{_e(lab)}</text>')
    for v in _nice_ticks(y0, y1):
        yv = float(py(v))
        out.append(f'<line x1="{ml}" y1="{yv:.1f}" x2="{ml + pw}" y2="{yv:.1f}" '
                   'stroke="#e5e5e5"/>')
        out.append(f'<text x="{ml - 5}" y="{yv + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{_e(_tick_label(v))}</text>')
    out.append(f'<text x="{ml + pw / 2:.0f}" y="{height - 6}" font-size="12" '
               f'text-anchor="middle">{_e(xlabel)}</text>')
    out.append(f'<text x="14" y="{mt + ph / 2:.0f}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 14 {mt + ph / 2:.0f})">{_e(ylabel)}</text>')
    for s, x, y in zip(series, xs, ys, strict=True):
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px(x), py(y), strict=True))
        dash = ' stroke-dasharray="6,4"' if s.dashed else ""
        tip = f"<title>{_e(s.label)}</title>" if s.label else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{s.colour}" '
                   f'stroke-width="{2.2 if s.dashed else 1.6}"{dash}>{tip}</polyline>')
        if s.markers:
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{s.colour}"/>'
                    for a, b in zip(px(x), py(y), strict=True)]
    out.append("</svg>")
    return "".join(out)


# ---------------------------------------------------------------------------- data gathering
@dataclass
class _Point:
    """A trigger point's section: its band and hold window, its holds as (index of the
    recording, metrics), and the instructor's first hold there."""

    label: str
    band_n: tuple[float, float] = (math.nan, math.nan)
    window_s: tuple[float, float] = (math.nan, math.nan)
    holds: list[tuple[int, HoldMetrics]] = field(default_factory=list)
    reference: HoldMetrics | None = None


def _hold_curve(rec, m: HoldMetrics) -> tuple[np.ndarray, np.ndarray]:
    """The hold's samples: (seconds since it began, force in N)."""
    t = np.asarray(rec.timestamps, dtype=np.float64)
    f = np.asarray(rec.force, dtype=np.float64)
    a, b = (int(v) for v in np.searchsorted(t, (m.start_s, m.end_s), side="left"))
    return t[a:b] - m.start_s, f[a:b]


def _point_dose(proto: SessionProtocol | None, label: str):
    if proto is None:
        return None
    for i, p in enumerate(proto.points):
        if p.label == label:
            try:
                band = proto.band_n(i)
            except ValueError:
                band = (math.nan, math.nan)
            return band, (float(p.dose.min_hold_s), float(p.dose.max_hold_s))
    return None


class _Units:
    """Display unit of the report: the protocol's, through ``schemas.units``."""

    def __init__(self, proto: SessionProtocol | None, warnings: list[str]) -> None:
        self.unit = "N"
        self.area = math.nan
        if proto is not None:
            area = proto.contact_area_cm2
            self.area = float(area) if area is not None else math.nan
            unit = proto.unit
            try:
                from_newtons(1.0, unit, self.area)
                self.unit = unit
            except ValueError:
                warnings.append(f"protocol unit {unit} needs a contact area; values shown in N")
        self.pressure = is_pressure(self.unit)

    def __call__(self, value_n):
        return from_newtons(value_n, self.unit, self.area)

    @property
    def what(self) -> str:
        return "pressure" if self.pressure else "force"


# ---------------------------------------------------------------------------- sections
def _flags(m: HoldMetrics) -> list[tuple[str, str, str]]:
    """(css class, text, explanation) of each flag the hold raises."""
    out = []
    if m.early_release:
        out.append(("b-short", "too short", "released before the minimum hold time"))
    if math.isfinite(m.overshoot_pct) and m.overshoot_pct > OVERSHOOT_FLAG_PCT:
        out.append(("b-over", "overshoot", f"overshoot above {OVERSHOOT_FLAG_PCT:g} %"))
    if (math.isfinite(m.steadiness_n) and math.isfinite(m.target_n)
            and m.steadiness_n > STEADINESS_FLAG_FRAC * m.target_n):
        out.append(("b-unsteady", "unsteady",
                    f"steadiness above {STEADINESS_FLAG_FRAC * 100:g} % of the target"))
    if m.duration_s > 0 and m.time_in_band_s < TIME_IN_BAND_FLAG_FRAC * m.duration_s:
        out.append(("b-band", "outside band",
                    f"in the band less than {TIME_IN_BAND_FLAG_FRAC * 100:g} % of the hold"))
    return out


def _badges(m: HoldMetrics) -> str:
    flags = _flags(m)
    if not flags:
        return '<span class="badge b-ok">ok</span>'
    return " ".join(f'<span class="badge {c}" title="{_e(tip)}">{_e(text)}</span>'
                    for c, text, tip in flags)


def _session_name(rec, i: int) -> str:
    trainee = (rec.session or {}).get("trainee") or ""
    when = rec.session_start.strftime("%Y-%m-%d %H:%M")
    return f"S{i + 1}: {trainee + ', ' if trainee else ''}{when}"


def _point_section(k: int, point: _Point, recs: Sequence, reference, u: _Units) -> str:
    unit = u.unit
    multi = len(recs) > 1
    has_reference = reference is not None
    curves = [_hold_curve(recs[i], m) for i, m in point.holds]
    series = []
    for j, ((i, m), (t, f)) in enumerate(zip(point.holds, curves, strict=True)):
        x, y = peak_decimate(t, f, MAX_PLOT_POINTS)
        tag = f"S{i + 1} " if multi else ""
        series.append(_Series(x, np.asarray(u(y)), _COLOURS[j % len(_COLOURS)],
                              label=f"{tag}rep {m.repetition}"))
    ref = None
    if point.reference is not None:
        ref = _hold_curve(reference, point.reference)
        x, y = peak_decimate(*ref, MAX_PLOT_POINTS)
        series.append(_Series(x, np.asarray(u(y)), _REF_COLOUR, dashed=True,
                              label="reference (instructor)"))
    band = tuple(float(u(v)) for v in point.band_n)
    band_txt = (f"target band {_num(band[0])}–{_num(band[1])} {unit}"
                if all(math.isfinite(v) for v in band) else "no target band")
    win = point.window_s
    win_txt = (f"hold window {_num(win[0], 0)}–{_num(win[1], 0)} s"
               if all(math.isfinite(v) for v in win) else "no hold window")
    plot = _svg_plot(series, xlabel="time since the hold began (s)",
                     ylabel=f"{u.what} ({unit})", band=band, window=win, ymin=0.0,
                     title=f"{point.label}: {len(point.holds)} hold(s)")
    legend = " ".join(f'<span><span class="swatch" style="border-color:{s.colour}'
                      f'{";border-top-style:dashed" if s.dashed else ""}"></span>'
                      f"{_e(s.label)}</span>" for s in series)
    head = ["session"] if multi else []
    head += ["rep", "duration (s)", "time in band (s)", f"plateau mean ({unit})",
             "overshoot (%)", f"steadiness ({unit})", f"|error| ({unit})", "pain (0–10)",
             "blind"]
    if has_reference:
        head += [f"DTW to reference ({unit}·sample, {DTW_DT_S:g} s grid)",
                 f"median |difference| to reference ({unit})"]
    head.append("flags")
    rows = []
    ref_dtw = None
    if ref is not None and ref[0].size >= 2:
        ref_dtw = resample_curve(*ref, 0.0, float(ref[0][-1]), dt=DTW_DT_S)
    for (i, m), (t, f) in zip(point.holds, curves, strict=True):
        cells = [f'<td class="l">S{i + 1}</td>'] if multi else []
        cells += [f"<td>{m.repetition}</td>", f"<td>{_num(m.duration_s)}</td>",
                  f"<td>{_num(m.time_in_band_s)}</td>",
                  f"<td>{_num(u(m.plateau_mean_n))}</td>",
                  f"<td>{_num(m.overshoot_pct)}</td>",
                  f"<td>{_num(u(m.steadiness_n), 2)}</td>",
                  f"<td>{_num(u(m.abs_error_n))}</td>",
                  f"<td>{_num(m.pain, 0)}</td>",
                  f'<td class="l">{"yes" if m.blind else "no"}</td>']
        if has_reference:
            dtw = mad = math.nan
            if ref is not None and t.size >= 2:
                mad = float(u(median_abs_difference((t, f), ref)))
                if ref_dtw is not None:
                    cur = resample_curve(t, f, 0.0, float(t[-1]), dt=DTW_DT_S)
                    dtw = float(u(dtw_distance(cur, ref_dtw)))
            cells += [f"<td>{_num(dtw, 0)}</td>", f"<td>{_num(mad)}</td>"]
        cells.append(f'<td class="l">{_badges(m)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    ref_note = ""
    if has_reference:
        ref_note = ('<p class="note">Reference: the first instructor hold at this point'
                    f'{" (none recorded here)" if ref is None else ""}.</p>')
    th = "".join(f'<th{" class=l" if c in ("session", "blind", "flags") else ""}>{_e(c)}</th>'
                 for c in head)
    return (f'<section class="point" id="point-{k}" data-label="{_e(point.label)}">'
            f"<h2>{_e(point.label)}</h2>"
            f'<p class="note">{_e(band_txt)}; {_e(win_txt)}; shaded green = band, '
            "shaded blue between dotted lines = hold window; dashed = reference.</p>"
            f"{plot}<div class=\"note\">{legend}</div>{ref_note}"
            f'<table class="holds"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}'
            "</tbody></table></section>")


def _progress_section(recs: Sequence, metrics: Sequence[list[HoldMetrics]],
                      order: list[str], u: _Units) -> str:
    by_trainee: dict[str, list[int]] = {}
    for i, rec in enumerate(recs):
        by_trainee.setdefault(str((rec.session or {}).get("trainee") or ""), []).append(i)
    parts = []
    for trainee, idx in by_trainee.items():
        if len(idx) < 2:
            continue
        idx = sorted(idx, key=lambda i: recs[i].session_start)
        who = trainee or "(no trainee name)"
        parts.append(f"<h3>{_e(who)}</h3>")
        for label in order:
            errs, cvs, ns = [], [], []
            for i in idx:
                rows = [m for m in metrics[i] if m.trigger_point == label]
                pm = np.array([m.plateau_mean_n for m in rows], dtype=np.float64)
                ce = np.array([m.constant_error_n for m in rows], dtype=np.float64)
                pm, ce = pm[np.isfinite(pm)], ce[np.isfinite(ce)]
                ns.append(len(rows))
                errs.append(float(np.mean(ce)) if ce.size else math.nan)
                cvs.append(float(np.std(pm, ddof=1) / np.mean(pm) * 100.0)
                           if pm.size > 1 and np.mean(pm) > 0 else math.nan)
            if not any(ns):
                continue
            x = np.arange(1, len(idx) + 1, dtype=np.float64)
            ticks = [(float(v), f"S{i + 1}") for v, i in zip(x, idx, strict=True)]
            err_y = np.asarray(u(np.array(errs)), dtype=np.float64)
            cv_y = np.array(cvs, dtype=np.float64)
            err_plot = cv_plot = ""
            if np.isfinite(err_y).any():
                err_plot = _svg_plot(
                    [_Series(x, err_y, _COLOURS[0], markers=True, label="plateau mean error")],
                    xlabel="session", ylabel=f"error ({u.unit})", xticks=ticks, width=370,
                    height=220, title=f"{label}: plateau mean − target", band=(0.0, 0.0))
            if np.isfinite(cv_y).any():
                cv_plot = _svg_plot(
                    [_Series(x, cv_y, _COLOURS[1], markers=True, label="CV")],
                    xlabel="session", ylabel="CV (%)", xticks=ticks, width=370, height=220,
                    title=f"{label}: CV of plateau means", ymin=0.0)
            else:
                cv_plot = ('<p class="note">No CV chart: it needs at least two holds with a '
                           "plateau at the point in one session.</p>")
            body = "".join(
                f'<tr><td class="l">S{i + 1}</td><td class="l">'
                f'{_e(recs[i].session_start.strftime("%Y-%m-%d %H:%M"))}</td>'
                f"<td>{n}</td><td>{_num(float(u(e)))}</td><td>{_num(c)}</td></tr>"
                for i, n, e, c in zip(idx, ns, errs, cvs, strict=True))
            parts.append(
                f'<div class="progress" data-label="{_e(label)}">{err_plot} {cv_plot}'
                '<table class="progress"><thead><tr><th class="l">session</th>'
                f'<th class="l">date</th><th>holds</th><th>mean error ({_e(u.unit)})</th>'
                f"<th>CV of plateau mean (%)</th></tr></thead><tbody>{body}</tbody></table>"
                "</div>")
    if not parts:
        return ""
    return ('<section class="progress" id="progress"><h2>Progress across sessions</h2>'
            '<p class="note">Error: mean of (plateau mean − target) over the session\'s holds '
            "at the point; CV: SD / mean of their plateau means.</p>"
            + "".join(parts) + "</section>")


# ---------------------------------------------------------------------------- the page
def build_report(recordings: Sequence, reference=None, *,
                 warnings: Iterable[str] = (), title: str = "Palpation report") -> str:
    """The report of ``recordings`` (``schemas.reader.Recording``), with an instructor's
    ``reference`` recording overlaid and compared when given, as one self-contained HTML
    page. ``warnings`` (e.g. files that could not be read) are listed at the top."""
    warns = list(warnings)
    recs = list(recordings)
    metrics = [recording_metrics(r) for r in recs]
    protos = [protocol_of(r) for r in recs]
    ref_proto = protocol_of(reference) if reference is not None else None
    main_proto = next((p for p in protos if p is not None), ref_proto)
    u = _Units(main_proto, warns)

    # points: in protocol order, then in order of appearance
    points: dict[str, _Point] = {}
    if main_proto is not None:
        for p in main_proto.points:
            points.setdefault(p.label, _Point(p.label))
    for i, rows in enumerate(metrics):
        for m in rows:
            points.setdefault(m.trigger_point, _Point(m.trigger_point)).holds.append((i, m))
    for pt in points.values():
        for proto in (*protos, ref_proto):
            dose = _point_dose(proto, pt.label)
            if dose is not None:
                pt.band_n, pt.window_s = dose
                break
    if reference is not None:
        for m in recording_metrics(reference):
            pt = points.get(m.trigger_point)
            if pt is not None and pt.reference is None:
                pt.reference = m
    with_holds = [p for p in points.values() if p.holds]

    # header
    trainees = sorted({str((r.session or {}).get("trainee") or "") for r in recs} - {""})
    dates = sorted({r.session_start.date().isoformat() for r in recs})
    proto_names = sorted({p.name for p in protos if p is not None}) or ["(none stored)"]
    area_txt = (f"contact area {_num(u.area, 2)} cm²" if math.isfinite(u.area)
                else "no contact area")
    meta = [("Trainee(s)", ", ".join(trainees) or "(not named)"),
            ("Date(s)", ", ".join(dates) or _DASH),
            ("Protocol", "; ".join(proto_names)),
            ("Units", f"{u.what} in {u.unit} ({area_txt}); times in s; "
                      "overshoot and CV in %; pain 0–10")]
    if reference is not None:
        instr = (reference.session or {}).get("instructor") or \
            (reference.session or {}).get("trainee") or ""
        meta.append(("Reference", f"{instr + ', ' if instr else ''}"
                                  f"{reference.session_start.strftime('%Y-%m-%d %H:%M')} "
                                  f"({Path(reference.path).name})"))
    sessions = "".join(
        f'<tr><td class="l">{_e(_session_name(r, i))}</td>'
        f'<td class="l">{_e(Path(r.path).name)}</td><td>{len(metrics[i])}</td>'
        f"<td>{_num(r.duration)}</td></tr>" for i, r in enumerate(recs))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{_e(title)}</h1><dl class=\"meta\">",
        "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta),
        "</dl>",
    ]
    if warns:
        parts.append('<div class="warnings">' + "".join(
            f'<p class="warn">Warning: {_e(w)}</p>' for w in warns) + "</div>")
    parts.append(
        '<table class="sessions"><thead><tr><th class="l">session</th><th class="l">file</th>'
        f"<th>holds</th><th>duration (s)</th></tr></thead><tbody>{sessions}</tbody></table>"
        "</header>")
    if not with_holds:
        parts.append("<p>No holds were found in these recordings.</p>")
    for k, pt in enumerate(with_holds):
        parts.append(_point_section(k, pt, recs, reference, u))
    parts.append(_progress_section(recs, metrics, [p.label for p in with_holds], u))
    parts.append('<footer class="note"><p>Flags: too short = released before the minimum '
                 f"hold; overshoot = above {OVERSHOOT_FLAG_PCT:g} %; unsteady = steadiness "
                 f"above {STEADINESS_FLAG_FRAC * 100:g} % of the target; outside band = in the "
                 f"band less than {TIME_IN_BAND_FLAG_FRAC * 100:g} % of the hold.</p></footer>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(paths: Iterable[str | Path], out: str | Path,
                 reference: str | Path | None = None) -> list[str]:
    """Open the recordings at ``paths`` (and the ``reference``), write the report to ``out``
    atomically (a temporary file in the same directory, then renamed), and return the
    warnings: one line per file that could not be read, which is skipped and named in the
    page too."""
    warnings: list[str] = []
    recs = []
    for p in paths:
        try:
            recs.append(open_recording(p))
        except RecordingFileError as exc:
            warnings.append(f"skipped: {exc}")
    ref = None
    if reference is not None:
        try:
            ref = open_recording(reference)
        except RecordingFileError as exc:
            warnings.append(f"reference skipped: {exc}")
    page = build_report(recs, ref, warnings=warnings)
    out = Path(out)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return warnings
