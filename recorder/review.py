"""Review a recording in the coaching panels, for teaching: step through trigger points and
holds, with an instructor's recording overlaid as the reference.

The holds and their numbers are the analysis's (``analysis.metrics.recording_metrics``), so
review shows the same holds, values and flags as the report, under the same names and
definitions (``analysis.definitions``); the reference at a point is the mean of the
instructor's holds there, as in the report. The session protocol stored in the file gives the
bands and hold windows, and the samples give the curves. On screen: the trainee, the file
and the reference, a legend of what each line and shade is, and a warning when the reference
has no holds to compare with. ``--point`` and ``--hold`` pick what is shown first (and saved
by ``--screenshot``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.curves import reference_curve
from analysis.decimate import peak_decimate
from analysis.definitions import INCOMPLETE, METRICS, REFERENCE_METRICS, hold_flags
from analysis.metrics import HoldMetrics, recording_metrics
from analysis.reference_holds import curve_distances
from recorder.panels import (
    COLORS,
    HoldPlot,
    SmallMultiples,
    big_label,
    hold_curve,
    quiet_offscreen_warnings,
)
from recorder.qtstart import fit_to_screen, start_qt
from schemas.reader import Recording
from schemas.session_protocol import Dose, SessionProtocol, protocol_of
from schemas.units import axis_label, newtons_per_unit, unit_text

OVERVIEW_POINTS = 4000
# the metrics listed for the selected hold, in this order
DETAIL_METRICS = ("duration_s", "time_in_band_s", "time_to_band_s", "peak_n", "plateau_mean_n",
                  "peak_over_band_pct", "steadiness_n", "abs_error_n", "pain")


def point_labels(rows: list[HoldMetrics], protocol: SessionProtocol | None) -> list[str]:
    """Trigger points in protocol order, then any others the holds were found at."""
    labels = [p.label for p in protocol.points] if protocol is not None else []
    for m in rows:
        if m.trigger_point not in labels:
            labels.append(m.trigger_point)
    return labels or ["hold"]


class ReviewHolds:
    """A recording's holds as the analysis finds them, at ``labels``, in time order: each
    with its metrics row, its trigger point's index and its curve (display unit against
    seconds since its start)."""

    def __init__(self, rec: Recording, rows: list[HoldMetrics], labels: list[str],
                 per_unit: float) -> None:
        self.rows: list[HoldMetrics] = []
        self.points: list[int] = []
        self.curves: list[tuple[np.ndarray, np.ndarray]] = []
        self.raw: list[tuple[np.ndarray, np.ndarray]] = []  # (s since start, N), undecimated
        for m in rows:
            if m.trigger_point not in labels:
                continue
            a, b = np.searchsorted(rec.timestamps, [m.start_s, m.end_s])
            t, f = rec.timestamps[a:b], rec.force[a:b]
            self.rows.append(m)
            self.points.append(labels.index(m.trigger_point))
            self.curves.append(hold_curve(t, f * per_unit, m.start_s))
            self.raw.append((t - m.start_s, f))

    def at(self, point: int) -> list[int]:
        """Indices of the holds at trigger point ``point``."""
        return [i for i, p in enumerate(self.points) if p == point]

    def curves_at(self, point: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.curves[i] for i in self.at(point)]

    def mean_at(self, point: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The mean of the complete holds at ``point`` (s since start, N), or None."""
        curves = [self.raw[i] for i in self.at(point) if self.rows[i].complete]
        return reference_curve(curves) if curves else None


def select(labels: list[str], holds: ReviewHolds, point: str | None,
           hold: int | None) -> tuple[int, int]:
    """(point index, hold index at it) for ``--point`` (1-based number or label, any case)
    and ``--hold`` (1-based); ValueError with a one-line reason for one that does not
    exist. Without ``--point``: the first point with holds."""
    if point is None:
        index = holds.points[0] if holds.points else 0
    elif point.strip().isdigit():
        index = int(point) - 1
        if not 0 <= index < len(labels):
            raise ValueError(f"--point {point}: the recording has trigger points 1–"
                             f"{len(labels)}")
    else:
        lower = [label.lower() for label in labels]
        if point.strip().lower() not in lower:
            raise ValueError(f"--point {point!r}: no such trigger point (the recording has: "
                             f"{', '.join(labels)})")
        index = lower.index(point.strip().lower())
    count = len(holds.at(index))
    if hold is not None and not 1 <= hold <= count:
        raise ValueError(f"--hold {hold}: {labels[index]} has "
                         f"{count} hold{'s' if count != 1 else ''}")
    return index, (hold or 1) - 1


