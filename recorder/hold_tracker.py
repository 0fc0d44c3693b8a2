"""Holds as they happen, per trigger point: the one detector, repetitions and auto-advance.

The detector is ``analysis.holds.HoldDetector`` with the thresholds of the current trigger
point's band (``config_for_band``), the same the offline analysis uses, so the live window and
the report agree on every hold. A finished hold is counted as the next repetition at the point
where it began and becomes a stored row (``schemas.events.Hold``); once the current point has
all its repetitions the tracker moves on to the next point by itself (``auto_advance``).
Once the last point has all its repetitions the protocol is complete (``complete``, and a
``protocol_complete`` event at the end of that hold): holds are no longer detected, so none is
counted past the protocol's end, until the trainee moves to another point to work it again (a
``trigger_point`` event). ``analysis.metrics.recording_metrics`` applies the same rule offline.

Under a protocol's training schedule (``schemas.training``) the tracker counts the complete
holds (``hold_count``) and keeps the condition of the next one (``condition``, from
``Training.condition``): a ``feedback`` event (and a ``training_block`` event when a block
begins) at the session start and after every complete hold, and each stored row says what
feedback its hold had. A point whose target the subject anchored (``set_band``) is judged by
that band from its next hold on.

Pure: no threads, no I/O. The recording session calls it from the link's reader thread (and
its commands under the same lock); the window reads ``point_index``, ``blind``, ``holds``,
``live``, ``complete``, ``condition``, ``hold_count`` and ``awaiting_estimate``, each replaced
or appended in one step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from analysis.holds import Hold, HoldConfig, HoldDetector, LiveHold, config_for_band
from schemas.events import Event
from schemas.events import Hold as HoldRow
from schemas.session_protocol import SessionProtocol
from schemas.training import ESTIMATES, HoldCondition


class PointHold(NamedTuple):
    """A finished hold, the index of the trigger point it was made at, and the band (N) it
    was detected and is judged by: its ``/holds`` row's, the point's band when the hold
    began (a hold in progress when the subject anchors the point keeps the band it had, as
    the analysis judges it)."""

    point_index: int
    hold: Hold
    band_n: tuple[float, float]


class HoldTracker:
    """The trainee's place in the protocol and the holds made there."""

    def __init__(self, protocol: SessionProtocol | None, contact_area_cm2: float,
                 auto_advance: bool = True) -> None:
        self.protocol = protocol
        self.contact_area_cm2 = contact_area_cm2
        self.auto_advance = auto_advance
        self.point_index = 0
        self.blind = False
        self.holds: list[PointHold] = []
        self.live: LiveHold | None = None
        self.complete = False
        self.training = protocol.training if protocol is not None else None
        self.hold_count = 0  # complete holds so far: the next hold's number
        self.condition: HoldCondition | None = (
            self.training.condition(0) if self.training is not None else None)
        self.awaiting_estimate = False  # the last hold's self-estimate is asked, not yet given
        self._anchored: dict[int, tuple[float, float]] = {}
        self._repetitions: dict[int, int] = {}
        self._detector = HoldDetector(self.hold_config(0))
        self._detector_point = 0
        self._detector_band = self.band_n(0)  # the band the detector judges holds by
        self._band_changed = False  # set_band at the detector's point: rebuild when idle
        self._hold_point = 0

    def band_n(self, point_index: int | None = None) -> tuple[float, float]:
        """Target band in newtons of a trigger point (the current one by default): the
        anchored band once the subject set it (``set_band``), else the protocol's."""
        if self.protocol is None:
            return (math.nan, math.nan)
        i = self.point_index if point_index is None else point_index
        if i in self._anchored:
            return self._anchored[i]
        return self.protocol.points[i].dose.band_n(self.contact_area_cm2)

    def anchored(self, point_index: int | None = None) -> bool:
        """Whether the subject has anchored a point's band (the current one by default)."""
        return (self.point_index if point_index is None else point_index) in self._anchored

    def set_band(self, point_index: int, low_n: float, high_n: float) -> None:
        """The band the subject anchored at a point: ``band_n`` answers it from now on, and
        hold detection there from the next hold (a hold in progress keeps its band)."""
        self._anchored[point_index] = (float(low_n), float(high_n))
        self._band_changed |= point_index == self._detector_point

    def start_events(self, time_s: float, sample_index: int) -> list[Event]:
        """The session starts: the first block and the first hold's condition (nothing
        without a training schedule)."""
        return self._condition_events(time_s, sample_index, block_changed=True)

    def self_estimate(self, value: int, time_s: float, sample_index: int) -> list[Event]:
        """The trainee's estimate of the hold just finished (-1 too light, 0 right, +1 too
        firm; ``schemas.training.ESTIMATES``): the event; no longer awaiting one."""
        if value not in ESTIMATES:
            raise ValueError(f"a self-estimate is -1, 0 or +1, not {value!r}")
        self.awaiting_estimate = False
        return [Event(time_s, "self_estimate", value=value, text=ESTIMATES[value],
                      sample_index=sample_index)]

    def hold_config(self, point_index: int) -> HoldConfig:
        """Hold detection thresholds for a point (``analysis.holds.config_for_band``)."""
        return config_for_band(*self.band_n(point_index))

    def label(self, index: int) -> str:
        return self.protocol.points[index].label if self.protocol is not None else ""

    def move_to(self, index: int, time_s: float, sample_index: int) -> list[Event]:
        """Go to another trigger point (clamped to the protocol); the trigger_point event,
        if the point changed."""
        if self.protocol is None:
            return []
        index = max(0, min(len(self.protocol.points) - 1, index))
        if index == self.point_index:
            return []
        self.point_index = index
        self.complete = False
        return [Event(time_s, "trigger_point", value=index, text=self.label(index),
                      sample_index=sample_index)]

    def set_blind(self, blind: bool, time_s: float, sample_index: int) -> list[Event]:
        """Blind trial on or off; the event, if it changed."""
        if blind == self.blind:
            return []
        self.blind = blind
        return [Event(time_s, "blind_on" if blind else "blind_off", sample_index=sample_index)]

    def feed(self, t: np.ndarray, force_n: np.ndarray, now_s: float,
             samples: int) -> list[Event | HoldRow]:
        """Detect holds in a block: hold_start and hold_end events and the rows of finished
        holds, in order; a point's last repetition also moves to the next point (the
        trigger_point event at ``now_s``, with ``samples`` as its sample index). Nothing once
        the protocol is complete."""
        if self.complete:
            return []
        if ((self._detector_point != self.point_index or self._band_changed)
                and self.live is None):
            self._detector = HoldDetector(self.hold_config(self.point_index))
            self._detector_point = self.point_index
            self._detector_band = self.band_n(self.point_index)
            self._band_changed = False
        out: list[Event | HoldRow] = []
        for ev in self._detector.feed(t, force_n):
            if ev.kind == "start":
                self._hold_point = self._detector_point
                out.append(Event(ev.hold.start_s, "hold_start",
                                 text=self.label(self._hold_point)))
            else:
                out += self._ended(ev.hold, now_s, samples)
                if self.complete:
                    break
        self.live = None if self.complete else self._detector.current
        return out

    def finish(self, now_s: float, samples: int) -> list[Event | HoldRow]:
        """The recording ends: the hold still pressed ends too, as an incomplete row
        (``HoldDetector.finish``) that is never counted as a repetition."""
        self.live = None
        if self.complete:
            return []
        out: list[Event | HoldRow] = []
        for ev in self._detector.finish():
            if ev.kind == "end":
                out += self._ended(ev.hold, now_s, samples)
        return out

    def _ended(self, hold: Hold, now_s: float, samples: int) -> list[Event | HoldRow]:
        point = self._hold_point
        rep = self._repetitions.get(point, 0) + 1
        if hold.complete:  # a hold the recording's end cut off is not counted
            self._repetitions[point] = rep
            self.holds.append(PointHold(point, hold, self._detector_band))
        low, high = self._detector_band
        held = self.condition
        out: list[Event | HoldRow] = [
            Event(hold.end_s, "hold_end", value=hold.duration_s, text=self.label(point)),
            HoldRow(trigger_point=self.label(point), repetition=rep, start=hold.start_s,
                    end=hold.end_s, duration=hold.duration_s, peak_n=hold.peak_n,
                    mean_n=hold.mean_n, time_in_band=hold.time_in_band_s, target_low_n=low,
                    target_high_n=high, blind=self.blind, complete=hold.complete,
                    feedback=held.feedback if held is not None else "",
                    feedback_live=(held is None or held.live) and not self.blind)]
        if hold.complete:
            out += self._next_condition(hold.end_s)
        if (not hold.complete or self.protocol is None or point != self.point_index
                or rep < self.protocol.points[point].dose.repetitions):
            return out
        if point == len(self.protocol.points) - 1:
            self.complete = True
            self._detector_point = -1  # a fresh detector if the trainee works a point again
            out.append(Event(hold.end_s, "protocol_complete", text=self.protocol.name))
        elif self.auto_advance:
            out += self.move_to(point + 1, now_s, samples)
        return out

    def _next_condition(self, end_s: float) -> list[Event]:
        """A hold was completed: count it, ask for its self-estimate if its condition says
        so, and move to the next hold's condition (its events at the hold's end)."""
        self.hold_count += 1
        if self.training is None or self.condition is None:
            return []
        self.awaiting_estimate = self.condition.self_estimate
        previous, self.condition = self.condition, self.training.condition(self.hold_count)
        return self._condition_events(end_s, -1, self.condition.block != previous.block)

    def _condition_events(self, time_s: float, sample_index: int,
                          block_changed: bool) -> list[Event]:
        """``training_block`` (when a block begins) and ``feedback`` for the next hold."""
        now = self.condition
        if now is None:
            return []
        block = self.training.blocks[now.block]
        out = [Event(time_s, "training_block", value=now.block,
                     text=f"{block.name}: {block.feedback}", sample_index=sample_index)
               ] if block_changed else []
        return out + [Event(time_s, "feedback", value=float(now.live), text=now.feedback,
                            sample_index=sample_index)]
