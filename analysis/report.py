"""Instructor's report: one self-contained HTML page of holds, metrics and progress.

``build_report`` turns recordings (``schemas.reader.Recording``) into a single HTML string
with inline CSS and inline SVG plots (``analysis.svg``; no scripts, no network). It is meant
to be read without a manual:

* a header naming the trainee(s), the sessions (numbered by date, S1 the earliest, each label
  carrying its date), the protocol(s) and the display unit;
* "How to read this report": every flag with what it is measured against, every column with
  its definition, and how to read the distance to the reference. Names and definitions come
  from ``analysis.definitions``, as review's do;
* per trigger point with holds: the holds overlaid (each decimated to at most
  ``MAX_PLOT_POINTS`` points) on the shaded target band and hold window, the instructor's
  reference dashed, and a table with one row per hold, its score, its flags (``hold_flags``)
  and its score's largest deduction (``analysis.score``). The
  reference at a point is the mean of the instructor's complete holds there, and each hold's
  distance to it is DTW per second of hold and the median difference
  (``analysis.reference_holds``, as in the hold table of ``analyze --reference``);
* for ``ppt_ramp`` recordings, "Pressure-pain thresholds" (``analysis.ppt``): per session and
  site the series of thresholds, its mean, the left-right difference and the change since the
  same subject's previous session with the same trainee, flagged only beyond the MDC95;
* learning curves per trainee (``analysis.learning``): per session the mean score and error
  of the holds with and without live feedback, and the dependency gap between them;
* progress across sessions for a trainee with several recordings: per point, the plateau
  mean's error and the CV of the plateau means by session, on fixed scales set by the band.

Each hold is judged by its own file's protocol (``recording_metrics`` stores the dose in its
row): a trigger point worked under different doses gets one section per dose, and the page
says so. Every value is shown in the first session's protocol unit (``schemas.units``).

``write_report`` opens the files, skips unreadable ones with a warning shown in the page,
and writes the page atomically; ``ReportError`` when none can be read or the reference
cannot be.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.decimate import peak_decimate
from analysis.definitions import FLAGS, INCOMPLETE, METRICS, REFERENCE_METRICS, hold_flags
from analysis.learning import learning_curves, learning_section, recording_rows
from analysis.metrics import HoldMetrics, recording_metrics
from analysis.ppt import ppt_hold_rows, ppt_section, ppt_summary_rows
from analysis.reference_holds import curve_distances, hold_curve, reference_holds
from analysis.score import score_metrics
from analysis.svg import DASH, Series, esc, num, svg_plot
from schemas.atomic import write_text_atomic
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording
from schemas.session_protocol import SessionProtocol, protocol_of
from schemas.units import from_newtons, quantity_name, unit_text

__all__ = ["COLOURS", "CSS", "MAX_PLOT_POINTS", "ReportError", "build_report", "write_report"]

MAX_PLOT_POINTS = 400  # per curve

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
            "#17becf", "#bcbd22", "#7f7f7f")
_REF_COLOUR = "#222222"
_FLAG_COLOURS = {"short": "#b45309", "long": "#9a3412", "band": "#0369a1", "over": "#b91c1c",
                 "unsteady": "#7c3aed", "incomplete": "#6b7280", "ok": "#15803d"}

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px;
color:#222;max-width:1150px}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ccc}h3{font-size:1.05em}h4{margin:.8em 0 .2em}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:.88em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
dl.defs dt{font-weight:600;margin-top:.3em}dl.defs dd{margin:0 0 0 1.5em}
.badge{display:inline-block;padding:1px 6px;margin:1px;border-radius:8px;font-size:.8em;
color:#fff;white-space:nowrap}
.warn{background:#fff4e5;border:1px solid #f0b36b;padding:6px 10px;margin:.4em 0}
svg.plot{background:#fff;border:1px solid #ddd;margin:4px 0}
.note{color:#555;font-size:.85em}
table.holds td.l:first-child{white-space:nowrap}
.swatch{display:inline-block;width:18px;height:0;border-top:3px solid;vertical-align:middle;
margin-right:4px}
""" + "".join(f".b-{k}{{background:{c}}}" for k, c in _FLAG_COLOURS.items())


class ReportError(Exception):
    """No report can be made: no recording could be read, or the reference could not be."""


