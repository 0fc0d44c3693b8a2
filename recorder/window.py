"""The live coaching window: what a trainee looks at while pressing.

It pulls, it is never pushed: one QTimer reads the newest samples from the session's ring
buffer and the session's state (live hold, finished holds, status) and redraws. The window
never touches the port or the file; keys become session calls, which become events in the
file. Readable from a metre: a large readout, a large cue, a hold clock counting only time in
the band.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.decimate import peak_decimate
from firmware_bridge.frames import FLAG_BUTTON
from recorder.coach import Cue, coach, ramp_cue, ramp_slope
from recorder.panels import (
    COLORS,
    LIVE_POINTS,
    HoldPlot,
    SmallMultiples,
    StillPlot,
    big_label,
    hold_curve,
    quiet_offscreen_warnings,
    shown_band,
)
from recorder.session import RecordingSession
from schemas.session_protocol import Dose
from schemas.units import newtons_per_unit

TRACE_SECONDS = 10.0
READOUT_SECONDS = 0.1  # the readout shows the mean of the last 100 ms: steady, yet live
STATUS_PERIOD_S = 0.25  # the status line changes 4 times a second, not every frame
NOTICE_S = 4.0  # how long a refused tare's reason stays on screen
HELP = """Keys
  Space / R   pause or resume recording
  → / N       next trigger point        ← / P   previous trigger point
  T           tare (zero at the current load; refused under load, T again forces it)
  M           mark
  0–9, +      pain rating 0–9, + is 10
  B           blind trial: hide all feedback (recording goes on)
  C           calibration in use, its warnings, tare
  H / F1      this help                 Esc / Q  stop and close"""

CUE_COLORS = {
    Cue.IDLE: COLORS["idle"], Cue.BELOW: COLORS["below"], Cue.IN_BAND: COLORS["in_band"],
    Cue.ABOVE: COLORS["above"], Cue.COMPLETE: COLORS["complete"],
    Cue.OVERTIME: COLORS["overtime"],
}


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
        item.setLabel("bottom", "time", units="s")
        item.setLabel("left", unit)
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


class LiveWindow(QtWidgets.QMainWindow):
    """The coaching window for one RecordingSession."""

    def __init__(self, session: RecordingSession, fps: float = 60.0,
                 screenshot: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.screenshot = screenshot
        protocol = session.protocol
        self.unit = session.options.display_unit or (protocol.unit if protocol else "N")
        self.per_unit = 1.0 / newtons_per_unit(self.unit, session.contact_area_cm2)
        self.labels = [p.label for p in protocol.points] if protocol is not None else ["hold"]
        self.clock = FrameClock()
        self._notice: tuple[float, str] | None = None  # (when, a refused tare's reason)
        self.history: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._holds_seen = 0
        self._point_shown = -1
        self._help = False
        self._texts: dict[str, str] = {}
        self._trace_floor = 0.0
        self._status_at = 0.0
        self.setWindowTitle(f"palpation — {session.options.out.name}")
        self.setStyleSheet(f"background-color: {COLORS['background']}; color: #e6edf3;")
        self._build()
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(max(1, int(1000 / fps)))

    # ---- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        root = QtWidgets.QWidget()
        self.setCentralWidget(root)
        outer = QtWidgets.QVBoxLayout(root)
        head = QtWidgets.QHBoxLayout()
        self.point_label = big_label(22)
        self.cue_label = big_label(30)
        self.cue_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.cue_label.setMinimumWidth(520)
        self.button_label = big_label(14)
        head.addWidget(self.point_label, 3)
        head.addWidget(self.cue_label, 4)
        head.addWidget(self.button_label, 1)
        outer.addLayout(head)

        middle = QtWidgets.QHBoxLayout()
        left = QtWidgets.QVBoxLayout()
        self.readout = big_label(64)
        self.readout.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.unit_label = big_label(18, bold=False)
        self.unit_label.setText(self.unit)
        self.unit_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.clock_label = big_label(26)
        self.clock_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.ramp_label = big_label(14, bold=False)
        self.ramp_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        for w in (self.readout, self.unit_label, self.clock_label, self.ramp_label):
            left.addWidget(w)
        left.addStretch(1)
        middle.addLayout(left, 2)
        self.heart = HoldPlot(unit=self.unit)
        middle.addWidget(self.heart, 5)
        self.trace = TracePlot(self.clock, self.unit)
        middle.addWidget(self.trace, 4)
        outer.addLayout(middle, 5)

        self.multiples = SmallMultiples(self.labels, self.unit)
        outer.addWidget(self.multiples, 3)
        for i, plot in enumerate(self.multiples.plots):
            plot.set_dose(self._dose(i), self.session.contact_area_cm2, self.per_unit)

        self.help_label = QtWidgets.QLabel(HELP)
        self.help_label.setStyleSheet("font-family: monospace; font-size: 13pt; "
                                      "background: #1f2630; padding: 12px;")
        self.help_label.hide()
        outer.addWidget(self.help_label)
        self.status = QtWidgets.QLabel("")
        self.status.setStyleSheet("color: #8b949e; font-size: 11pt;")
        outer.addWidget(self.status)
        self.warning_label = QtWidgets.QLabel("")
        self.warning_label.setStyleSheet(f"color: {COLORS['above']}; font-size: 12pt;")
        outer.addWidget(self.warning_label)
        self.resize(1600, 1000)

    def _dose(self, index: int) -> Dose | None:
        protocol = self.session.protocol
        return protocol.points[index].dose if protocol is not None else None

    # ---- the frame ------------------------------------------------------------------------

    def refresh(self) -> None:
        """One frame: read the ring and the session, redraw what changed."""
        s = self.session
        point = s.point_index
        if point != self._point_shown:
            self._show_point(point)
        self._collect_finished_holds()
        view = s.ring.latest(int(TRACE_SECONDS * self._rate()))
        self.clock.drawn_total = view.total
        blind = s.blind
        live = s.live_hold
        force_n = self._readout_force(view)
        if len(view.time):
            x, y = peak_decimate(view.time - view.time[-1], view.force * self.per_unit,
                                 LIVE_POINTS)
            self.trace.show_trace(x, y, self._trace_floor)
        if live is not None and not blind:
            recent = s.ring.since(live.start_s)
            x, y = hold_curve(recent.time, recent.force * self.per_unit, live.start_s,
                              LIVE_POINTS)
            self.heart.set_current(x, y)
        else:
            self.heart.set_current(np.empty(0), np.empty(0))
        self._show_cues(live, force_n, view, blind)
        if view.flags.size:
            pressed = bool(view.flags[-1] & FLAG_BUTTON)
            self._set("button", self.button_label, "● BUTTON" if pressed else "")
        now = time.monotonic()
        if now - self._status_at >= STATUS_PERIOD_S:
            self._status_at = now
            self._show_status()

    def _rate(self) -> float:
        info = self.session.device_info
        return info.nominal_rate_hz if info and info.nominal_rate_hz else 1000.0

    def _readout_force(self, view) -> float:
        if not len(view.time):
            return math.nan
        recent = view.force[view.time >= view.time[-1] - READOUT_SECONDS]
        return float(recent.mean())

    def _show_cues(self, live, force_n: float, view, blind: bool) -> None:
        s = self.session
        for w in (self.readout, self.clock_label, self.ramp_label, self.trace):
            w.setVisible(not blind)
        if blind:
            self._set("cue", self.cue_label, "BLIND TRIAL — feedback off", COLORS["idle"])
            return
        value = force_n * self.per_unit
        self._set("readout", self.readout, "—" if math.isnan(value) else f"{value:.1f}")
        if s.protocol is None:
            return
        dose = s.protocol.points[s.point_index].dose
        state = coach(live, force_n, dose, s.contact_area_cm2)
        self._set("cue", self.cue_label, state.message, CUE_COLORS[state.cue])
        self._set("clock", self.clock_label,
                  f"{state.band_clock_s:4.1f} / {dose.min_hold_s:g} s in band" if live
                  else f"hold {dose.min_hold_s:g}–{dose.max_hold_s:g} s")
        corridor = s.protocol.ramp_n_per_s(s.point_index)
        if corridor and len(view.time) > 2:
            slope = ramp_slope(view.time, view.force)
            cue = ramp_cue(slope, *corridor)
            text = "" if cue is None else f"ramp {slope * self.per_unit:5.1f} {self.unit}/s {cue}"
            self._set("ramp", self.ramp_label, text)

    def _show_point(self, point: int) -> None:
        self._point_shown = point
        dose, area = self._dose(point), self.session.contact_area_cm2
        self.heart.set_dose(dose, area, self.per_unit)
        self.heart.set_history(self.history.get(point, []))
        self.multiples.set_current(point)
        band = shown_band(dose, area, self.per_unit)
        self._trace_floor = band[1] * 1.3 if band is not None else 0.0
        if band is not None:
            self.trace.band.setRegion(band)
        self.trace.band.setVisible(band is not None)
        self._show_point_label()

    def _show_point_label(self) -> None:
        protocol = self.session.protocol
        if protocol is None:
            return
        point = self._point_shown
        p = protocol.points[point]
        done = len(self.history.get(point, []))
        rep = min(done + 1, p.dose.repetitions)
        self._set("point", self.point_label,
                  f"{point + 1}/{len(protocol.points)}  {p.label}   "
                  f"repetition {rep} of {p.dose.repetitions}")

    def _collect_finished_holds(self) -> None:
        """Take each newly finished hold's samples from the ring once, decimated."""
        holds = self.session.holds
        for rec in holds[self._holds_seen:]:
            h = rec.hold
            part = self.session.ring.since(h.start_s)
            keep = part.time <= h.end_s
            curve = hold_curve(part.time[keep], part.force[keep] * self.per_unit, h.start_s)
            self.history.setdefault(rec.point_index, []).append(curve)
            if rec.point_index < len(self.multiples.plots):
                self.multiples.plots[rec.point_index].set_history(self.history[rec.point_index])
            if rec.point_index == self._point_shown:
                self.heart.set_history(self.history[rec.point_index])
                self._show_point_label()
        self._holds_seen = len(holds)

    def _show_status(self) -> None:
        st = self.session.status()
        link = "connected" if st.connected else "RECONNECTING…"
        rec = "● REC" if st.recording else "❚❚ PAUSED"
        minutes, seconds = divmod(int(st.elapsed_s), 60)
        text = (f"{rec}  {self.session.options.out.name}  {minutes:02d}:{seconds:02d}   "
                f"{link}   {st.rate_hz:,.0f} Hz   gaps {st.gaps}   CRC errors {st.crc_errors}"
                f"   reconnects {st.reconnects}   {self.clock.fps():.0f} fps"
                f"{'   BLIND' if st.blind else ''}   H: help")
        if st.error:
            text = f"ERROR: {st.error}"
        self._set("status", self.status, text)
        warnings = [*self.session.warnings, *self.session.live_warnings.values()]
        if self._notice and time.monotonic() - self._notice[0] < NOTICE_S:
            warnings.append(self._notice[1])
        self._set("warnings", self.warning_label, "⚠ " + "   ⚠ ".join(warnings) if warnings
                  else "")

    def _set(self, key: str, label: QtWidgets.QLabel, text: str, color: str | None = None) -> None:
        """Change a label only when its text changes (re-layout is what costs)."""
        if self._texts.get(key) == (text, color):
            return
        self._texts[key] = (text, color)
        label.setText(text)
        if color is not None:
            label.setStyleSheet(f"color: {color};")

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        if self.screenshot is not None:
            self.grab().save(str(self.screenshot))
        super().closeEvent(event)

    # ---- keys -----------------------------------------------------------------------------

    def tare(self) -> None:
        """Ask the session for a tare; a refusal is shown for a few seconds and printed."""
        refused = self.session.tare()
        self._notice = (time.monotonic(), refused) if refused else None
        if refused:
            print(f"palpation: {refused}", file=sys.stderr)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        s = self.session
        key = event.key()
        text = event.text()
        k = QtCore.Qt.Key
        if key in (k.Key_Space, k.Key_R):
            s.set_recording(s.paused)
        elif key in (k.Key_Right, k.Key_N):
            s.set_point(s.point_index + 1)
        elif key in (k.Key_Left, k.Key_P):
            s.set_point(s.point_index - 1)
        elif key == k.Key_T:
            self.tare()
        elif key == k.Key_M:
            s.add_event("marker")
        elif text.isdigit() and len(text) == 1:
            s.add_event("pain", value=float(text))
        elif text == "+":
            s.add_event("pain", value=10.0)
        elif key == k.Key_B:
            s.set_blind(not s.blind)
        elif key == k.Key_C:
            CalibrationDialog(s, self).open()
        elif key in (k.Key_H, k.Key_F1):
            self._help = not self._help
            self.help_label.setVisible(self._help)
        elif key in (k.Key_Escape, k.Key_Q):
            self.close()
        else:
            super().keyPressEvent(event)


