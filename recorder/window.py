"""The live coaching window: what a trainee looks at while pressing.

It pulls, it is never pushed: one QTimer reads the newest samples from the session's ring
buffer and the session's state (live hold, finished holds, status) and redraws. The window
never touches the port or the file; keys become session calls, which become events in the
file. Readable from a metre: a large readout, a large cue, a hold clock counting only time in
the band. The widgets and their places are built by ``recorder.window_layout``.

Under a training schedule (a protocol's ``[training]``), what is shown live follows the
hold's feedback condition (``recorder.feedback_view``), and what follows a hold (the
self-estimate, the results) is ``recorder.training_view``'s. A subject-anchored point
(``recorder.anchor``) is coached as a first approach, with no band, until the subject's
signal anchors it; then its band is drawn and coached.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from pyqtgraph.Qt import QtCore, QtWidgets

from analysis.decimate import peak_decimate
from firmware_bridge.frames import FLAG_BUTTON
from recorder.anchor import PointTarget, point_target
from recorder.coach import Cue, coach, ramp_cue, ramp_slope
from recorder.cue_audio import AudioCue, open_audio_cue
from recorder.feedback_view import (
    BLIND_MESSAGE,
    ESTIMATE_KEYS,
    NEUTRAL_MESSAGE,
    NO_FEEDBACK_MESSAGE,
    FeedbackState,
    LiveView,
    live_view,
)
from recorder.panels import (
    COLORS,
    LIVE_POINTS,
    hold_curve,
    quiet_offscreen_warnings,
    shown_band,
)
from recorder.qtstart import fit_to_screen, run_window, start_qt
from recorder.session import RecordingSession, SessionStatus
from recorder.training_view import TrainingView
from recorder.window_layout import TRACE_SECONDS, FrameClock, build_layout
from schemas.session_protocol import Dose
from schemas.units import newtons_per_unit, value_text

# Frames per second. A sample waits up to one frame period for the next frame, so the period
# bounds the latency from the device's sample instant to the screen (target p99 25 ms at 1 kHz,
# bench/bench_window.py): at 60 fps the wait alone reaches 16.7 ms; at 100 fps 10 ms, for about
# a quarter more CPU (the reader and writer threads cost the same at any frame rate).
FRAME_RATE_HZ = 100.0
READOUT_SECONDS = 0.1  # the readout shows the mean of the last 100 ms: steady, yet live
STATUS_PERIOD_S = 0.25  # the status line changes 4 times a second, not every frame
NOTICE_S = 4.0  # how long a refused tare's reason stays on screen
COMPLETE_MESSAGE = "PROTOCOL COMPLETE"

CUE_COLORS = {
    Cue.IDLE: COLORS["idle"], Cue.BELOW: COLORS["below"], Cue.IN_BAND: COLORS["in_band"],
    Cue.ABOVE: COLORS["above"], Cue.COMPLETE: COLORS["complete"],
    Cue.OVERTIME: COLORS["overtime"],
}


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
        self._approach_shown = False  # the current point is shown as a first approach
        self._help = False
        self._texts: dict[str, str] = {}
        self._trace_floor = 0.0
        self._status_at = 0.0
        self.audio_cue: AudioCue | None = None  # the eyes-free cue (run_live's audio_cue)
        self.setWindowTitle(f"palpation — {session.options.out.name}")
        self.setStyleSheet(f"background-color: {COLORS['background']}; color: #e6edf3;")
        build_layout(self, [self.dose_of(i) for i in range(len(self.labels))])
        self.cue_label.setWordWrap(True)  # a first approach's message is a sentence
        for i, plot in enumerate(self.multiples.plots):
            self._draw_band(plot, i)
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
            self._show_point(point)
        elif self._approach_shown and not self.target(point).approach:  # the subject
            self._show_band(point)  # anchored it
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
            self.trace.show_trace(x, y, self._trace_floor)
        if self.ramp.active:
            self.ramp.update(live, s.ring, blind)
        elif live is not None and not blind:
            recent = s.ring.since(live.start_s)
            x, y = hold_curve(recent.time, recent.force * self.per_unit, live.start_s,
                              LIVE_POINTS)
            self.heart.set_current(x, y)
        else:
            self.heart.set_current(np.empty(0), np.empty(0))
        self._show_cues(live, force_n, view, shown)
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

    def _show_live(self, shown: LiveView) -> None:
        """Show or hide every live widget (the trace, readout, clock, hold plots and the
        small multiples' earlier holds), and the band's colour, as ``shown`` says."""
        on = shown.live
        for w in (self.readout, self.unit_label, self.clock_label, self.ramp_label, self.trace,
                  self.multiples):
            w.setVisible(on)
        self.heart.setVisible(on and not self.ramp.active)
        self.ramp.plot.setVisible(on and self.ramp.active)
        # a hold shown live keeps its verdict until the next begins, whatever that one gets
        self.verdict_label.setVisible(not self.session.blind and (
            on or (self.training is not None and self.training.verdict_allowed)))
        for plot in (self.trace, self.heart):
            plot.colour_band(shown.cues)

    def _show_cues(self, live, force_n: float, view, shown: LiveView) -> None:
        s = self.session
        self._show_live(shown)
        if not shown.live:
            self.set_text("cue", self.cue_label, shown.message, COLORS["idle"])
            return
        value = force_n * self.per_unit
        self.set_text("readout", self.readout, "—" if math.isnan(value) else f"{value:.1f}")
        if s.protocol is None:
            return
        if s.protocol_complete:
            self.set_text("cue", self.cue_label, COMPLETE_MESSAGE, COLORS["complete"])
            self.set_text("clock", self.clock_label, "")
            self.set_text("ramp", self.ramp_label, "")
            return
        if self.ramp.active:
            ramp = self.ramp.texts()
            self.set_text("cue", self.cue_label, ramp.cue, ramp.color)
            self.set_text("clock", self.clock_label, ramp.line)
            self.set_text("ramp", self.ramp_label, ramp.note)
            return
        self._show_band_cue(live, force_n, shown)
        corridor = s.protocol.ramp_n_per_s(s.point_index)
        if corridor and len(view.time) > 2:
            slope = ramp_slope(view.time, view.force)
            cue = ramp_cue(slope, *corridor) if live is not None else None
            text = "" if cue is None else \
                f"ramp {value_text(slope * self.per_unit, self.unit + '/s')} {cue}"
            self.set_text("ramp", self.ramp_label, text)

    def _show_band_cue(self, live, force_n: float, shown: LiveView) -> None:
        """The cue and the hold clock against the band the session judges the point by (the
        subject's, once anchored); a first approach to an unanchored point is coached as such,
        with no band cue and no time in band (the provisional band is no target)."""
        s = self.session
        dose = s.protocol.points[s.point_index].dose
        window = f"hold {dose.min_hold_s:g}–{dose.max_hold_s:g} s"
        target = self.target(s.point_index)
        if target is not None and target.approach:
            self.set_text("cue", self.cue_label, target.text, COLORS["idle"])
            self.set_text("clock", self.clock_label, window)
            return
        low, high = s.band_n(s.point_index)
        judged = replace(dose, unit="N", target_low=low, target_high=high)
        state = coach(live, force_n, judged)
        if shown.cues:
            self.set_text("cue", self.cue_label, state.message, CUE_COLORS[state.cue])
        else:
            self.set_text("cue", self.cue_label, NEUTRAL_MESSAGE, COLORS["idle"])
        self.set_text("clock", self.clock_label,
                      f"in band {state.band_clock_s:.1f} s · {window}" if live else window)

    def target(self, point: int) -> PointTarget | None:
        """A subject-anchored point's target as shown (``recorder.anchor.point_target``):
        its first approach, or its anchored band; None for a fixed band."""
        return point_target(self.dose_of(point), self.session.anchored(point),
                            self.session.band_n(point), self.unit, self.per_unit)

    def _show_point(self, point: int) -> None:
        self._point_shown = point
        self.heart.set_history(self.history.get(point, []))
        self.ramp.set_point(self.dose_of(point), point)
        self.multiples.set_current(point)
        self._show_band(point)

    def _draw_band(self, plot, point: int) -> tuple[float, float] | None:
        """Shade on a hold plot the band the session judges ``point`` by (display units,
        returned), none while the point awaits its subject's anchor."""
        band_n = self.session.band_n(point)
        plot.set_dose(self.dose_of(point), self.session.contact_area_cm2, self.per_unit, band_n)
        target = self.target(point)
        if target is not None and target.approach:
            plot.band.hide()
            return None
        return shown_band(self.dose_of(point), self.session.contact_area_cm2, self.per_unit,
                          band_n)

    def _show_band(self, point: int) -> None:
        """The current point's band on the hold plot, its small plot and the trace, and its
        target in the point's note; again once the subject anchors it."""
        target = self.target(point)
        self._approach_shown = target is not None and target.approach
        band = self._draw_band(self.heart, point)
        if point < len(self.multiples.plots):
            self._draw_band(self.multiples.plots[point], point)
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
        done, reps = len(self.history.get(point, [])), p.dose.repetitions
        where = (f"{reps} of {reps} repetitions done" if done >= reps
                 else f"repetition {done + 1} of {reps}")
        self.set_text("point", self.point_label,
                      f"{point + 1}/{len(protocol.points)}  {p.label}   {where}")
        target = self.target(point)
        anchored = target is not None and not target.approach
        self.set_text("note", self.note_label,
                      "\n".join(filter(None, (p.note, target.text if anchored else ""))))

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
                self._show_point_label()
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
