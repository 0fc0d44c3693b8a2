"""The live pipeline: what happens to each chunk a source decodes, on the link's reader thread.

source readings → timeline (sequence, fitted device clock → session seconds, lost frames) →
force (tare and calibration) → sinks: the ring buffer the window reads, the LSL outlet, button
and hold events (with the hold rows), the subject-anchored targets (``recorder.anchor``: a
button press, or a pain rating the session passes on, sets an unanchored point's target through
the session's ``anchor_target``), live warnings, and the file sink, which also gets the
timeline's clock pairs (its least-delay clock observation of each quarter second of device
time), its device_restart and clock_fit events, and a row of link counters about every
second. While the recording is paused the file gets events only (the clock pairs of the pause
follow when it ends, or at stop). An event's ``sample_index`` is the row of its sample in the
file's sample datasets; a sample that is not recorded (paused, or dropped because the writer
fell behind) has none, so its events point at the row the next recorded sample gets.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable

import numpy as np

from firmware_bridge.frames import CMD_TARE, Ack, DeviceInfo
from firmware_bridge.gauges import GaugeError, GaugeNotice
from recorder.anchor import Anchor, AnchorStage
from recorder.force import ForceStage
from recorder.hold_tracker import HoldTracker
from recorder.lsl import ForceOutlet
from recorder.ring import RingBuffer
from recorder.sinks import ClockPair, FileSink, Samples
from recorder.source import Readings
from recorder.timeline import Placed, Timeline
from recorder.watch import ButtonEdges, LiveWarnings
from schemas.events import Event, LinkStats

PERIODIC_S = 1.0  # a link_stats row this often


class Pipeline:
    """Runs every stage on a chunk's readings; owned by the reader thread (see session.py)."""

    def __init__(self, *, timeline: Timeline, force: ForceStage, ring: RingBuffer,
                 holds: HoldTracker, warnings: LiveWarnings, sink: FileSink,
                 lsl: ForceOutlet | None, t0: float,
                 link_stats: Callable[[], LinkStats],
                 anchor: Callable[[int, float, float], None] | None = None) -> None:
        self.timeline = timeline
        self.force = force
        self.ring = ring
        self.holds = holds
        self.warnings = warnings
        self.sink = sink
        self.lsl = lsl
        self.t0 = t0  # host monotonic time of session time zero
        self.link_stats = link_stats
        self.buttons = ButtonEdges()
        # subject-anchored dose: anchor(point_index, target_n, time_s) sets a point's target
        self.anchors = AnchorStage.for_protocol(holds.protocol) if anchor else None
        self.anchor = anchor
        self.last_host = 0.0  # session time of the latest read recorded
        self._last_periodic = -math.inf

    def process(self, readings: Readings, host_time: float) -> None:
        """One chunk, whose newest read was at host monotonic time ``host_time`` (each
        sample's own read time, when the chunk is several reads, is in ``readings``)."""
        host = host_time - self.t0
        self._messages(readings.messages, host)
        n = len(readings.raw)
        if not n:
            return
        row = self.sink.rows
        recorded = self.sink.admit(n, host)
        arrival = (np.full(n, host) if readings.read_times is None
                   else readings.read_times - self.t0)
        placed = self.timeline.place(readings, arrival, row=row, recorded=recorded)
        force = self.force.newtons(readings.raw)
        if recorded:
            self.sink.put_samples(Samples(
                data=force, timestamps=placed.timestamps,
                raw_counts=np.asarray(readings.raw, dtype=np.int32),
                device_tick_us=placed.tick_us, sequence=placed.sequence,
                host_time=arrival, flags=np.asarray(readings.flags, dtype=np.uint8)))
        self._deliver(force, placed, readings, host)
        for event in placed.events:
            self.sink.put(event)
        for gap in placed.gaps:
            self.sink.put(Event(float(placed.timestamps[gap.index]), "gap", value=gap.missing,
                                sample_index=placed.row(gap.index)))

    def _messages(self, messages: list, host: float) -> None:
        """A device's identity after a reconnect, its tare answers, a gauge's error replies
        and notices (mode, judgement, overload, fallbacks). A tare applies to the samples of
        the chunk that brought it, whose first row its event names (a chunk can hold several
        reads, so the event's time alone would place it too late)."""
        for msg in messages:
            if isinstance(msg, DeviceInfo):
                self.sink.put(Event(host, "device_info",
                                    text=f"{msg.device_id} fw {msg.firmware_version}"))
            elif isinstance(msg, Ack) and msg.command == CMD_TARE and msg.ok:
                self.force.set_zero(float(msg.value))
                self.sink.put(Event(host, "tare", value=self.force.zero_counts,
                                    text="counts at zero load", sample_index=self.sink.rows))
            elif isinstance(msg, GaugeError):
                self.sink.put(Event(host, "note", text=f"gauge error {msg.code}: {msg.message}"))
            elif isinstance(msg, GaugeNotice):
                self.sink.put(Event(host, "note", text=f"gauge: {msg.text}"))

    def _deliver(self, force: np.ndarray, placed: Placed, readings: Readings,
                 host: float) -> None:
        times, flags = placed.timestamps, readings.flags
        self.ring.push(times, force, flags)
        if self.lsl is not None:
            self.lsl.push(force, times + self.t0)  # session time → LSL local_clock
        edges = self.buttons.feed(flags, times, placed.row)
        for event in edges:
            self.sink.put(event)
        if self.anchors is not None:
            self._anchor_on_button(times, force, edges)
        now_s = time.monotonic() - self.t0
        for item in self.holds.feed(times, force, now_s, placed.row(len(force))):
            if isinstance(item, Event) or not self.sink.paused:
                self.sink.put(item)
        for event in self.warnings.watch(force, flags, self.holds.live is not None,
                                         self.holds.band_n()[1], host):
            self.sink.put(event)
        if self.sink.paused:
            return
        self.last_host = host
        for pair_host, tick_us in self.timeline.take_pairs():
            self.sink.put(ClockPair(pair_host, tick_us))
        if host - self._last_periodic >= PERIODIC_S:
            self._last_periodic = host
            self.sink.put(self.link_stats())

    def _anchor_on_button(self, times: np.ndarray, force: np.ndarray,
                          edges: list[Event]) -> None:
        """Subject-anchored dose (``recorder.anchor``): keep the force history of an
        unanchored point; a button press there sets its target."""
        point = self.holds.point_index
        self.anchors.feed(times, force, point)
        for event in edges:
            if event.kind == "button_down":
                self._anchored(self.anchors.signal(point, event.time, self.holds.live is not None))

    def rating(self, value: float, time_s: float) -> list[Event]:
        """A pain rating given at ``time_s`` (a command, under the pipeline lock): one equal
        to the current point's target_pain anchors it, as the button does."""
        if self.anchors is not None:
            self._anchored(self.anchors.signal(self.holds.point_index, time_s,
                                               self.holds.live is not None, rating=value))
        return []

    def _anchored(self, anchor: Anchor | None) -> None:
        if anchor is not None:
            self.anchor(anchor.point_index, anchor.target_n, anchor.time_s)

Command = Callable[[], list[Event]]


class CommandQueue:
    """The caller's commands, applied in order under the pipeline lock, their events posted.

    ``submit`` applies them at once when the lock is free (the reader thread is between
    chunks); when it is not, whoever holds it runs them right after releasing it (``run``),
    so no command is left waiting."""

    def __init__(self, post: Callable[[Event], None]) -> None:
        self.lock = threading.Lock()
        self._post = post
        self._queue: queue.SimpleQueue[Command] = queue.SimpleQueue()

    def submit(self, command: Command) -> None:
        self._queue.put(command)
        self.run()

    def run(self) -> None:
        """Apply what is queued, unless the lock is taken."""
        while not self._queue.empty() and self.lock.acquire(blocking=False):
            try:
                self.apply()
            finally:
                self.lock.release()

    def apply(self) -> None:
        """Apply what is queued; the caller holds the lock."""
        while True:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                return
            for event in command():
                self._post(event)