class CalibrationDialog(QtWidgets.QDialog):
    """What converts counts to newtons in this session, what to distrust about it, and a
    tare button. Calibrating is `palpation calibrate`; a session keeps one calibration so
    that the file's force column has one meaning (`palpation recalibrate` changes it later)."""

    def __init__(self, session: RecordingSession, parent: QtWidgets.QWidget) -> None:
        super().__init__(parent)
        self.setWindowTitle("Calibration")
        self.session = session
        layout = QtWidgets.QVBoxLayout(self)
        self.text = QtWidgets.QLabel(self.describe())
        self.text.setStyleSheet("font-family: monospace; font-size: 12pt;")
        layout.addWidget(self.text)
        buttons = QtWidgets.QHBoxLayout()
        tare = QtWidgets.QPushButton("Tare now (T)")
        tare.clicked.connect(parent.tare)
        close = QtWidgets.QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons.addWidget(tare)
        buttons.addWidget(close)
        layout.addLayout(buttons)

    def describe(self) -> str:
        s = self.session
        cal = s.calibration
        info = s.device_info
        if cal is not None:
            r, m = cal.range, cal.metrics
            lines = [f"calibration  {cal.id[:8]} ({cal.model}), made {cal.created[:10]}",
                     f"valid range  {r['min_n']:.1f} .. {r['max_n']:.1f} N",
                     f"max residual {m['max_residual_pct_fs']:.2f} % of full scale",
                     f"nonlinearity {m['nonlinearity_pct_fs']:.2f} % of full scale"]
        elif info is not None and math.isfinite(info.counts_per_newton):
            lines = [f"factory scale {info.counts_per_newton:g} counts per N (uncalibrated)"]
        else:
            lines = ["no calibration: force is tared counts"]
        lines.append(f"tare         {s.tare_counts:.0f} counts")
        warnings = [*s.warnings, *s.live_warnings.values()]
        lines += [f"warning      {w}" for w in warnings]
        lines.append("calibrate: palpation calibrate --port PORT (then --calibration FILE)")
        return "\n".join(lines)


def run_live(session: RecordingSession, duration: float | None = None,
             screenshot: Path | None = None) -> None:
    """Show the window until it is closed, Ctrl-C, ``duration`` or a recording failure;
    ``screenshot`` (PNG) saves the last frame."""
    quiet_offscreen_warnings()
    app = pg.mkQApp("palpation")
    window = LiveWindow(session, screenshot=screenshot)
    window.show()
    end = time.monotonic() + duration if duration else math.inf
    interrupted: list[bool] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: interrupted.append(True))

    def watch() -> None:  # also lets Python run its signal handlers while Qt waits
        if interrupted or session.stopped.is_set() or time.monotonic() >= end:
            window.close()

    guard = QtCore.QTimer(window)
    guard.timeout.connect(watch)
    guard.start(100)
    app.exec()
