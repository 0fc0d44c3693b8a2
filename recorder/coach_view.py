"""The live window's coaching of the current trigger point: its band on the hold plot, its
small plot and the trace; its label and note; the live widgets shown or hidden as the hold's
feedback condition says; and the cue, hold clock and ramp lines (``recorder.coach``) against
the band the session judges the point by.

Why apart from ``recorder.window``: the window pulls a frame from the session and takes keys;
this decides what the current point looks like on the widgets ``recorder.window_layout``
made. A subject-anchored point (``recorder.anchor``) is coached as a first approach, with no
band, until the subject's signal anchors it; then its band is drawn and coached.

Threads: the UI thread alone (the window's timer) calls it and owns its state (whether the
shown point is a first approach, the trace's lowest y range) and the widgets it writes; it
reads the session as the window does, as the caller's thread (``recorder.session``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

from recorder.anchor import PointTarget, point_target
from recorder.coach import Cue, coach, ramp_cue, ramp_slope
from recorder.feedback_view import NEUTRAL_MESSAGE, LiveView
from recorder.panels import COLORS, shown_band
from schemas.units import value_text

if TYPE_CHECKING:
    from recorder.window import LiveWindow

COMPLETE_MESSAGE = "PROTOCOL COMPLETE"

CUE_COLORS = {
    Cue.IDLE: COLORS["idle"], Cue.BELOW: COLORS["below"], Cue.IN_BAND: COLORS["in_band"],
    Cue.ABOVE: COLORS["above"], Cue.COMPLETE: COLORS["complete"],
    Cue.OVERTIME: COLORS["overtime"],
}


class CoachView:
    """How the window presents the current point and coaches it, frame by frame."""

    def __init__(self, window: LiveWindow) -> None:
        self.window = window
        self.approach_shown = False  # the shown point is shown as a first approach
        self.trace_floor = 0.0  # the trace's y range reaches at least this (display units)

    def target(self, point: int) -> PointTarget | None:
        """A subject-anchored point's target as shown (``recorder.anchor.point_target``):
        its first approach, or its anchored band; None for a fixed band."""
        w = self.window
        return point_target(w.dose_of(point), w.session.anchored(point),
                            w.session.band_n(point), w.unit, w.per_unit)

    def anchored_since_shown(self, point: int) -> bool:
        """The shown point was a first approach and the subject has anchored it since."""
        return self.approach_shown and not self.target(point).approach

    def show_point(self, point: int) -> None:
        """Make ``point`` the one shown: its earlier holds, the ramp view, its small plot
        marked current, its band and its label."""
        w = self.window
        w.heart.set_history(w.history.get(point, []))
        w.ramp.set_point(w.dose_of(point), point)
        w.multiples.set_current(point)
        self.show_band(point)

    def draw_band(self, plot, point: int) -> tuple[float, float] | None:
        """Shade on a hold plot the band the session judges ``point`` by (display units,
        returned), none while the point awaits its subject's anchor."""
        w = self.window
        band_n = w.session.band_n(point)
        area = w.session.contact_area_cm2
        plot.set_dose(w.dose_of(point), area, w.per_unit, band_n)
        target = self.target(point)
        if target is not None and target.approach:
            plot.band.hide()
            return None
        return shown_band(w.dose_of(point), area, w.per_unit, band_n)

    def show_band(self, point: int) -> None:
        """The current point's band on the hold plot, its small plot and the trace, and its
        target in the point's note; again once the subject anchors it."""
        w = self.window
        target = self.target(point)
        self.approach_shown = target is not None and target.approach
        band = self.draw_band(w.heart, point)
        if point < len(w.multiples.plots):
            self.draw_band(w.multiples.plots[point], point)
        self.trace_floor = band[1] * 1.3 if band is not None else 0.0
        if band is not None:
            w.trace.band.setRegion(band)
        w.trace.band.setVisible(band is not None)
        self.show_label(point)

    def show_label(self, point: int) -> None:
        """The point's place in the protocol and its repetition; its note, with the anchored
        target once there is one."""
        w = self.window
        protocol = w.session.protocol
        if protocol is None:
            return
        p = protocol.points[point]
        done, reps = len(w.history.get(point, [])), p.dose.repetitions
        where = (f"{reps} of {reps} repetitions done" if done >= reps
                 else f"repetition {done + 1} of {reps}")
        w.set_text("point", w.point_label,
                   f"{point + 1}/{len(protocol.points)}  {p.label}   {where}")
        target = self.target(point)
        anchored = target is not None and not target.approach
        w.set_text("note", w.note_label,
                   "\n".join(filter(None, (p.note, target.text if anchored else ""))))

    def show_live(self, shown: LiveView) -> None:
        """Show or hide every live widget (the trace, readout, clock, hold plots and the
        small multiples' earlier holds), and the band's colour, as ``shown`` says."""
        w = self.window
        on = shown.live
        for widget in (w.readout, w.unit_label, w.clock_label, w.ramp_label, w.trace,
                       w.multiples):
            widget.setVisible(on)
        w.heart.setVisible(on and not w.ramp.active)
        w.ramp.plot.setVisible(on and w.ramp.active)
        # a hold shown live keeps its verdict until the next begins, whatever that one gets
        w.verdict_label.setVisible(not w.session.blind and (
            on or (w.training is not None and w.training.verdict_allowed)))
        for plot in (w.trace, w.heart):
            plot.colour_band(shown.cues)

    def show_cues(self, live, force_n: float, view, shown: LiveView) -> None:
        """The readout, cue, hold clock and ramp lines for this frame: ``live`` is the hold
        under way (or None), ``force_n`` the readout's force, ``view`` the ring's latest."""
        w = self.window
        s = w.session
        self.show_live(shown)
        if not shown.live:
            w.set_text("cue", w.cue_label, shown.message, COLORS["idle"])
            return
        value = force_n * w.per_unit
        w.set_text("readout", w.readout, "—" if math.isnan(value) else f"{value:.1f}")
        if s.protocol is None:
            return
        if s.protocol_complete:
            w.set_text("cue", w.cue_label, COMPLETE_MESSAGE, COLORS["complete"])
            w.set_text("clock", w.clock_label, "")
            w.set_text("ramp", w.ramp_label, "")
            return
        if w.ramp.active:
            ramp = w.ramp.texts()
            w.set_text("cue", w.cue_label, ramp.cue, ramp.color)
            w.set_text("clock", w.clock_label, ramp.line)
            w.set_text("ramp", w.ramp_label, ramp.note)
            return
        self._show_band_cue(live, force_n, shown)
        corridor = s.protocol.ramp_n_per_s(s.point_index)
        if corridor and len(view.time) > 2:
            slope = ramp_slope(view.time, view.force)
            cue = ramp_cue(slope, *corridor) if live is not None else None
            text = "" if cue is None else \
                f"ramp {value_text(slope * w.per_unit, w.unit + '/s')} {cue}"
            w.set_text("ramp", w.ramp_label, text)

    def _show_band_cue(self, live, force_n: float, shown: LiveView) -> None:
        """The cue and the hold clock against the band the session judges the point by (the
        subject's, once anchored); a first approach to an unanchored point is coached as such,
        with no band cue and no time in band (the provisional band is no target)."""
        w = self.window
        s = w.session
        dose = s.protocol.points[s.point_index].dose
        window = f"hold {dose.min_hold_s:g}–{dose.max_hold_s:g} s"
        target = self.target(s.point_index)
        if target is not None and target.approach:
            w.set_text("cue", w.cue_label, target.text, COLORS["idle"])
            w.set_text("clock", w.clock_label, window)
            return
        low, high = s.band_n(s.point_index)
        judged = replace(dose, unit="N", target_low=low, target_high=high)
        state = coach(live, force_n, judged)
        if shown.cues:
            w.set_text("cue", w.cue_label, state.message, CUE_COLORS[state.cue])
        else:
            w.set_text("cue", w.cue_label, NEUTRAL_MESSAGE, COLORS["idle"])
        w.set_text("clock", w.clock_label,
                   f"in band {state.band_clock_s:.1f} s · {window}" if live else window)