# ---------------------------------------------------------------------------- data gathering
@dataclass
class _Point:
    """A section: a trigger point under one dose (band in N, hold window in s), the protocols
    that set it, its holds as (session index, metrics), and the reference curve there (the
    mean of ``ref_count`` instructor holds; (t, N))."""

    label: str
    band_n: tuple[float, float]
    window_s: tuple[float, float]
    protocols: set[str] = field(default_factory=set)
    holds: list[tuple[int, HoldMetrics]] = field(default_factory=list)
    ref: tuple[np.ndarray, np.ndarray] | None = None
    ref_count: int = 0
    split: bool = False  # the point has sections for other doses too


def _dose_key(m: HoldMetrics) -> tuple:
    return tuple(round(v, 6) if math.isfinite(v) else None
                 for v in (m.band_low_n, m.band_high_n, m.min_hold_s, m.max_hold_s))


def _gather(recs, metrics, protos, order: list[str]) -> list[_Point]:
    """Sections in protocol order (``order``), then in order of appearance; one per trigger
    point and dose."""
    points: dict[tuple, _Point] = {}
    for i, rows in enumerate(metrics):
        name = protos[i].name if protos[i] is not None else "(no protocol stored)"
        for m in rows:
            key = (m.trigger_point, _dose_key(m))
            pt = points.setdefault(key, _Point(m.trigger_point, (m.band_low_n, m.band_high_n),
                                               (m.min_hold_s, m.max_hold_s)))
            pt.holds.append((i, m))
            pt.protocols.add(name)
    labels = list(dict.fromkeys([*order, *(p.label for p in points.values())]))
    out = sorted(points.values(), key=lambda p: labels.index(p.label))
    for p in out:
        p.split = sum(q.label == p.label for q in out) > 1
    return out


def _add_reference(points: list[_Point], reference, warns: list[str]) -> None:
    """Each section's reference: the one of ``analysis.reference_holds`` at its point."""
    ref = reference_holds(reference)
    if not ref.points:
        warns.append(f"the reference {ref.name} has no holds: there is "
                     "nothing to compare the holds with")
        return
    for p in points:
        at = ref.points.get(p.label)
        if at is not None:
            p.ref, p.ref_count = at.curve, at.holds


class _Units:
    """Display unit of the report: the protocol's, through ``schemas.units``."""

    def __init__(self, proto: SessionProtocol | None, warnings: list[str]) -> None:
        self.unit = "N"
        self.area = math.nan
        if proto is not None:
            area = proto.contact_area_cm2
            self.area = float(area) if area is not None else math.nan
            try:
                from_newtons(1.0, proto.unit, self.area)
                self.unit = proto.unit
            except ValueError:
                warnings.append(f"protocol unit {proto.unit} needs a contact area; values "
                                "shown in N")
        self.text = unit_text(self.unit)
        self.what = quantity_name(self.unit)

    def __call__(self, value_n):
        return from_newtons(value_n, self.unit, self.area)

    def shown(self, unit: str) -> str:
        """A metric's stored unit as shown: forces in the display unit."""
        return self.text if unit == "N" else unit


def _tag(recs, i: int) -> str:
    return f"S{i + 1} ({recs[i].session_start:%Y-%m-%d %H:%M})"


# ---------------------------------------------------------------------------- a point's section
# the hold table's metric columns: (HoldMetrics field, decimals, converted to display unit)
_COLUMNS = (("repetition", 0, False), ("duration_s", 1, False), ("time_in_band_s", 1, False),
            ("plateau_mean_n", 1, True), ("peak_over_band_pct", 0, False),
            ("steadiness_n", 2, True), ("abs_error_n", 1, True), ("pain", 0, False),
            ("score", 0, False))


def _head(name: str, unit: str, definition: str) -> str:
    text = f"{name} ({unit})" if unit else name
    return f'<th title="{esc(definition)}">{esc(text)}</th>'


def _badges(m: HoldMetrics) -> str:
    """The hold's flags, then its score's largest deduction (what cost it most)."""
    flags = hold_flags(m)
    largest = score_metrics(m).largest
    note = f' <span class="note">{esc(largest.text())}</span>' if largest else ""
    if not flags:
        return f'<span class="badge b-ok">ok</span>{note}'
    return " ".join(f'<span class="badge b-{f.key}" title="{esc(f.definition)}">'
                    f"{esc(f.name)}</span>" for f in flags) + note


