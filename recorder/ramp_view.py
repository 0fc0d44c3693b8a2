"""The live view of a threshold ramp (pressure-pain threshold algometry): the window shows it
instead of the hold panel when the trigger point's dose is a ramp (``Dose.is_threshold_ramp``).

Why its own view: a threshold ramp has nothing to hold. The dose is a steady rate (DFNS: 50 kPa/s
on a 1 cm² probe) until the subject presses the button, and the measurement is the pressure at
that press. So the panel draws pressure against time since the ramp began over the target ramp
line and its corridor (the rates allowed), earlier ramps at the point faded with their
thresholds, and marks the threshold where the button went down; the text says the live rate
against the corridor while ramping, and the threshold once the button is pressed. There is no
band and no hold clock. Clinicians drift off a steady ramp without feedback (Emerson Kavchak
2016), which is what the corridor is for.

The button is a flag bit on the samples (``FLAG_BUTTON``), read from the ring buffer, so the
threshold is the recorded pressure on the first sample with the button down. Pulled on the
window's timer like every panel; Qt only through ``pyqtgraph.Qt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore

from analysis.holds import LiveHold
from firmware_bridge.frames import FLAG_BUTTON
from recorder.coach import coach_ramp, ramp_slope
from recorder.panels import COLORS, LIVE_POINTS, StillPlot, hold_curve
from recorder.ring import RingBuffer
from schemas.session_protocol import Dose
from schemas.units import axis_label, unit_text, value_text

CORRIDOR_BRUSH = (88, 166, 255, 45)
TARGET_PEN = "#58a6ff"
THRESHOLD_COLOR = COLORS["complete"]
EARLIER_THRESHOLD = (163, 113, 247, 130)  # the threshold colour, faded like earlier ramps
SLOPE_MIN_S = 0.5  # the rate is shown once the ramp has lasted the slope's window
RANGE_S = 10.0  # the time axis before a ramp outgrows it (DFNS: 300-500 kPa at 50 kPa/s)


@dataclass(frozen=True)
class Ramp:
    """One ramp as drawn: its curve (seconds since it began, display units) and its threshold
    (seconds since it began, display units), None when the button was not pressed."""

    curve: tuple[np.ndarray, np.ndarray]
    threshold: tuple[float, float] | None


@dataclass(frozen=True)
class RampTexts:
    """What the window's labels say: the large cue (and its colour), the line under the
    readout ("ramp 48 kPa/s · on pace", "threshold 412 kPa" or nothing) and a note (the
    thresholds at this point so far)."""

    cue: str
    color: str
    line: str
    note: str


def button_press(flags: np.ndarray) -> int | None:
    """Index of the first sample on which the subject's button goes down (``FLAG_BUTTON`` set,
    and not on the sample before); a button already down on the first sample is no press."""
    pressed = (np.asarray(flags) & FLAG_BUTTON) != 0
    edges = np.flatnonzero(pressed[1:] & ~pressed[:-1])
    return int(edges[0]) + 1 if edges.size else None


class RampPlot(StillPlot):
    """Pressure (y) against time since the ramp began (x): the corridor of allowed rates as a
    wedge from the origin, the target rate as a dashed line, the cut-off, earlier ramps faded
    with their thresholds, the current ramp bright and its threshold marked and labelled."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit
        item = self.getPlotItem()
        item.setLabel("bottom", axis_label("s", "time since the ramp began"))
        item.setLabel("left", axis_label(unit))
        self._low = pg.PlotCurveItem(pen=pg.mkPen(None))
        self._high = pg.PlotCurveItem(pen=pg.mkPen(None))
        self.corridor = pg.FillBetweenItem(self._low, self._high,
                                           brush=pg.mkBrush(CORRIDOR_BRUSH))
        self.target = self.plot(pen=pg.mkPen(TARGET_PEN, width=1,
                                             style=QtCore.Qt.PenStyle.DashLine))
        self.cutoff = pg.InfiniteLine(angle=0, movable=False, label="cut-off",
                                      pen=pg.mkPen(COLORS["above"], width=1,
                                                   style=QtCore.Qt.PenStyle.DotLine),
                                      labelOpts={"color": COLORS["above"], "position": 0.05})
        self.addItem(self.corridor)
        self.addItem(self.cutoff)
        self._history: list[pg.PlotDataItem] = []
        self.earlier = pg.ScatterPlotItem(size=10, pen=pg.mkPen(None),
                                          brush=pg.mkBrush(EARLIER_THRESHOLD))
        self.addItem(self.earlier)
        self.current = self.plot(pen=pg.mkPen(COLORS["current"], width=1))
        self.marker = pg.ScatterPlotItem(size=16, pen=pg.mkPen(COLORS["current"], width=1),
                                         brush=pg.mkBrush(THRESHOLD_COLOR))
        self.marker_text = pg.TextItem(color=THRESHOLD_COLOR, anchor=(1.05, 1.1))
        self.current.setZValue(10)
        for z, part in enumerate((self.marker, self.marker_text), start=11):
            part.setZValue(z)
            self.addItem(part)
        self._x_max, self._y_max = 10.0, 1.0

    def set_dose(self, corridor: tuple[float, float], cutoff: float) -> None:
        """Draw the corridor of rates (display units per second; an open side is 0 or inf)
        with its target (the middle) and the cut-off (display units; NaN: none)."""
        low, high = corridor
        far = 1e3 * max(self._x_max, cutoff if math.isfinite(cutoff) else 0.0, 1.0)
        self._low.setData([0.0, far], [0.0, low * far])
        self._high.setData([0.0, 0.0 if math.isinf(high) else far],
                           [0.0, far * far if math.isinf(high) else high * far])
        target = 0.5 * (low + high)
        self.target.setData([0.0, far], [0.0, target * far] if math.isfinite(target) else [0, 0])
        self.target.setVisible(math.isfinite(target))
        self.cutoff.setVisible(math.isfinite(cutoff) and cutoff > 0)
        if self.cutoff.isVisible():
            self.cutoff.setPos(cutoff)
        rate = target if math.isfinite(target) and target > 0 else max(low, 1.0)
        reach = cutoff / rate if math.isfinite(cutoff) and cutoff > 0 else math.inf
        self._x_max = min(RANGE_S, 1.1 * reach)  # 10 s, or the cut-off at the target rate
        self._y_max = 1.1 * rate * self._x_max
        self._apply_range()

    def set_history(self, ramps: list[Ramp]) -> None:
        """Earlier ramps at this point, faded, their thresholds as dots."""
        for item in self._history:
            self.removeItem(item)
        pen = pg.mkPen(COLORS["history"], width=1)
        self._history = [self.plot(*r.curve, pen=pen) for r in ramps]
        points = [r.threshold for r in ramps if r.threshold is not None]
        self.earlier.setData([p[0] for p in points], [p[1] for p in points])
        for r in ramps:
            self._grow(r.curve)

    def set_current(self, ramp: Ramp | None) -> None:
        """The ramp in progress (or the last one, kept until the next begins); None clears."""
        x, y = ramp.curve if ramp is not None else (np.empty(0), np.empty(0))
        self.current.setData(x, y)
        threshold = ramp.threshold if ramp is not None else None
        if threshold is None:
            self.marker.setData([], [])
            self.marker_text.setText("")
        else:
            self.marker.setData([threshold[0]], [threshold[1]])
            self.marker_text.setText(value_text(threshold[1], self.unit, 0))
            self.marker_text.setPos(*threshold)
        self._grow((x, y))

    def _grow(self, curve: tuple[np.ndarray, np.ndarray]) -> None:
        x, y = curve
        if not len(x):
            return
        x_end, y_top = float(x[-1]), float(np.nanmax(y))
        if x_end > self._x_max or y_top > self._y_max:
            self._x_max = max(self._x_max, x_end * 1.25)
            self._y_max = max(self._y_max, y_top * 1.25)
            self._apply_range()

    def _apply_range(self) -> None:
        self.setXRange(0, self._x_max, padding=0)
        self.setYRange(0, self._y_max, padding=0)


