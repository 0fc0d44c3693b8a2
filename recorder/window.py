"""The live coaching window: what a trainee looks at while pressing.

It pulls, it is never pushed: one QTimer reads the newest samples from the session's ring
buffer and the session's state (live hold, finished holds, status) and redraws. The window
never touches the port or the file; keys become session calls, which become events in the
file. Readable from a metre: a large readout, a large cue, a hold clock counting only time in
the band. The widgets and their places are built by ``recorder.window_layout``; how the
current point is drawn and coached on them (its band, label, cue and hold clock, and a
subject-anchored point's first approach) is ``recorder.coach_view``'s.

Under a training schedule (a protocol's ``[training]``), what is shown live follows the
hold's feedback condition (``recorder.feedback_view``), and what follows a hold (the
self-estimate, the results) is ``recorder.training_view``'s.

Threads: the UI thread (the timer and the keys) owns the window, its widgets and its
helpers' state; it reads the session as its caller's thread (``recorder.session``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.decimate import peak_decimate
from firmware_bridge.frames import FLAG_BUTTON
from recorder.coach_view import CoachView
from recorder.cue_audio import AudioCue, open_audio_cue
from recorder.feedback_view import (
    BLIND_MESSAGE,
    ESTIMATE_KEYS,
    NEUTRAL_MESSAGE,
    NO_FEEDBACK_MESSAGE,
    FeedbackState,
    live_view,
)
from recorder.panels import (
    COLORS,
    LIVE_POINTS,
    hold_curve,
    quiet_offscreen_warnings,
)
from recorder.qtstart import fit_to_screen, run_window, start_qt
from recorder.session import RecordingSession
from recorder.session_status import SessionStatus
from recorder.training_view import TrainingView
from recorder.window_layout import TRACE_SECONDS, FrameClock, build_layout
from schemas.session_protocol import Dose
from schemas.units import newtons_per_unit

# Frames per second. A sample waits up to one frame period for the next frame, so the period
# bounds the latency from the device's sample instant to the screen (target p99 25 ms at 1 kHz,
# bench/bench_window.py): at 60 fps the wait alone reaches 16.7 ms; at 100 fps 10 ms, for about
# a quarter more CPU (the reader and writer threads cost the same at any frame rate).
FRAME_RATE_HZ = 100.0
READOUT_SECONDS = 0.1  # the readout shows the mean of the last 100 ms: steady, yet live
STATUS_PERIOD_S = 0.25  # the status line changes 4 times a second, not every frame
NOTICE_S = 4.0  # how long a refused tare's reason stays on screen


class LiveWindow(QtWidgets.QMainWindow):
    """The coaching window for one RecordingSession."""

    def __init__(self, session: RecordingSession, fps: float = FRAME_RATE_HZ,
                 screenshot: Path | None = None) -> None:
        super().__init__()
        self.session = session
        self.screenshot = screenshot
        self.screenshot_saved = True  # False once saving ``screenshot`` failed
        protocol = session.protocol
        self.unit = session.options.display_unit or (protocol.unit if protocol else "N")
        self.per_unit = 1.0 / newtons_per_unit(self.unit, session.contact_area_cm2)
        self.labels = [p.label for p in protocol.points] if protocol is not None else ["hold"]
        self.clock = FrameClock()
        self._notice: tuple[float, str] | None = None  # (when, a refused tare's reason)
        self.history: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._holds_seen = 0
        self._last_end_s = math.inf  # the newest finished hold's end, until the next starts
        self._in_hold = False
        self._point_shown = -1
        self._help = False
        self._texts: dict[str, str] = {}
        self._status_at = 0.0
        self.audio_cue: AudioCue | None = None  # the eyes-free cue (run_live's audio_cue)
        self.setWindowTitle(f"palpation — {session.options.out.name}")
        self.setStyleSheet(f"background-color: {COLORS['background']}; color: #e6edf3;")
        build_layout(self, [self.dose_of(i) for i in range(len(self.labels))])
        self.cue_label.setWordWrap(True)  # a first approach's message is a sentence
        self.coach_view = CoachView(self)
        for i, plot in enumerate(self.multiples.plots):
            self.coach_view.draw_band(plot, i)
        training = session.training
        self.training = TrainingView(self, training) if training is not None else None
        self.timer = QtCore.QTimer(self)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(max(1, round(1000 / fps)))

    def dose_of(self, index: int) -> Dose | None:
        protocol = self.session.protocol
        return protocol.points[index].dose if protocol is not None else None

    # ---- the frame ------------------------------------------------------------------------

    def refresh(self) -> None:
        """One frame: read the ring and the session, redraw what changed."""
        s = self.session
        st = s.status()
        point = s.point_index
        if point != self._point_shown:
            self._point_shown = point
            self.coach_view.show_point(point)
        elif self.coach_view.anchored_since_shown(point):
            self.coach_view.show_band(point)
        self._collect_finished_holds()
        view = s.ring.latest(int(TRACE_SECONDS * self._rate()))
        self.clock.drawn_total = view.total
        live = s.live_hold
        self._in_hold = live is not None
        if live is not None and live.start_s > self._last_end_s:  # the next hold began
            self._last_end_s = math.inf
            self.verdict_label.set_verdict(None)
            if self.training is not None:
                self.training.hold_started()
        force_n = self._readout_force(view)
        shown = live_view(st.condition, s.blind, force_n, s.band_n(point))
        blind = not shown.live
        if self.audio_cue is not None:
            self.audio_cue.feed(force_n)
        if len(view.time) and shown.live:  # a hidden trace is not drawn
            x, y = peak_decimate(view.time - view.time[-1], view.force * self.per_unit,
                                 LIVE_POINTS)
            self.trace.show_trace(x, y, self.coach_view.trace_floor)
        if self.ramp.active:
            self.ramp.update(live, s.ring, blind)
        elif live is not None and not blind:
            recent = s.ring.since(live.start_s)
            x, y = hold_curve(recent.time, recent.force * self.per_unit, live.start_s,
                              LIVE_POINTS)
            self.heart.set_current(x, y)
        else:
            self.heart.set_current(np.empty(0), np.empty(0))
        self.coach_view.show_cues(live, force_n, view, shown)
        if self.training is not None:
            self.training.frame(st.condition)
        if view.flags.size:
            pressed = bool(view.flags[-1] & FLAG_BUTTON)
            self.set_text("button", self.button_label, "● BUTTON" if pressed else "")
        now = time.monotonic()
        if now - self._status_at >= STATUS_PERIOD_S:
            self._status_at = now
            self._show_status(st)

    def _rate(self) -> float:
        info = self.session.device_info
        return info.nominal_rate_hz if info and info.nominal_rate_hz else 1000.0

    def _readout_force(self, view) -> float:
        if not len(view.time):
            return math.nan
        recent = view.force[view.time >= view.time[-1] - READOUT_SECONDS]
        return float(recent.mean())

    def _collect_finished_holds(self) -> None:
        """Take each newly finished hold's samples from the ring once, decimated; the newest
        one's verdict is shown."""
        holds = self.session.holds
        for number, rec in enumerate(holds[self._holds_seen:], start=self._holds_seen):
            h = rec.hold
            part = self.session.ring.since(h.start_s)
            keep = part.time <= h.end_s
            curve = hold_curve(part.time[keep], part.force[keep] * self.per_unit, h.start_s)
            self.history.setdefault(rec.point_index, []).append(curve)
            self._last_end_s = h.end_s
            if self.training is not None:
                self.training.hold_finished(number, rec, curve, part.time[keep],
                                            part.force[keep])
            if rec is holds[-1] and (self.training is None or self.training.verdict_allowed):
                self._judge(rec, part.time[keep], part.force[keep])
            if rec.point_index < len(self.multiples.plots):
                self.multiples.plots[rec.point_index].set_history(self.history[rec.point_index])
            if rec.point_index == self._point_shown:
                self.heart.set_history(self.history[rec.point_index])
                self.coach_view.show_label(rec.point_index)
        self._holds_seen = len(holds)

    def _judge(self, rec, t: np.ndarray, force_n: np.ndarray) -> None:
        """The verdict on a finished hold (``VerdictPanel``), shown until the next starts."""
        dose = self.dose_of(rec.point_index)
        if dose is None or dose.is_threshold_ramp:  # a ramp's verdict is its threshold
            return
        self.verdict_label.judge_hold(rec.hold, t, force_n, dose, self.session.contact_area_cm2,
                                      self.labels[rec.point_index],
                                      len(self.history[rec.point_index]),
                                      rec.band_n)

    def _show_status(self, st: SessionStatus) -> None:
        link = "connected" if st.connected else "RECONNECTING…"
        rec = "● REC" if st.recording else "❚❚ PAUSED"
        minutes, seconds = divmod(int(st.elapsed_s), 60)
        # frames are counted where the trace paints: none while no live feedback shows it
        fps = f"   {self.clock.fps():.0f} fps" if self.trace.isVisible() else ""
        text = (f"{rec}  {self.session.options.out.name}  {minutes:02d}:{seconds:02d}   "
                f"{link}   {st.rate_hz:,.0f} Hz   gaps {st.gaps}   CRC errors {st.crc_errors}"
                f"   reconnects {st.reconnects}{fps}"
                f"{'   BLIND' if st.blind else ''}   H: help")
        if st.error:
            text = f"ERROR: {st.error}"
        self.set_text("status", self.status, text)
        warnings = [*self.session.warnings, *self.session.live_warnings.values()]
        if self._notice and time.monotonic() - self._notice[0] < NOTICE_S:
            warnings.append(self._notice[1])
        self.set_text("warnings", self.warning_label,
                      "⚠ " + "   ⚠ ".join(warnings) if warnings else "")

    def set_text(self, key: str, label: QtWidgets.QLabel, text: str,
                 color: str | None = None) -> None:
        """Change a label only when its text changes (re-layout is what costs)."""
        if self._texts.get(key) == (text, color):
            return
        self._texts[key] = (text, color)
        label.setText(text)
        if color is not None:
            label.setStyleSheet(f"color: {color};")

    def feedback_state(self) -> FeedbackState:
        """What the trainee sees now, read from the widgets themselves (for tests)."""
        live = [self.readout, self.clock_label, self.trace, self.multiples,
                self.ramp.plot if self.ramp.active else self.heart]
        neutral = (NEUTRAL_MESSAGE, BLIND_MESSAGE, NO_FEEDBACK_MESSAGE)
        band = self.trace.band.brush.color()
        coloured = (band.red(), band.green(), band.blue(), band.alpha()) == COLORS["band"]
        drawn = self.trace.band.isVisible()
        return FeedbackState(
            live_visible=all(w.isVisible() for w in live),
            live_any=any(w.isVisible() for w in live),
            cues_visible=(self.cue_label.isVisible() and coloured and drawn
                          and self.cue_label.text() not in neutral),
            verdict_visible=self.verdict_label.isVisible() and bool(self.verdict_label.text()),
            results_visible=self.kr_view.isVisible(),
            summary_visible=self.summary_view.isVisible(),
            estimate_prompt=self.estimate_label.isVisible(),
            block_text=self.block_label.text() if self.block_label.isVisible() else "",
            mastery_text=self.mastery_label.text() if self.mastery_label.isVisible() else "",
            hold_number=self._holds_seen, in_hold=self._in_hold, point=self._point_shown,
            cue_text=self.cue_label.text(),
            band_shown=tuple(self.trace.band.getRegion()) if drawn else None,
            note_text=self.note_label.text())

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        if self.screenshot is not None:
            self.screenshot_saved = self.grab().save(str(self.screenshot), "PNG")
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
        elif text.upper() in ESTIMATE_KEYS and self.training is not None:
            self.training.answer(ESTIMATE_KEYS[text.upper()])
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
             screenshot: Path | None = None, audio_cue: bool = False) -> None:
    """Show the window until it is closed, Ctrl-C, ``duration`` or a recording failure;
    ``screenshot`` (PNG) saves the last frame (OSError, once the window is closed, if it
    cannot be); ``audio_cue`` plays the eyes-free cue (``recorder.cue_audio``). Qt is
    started by ``start_qt`` (the command line starts it before opening the port and the
    file): a platform that cannot start is a ``QtStartError``, not an abort."""
    quiet_offscreen_warnings()
    app = start_qt()
    window = LiveWindow(session, screenshot=screenshot)
    window.audio_cue = open_audio_cue(session) if audio_cue else None
    fit_to_screen(window)
    window.show()
    run_window(app, window, duration, session.stopped.is_set)
    if not window.screenshot_saved:
        raise OSError(f"cannot write the screenshot {screenshot}")