def _point_plot(point: _Point, recs, curves, u: _Units) -> str:
    multi = len(recs) > 1
    series = []
    for j, ((i, m), (t, f)) in enumerate(zip(point.holds, curves, strict=True)):
        x, y = peak_decimate(t, f, MAX_PLOT_POINTS)
        tag = f"{_tag(recs, i)} " if multi else ""
        series.append(Series(x, np.asarray(u(y)), COLOURS[j % len(COLOURS)],
                             label=f"{tag}repetition {m.repetition}"))
    if point.ref is not None:
        x, y = peak_decimate(*point.ref, MAX_PLOT_POINTS)
        series.append(Series(x, np.asarray(u(y)), _REF_COLOUR, dashed=True,
                             label=f"reference: mean of {point.ref_count} instructor hold(s)"))
    band = tuple(float(u(v)) for v in point.band_n)
    plot = svg_plot(series, xlabel="time since the hold began (s)",
                    ylabel=f"{u.what} ({u.text})", band=band, window=point.window_s,
                    ymin=0.0, title=f"{point.label}: {len(point.holds)} hold(s)")
    legend = " ".join(f'<span><span class="swatch" style="border-color:{s.colour}'
                      f'{";border-top-style:dashed" if s.dashed else ""}"></span>'
                      f"{esc(s.label)}</span>" for s in series)
    return f'{plot}<div class="note">{legend}</div>'


