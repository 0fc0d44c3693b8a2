"""The coaching panels shared by the live window and review: pressure against time since the
hold began, for one trigger point (large) and for every point (small multiples).

Drawing rules (docs/SOURCES.md): pen width 1, numpy arrays to ``setData``, no OpenGL; earlier
holds are decimated once when they end, so a frame only redraws what changed. Axis ranges are
set explicitly and only grow, and there are no grid lines: a grid is painted by the axes
across the whole plot, so every new sample would repaint the axes and their text, which costs
more than the curves. Qt comes only through ``pyqtgraph.Qt``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from analysis.decimate import peak_decimate
from schemas.session_protocol import Dose
from schemas.units import axis_label

HISTORY_POINTS = 500  # per finished hold (faded: fewer points than pixels is fine)
LIVE_POINTS = 1000  # per live curve and frame

COLORS = {
    "background": "#111418",
    "band": (46, 160, 67, 60),
    "neutral_band": (139, 148, 158, 45),  # bandwidth feedback, inside the zone: no colour
    "window": (88, 166, 255, 28),
    "history": (200, 200, 200, 90),
    "reference": (255, 80, 230, 230),  # magenta: unlike the selected hold's yellow
    "current": "#ffffff",
    "selected": (255, 220, 90, 255),
    "in_band": "#2ea043",
    "below": "#58a6ff",
    "above": "#f85149",
    "complete": "#a371f7",
    "overtime": "#f85149",
    "idle": "#8b949e",
}


def shown_band(dose: Dose | None, area_cm2: float, per_unit: float,
               band_n: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """``dose``'s target band in display units (newtons for ``area_cm2`` times ``per_unit``;
    ``band_n``, newtons, instead when given: a band anchored on the subject), or None
    without a dose or a finite band, and for a threshold ramp (its "band" is the plausible
    range of thresholds up to the cut-off: nothing to hold, so nothing to shade)."""
    if dose is None or dose.is_threshold_ramp:
        return None
    low, high = dose.band_n(area_cm2) if band_n is None else band_n
    band = (low * per_unit, high * per_unit)
    return band if all(map(math.isfinite, band)) else None


def hold_curve(t: np.ndarray, y: np.ndarray, start: float,
               max_points: int = HISTORY_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """A hold as (seconds since its start, value), decimated for drawing."""
    return peak_decimate(t - start, y, max_points)


class StillPlot(pg.PlotWidget):
    """A plot for an instrument: no menu, no buttons, no mouse panning, the target band."""

    def __init__(self) -> None:
        super().__init__(background=COLORS["background"])
        item = self.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        self.setMouseEnabled(x=False, y=False)
        self.band = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                        brush=pg.mkBrush(COLORS["band"]), pen=pg.mkPen(None))
        self.band_coloured = True

    def colour_band(self, coloured: bool) -> None:
        """The band in its colour, or neutral grey (bandwidth feedback inside the zone)."""
        if coloured != self.band_coloured:
            self.band_coloured = coloured
            self.band.setBrush(pg.mkBrush(COLORS["band" if coloured else "neutral_band"]))


class HoldPlot(StillPlot):
    """Pressure (y) against time since the hold began (x): the target band and the min/max
    hold window shaded, earlier holds faded, a reference overlaid, the current hold bright."""

    def __init__(self, title: str = "", unit: str = "N", small: bool = False) -> None:
        super().__init__()
        self.small = small
        item = self.getPlotItem()
        if title:
            self.setTitle(title, color="#c9d1d9", size="9pt" if small else "13pt")
        if small:
            item.hideAxis("bottom")
            item.getAxis("left").setWidth(28)
        else:
            item.setLabel("bottom", axis_label("s", "time since the hold began"))
            item.setLabel("left", axis_label(unit))
        self.window = pg.LinearRegionItem(orientation="vertical", movable=False,
                                          brush=pg.mkBrush(COLORS["window"]), pen=pg.mkPen(None))
        self.addItem(self.window)
        self.addItem(self.band)
        self._history: list[pg.PlotDataItem] = []
        self._reference: list[pg.PlotDataItem] = []
        self.current = self.plot(pen=pg.mkPen(COLORS["current"], width=1))
        self.current.setZValue(10)
        self._x_max = 25.0
        self._y_max = 1.0

    def set_dose(self, dose: Dose | None, area_cm2: float = math.nan, per_unit: float = 1.0,
                 band_n: tuple[float, float] | None = None) -> None:
        """Shade ``dose``'s band (newtons for ``area_cm2``, or ``band_n`` newtons when given,
        shown as ``per_unit`` display units per newton) and its min/max hold window; None, or
        no band, hides both."""
        band = shown_band(dose, area_cm2, per_unit, band_n)
        if dose is None or band is None:
            self.band.hide()
            self.window.hide()
            return
        self.band.setRegion(band)
        self.window.setRegion((dose.min_hold_s, dose.max_hold_s))
        self.band.show()
        self.window.show()
        self._x_max = max(self._x_max, dose.max_hold_s * 1.15)
        self._y_max = max(self._y_max, band[1] * 1.4)
        self._apply_range()

    def set_history(self, curves: list[tuple[np.ndarray, np.ndarray]],
                    selected: int | None = None) -> None:
        """Earlier holds at this point, faded; ``selected`` (review) drawn highlighted."""
        self._history = self._replace(self._history, curves, COLORS["history"])
        if selected is not None and 0 <= selected < len(self._history):
            self._history[selected].setPen(pg.mkPen(COLORS["selected"], width=1))
            self._history[selected].setZValue(5)
        self._grow(curves)

    def set_reference(self, curves: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self._reference = self._replace(self._reference, curves, COLORS["reference"],
                                        style=QtCore.Qt.PenStyle.DashLine)
        self._grow(curves)

    def set_current(self, x: np.ndarray, y: np.ndarray) -> None:
        """The hold in progress; clearing a curve already clear repaints nothing."""
        if not len(x) and (self.current.xData is None or not len(self.current.xData)):
            return
        self.current.setData(x, y)
        if len(x):
            self._grow([(x, y)])

    def set_range(self, x_max: float, y_max: float) -> None:
        """Fit the axes to 0..``x_max`` s and 0..``y_max`` (a finished hold shown alone,
        where the live plot's ranges, which only grow, would leave it small); non-finite
        limits are left as they were."""
        if math.isfinite(x_max) and x_max > 0:
            self._x_max = x_max
        if math.isfinite(y_max) and y_max > 0:
            self._y_max = y_max
        self._apply_range()

    def _replace(self, items: list, curves: list, color, style=None) -> list:
        for item in items:
            self.removeItem(item)
        pen = pg.mkPen(color, width=1)
        if style is not None:
            pen.setStyle(style)
        return [self.plot(x, y, pen=pen) for x, y in curves]

    def _grow(self, curves: list[tuple[np.ndarray, np.ndarray]]) -> None:
        changed = False
        for x, y in curves:
            if len(x) and x[-1] > self._x_max:
                self._x_max, changed = float(x[-1]) * 1.1, True
            if len(y) and np.nanmax(y) > self._y_max:
                self._y_max, changed = float(np.nanmax(y)) * 1.1, True
        if changed:
            self._apply_range()

    def _apply_range(self) -> None:
        self.setXRange(0, self._x_max, padding=0)
        self.setYRange(0, self._y_max, padding=0)


class SmallMultiples(QtWidgets.QWidget):
    """One small HoldPlot per trigger point, the current one framed."""

    def __init__(self, labels: list[str], unit: str, columns: int = 6) -> None:
        super().__init__()
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(4)
        self.plots = []
        for i, label in enumerate(labels):
            plot = HoldPlot(label, unit, small=True)
            plot.setMinimumHeight(110)
            grid.addWidget(plot, i // columns, i % columns)
            self.plots.append(plot)
        self._current = -1

    def set_current(self, index: int) -> None:
        if index == self._current:
            return
        for i, plot in enumerate(self.plots):
            plot.setStyleSheet("border: 2px solid #e3b341;" if i == index else "border: none;")
        self._current = index


def quiet_offscreen_warnings() -> None:
    """Qt's offscreen platform warns about a window feature it lacks on every window shown;
    harmless, so it is dropped; every other Qt message still reaches stderr."""
    def handler(mode, context, message: str) -> None:
        if "propagateSizeHints" not in message:
            sys.stderr.write(message + "\n")

    QtCore.qInstallMessageHandler(handler)


def big_label(size_pt: int, bold: bool = True) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel("")
    font = QtGui.QFont()
    font.setPointSize(size_pt)
    font.setBold(bold)
    label.setFont(font)
    label.setStyleSheet("color: #e6edf3;")
    return label
