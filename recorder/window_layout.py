"""The live window's widgets and where they go (the window's behaviour is ``recorder.window``).

Why a module of its own: building the layout is a long, flat list of widgets, sizes and
alignments that changes for look and feel, while ``LiveWindow`` holds what happens each frame
and on each key. ``build_layout`` creates the widgets as attributes of the window, in the
manner of Qt Designer's ``setupUi``, so the window's code names them directly. ``FrameClock``
and ``TracePlot`` are the live trace and the frame count the fps and latency figures use.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from recorder.feedback_view import ESTIMATE_PROMPT
from recorder.kr_view import ResultsView
from recorder.panels import COLORS, HoldPlot, SmallMultiples, StillPlot, big_label
from recorder.ramp_view import RampView
from recorder.verdict_panel import VERDICT_COLORS, VerdictPanel
from schemas.session_protocol import Dose
from schemas.units import axis_label, unit_text

if TYPE_CHECKING:
    from recorder.window import LiveWindow

TRACE_SECONDS = 10.0
LEFT_PANEL_PX = 470  # readout, unit, hold clock: "in band 13.3 s · hold 8–20 s" fits
HELP = """Keys
  Space / R   pause or resume recording
  → / N       next trigger point        ← / P   previous trigger point
  T           tare (zero at the current load; refused under load, T again forces it)
  M           mark
  0–9, +      pain rating 0–9, + is 10
  B           blind trial: hide all feedback (recording goes on)
  J / K / L   self-estimate of the hold just done, when asked (a training schedule):
              J too light, K right, L too firm; its results follow the answer
  C           calibration in use, its warnings, tare
  H / F1      this help                 Esc / Q  stop and close"""


class FrameClock:
    """When frames were painted and how many samples each showed: the window's fps, and what
    the latency benchmark matches sample arrivals against."""

    def __init__(self, keep: int = 4096) -> None:
        self.frames: deque[tuple[float, int]] = deque(maxlen=keep)
        self.drawn_total = 0

    def painted(self) -> None:
        self.frames.append((time.monotonic(), self.drawn_total))

    def fps(self, window_s: float = 1.0) -> float:
        """Frames painted per second over the last ``window_s``."""
        if len(self.frames) < 2:
            return 0.0
        end = self.frames[-1][0]
        count = 0
        for t, _ in reversed(self.frames):
            if t < end - window_s:
                break
            count += 1
        return (count - 1) / window_s


class TracePlot(StillPlot):
    """The live trace of the last seconds; its paint marks a frame on the FrameClock."""

    def __init__(self, clock: FrameClock, unit: str) -> None:
        super().__init__()
        self.clock = clock
        item = self.getPlotItem()
        item.setLabel("bottom", axis_label("s", "time"))
        item.setLabel("left", axis_label(unit))
        self.setXRange(-TRACE_SECONDS, 0, padding=0)
        self._y_max = 1.0
        self.setYRange(0, self._y_max, padding=0)
        self.addItem(self.band)
        self.curve = self.plot(pen=pg.mkPen("#58a6ff", width=1))

    def show_trace(self, x: np.ndarray, y: np.ndarray, floor: float) -> None:
        """Draw the trace; the y range only grows (to the band or the data), so the axes
        repaint rarely."""
        self.curve.setData(x, y)
        top = max(floor, float(np.nanmax(y)) if len(y) else 0.0)
        if top > self._y_max:
            self._y_max = top * 1.2
            self.setYRange(0, self._y_max, padding=0)

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().paintEvent(event)
        self.clock.painted()


def build_layout(window: LiveWindow, doses: list[Dose | None]) -> None:
    """Create the window's widgets, top to bottom; ``doses`` are the trigger points' doses
    (None without a protocol), for the small multiples."""
    root = QtWidgets.QWidget()
    window.setCentralWidget(root)
    outer = QtWidgets.QVBoxLayout(root)
    _head(window, outer)
    _middle(window, outer)
    _foot(window, outer, doses)
    window.resize(1600, 1000)


def _head(window: LiveWindow, outer: QtWidgets.QVBoxLayout) -> None:
    """A training schedule's block and mastery lines (hidden without one); the point, its
    note, the cue and the button; below them the last hold's verdict and the self-estimate
    prompt (hidden until a hold asks for it)."""
    training = QtWidgets.QHBoxLayout()
    window.block_label = big_label(15, bold=False)
    window.mastery_label = big_label(15, bold=False)
    window.mastery_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    for w in (window.block_label, window.mastery_label):
        w.hide()
        training.addWidget(w)
    outer.addLayout(training)
    head = QtWidgets.QHBoxLayout()
    window.point_label = big_label(22)
    window.cue_label = big_label(30)
    window.cue_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    window.cue_label.setMinimumWidth(520)
    window.button_label = big_label(14)
    where = QtWidgets.QVBoxLayout()
    window.note_label = big_label(13, bold=False)  # where to find the point
    window.note_label.setWordWrap(True)
    where.addWidget(window.point_label)
    where.addWidget(window.note_label)
    head.addLayout(where, 3)
    head.addWidget(window.cue_label, 4)
    head.addWidget(window.button_label, 1)
    outer.addLayout(head)
    window.verdict_label = VerdictPanel(window.unit, window.per_unit)  # until the next hold
    outer.addWidget(window.verdict_label)
    window.estimate_label = big_label(24)
    window.estimate_label.setText(ESTIMATE_PROMPT)
    window.estimate_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
    window.estimate_label.setStyleSheet(f"background-color: {VERDICT_COLORS['flagged']}; "
                                        f"color: {COLORS['background']}; padding: 8px; "
                                        "border-radius: 6px;")
    window.estimate_label.hide()
    outer.addWidget(window.estimate_label)


def _middle(window: LiveWindow, outer: QtWidgets.QVBoxLayout) -> None:
    """The readout panel (force, unit, hold clock, ramp), the hold plot or the threshold
    ramp's view, a training schedule's results and summary views (hidden until a hold's
    results are due), and the live trace."""
    middle = QtWidgets.QHBoxLayout()
    panel = QtWidgets.QWidget()  # fixed: a longer clock text must not shift the plots
    panel.setFixedWidth(LEFT_PANEL_PX)
    left = QtWidgets.QVBoxLayout(panel)
    window.readout = big_label(64)
    window.readout.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    window.unit_label = big_label(18, bold=False)
    window.unit_label.setText(unit_text(window.unit))
    window.unit_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    window.clock_label = big_label(22)
    window.clock_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    window.clock_label.setWordWrap(True)
    window.ramp_label = big_label(14, bold=False)
    window.ramp_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
    for w in (window.readout, window.unit_label, window.clock_label, window.ramp_label):
        left.addWidget(w)
    left.addStretch(1)
    middle.addWidget(panel)
    window.heart = HoldPlot(unit=window.unit)
    middle.addWidget(window.heart, 5)
    window.ramp = RampView(window.unit, window.per_unit, window.session.contact_area_cm2)
    middle.addWidget(window.ramp.plot, 5)  # instead of the heart at a threshold ramp
    area = window.session.contact_area_cm2
    window.kr_view = ResultsView(window.unit, window.per_unit, area)
    window.summary_view = ResultsView(window.unit, window.per_unit, area)
    middle.addWidget(window.kr_view, 5)
    middle.addWidget(window.summary_view, 5)
    window.trace = TracePlot(window.clock, window.unit)
    middle.addWidget(window.trace, 4)
    outer.addLayout(middle, 5)


def _foot(window: LiveWindow, outer: QtWidgets.QVBoxLayout, doses: list[Dose | None]) -> None:
    """Every point's holds in small multiples, the help (hidden), the status and warnings."""
    window.multiples = SmallMultiples(window.labels, window.unit)
    outer.addWidget(window.multiples, 3)
    for plot, dose in zip(window.multiples.plots, doses, strict=True):
        plot.set_dose(dose, window.session.contact_area_cm2, window.per_unit)

    window.help_label = QtWidgets.QLabel(HELP)
    window.help_label.setStyleSheet("font-family: monospace; font-size: 13pt; "
                                    "background: #1f2630; padding: 12px;")
    window.help_label.hide()
    outer.addWidget(window.help_label)
    window.status = QtWidgets.QLabel("")
    window.status.setStyleSheet("color: #8b949e; font-size: 11pt;")
    outer.addWidget(window.status)
    window.warning_label = QtWidgets.QLabel("")
    window.warning_label.setStyleSheet(f"color: {COLORS['above']}; font-size: 12pt;")
    outer.addWidget(window.warning_label)