class RampView:
    """The threshold-ramp part of the live window: its plot, the ramps made at each point,
    and the texts for the window's labels. The window calls ``set_point`` when the trigger
    point changes and ``update`` on every frame; ``active`` says whether to show it."""

    def __init__(self, unit: str, per_unit: float, area_cm2: float) -> None:
        self.unit = unit
        self.per_unit = per_unit
        self.area_cm2 = area_cm2
        self.plot = RampPlot(unit)
        self.plot.hide()
        self.active = False
        self.ramps: dict[int, list[Ramp]] = {}
        self._point = -1
        self._dose: Dose | None = None
        self._start: float | None = None  # session time the ramp in progress began
        self._start_point = -1
        self._confirmed = False  # the detector counts the ramp in progress as a hold
        self._current: Ramp | None = None
        self._shown: Ramp | None = None  # what the plot draws as the current ramp
        self._last_threshold: float | None = None
        self._texts = RampTexts("", COLORS["idle"], "", "")

    def set_point(self, dose: Dose | None, point: int) -> bool:
        """Show trigger point ``point``; True (and shown) if its dose is a threshold ramp."""
        self._point = point
        self.active = dose is not None and dose.is_threshold_ramp
        self.plot.setVisible(self.active)
        if self.active:
            self._dose = dose
            corridor = dose.ramp_n_per_s(self.area_cm2)
            cutoff = dose.band_n(self.area_cm2)[1] * self.per_unit
            self.plot.set_dose((corridor[0] * self.per_unit, corridor[1] * self.per_unit),
                               cutoff)
            self.plot.set_history(self.ramps.get(point, []))
            if self._start is None:  # the last ramp was at another point
                self._current = None
        return self.active

    def update(self, live: LiveHold | None, ring: RingBuffer, blind: bool) -> None:
        """One frame: follow the ramp in progress (``live``, the hold detector's) in the ring,
        finish it when it ends, and redraw; ``blind`` hides the current ramp."""
        if self._start is not None and (live is None or live.start_s != self._start):
            self._finish()
        slope = math.nan
        if live is not None:
            if self._start is None:
                self._start, self._start_point, self._current = live.start_s, self._point, None
            self._confirmed = live.confirmed
            view = ring.since(live.start_s)
            if len(view.time):
                slope = self._follow(view)
        shown = None if blind else self._current
        if shown is not self._shown:
            self.plot.set_current(shown)
            self._shown = shown
        self._texts = self._describe(live, slope)

    def texts(self) -> RampTexts:
        """The labels' texts as of the last ``update``."""
        return self._texts

    def _follow(self, view) -> float:
        """Redraw the ramp in progress from its samples; its slope (N/s) once it is known."""
        start = self._start
        curve = hold_curve(view.time, view.force * self.per_unit, start, LIVE_POINTS)
        threshold = self._current.threshold if self._current is not None else None
        if threshold is None:
            i = button_press(view.flags)
            if i is not None:
                threshold = (float(view.time[i] - start), float(view.force[i] * self.per_unit))
                self._last_threshold = threshold[1]
        self._current = Ramp(curve, threshold)
        if view.time[-1] - start < SLOPE_MIN_S:
            return math.nan
        return ramp_slope(view.time, view.force, SLOPE_MIN_S)

    def _finish(self) -> None:
        """The ramp in progress ended: keep it at the point where it began (unless the
        detector dropped it as a tap)."""
        if self._current is not None and self._confirmed:
            ramps = self.ramps.setdefault(self._start_point, [])
            ramps.append(self._current)
            if self._start_point == self._point:
                self.plot.set_history(ramps)
        elif not self._confirmed:
            self._current = None
        self._start = None

    def _describe(self, live: LiveHold | None, slope: float) -> RampTexts:
        dose = self._dose
        pressed = self._start is not None and self._current is not None \
            and self._current.threshold is not None
        force_n = live.last_n if live is not None else 0.0
        state = coach_ramp(live is not None, pressed, force_n, slope,
                           dose.ramp_n_per_s(self.area_cm2), dose.band_n(self.area_cm2)[1])
        if state.pace is not None:
            line = f"ramp {value_text(slope * self.per_unit, self.unit + '/s', 0)} · {state.pace}"
        elif self._last_threshold is not None and (live is None or pressed):
            line = f"threshold {value_text(self._last_threshold, self.unit, 0)}"
        else:
            line = ""
        return RampTexts(state.message, COLORS[state.cue.value], line, self._note())

    def _note(self) -> str:
        """The thresholds at this point so far and their mean (DFNS: the mean of three)."""
        found = [r.threshold[1] for r in self.ramps.get(self._point, []) if r.threshold]
        if not found:
            return ""
        values = " · ".join(f"{v:.0f}" for v in found)
        return (f"thresholds here {values} {unit_text(self.unit)}"
                f"   mean {value_text(float(np.mean(found)), self.unit, 0)}")
