"""Review a recording in the coaching panels: step through trigger points and holds, with an
instructor's recording overlaid as the reference.

Everything comes from the file (``schemas.reader``): the holds table says where each hold
was and at which point, the session protocol stored in the file gives the bands and hold
windows, and the samples give the curves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.decimate import peak_decimate
from recorder.panels import (
    COLORS,
    DoseView,
    HoldPlot,
    SmallMultiples,
    big_label,
    hold_curve,
    quiet_offscreen_warnings,
)
from schemas.reader import Recording
from schemas.session_protocol import SessionProtocol, protocol_of
from schemas.units import newtons_per_unit

OVERVIEW_POINTS = 4000


@dataclass
class ReviewHold:
    point: int
    repetition: int
    start: float
    end: float
    peak_n: float
    mean_n: float
    time_in_band: float
    blind: bool
    curve: tuple[np.ndarray, np.ndarray]  # display unit, seconds since start


def point_labels(rec: Recording, protocol: SessionProtocol | None) -> list[str]:
    """Trigger points in protocol order, then any others found in the holds table."""
    labels = [p.label for p in protocol.points] if protocol is not None else []
    for row in rec.holds:
        label = row["trigger_point"].decode("utf-8", "replace")
        if label not in labels:
            labels.append(label)
    return labels or ["hold"]


def review_holds(rec: Recording, labels: list[str], per_unit: float) -> list[ReviewHold]:
    """The file's holds with their curves, in time order, mapped to ``labels``."""
    out = []
    for row in rec.holds:
        label = row["trigger_point"].decode("utf-8", "replace")
        if label not in labels:
            continue
        a, b = np.searchsorted(rec.timestamps, [row["start"], row["end"]])
        curve = hold_curve(rec.timestamps[a:b], rec.force[a:b] * per_unit, float(row["start"]))
        out.append(ReviewHold(labels.index(label), int(row["repetition"]),
                              float(row["start"]), float(row["end"]), float(row["peak_n"]),
                              float(row["mean_n"]), float(row["time_in_band"]),
                              bool(row["blind"]), curve))
    return out


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
        self.holds = review_holds(rec, self.labels, self.per_unit)
        self.reference = review_holds(reference, self.labels, self.per_unit) if reference \
            else []
        self.point = self.holds[0].point if self.holds else 0
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
            plot.set_dose(self._dose_view(i))
            plot.set_history([h.curve for h in self.holds if h.point == i])
            plot.set_reference([h.curve for h in self.reference if h.point == i])
        hint = QtWidgets.QLabel("← → trigger point   ↑ ↓ hold   Esc close")
        hint.setStyleSheet("color: #8b949e; font-size: 11pt;")
        outer.addWidget(hint)
        self.resize(1600, 1000)

    def _dose_view(self, index: int) -> DoseView | None:
        if self.protocol is not None and index < len(self.protocol.points):
            dose = self.protocol.points[index].dose
            low, high = dose.band_n(self.area)
            return DoseView((low * self.per_unit, high * self.per_unit), dose.min_hold_s,
                            dose.max_hold_s)
        rows = [h for h in self.rec.holds
                if h["trigger_point"].decode("utf-8", "replace") == self.labels[index]]
        if rows and np.isfinite(rows[0]["target_low_n"]):
            band = (rows[0]["target_low_n"] * self.per_unit, rows[0]["target_high_n"]
                    * self.per_unit)
            return DoseView(band, 0.0, 0.0)
        return None

    def _at_point(self) -> list[ReviewHold]:
        return [h for h in self.holds if h.point == self.point]

    def _show(self) -> None:
        holds = self._at_point()
        self.selected = min(self.selected, max(0, len(holds) - 1))
        self.heart.set_dose(self._dose_view(self.point))
        self.heart.set_history([h.curve for h in holds], selected=self.selected)
        self.heart.set_reference([h.curve for h in self.reference if h.point == self.point])
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
        if self.reference:
            lines.append(f"reference    {sum(r.point == self.point for r in self.reference)}"
                         " holds (dashed)")
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
