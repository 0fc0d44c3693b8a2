"""Subject-anchored dose: the force that earned the subject's rating sets a point's target.

A protocol whose dose has ``target_pain`` (``schemas.session_protocol.Dose``, e.g. 6) takes
each trigger point's target from the subject instead of a fixed band. On the first approach to
a point the trainee ramps slowly; the subject signals when the discomfort reaches target_pain,
with the hand-held button or by saying it (the trainee types that rating: a ``pain`` event
equal to target_pain). A signal comes a reaction time after the force that earned it, so the
target is the force ``reaction_time_s`` before the signal: the mean over ``WINDOW_S`` centred
there, which averages out 8-12 Hz tremor and is unbiased on a straight ramp. Each point is
anchored once per session, and only while a hold is in progress there: a later signal at an
anchored point is the subject asking to stop (``stop_on_button``), never a new rating.

Pure: no threads, no I/O. The pipeline feeds it each chunk on the link's reader thread (only
while the current point is unanchored: a history of the last ``history_s`` seconds of that
point's force) and asks it at each button press; the session asks it at a pain rating, under
the same pipeline lock.

What the trainee is shown (``point_target``): until a point is anchored its band is only
provisional (it detects holds), so the window coaches the first approach instead of a band it
does not have ("first approach: ramp slowly until the subject rates 6/10 ..."), with no band
drawn and no band cue, and the audio cue is silent (``recorder.cue_audio``); once anchored it
shows the derived band ("target 37.2 N from 6/10, band 31.6–42.8 N") and coaches against it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schemas.session_protocol import Dose, SessionProtocol
from schemas.units import value_text

WINDOW_S = 0.1  # the target: mean force over this window, centred reaction_time_s before
HISTORY_MARGIN_S = 1.0  # force history kept beyond the longest reaction time


@dataclass(frozen=True)
class Anchor:
    """A point's target, set by the subject's signal."""

    point_index: int
    target_n: float  # the force reaction_time_s before the signal
    time_s: float  # the signal (session seconds)


@dataclass(frozen=True)
class PointTarget:
    """A subject-anchored point's target as shown: ``approach`` while it awaits its anchor
    (the first approach: no band to coach), ``text`` the approach message or the derived
    target and band."""

    approach: bool
    text: str


def approach_message(target_pain: float) -> str:
    """What the window says on the first approach to an unanchored point."""
    return (f"first approach: ramp slowly until the subject rates {target_pain:g}/10 "
            "(button, or the pain keys)")


def first_approach(dose: Dose | None, anchored: bool) -> bool:
    """Whether a point is on its first approach: its dose has ``target_pain`` and the subject
    has not ``anchored`` it yet, so it has no band to coach."""
    return dose is not None and math.isfinite(dose.target_pain) and not anchored


def point_target(dose: Dose | None, anchored: bool, band_n: tuple[float, float], unit: str,
                 per_unit: float) -> PointTarget | None:
    """The target shown at a point whose dose has ``target_pain``: the first approach until
    the subject has ``anchored`` it, then the anchored target (the midpoint of ``band_n``, the
    band the session judges it by, N) and band in the display ``unit`` (``per_unit`` per
    newton). None for a fixed-band point."""
    if first_approach(dose, anchored):
        return PointTarget(True, approach_message(dose.target_pain))
    if dose is None or not math.isfinite(dose.target_pain):
        return None
    low, high = (v * per_unit for v in band_n)
    return PointTarget(False, f"target {value_text((low + high) / 2, unit)} from "
                              f"{dose.target_pain:g}/10, band {low:.1f}–{value_text(high, unit)}")


class AnchorStage:
    """Which points are still to be anchored, the recent force at the current one, and the
    target a signal sets. ``anchored`` (point index -> target N) is replaced in one step."""

    def __init__(self, target_pain: list[float], reaction_time_s: list[float]) -> None:
        self.target_pain = target_pain
        self.reaction_time_s = reaction_time_s
        self.anchored: dict[int, float] = {}
        self.history_s = max(reaction_time_s, default=0.0) + WINDOW_S + HISTORY_MARGIN_S
        self._point = -1
        self._t = np.empty(0)
        self._f = np.empty(0)

    @classmethod
    def for_protocol(cls, protocol: SessionProtocol | None) -> AnchorStage | None:
        """The stage for a protocol with ``target_pain`` at some point; None otherwise (no
        cost per chunk for a fixed-band protocol)."""
        if protocol is None:
            return None
        doses = [p.dose for p in protocol.points]
        if not any(math.isfinite(d.target_pain) for d in doses):
            return None
        return cls([d.target_pain for d in doses], [d.reaction_time_s for d in doses])

    def unanchored(self, point_index: int) -> bool:
        """The point takes its target from the subject and has not had it yet."""
        return (0 <= point_index < len(self.target_pain)
                and math.isfinite(self.target_pain[point_index])
                and point_index not in self.anchored)

    def feed(self, t: np.ndarray, force_n: np.ndarray, point_index: int) -> None:
        """Keep the last ``history_s`` of the force while ``point_index`` is unanchored; a
        change of point starts the history afresh (a signal never reads another point's
        force)."""
        if point_index != self._point:
            self._point, self._t, self._f = point_index, np.empty(0), np.empty(0)
        if not self.unanchored(point_index) or not len(t):
            return
        keep = float(t[-1]) - self.history_s
        first = int(np.searchsorted(self._t, keep))
        self._t = np.concatenate((self._t[first:], t))
        self._f = np.concatenate((self._f[first:], force_n))
        if self._t[0] < keep:
            first = int(np.searchsorted(self._t, keep))
            self._t, self._f = self._t[first:], self._f[first:]

    def signal(self, point_index: int, time_s: float, holding: bool,
               rating: float | None = None) -> Anchor | None:
        """The subject signalled at ``time_s``: the button (``rating`` None) or a pain rating.
        Anchors the point and returns its target when the point is unanchored, a hold is in
        progress there, a rating equals target_pain, and the force then is positive; else
        None (a second signal at an anchored point does nothing here)."""
        if not holding or point_index != self._point or not self.unanchored(point_index):
            return None
        if rating is not None and rating != self.target_pain[point_index]:
            return None
        target = self.force_at(time_s - self.reaction_time_s[point_index])
        if not (math.isfinite(target) and target > 0):
            return None
        self.anchored = {**self.anchored, point_index: target}
        return Anchor(point_index, target, time_s)

    def force_at(self, time_s: float) -> float:
        """Mean force over ``WINDOW_S`` centred at ``time_s``; the samples nearest it when the
        window holds none (a gap, or an instant past the latest sample: a rating typed
        before its samples have arrived); NaN without a history."""
        t, f = self._t, self._f
        if not len(t):
            return math.nan
        a = int(np.searchsorted(t, time_s - WINDOW_S / 2, "left"))
        b = int(np.searchsorted(t, time_s + WINDOW_S / 2, "right"))
        if b > a:
            return float(np.nanmean(f[a:b]))
        lo = max(a - 1, 0)
        return float(f[lo + int(np.argmin(np.abs(t[lo:lo + 2] - time_s)))])