def _row(name: str, value: str, definition: str, colour: str = "#e6edf3") -> str:
    """A metric in the details panel: its name and value, its definition below in grey."""
    return (f'<tr><td style="color:{colour}"><b>{html.escape(name)}</b></td><td align="right" '
            f'style="color:{colour}">&nbsp;{html.escape(value)}</td></tr><tr><td colspan="2" '
            f'style="color:#8b949e; font-size:9pt">{html.escape(definition)}</td></tr>')


def _swatch(colour: str, text: str, dashed: bool = False, block: bool = False) -> str:
    glyph = "█" if block else ("╍╍╍" if dashed else "━━━")
    return f'<span style="color:{colour}">{glyph}</span>&nbsp;{text}'


def _rgba(c) -> str:
    if isinstance(c, str):
        return c
    return f"rgba({c[0]},{c[1]},{c[2]},{c[3] / 255 if len(c) > 3 else 1:.2f})"


def _opaque(c) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def legend_html() -> str:
    """What each line and shade of the central plot is."""
    band, window = COLORS["band"], COLORS["window"]
    return "&nbsp;&nbsp;&nbsp;".join((
        _swatch(_rgba(COLORS["selected"]), "selected hold"),
        _swatch(_rgba(COLORS["history"]), "other holds here"),
        _swatch(_rgba(COLORS["reference"]), "reference: mean of the instructor's holds",
                dashed=True),
        _swatch(_opaque(band), "target band", block=True),
        _swatch(_opaque(window), "hold window", block=True)))


