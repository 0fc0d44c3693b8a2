"""The recording session's training commands: the trainee's self-estimate and a target the
subject anchored, and the session's training schedule.

Why a module of its own: ``RecordingSession`` (``recorder.session``) is the facade over the
live pipeline, kept small; these commands are its part for issue 13's training
(``schemas.training``) and subject-anchored dose (``Dose.target_pain``). It is a mixin of
that class, so the window and ``recorder.anchor`` call them on the session itself.

Threads: they are the caller's commands, like ``set_blind``: queued with the time and sample
count of the moment they were given, and applied in order under the pipeline lock
(``pipeline.CommandQueue``), where the hold tracker is changed. A wrong argument is refused
at once, in the caller's thread, never in the reader thread.
"""

from __future__ import annotations

import math

from recorder.hold_tracker import HoldTracker
from recorder.pipeline import CommandQueue
from recorder.sinks import FileSink
from schemas.events import Event
from schemas.session_protocol import SessionProtocol
from schemas.training import ESTIMATES, Training


class TrainingCommands:
    """Mixin of ``RecordingSession``: it has the tracker ``_holds``, the command queue
    ``_commands``, the file sink ``_sink``, ``protocol`` and ``_now()``."""

    _holds: HoldTracker
    _commands: CommandQueue
    _sink: FileSink
    protocol: SessionProtocol | None

    def _now(self) -> float: ...

    @property
    def training(self) -> Training | None:
        """The protocol's feedback schedule, or None without one."""
        return self._holds.training

    def set_self_estimate(self, value: int) -> None:
        """The trainee's estimate of the hold just finished: -1 too light, 0 right, +1 too
        firm (a ``self_estimate`` event; ``status().awaiting_estimate`` turns False)."""
        if value not in ESTIMATES:
            raise ValueError(f"a self-estimate is -1, 0 or +1, not {value!r}")
        now, sample = self._now(), self._sink.rows
        self._commands.submit(lambda: self._holds.self_estimate(value, now, sample))

    def anchor_target(self, point_index: int, target_n: float, time_s: float) -> None:
        """The subject signalled the protocol's ``target_pain`` at a point: ``target_n`` (N,
        the force ``reaction_time_s`` before the signal at ``time_s``) becomes its target.
        Records a ``target_anchor`` event at ``time_s`` and gives the point its band
        ``Dose.anchored_band_n(target_n)`` (the window and hold detection use it)."""
        if self.protocol is None or not 0 <= point_index < len(self.protocol.points):
            raise ValueError(f"no trigger point {point_index} to anchor")
        if not (math.isfinite(target_n) and target_n > 0):
            raise ValueError(f"an anchored target must be a force above 0 N, not {target_n}")
        point = self.protocol.points[point_index]
        low, high = point.dose.anchored_band_n(target_n)
        sample = self._sink.rows

        def anchor() -> list[Event]:
            self._holds.set_band(point_index, low, high)
            return [Event(time_s, "target_anchor", value=target_n, text=point.label,
                          sample_index=sample)]

        self._commands.submit(anchor)
