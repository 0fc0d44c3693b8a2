"""Review a recording in the coaching panels: step through trigger points and holds, with an
instructor's recording overlaid as the reference.

Everything comes from the file (``schemas.reader``): the holds table says where each hold
was and at which point, the session protocol stored in the file gives the bands and hold
windows, and the samples give the curves.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.decimate import peak_decimate
from recorder.panels import (
    COLORS,
    HoldPlot,
    SmallMultiples,
    big_label,
    hold_curve,
    quiet_offscreen_warnings,
)
from schemas.events import Hold
from schemas.reader import Recording
from schemas.session_protocol import Dose, SessionProtocol, protocol_of
from schemas.units import newtons_per_unit

OVERVIEW_POINTS = 4000


def point_labels(rec: Recording, protocol: SessionProtocol | None) -> list[str]:
    """Trigger points in protocol order, then any others found in the holds table."""
    labels = [p.label for p in protocol.points] if protocol is not None else []
    for row in rec.holds:
        label = row["trigger_point"].decode("utf-8", "replace")
        if label not in labels:
            labels.append(label)
    return labels or ["hold"]


class ReviewHolds:
    """The file's holds (its ``/holds`` rows) at ``labels``, in time order, each with its
    trigger point's index and its curve (display unit against seconds since its start)."""

    def __init__(self, rec: Recording, labels: list[str], per_unit: float) -> None:
        self.holds: list[Hold] = []
        self.points: list[int] = []
        self.curves: list[tuple[np.ndarray, np.ndarray]] = []
        for row in rec.holds:
            hold = Hold.from_row(row)
            if hold.trigger_point not in labels:
                continue
            a, b = np.searchsorted(rec.timestamps, [hold.start, hold.end])
            self.holds.append(hold)
            self.points.append(labels.index(hold.trigger_point))
            self.curves.append(hold_curve(rec.timestamps[a:b], rec.force[a:b] * per_unit,
                                          hold.start))

    def at(self, point: int) -> list[int]:
        """Indices of the holds at trigger point ``point``."""
        return [i for i, p in enumerate(self.points) if p == point]

    def curves_at(self, point: int) -> list[tuple[np.ndarray, np.ndarray]]:
        return [self.curves[i] for i in self.at(point)]