class ReviewWindow(QtWidgets.QMainWindow):
    """The review window; ``point`` and ``hold`` as ``select`` takes them (ValueError, before
    anything is drawn, for one that does not exist). ``warning``: what the window warns of
    ("" for nothing), e.g. a reference without holds."""

    def __init__(self, rec: Recording, reference: Recording | None = None, *,
                 point: str | None = None, hold: int | None = None) -> None:
        super().__init__()
        self.rec = rec
        self.protocol = protocol_of(rec)
        self.unit = self.protocol.unit if self.protocol is not None else "N"
        area = rec.session.get("contact_area_cm2", math.nan)
        if not (isinstance(area, float) and area > 0) and self.protocol is not None:
            area = self.protocol.contact_area_cm2
        self.area = float(area) if area is not None else math.nan
        self.per_unit = 1.0 / newtons_per_unit(self.unit, self.area)
        rows = recording_metrics(rec)
        self.labels = point_labels(rows, self.protocol)
        self.holds = ReviewHolds(rec, rows, self.labels, self.per_unit)
        self.reference = None
        self.warning = ""
        if reference is not None:
            self.reference = ReviewHolds(reference, recording_metrics(reference), self.labels,
                                         self.per_unit)
            if not self.reference.rows:
                self.warning = (f"The reference {reference.path.name} has no holds: there is "
                                "nothing to compare with.")
        self.point, self.selected = select(self.labels, self.holds, point, hold)
        self.setWindowTitle(f"palpation review — {rec.path.name}"
                            + (f" (reference {reference.path.name})" if reference else ""))
        self.setStyleSheet(f"background-color: {COLORS['background']}; color: #e6edf3;")
        self._build(reference)
        self._show()

    def _who(self, reference: Recording | None) -> str:
        s = self.rec.session or {}
        parts = [f"trainee {s.get('trainee') or '(not named)'}", self.rec.path.name,
                 f"{self.rec.session_start:%Y-%m-%d %H:%M}"]
        if self.protocol is not None:
            parts.append(self.protocol.name)
        text = " · ".join(parts)
        if reference is not None:
            r = reference.session or {}
            who = r.get("instructor") or r.get("trainee") or ""
            text += ("     reference: " + (f"{who} · " if who else "") + reference.path.name)
        return text

    def _build(self, reference: Recording | None) -> None:
        root = QtWidgets.QWidget()
        self.setCentralWidget(root)
        outer = QtWidgets.QVBoxLayout(root)
        self.title = big_label(20)
        outer.addWidget(self.title)
        self.who = big_label(12, bold=False)
        self.who.setTextFormat(QtCore.Qt.TextFormat.PlainText)  # names are text, not markup
        self.who.setText(self._who(reference))
        outer.addWidget(self.who)
        self.warning_label = big_label(12)
        self.warning_label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
        self.warning_label.setStyleSheet("color: #111418; background-color: #f0b36b; "
                                         "padding: 3px;")
        self.warning_label.setText(self.warning)
        self.warning_label.setVisible(bool(self.warning))
        outer.addWidget(self.warning_label)
        self.legend = big_label(11, bold=False)
        self.legend.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.legend.setText(legend_html())
        outer.addWidget(self.legend)
        middle = QtWidgets.QHBoxLayout()
        self.heart = HoldPlot(unit=self.unit)
        middle.addWidget(self.heart, 3)
        self.details = big_label(11, bold=False)
        self.details.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.details.setWordWrap(True)
        self.details.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(420)
        middle.addWidget(self.details, 1)
        outer.addLayout(middle, 5)
        outer.addWidget(self._overview(), 2)
        self.multiples = SmallMultiples(self.labels, self.unit)
        outer.addWidget(self.multiples, 3)
        for i, plot in enumerate(self.multiples.plots):
            plot.set_dose(self._dose(i), self.area, self.per_unit)
            plot.set_history(self.holds.curves_at(i))
            plot.set_reference(self._reference_curves(i))
        hint = QtWidgets.QLabel("← → trigger point   ↑ ↓ hold   Esc close")
        hint.setStyleSheet("color: #8b949e; font-size: 11pt;")
        outer.addWidget(hint)
        self.resize(1600, 1000)

    def _overview(self) -> pg.PlotWidget:
        self.overview = pg.PlotWidget(background=COLORS["background"])
        self.overview.setMouseEnabled(x=False, y=False)
        self.overview.getPlotItem().setLabel("bottom", axis_label("s", "session time"))
        self.overview.getPlotItem().setLabel("left", unit_text(self.unit))
        x, y = peak_decimate(self.rec.timestamps, self.rec.force * self.per_unit,
                             OVERVIEW_POINTS)
        self.overview.plot(x, y, pen=pg.mkPen("#58a6ff", width=1))
        self.span = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 220, 90, 50))
        self.overview.addItem(self.span)
        return self.overview

    def _reference_curves(self, point: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The reference at ``point``: the mean of the instructor's holds there."""
        mean = self.reference.mean_at(point) if self.reference is not None else None
        if mean is None:
            return []
        return [hold_curve(mean[0], mean[1] * self.per_unit, 0.0)]

    def _dose(self, index: int) -> Dose | None:
        """The protocol's dose of a point; for a point only the holds know, the band and
        window its first hold was judged against (in N)."""
        if self.protocol is not None and index < len(self.protocol.points):
            return self.protocol.points[index].dose
        at = self.holds.at(index)
        if at and np.isfinite(self.holds.rows[at[0]].band_low_n):
            m = self.holds.rows[at[0]]
            return Dose(unit="N", target_low=m.band_low_n, target_high=m.band_high_n,
                        min_hold_s=m.min_hold_s, max_hold_s=m.max_hold_s)
        return None

    def _show(self) -> None:
        at = self.holds.at(self.point)
        self.selected = min(max(self.selected, 0), max(0, len(at) - 1))
        self.heart.set_dose(self._dose(self.point), self.area, self.per_unit)
        self.heart.set_history([self.holds.curves[i] for i in at], selected=self.selected)
        self.heart.set_reference(self._reference_curves(self.point))
        self.multiples.set_current(self.point)
        cut = sum(not self.holds.rows[i].complete for i in at)
        self.title.setText(f"{self.point + 1}/{len(self.labels)}  {self.labels[self.point]}"
                           f"   {len(at)} hold{'s' if len(at) != 1 else ''}"
                           + (f" ({cut} incomplete)" if cut else ""))
        if not at:
            self.details.setText("no holds at this point")
            return
        m = self.holds.rows[at[self.selected]]
        self.span.setRegion((m.start_s, m.end_s))
        self.details.setText(self._details(m, at[self.selected], len(at)))

    def _value(self, name: str, m: HoldMetrics) -> str:
        metric = METRICS[name]
        value = float(getattr(m, name))
        if metric.unit == "N":
            return f"{value * self.per_unit:.1f} {unit_text(self.unit)}" \
                if math.isfinite(value) else "—"
        if not math.isfinite(value):
            return "—"
        if metric.unit == "0–10":
            return f"{value:.0f} of 10"
        return f"{value:.{0 if metric.unit == '%' else 1}f} {metric.unit}"

    def _details(self, m: HoldMetrics, index: int, count: int) -> str:
        """The selected hold: each metric with its name, value and definition, its flags
        with theirs, and its distance to the reference."""
        rows = [_row(METRICS[n].name, self._value(n, m), METRICS[n].definition)
                for n in DETAIL_METRICS]
        rows.append(_row(METRICS["blind"].name, "yes" if m.blind else "no",
                         METRICS["blind"].definition))
        rows += [_row(f.name, "⚑", f.definition, colour="#f0b36b") for f in hold_flags(m)]
        if not hold_flags(m):
            rows.append(_row("no flag", "ok", "none of the report's flags is raised",
                             colour="#2ea043"))
        rows += self._distances(index)
        head = (f"hold {self.selected + 1} of {count} (repetition {m.repetition}), "
                f"{m.start_s:.1f}–{m.end_s:.1f} s")
        dose = (f"judged against the band {m.band_low_n * self.per_unit:.1f}–"
                f"{m.band_high_n * self.per_unit:.1f} {unit_text(self.unit)} and the hold "
                f"window {m.min_hold_s:g}–{m.max_hold_s:g} s")
        if not m.complete:  # the report's rule: listed, never judged nor counted as done
            head += f" — {INCOMPLETE.name.upper()}"
            dose = "not judged against the band nor the hold window (see below)"
        return (f"<b>{html.escape(head)}</b><br><span style='color:#8b949e; font-size:10pt'>"
                f"{html.escape(dose)}</span><table width='100%'>{''.join(rows)}</table>")

    def _distances(self, index: int) -> list[str]:
        if self.reference is None:
            return []
        mean = self.reference.mean_at(self.point)
        if mean is None:
            return [_row("reference", "—", "the instructor recorded no hold at this point",
                         colour="#f0b36b")]
        t, f = self.holds.raw[index]
        gaps = curve_distances((t, f), mean)
        return [_row(metric.name, f"{gap * self.per_unit:.1f} {unit_text(self.unit)}"
                     if math.isfinite(gap) else "—", metric.definition)
                for metric, gap in zip(REFERENCE_METRICS.values(), gaps, strict=True)]

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        k = QtCore.Qt.Key
        key = event.key()
        if key == k.Key_Right:
            self.point = min(len(self.labels) - 1, self.point + 1)
            self.selected = 0
        elif key == k.Key_Left:
            self.point = max(0, self.point - 1)
            self.selected = 0
        elif key == k.Key_Down:
            self.selected += 1
        elif key == k.Key_Up:
            self.selected = max(0, self.selected - 1)
        elif key in (k.Key_Escape, k.Key_Q):
            self.close()
            return
        else:
            super().keyPressEvent(event)
            return
        self._show()


def run_review(rec: Recording, reference: Recording | None = None,
               screenshot: Path | None = None, point: str | None = None,
               hold: int | None = None, warn: Callable[[str], None] = lambda _: None) -> None:
    """Show the review window at ``point`` and ``hold`` (see ``select``; ValueError for one
    that does not exist), passing its warning, if any, to ``warn`` first; with
    ``screenshot``, save it as PNG (OSError if it cannot be) and return at once."""
    quiet_offscreen_warnings()
    app = start_qt()
    window = ReviewWindow(rec, reference, point=point, hold=hold)
    if window.warning:
        warn(window.warning)
    fit_to_screen(window)
    window.show()
    if screenshot is not None:
        app.processEvents()
        ok = window.grab().save(str(screenshot), "PNG")
        window.close()
        if not ok:
            raise OSError(f"cannot write the screenshot {screenshot}")
        return
    app.exec()