def _point_rows(point: _Point, recs, curves, u: _Units, has_reference: bool) -> list[str]:
    rows = []
    for (i, m), (t, f) in zip(point.holds, curves, strict=True):
        cells = [f'<td class="l">{esc(_tag(recs, i))}</td>'] if len(recs) > 1 else []
        for name, digits, force in _COLUMNS:
            value = getattr(m, name)
            cells.append(f"<td>{num(u(value) if force else value, digits)}</td>")
        cells.append(f'<td class="l">{"yes" if m.blind else "no"}</td>')
        if has_reference:
            gaps = (curve_distances((t, f), point.ref) if point.ref is not None
                    else (math.nan, math.nan))
            cells += [f"<td>{num(float(u(gap)))}</td>" for gap in gaps]
        cells.append(f'<td class="l">{_badges(m)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return rows


def _point_section(k: int, point: _Point, recs, u: _Units, has_reference: bool) -> str:
    curves = [hold_curve(recs[i], m) for i, m in point.holds]
    head = ['<th class="l">session</th>'] if len(recs) > 1 else []
    head += [_head(METRICS[n].name, u.shown(METRICS[n].unit), METRICS[n].definition)
             for n, _, _ in _COLUMNS]
    head.append(f'<th class="l" title="{esc(METRICS["blind"].definition)}">'
                f'{esc(METRICS["blind"].name)}</th>')
    if has_reference:
        head += [_head(r.name, u.text, r.definition) for r in REFERENCE_METRICS.values()]
    head.append('<th class="l">flags</th>')
    band = tuple(float(u(v)) for v in point.band_n)
    band_txt = (f"target band {num(band[0])}–{num(band[1])} {u.text} (target "
                f"{num((band[0] + band[1]) / 2)} {u.text})"
                if all(math.isfinite(v) for v in band) else "no target band")
    win = point.window_s
    win_txt = (f"hold window {win[0]:g}–{win[1]:g} s"
               if all(math.isfinite(v) for v in win) else "no hold window")
    title = point.label
    if point.split:
        title += f" — {', '.join(sorted(point.protocols))}"
    ref_note = ""
    if has_reference:
        ref_note = ('<p class="note">Reference (dashed): '
                    + (f"the mean of the instructor's {point.ref_count} hold(s) at this point, "
                       "each stretched to their mean length." if point.ref is not None
                       else "the instructor recorded no hold at this point.") + "</p>")
    rows = _point_rows(point, recs, curves, u, has_reference)
    return (f'<section class="point" id="point-{k}" data-label="{esc(point.label)}">'
            f"<h2>{esc(title)}</h2>"
            f'<p class="note">Judged against {esc(band_txt)} and {esc(win_txt)} '
            f"({esc(', '.join(sorted(point.protocols)))}); shaded green = band, shaded blue "
            "between dotted lines = hold window.</p>"
            f"{_point_plot(point, recs, curves, u)}{ref_note}"
            f'<table class="holds"><thead><tr>{"".join(head)}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


# ---------------------------------------------------------------------------- legend
def _legend_section(u: _Units, has_reference: bool) -> str:
    flags = "".join(f'<dt><span class="badge b-{f.key}">{esc(f.name)}</span></dt>'
                    f"<dd>{esc(f.definition)}</dd>" for f in (*FLAGS, INCOMPLETE))
    names = [n for n, _, _ in _COLUMNS] + ["blind"]
    cols = "".join(f"<dt>{esc(METRICS[n].name)}"
                   f"{' (' + esc(u.shown(METRICS[n].unit)) + ')' if METRICS[n].unit else ''}"
                   f"</dt><dd>{esc(METRICS[n].definition)}</dd>" for n in names)
    ref = ""
    if has_reference:
        ref = "".join(f"<dt>{esc(r.name)} ({esc(u.text)})</dt><dd>{esc(r.definition)}</dd>"
                      for r in REFERENCE_METRICS.values())
        ref = ("<h3>Distance to the reference</h3><p>The reference at a trigger point is the "
               "mean of the instructor's holds there. DTW per second of hold reads as the "
               "typical force gap between the trainee's curve and the reference once their "
               "timing is aligned: 0 is the same shape, and a gap of half the band's width "
               "would take a hold laid over the reference from the band's middle to its edge."
               f'</p><dl class="defs">{ref}</dl>')
    return ('<section id="legend"><h2>How to read this report</h2><h3>Flags</h3>'
            f'<dl class="defs"><dt><span class="badge b-ok">ok</span></dt><dd>no flag '
            f"raised</dd>{flags}</dl><h3>Columns</h3>"
            f'<dl class="defs">{cols}</dl>{ref}</section>')


# ---------------------------------------------------------------------------- thresholds
def _ppt_section(recs, metrics, protos, u: _Units) -> str:
    """"Pressure-pain thresholds" of the ``ppt_ramp`` recordings (``analysis.ppt``)."""
    idx = [i for i, p in enumerate(protos) if p is not None and p.kind == "ppt_ramp"]
    if not idx:
        return ""
    rows = [row for i in idx for row in ppt_hold_rows(recs[i], metrics[i], str(i))]
    return ppt_section(ppt_summary_rows(rows), lambda file: _tag(recs, int(file)), u, u.text)


# ---------------------------------------------------------------------------- progress
def _session_stats(rows: list[HoldMetrics]) -> tuple[int, float, float]:
    """(holds, mean constant error in N, CV of the plateau means in %) of judged holds."""
    rows = [m for m in rows if m.complete]
    pm = np.array([m.plateau_mean_n for m in rows], dtype=np.float64)
    ce = np.array([m.constant_error_n for m in rows], dtype=np.float64)
    pm, ce = pm[np.isfinite(pm)], ce[np.isfinite(ce)]
    err = float(np.mean(ce)) if ce.size else math.nan
    cv = (float(np.std(pm, ddof=1) / np.mean(pm) * 100.0)
          if pm.size > 1 and np.mean(pm) > 0 else math.nan)
    return len(rows), err, cv


def _scale(limit: float, values: np.ndarray, step: float) -> float:
    """``limit``, raised in ``step``s until every finite value fits."""
    top = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    return limit if top <= limit else math.ceil(top / step) * step


def _progress_charts(label: str, idx: list[int], recs, metrics, u: _Units) -> str:
    stats = [_session_stats([m for m in metrics[i] if m.trigger_point == label]) for i in idx]
    if not any(n for n, _, _ in stats):
        return ""
    rows = [m for i in idx for m in metrics[i] if m.trigger_point == label]
    half_n = max((m.band_high_n - m.band_low_n) / 2 for m in rows)
    target_n = float(np.nanmean([m.target_n for m in rows]))
    x = np.arange(1, len(idx) + 1, dtype=np.float64)
    ticks = [(float(v), f"S{i + 1}\n{recs[i].session_start.day} "
                        f"{recs[i].session_start:%b}") for v, i in zip(x, idx, strict=True)]
    err = np.asarray(u(np.array([e for _, e, _ in stats])), dtype=np.float64)
    cv = np.array([c for _, _, c in stats], dtype=np.float64)
    charts = []
    if np.isfinite(err).any() and half_n > 0:
        half = float(u(half_n))
        lim = _scale(2 * half, err, half)
        charts.append(svg_plot(
            [Series(x, err, COLOURS[0], markers=True, label="mean error")], xlabel="",
            ylabel=f"error ({u.text})", xticks=ticks, width=370, height=230,
            title=f"plateau mean − target ({u.text})", band=(-half, half), yrange=(-lim, lim)))
    if np.isfinite(cv).any() and half_n > 0 and target_n > 0:
        ref = half_n / target_n * 100.0
        charts.append(svg_plot(
            [Series(x, cv, COLOURS[1], markers=True, label="CV")], xlabel="",
            ylabel="CV (%)", xticks=ticks, width=370, height=230,
            title="CV of the plateau means (%)", band=(0.0, ref),
            yrange=(0.0, _scale(2 * ref, cv, ref / 2))))
    else:
        charts.append('<p class="note">No CV chart: it needs at least two holds with a '
                      "plateau at the point in one session.</p>")
    body = "".join(f'<tr><td class="l">{esc(_tag(recs, i))}</td><td>{n}</td>'
                   f"<td>{num(float(u(e)))}</td><td>{num(c)}</td></tr>"
                   for i, (n, e, c) in zip(idx, stats, strict=True))
    return (f'<div class="progress" data-label="{esc(label)}"><h4>{esc(label)}</h4>'
            f'{" ".join(charts)}<table class="progress"><thead><tr><th class="l">session</th>'
            f"<th>holds</th><th>mean error ({esc(u.text)})</th><th>CV of plateau means (%)"
            f"</th></tr></thead><tbody>{body}</tbody></table></div>")


def _progress_section(recs, metrics, order: list[str], u: _Units) -> str:
    by_trainee: dict[str, list[int]] = {}
    for i, rec in enumerate(recs):
        by_trainee.setdefault(str((rec.session or {}).get("trainee") or ""), []).append(i)
    parts = []
    for trainee, idx in by_trainee.items():
        if len(idx) < 2:
            continue
        charts = [_progress_charts(label, idx, recs, metrics, u) for label in order]
        parts.append(f"<h3>{esc(trainee or '(no trainee name)')}</h3>" + "".join(charts))
    if not parts:
        return ""
    return ('<section class="progress" id="progress"><h2>Progress across sessions</h2>'
            '<p class="note">Error: mean of (plateau mean − target) over the session\'s judged '
            "holds at the point, on a scale of twice the band's half-width each way; shaded "
            "green: inside the band. CV: SD / mean of their plateau means; shaded green: an SD "
            "smaller than half the band.</p>" + "".join(parts) + "</section>")


# ---------------------------------------------------------------------------- the page
def _header(recs, metrics, protos, reference, u: _Units) -> list[str]:
    trainees = sorted({str((r.session or {}).get("trainee") or "") for r in recs} - {""})
    dates = sorted({r.session_start.date().isoformat() for r in recs})
    names = [p.name if p is not None else "(none stored)" for p in protos]
    area_txt = (f"contact area {num(u.area, 2)} cm²" if math.isfinite(u.area)
                else "no contact area")
    meta = [("Trainee(s)", ", ".join(trainees) or "(not named)"),
            ("Date(s)", ", ".join(dates) or DASH),
            ("Protocol", "; ".join(sorted(set(names))) or DASH),
            ("Units", f"{u.what} in {u.text} ({area_txt}); times in s; pain 0–10")]
    if reference is not None:
        s = reference.session or {}
        who = s.get("instructor") or s.get("trainee") or ""
        meta.append(("Reference", f"{who + ', ' if who else ''}"
                                  f"{reference.session_start:%Y-%m-%d %H:%M} "
                                  f"({Path(reference.path).name})"))
    out = ["<dl class=\"meta\">", "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                                         for k, v in meta), "</dl>"]
    if len(set(names)) > 1:
        used = "; ".join(f"{n}: " + ", ".join(f"S{i + 1}" for i, m in enumerate(names) if m == n)
                         for n in dict.fromkeys(names))
        out.append(f'<p class="protocols warn">These sessions follow {len(set(names))} '
                   f"protocols ({esc(used)}). Each hold is judged by its own file's protocol "
                   "(its band, hold window and flags); a trigger point worked under different "
                   "doses has one section per dose.</p>")
    rows = "".join(f'<tr><td class="l">{esc(_tag(recs, i))}</td>'
                   f'<td class="l">{esc((r.session or {}).get("trainee") or "")}</td>'
                   f'<td class="l">{esc(names[i])}</td>'
                   f'<td class="l">{esc(Path(r.path).name)}</td>'
                   f"<td>{sum(m.complete for m in metrics[i])}</td><td>{num(r.duration)}</td>"
                   "</tr>" for i, r in enumerate(recs))
    out.append('<table class="sessions"><thead><tr><th class="l">session</th><th class="l">'
               'trainee</th><th class="l">protocol</th><th class="l">file</th><th>holds</th>'
               f"<th>duration (s)</th></tr></thead><tbody>{rows}</tbody></table>")
    return out


def build_report(recordings: Sequence, reference=None, *,
                 warnings: Iterable[str] = (), title: str = "Palpation report") -> str:
    """The report of ``recordings`` (``schemas.reader.Recording``; sessions numbered by
    their start), with an instructor's ``reference`` recording overlaid and compared when
    given, as one self-contained HTML page. ``warnings`` (e.g. files that could not be read)
    are listed at the top."""
    warns = list(warnings)
    recs = sorted(recordings, key=lambda r: r.session_start)
    metrics = [recording_metrics(r) for r in recs]
    protos = [protocol_of(r) for r in recs]
    main_proto = next((p for p in protos if p is not None),
                      protocol_of(reference) if reference is not None else None)
    u = _Units(main_proto, warns)
    order = [p.label for p in main_proto.points] if main_proto is not None else []
    points = _gather(recs, metrics, protos, order)
    if reference is not None:
        _add_reference(points, reference, warns)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
             f"<header><h1>{esc(title)}</h1>", *_header(recs, metrics, protos, reference, u)]
    if warns:
        parts.append('<div class="warnings">' + "".join(
            f'<p class="warn">Warning: {esc(w)}</p>' for w in warns) + "</div>")
    parts.append("</header>")
    if not points:
        parts.append("<p>No holds were found in these recordings.</p>")
    else:
        parts.append(_legend_section(u, reference is not None))
    for k, pt in enumerate(points):
        parts.append(_point_section(k, pt, recs, u, reference is not None))
    parts.append(_ppt_section(recs, metrics, protos, u))
    parts.append(learning_section(learning_curves(
        row for rec, rows in zip(recs, metrics, strict=True) for row in recording_rows(rec, rows))))
    parts.append(_progress_section(recs, metrics, list(dict.fromkeys(p.label for p in points)),
                                   u))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(paths: Iterable[str | Path], out: str | Path,
                 reference: str | Path | None = None, *, skip_bad: bool = True) -> list[str]:
    """Open the recordings at ``paths`` (and the ``reference``), write the report to ``out``
    atomically, and return the warnings: one line per file that could not be read, which is
    skipped and named in the page too. ``ReportError`` (nothing written) when none of
    ``paths`` can be read, when one cannot and ``skip_bad`` is False, or when the reference
    cannot be: the report asked for cannot be made."""
    warnings: list[str] = []
    recs = []
    for p in paths:
        try:
            recs.append(open_recording(p))
        except RecordingFileError as exc:
            warnings.append(f"skipped {str(exc).splitlines()[0]}")
        except PermissionError as exc:  # a folder on the way that may not be searched
            warnings.append(f"skipped {p}: {exc.strerror}")
    if not recs:
        raise ReportError("no recording could be read: " + "; ".join(
            w.removeprefix("skipped ") for w in warnings))
    if warnings and not skip_bad:
        raise ReportError(f"{warnings[0].removeprefix('skipped ')}"
                          + (f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else "")
                          + ": nothing written; --skip-bad writes the page without it")
    ref = None
    if reference is not None:
        try:
            ref = open_recording(reference)
        except RecordingFileError as exc:
            raise ReportError(f"the reference {str(exc).splitlines()[0]}") from None
    write_text_atomic(Path(out), build_report(recs, ref, warnings=warnings))
    return warnings
