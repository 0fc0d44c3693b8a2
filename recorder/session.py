"""A recording session: one sensor into one file, the facade over the live pipeline.

The stages, each tested alone: ``source`` (a protocol-v1 device with its one handshake, or a
gauge driver), ``timeline`` (continuity, device clock → session seconds), ``force`` (calibration
and tare through ``schemas.tare``) and the sinks: the ring buffer the window reads (``ring``),
LSL (``lsl``), button and warning events (``watch``), holds (``hold_tracker``) and the file
(``sinks``). ``pipeline`` runs them on each chunk. This class starts and stops them and takes
the window's commands; what it reports back (``status()``, the link statistics, holds, the
live hold, warnings, bands) is its mixin ``recorder.session_status.SessionReadouts``.

Threads, and who owns what:

- The link's reader thread decodes every chunk and runs the pipeline on it. The pipeline's
  state (timeline, force stage, hold tracker with the trigger point and the blind flag, live
  warnings, the file sink's pause) changes only under the pipeline lock, which this thread
  holds for each chunk.
- The caller's thread (the CLI's progress loop, or the window's timer and keys) calls
  ``start`` and ``stop``, reads ``status()``, ``ring``, ``holds``, ``live_hold``,
  ``point_index``, ``blind``, ``paused`` and ``live_warnings`` (each replaced or appended in
  one step, so a read is never torn) and posts events with ``add_event``. Its commands
  (``set_point``, ``set_blind``, ``set_recording``, a gauge's ``tare``) are queued and applied
  in order under the pipeline lock: at once when the reader thread is between chunks (the
  usual case), else by the reader thread when its chunk is done. A command's event carries
  the time and sample count of the moment it was given. The training commands
  (``set_self_estimate``, ``anchor_target``: ``recorder.training_commands``) are queued the
  same way.
- The writer thread (``sinks.FileSink``) owns the file; a polled gauge's poller thread only
  writes queries.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from firmware_bridge.frames import DeviceInfo
from firmware_bridge.link import BATCH_S, HAND_OVER_S, Read, SerialLink
from recorder import __version__
from recorder.force import ForceStage, choose_calibration, starting_tare
from recorder.hold_tracker import HoldTracker
from recorder.lsl import LSL_BATCH_S, ForceOutlet
from recorder.pipeline import CommandQueue, Pipeline
from recorder.ring import RingBuffer
from recorder.session_status import SessionReadouts
from recorder.sinks import ClockPair, FileSink
from recorder.source import NoAnswer, RateRefused, make_source
from recorder.timeline import Timeline
from recorder.training_commands import TrainingCommands
from recorder.watch import LiveWarnings, TareGuard, full_scale_n
from schemas.calibration import Calibration, coverage_warnings
from schemas.events import Event
from schemas.hdf5 import RecordingFileError
from schemas.session_protocol import SessionProtocol
from schemas.writer import RecordingWriter

__all__ = ["RecordingSession", "SessionError", "SessionOptions"]


class SessionError(Exception):
    """The session cannot start or went wrong; one line for the user."""


@dataclass
class SessionOptions:
    port: str
    out: Path
    device: str = "palpation"  # protocol v1, or a gauge driver: ascii, mark10, imada, wagner
    baudrate: int | None = None  # default: the driver's (a gauge's documented rate), else 921600
    ascii_unit: str = "N"
    gauge: dict = field(default_factory=dict)  # driver options (firmware_bridge.gauges)
    rate_hz: float | None = None
    metadata: dict = field(default_factory=dict)
    protocol: SessionProtocol | None = None
    contact_area_cm2: float = math.nan  # overrides the protocol's
    display_unit: str | None = None  # overrides the protocol's unit on screen
    calibration: Calibration | None = None  # default: the newest saved for this device
    use_saved_calibration: bool = True
    lsl: bool = False  # also publish the force as a Lab Streaming Layer outlet
    station: str = ""  # a classroom station's name: names the LSL streams (recorder.lsl)
    auto_advance: bool = True  # next trigger point once a point's repetitions are done
    until_complete: bool = False  # set ``stopped`` once the protocol is complete
    ring_seconds: float = 120.0  # the screen's history, capped at ring.MAX_SAMPLES samples
    queue_limit: int = 4_000_000  # samples waiting for the writer before blocks are dropped
    handshake_s: float = 3.0
    drain_s: float = 0.5  # the writer appends and flushes this often (crash loses < 1 s)
    # how long the link lets data gather between reads: 0 (read as bytes arrive) while a
    # window shows the samples, else batched so that headless reading costs little CPU
    # (with --lsl, and for a polled gauge, the link always reads as bytes arrive)
    read_batch_s: float = BATCH_S
    flow: str = "none"  # serial flow control: none, rtscts or xonxoff
    sensor_id: str = ""  # a gauge's or sketch's name (--sensor-id): its calibration, /device


class RecordingSession(SessionReadouts, TrainingCommands):
    """Records one serial sensor into one file. ``start`` then ``stop`` (or let
    ``stopped`` be set by a failure, or by the protocol's end with ``until_complete``, and
    call ``stop`` to finalise)."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.source = make_source(options.device, options.ascii_unit, **options.gauge)
        self.protocol = options.protocol
        area = options.contact_area_cm2
        if not area > 0 and self.protocol is not None:
            area = self.protocol.contact_area_cm2
        self.contact_area_cm2 = area if area and area > 0 else math.nan
        self.device_info: DeviceInfo | None = None
        self.calibration: Calibration | None = None
        self.warnings: list[str] = []  # known at the start (calibration)
        self.ring: RingBuffer | None = None
        self.stopped = threading.Event()
        self.error: str | None = None
        self._timeline = Timeline()
        self._holds = HoldTracker(self.protocol, self.contact_area_cm2, options.auto_advance)
        self._tare_guard = TareGuard()
        self._sink = FileSink(options.queue_limit, options.drain_s)
        self._force: ForceStage | None = None
        self._pipeline: Pipeline | None = None
        self._link: SerialLink | None = None
        self._writer: RecordingWriter | None = None
        self._t0 = 0.0
        self._recording = False
        self._reconnects = 0
        self._summary: dict | None = None  # what stop() returned
        self._commands = CommandQueue(self._sink.put)
        self.pain_ratings: list[tuple[float, float]] = []  # (time, value), appended in order

    # ---- start / stop -------------------------------------------------------------------

    def start(self) -> None:
        """Open the port, identify the device, create the file, start streaming."""
        baud = self.options.baudrate or self.source.baudrate
        batch_s = 0.0 if self.source.prompt_reads else self.options.read_batch_s
        self._link = SerialLink(self.options.port, self, baudrate=baud, flow=self.options.flow,
                                batch_s=min(batch_s, LSL_BATCH_S) if self.options.lsl
                                else batch_s, hand_over_s=0.0 if self.options.lsl
                                else HAND_OVER_S)
        self._link.start()
        try:
            self._connect()
            self._open_file()
        except BaseException:
            self._link.stop()
            raise
        lsl = (ForceOutlet.for_device(self.device_info, self.options.port, self.options.station)
               if self.options.lsl else None)
        self._pipeline = Pipeline(
            timeline=self._timeline, force=self._force, ring=self.ring, holds=self._holds,
            warnings=LiveWarnings(self.calibration), sink=self._sink, lsl=lsl, t0=self._t0,
            link_stats=self._link_stats, anchor=self.anchor_target)
        self._sink.start(self._writer, self._failed)
        self._recording = True
        self._sink.put(Event(self._now(), "record_start", text=self.options.port))
        for event in self._holds.start_events(self._now(), 0):
            self._sink.put(event)  # the first block and hold's feedback (a training schedule)
        self.source.start(self._link)

    def _connect(self) -> None:
        """The handshake (a device) or the start command (a gauge); then the calibration."""
        port = self.options.port
        try:
            zero = self.source.connect(self._link, self.options.handshake_s, self.options.rate_hz)
        except NoAnswer:
            raise SessionError(
                f"no answer from {port} within {self.options.handshake_s:g} s: "
                "is it a palpation-v1 device (for a gauge or a line-per-reading device use "
                "--device mark10|imada|wagner|ascii)?") from None
        except RateRefused as exc:
            raise SessionError(f"{port}: {exc}") from None
        info = self.device_info = self.source.info
        if info is not None:
            self._timeline.nominal_rate_hz = info.nominal_rate_hz
        self.calibration, self.warnings = choose_calibration(
            info, self._link.usb_identity, self.options.calibration,
            self.options.use_saved_calibration, self.options.sensor_id)
        if self.calibration is not None and self.protocol is not None:
            self.warnings += coverage_warnings(self.calibration, self.protocol)
        self._force = ForceStage(starting_tare(info, zero, self.calibration))

    def _open_file(self) -> None:
        session_start = datetime.now(UTC)
        self._t0 = time.monotonic()
        rate = self.device_info.nominal_rate_hz if self.device_info else 0.0
        self.ring = RingBuffer.for_rate(self.options.ring_seconds, rate)
        device = {**self.source.device_attrs(), "port": self.options.port,
                  "usb_identity": self._link.usb_identity}
        if self.options.sensor_id:
            device["device_id"] = self.options.sensor_id
        self._writer = RecordingWriter(
            self.options.out, session=self.options.metadata, device=device,
            calibration=self._force.tare.attrs(), session_start=session_start,
            software_version=__version__)
        if self.source.tares_itself:
            self._sink.put(Event(0.0, "tare", value=self._force.zero_counts,
                                 text="counts at zero load"))
        for warning in self.warnings:
            self._sink.put(Event(0.0, "note", text=f"warning: {warning}"))

    def stop(self) -> dict:
        """Stop streaming, drain the queue into the file (the clock pairs not yet written
        too: the last second's and a pause's) and finalise it; returns the file's summary
        (``schemas.events.Summary`` fields, what ``palpation info`` shows). Safe to call
        after a failure (what was written stays readable), and twice."""
        if self._summary is not None:
            return self._summary
        if self._link is not None:  # the reads the link still holds are handed over first
            self.source.stop(self._link)
            self._link.stop()
        self._recording = False
        if self._writer is None:
            return {}
        with self._commands.lock:  # the reader thread has ended; nothing else holds it long
            for pair_host, tick_us in self._timeline.finish():
                self._sink.put(ClockPair(pair_host, tick_us))
            for item in self._holds.finish(self._now(), self._sink.rows):
                if isinstance(item, Event) or not self._sink.paused:
                    self._sink.put(item)  # the hold the end cut off: an incomplete row
        self._sink.put(Event(self._now(), "record_stop"))
        self._sink.put(self._link_stats())
        self._sink.close()
        if self._pipeline is not None and self._pipeline.lsl is not None:
            self._pipeline.lsl.close()
        summary = self._writer.summary()
        if self.error is None:
            try:
                summary = self._writer.close() or summary
            except RecordingFileError as exc:
                self.error = str(exc)
        self._summary = asdict(summary)
        self.stopped.set()
        return self._summary

    def _failed(self, message: str) -> None:
        """The writer thread could not write: the recording ends here."""
        self.error = message
        self._recording = False
        self.stopped.set()

    # ---- session clock ------------------------------------------------------------------

    def _now(self) -> float:
        """Session seconds now: the time the file's events and samples are placed at."""
        return time.monotonic() - self._t0

    # ---- commands (caller's thread) -------------------------------------------------------

    def add_event(self, kind: str, value: float = math.nan, text: str = "") -> None:
        """Record an event now (from any thread): markers, pain ratings, trigger points."""
        now = self._now()
        self._sink.put(Event(now, kind, value=value, text=text, sample_index=self._sink.rows))
        if kind == "pain":
            self.pain_ratings.append((now, value))  # a classroom station publishes them
        if kind == "pain" and self._pipeline is not None:  # may anchor a point's target
            self._commands.submit(lambda: self._pipeline.rating(value, now))

    def set_point(self, index: int) -> None:
        """Move to another trigger point (recorded as an event)."""
        now, sample = self._now(), self._sink.rows
        self._commands.submit(lambda: self._holds.move_to(index, now, sample))

    def set_blind(self, blind: bool) -> None:
        """Blind trial: the window hides feedback; recording goes on, marked by events."""
        now, sample = self._now(), self._sink.rows
        self._commands.submit(lambda: self._holds.set_blind(blind, now, sample))

    def set_recording(self, on: bool) -> None:
        """Pause or resume writing samples to the file (the live view keeps running)."""
        now, sample = self._now(), self._sink.rows
        self._commands.submit(lambda: self._sink.set_paused(not on, now, sample))

    def tare(self) -> str:
        """Zero the force at the current load: the device measures its zero (a gauge or an
        ASCII device: the latest readings); the tare event records the counts. A tare under
        load would make every later force wrong by that load, so one asked for during a hold,
        on an unsteady force or far from the last zero is refused: the reason is returned (and
        noted in the file); asking again within 2 s forces it, noted as forced. Returns "" when
        the tare was taken."""
        allowed, reason = self._tare_guard.judge(
            time.monotonic(), self._recent_force(), self.live_hold is not None,
            full_scale_n(self.calibration, self.band_n()[1]))
        if not allowed:
            self.add_event("note", text=f"tare refused: {reason}")
            return f"tare refused: {reason}; press T again within 2 s to force it"
        if reason:
            self.add_event("note", text=f"tare forced: {reason}")
        self._take_tare()
        return ""

    def _recent_force(self):
        """About the last second of force, from the ring buffer the window reads too."""
        if self.ring is None:
            return np.empty(0)
        rate = self.device_info.nominal_rate_hz if self.device_info else 0.0
        return self.ring.latest(max(8, int(rate) if rate > 0 else 50)).force

    def _take_tare(self) -> None:
        if self.source.tares_itself:
            if self._link is not None:
                self.source.tare(self._link)
        elif self._force is not None:
            now, sample = self._now(), self._sink.rows
            self._commands.submit(lambda: self._force.tare_here(now, sample))

    # ---- link listener (reader thread) ----------------------------------------------------

    def connection_made(self, link: SerialLink, reconnect: bool) -> None:
        if not reconnect:
            return
        self._reconnects += 1
        self.source.restart(link)
        self._sink.put(Event(self._now(), "reconnect", text=link.path))

    def connection_lost(self, reason: str, host_time: float) -> None:
        if self._recording:
            self._sink.put(Event(host_time - self._t0, "disconnect", text=reason))

    def data_received(self, data: bytes, host_time: float, reads: tuple[Read, ...]) -> None:
        readings = self.source.feed(data, reads)
        if not self._recording:
            return
        with self._commands.lock:
            self._commands.apply()
            self._pipeline.process(readings, host_time)
        self._commands.run()
        if self.options.until_complete and self._holds.complete:
            self.stopped.set()