class ReviewWindow(QtWidgets.QMainWindow):
    def __init__(self, rec: Recording, reference: Recording | None = None) -> None:
        super().__init__()
        self.rec = rec
        self.protocol = protocol_of(rec)
        self.unit = self.protocol.unit if self.protocol is not None else "N"
        area = rec.session.get("contact_area_cm2", math.nan)
        if not (isinstance(area, float) and area > 0) and self.protocol is not None:
            area = self.protocol.contact_area_cm2
        self.area = float(area)
        self.per_unit = 1.0 / newtons_per_unit(self.unit, self.area)
        self.labels = point_labels(rec, self.protocol)
        self.holds = ReviewHolds(rec, self.labels, self.per_unit)
        self.reference = ReviewHolds(reference, self.labels, self.per_unit) if reference \
            else None
        self.point = self.holds.points[0] if self.holds.points else 0
        self.selected = 0
        self.setWindowTitle(f"palpation review — {rec.path.name}"
                            + (f" (reference {reference.path.name})" if reference else ""))
        self.setStyleSheet(f"background-color: {COLORS['background']}; color: #e6edf3;")
        self._build()
        self._show()

    def _build(self) -> None:
        root = QtWidgets.QWidget()
        self.setCentralWidget(root)
        outer = QtWidgets.QVBoxLayout(root)
        self.title = big_label(20)
        outer.addWidget(self.title)
        middle = QtWidgets.QHBoxLayout()
        self.heart = HoldPlot(unit=self.unit)
        middle.addWidget(self.heart, 3)
        self.details = big_label(13, bold=False)
        self.details.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop)
        self.details.setMinimumWidth(330)
        middle.addWidget(self.details, 1)
        outer.addLayout(middle, 5)
        self.overview = pg.PlotWidget(background=COLORS["background"])
        self.overview.setMouseEnabled(x=False, y=False)
        self.overview.getPlotItem().setLabel("bottom", "session time", units="s")
        self.overview.getPlotItem().setLabel("left", self.unit)
        x, y = peak_decimate(self.rec.timestamps, self.rec.force * self.per_unit,
                             OVERVIEW_POINTS)
        self.overview.plot(x, y, pen=pg.mkPen("#58a6ff", width=1))
        self.span = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(255, 220, 90, 50))
        self.overview.addItem(self.span)
        outer.addWidget(self.overview, 2)
        self.multiples = SmallMultiples(self.labels, self.unit)
        outer.addWidget(self.multiples, 3)
        for i, plot in enumerate(self.multiples.plots):
            plot.set_dose(self._dose(i), self.area, self.per_unit)
            plot.set_history(self.holds.curves_at(i))
            plot.set_reference(self.reference.curves_at(i) if self.reference else [])
        hint = QtWidgets.QLabel("← → trigger point   ↑ ↓ hold   Esc close")
        hint.setStyleSheet("color: #8b949e; font-size: 11pt;")
        outer.addWidget(hint)
        self.resize(1600, 1000)

    def _dose(self, index: int) -> Dose | None:
        """The protocol's dose of a point; for a point only the holds table knows, the band
        its first hold was recorded against (in N), with no hold window."""
        if self.protocol is not None and index < len(self.protocol.points):
            return self.protocol.points[index].dose
        at = self.holds.at(index)
        if at and np.isfinite(self.holds.holds[at[0]].target_low_n):
            first = self.holds.holds[at[0]]
            return Dose(unit="N", target_low=first.target_low_n,
                        target_high=first.target_high_n, min_hold_s=0.0, max_hold_s=0.0)
        return None

    def _show(self) -> None:
        at = self.holds.at(self.point)
        holds = [self.holds.holds[i] for i in at]
        self.selected = min(self.selected, max(0, len(holds) - 1))
        self.heart.set_dose(self._dose(self.point), self.area, self.per_unit)
        self.heart.set_history([self.holds.curves[i] for i in at], selected=self.selected)
        self.heart.set_reference(self.reference.curves_at(self.point) if self.reference
                                 else [])
        self.multiples.set_current(self.point)
        self.title.setText(f"{self.point + 1}/{len(self.labels)}  {self.labels[self.point]}"
                           f"   {len(holds)} hold{'s' if len(holds) != 1 else ''}")
        if not holds:
            self.details.setText("no holds at this point")
            return
        h = holds[self.selected]
        self.span.setRegion((h.start, h.end))
        pains = [e.value for e in self.rec.events
                 if e.kind == "pain" and h.start <= e.time <= h.end]
        u = self.unit
        lines = [
            f"hold {self.selected + 1} of {len(holds)} (repetition {h.repetition})",
            f"start        {h.start:8.1f} s",
            f"duration     {h.end - h.start:8.1f} s",
            f"time in band {h.time_in_band:8.1f} s",
            f"peak         {h.peak_n * self.per_unit:8.1f} {u}",
            f"mean         {h.mean_n * self.per_unit:8.1f} {u}",
            f"feedback     {'off (blind)' if h.blind else 'on'}",
        ]
        if pains:
            lines.append(f"pain         {', '.join(f'{p:g}' for p in pains)}")
        if self.reference and self.reference.holds:
            lines.append(f"reference    {len(self.reference.at(self.point))} holds (dashed)")
        self.details.setText("\n".join(lines))
        self.details.setStyleSheet("font-family: monospace; color: #e6edf3;")

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
               screenshot: Path | None = None) -> None:
    """Show the review window; with ``screenshot``, save it as PNG and return at once."""
    quiet_offscreen_warnings()
    app = pg.mkQApp("palpation")
    window = ReviewWindow(rec, reference)
    window.show()
    if screenshot is not None:
        app.processEvents()
        window.grab().save(str(screenshot))
        window.close()
        return
    app.exec()
