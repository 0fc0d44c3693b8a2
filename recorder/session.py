"""A recording session: serial link → parser → (ring buffer, lossless queue → HDF5 writer).

Three threads, one direction: the link's reader thread decodes and fans out each chunk; the
writer thread owns the file; the caller's thread (the CLI's progress loop or the window's
timer) only reads the ring buffer and ``status()`` and posts events. If the writer ever falls
behind by more than ``queue_limit`` samples, blocks are dropped, counted and recorded as an
event — never silently.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from analysis.holds import Hold as AnalysisHold
from analysis.holds import HoldConfig, HoldDetector, LiveHold, config_for_band
from firmware_bridge.continuity import ContinuityTracker
from firmware_bridge.frames import (
    CMD_IDENTIFY,
    CMD_SET_RATE,
    CMD_START,
    CMD_STOP,
    CMD_TARE,
    FLAG_BUTTON,
    FLAG_SATURATED,
    Ack,
    DeviceInfo,
    FrameDecoder,
    encode_command,
)
from firmware_bridge.gauges import make_driver
from firmware_bridge.link import SerialLink
from recorder import __version__
from recorder.lsl import ForceOutlet
from recorder.ring import RingBuffer
from schemas.calibration import Calibration, find_calibration, warnings_for
from schemas.events import Event, LinkStats
from schemas.events import Hold as HoldRow
from schemas.hdf5 import RecordingFileError
from schemas.session_protocol import SessionProtocol
from schemas.writer import RecordingWriter

GAUGE_COUNTS_PER_NEWTON = 1000.0  # gauges and ASCII lines: raw counts are millinewtons


class SessionError(Exception):
    """The session cannot start or went wrong; one line for the user."""


@dataclass
class SessionOptions:
    port: str
    out: Path
    device: str = "palpation"  # protocol v1, or a gauge driver: ascii, mark10, imada, wagner
    baudrate: int | None = None  # default: the driver's (a gauge's documented rate), else 921600
    ascii_unit: str = "N"
    rate_hz: float | None = None
    metadata: dict = field(default_factory=dict)
    protocol: SessionProtocol | None = None
    contact_area_cm2: float = math.nan  # overrides the protocol's
    display_unit: str | None = None  # overrides the protocol's unit on screen
    calibration: Calibration | None = None  # default: the newest saved for this device
    use_saved_calibration: bool = True
    lsl: bool = False  # also publish the force as a Lab Streaming Layer outlet
    auto_advance: bool = True  # next trigger point once a point's repetitions are done
    ring_seconds: float = 120.0
    queue_limit: int = 4_000_000  # samples waiting for the writer before blocks are dropped
    handshake_s: float = 3.0
    drain_s: float = 0.5  # the writer appends and flushes this often (crash loses < 1 s)


@dataclass
class SessionStatus:
    connected: bool
    elapsed_s: float
    samples: int
    rate_hz: float
    gaps: int
    missing_frames: int
    crc_errors: int
    garbage_bytes: int
    reconnects: int
    writer_lost: int
    error: str | None
    recording: bool
    blind: bool
    point_index: int


@dataclass(frozen=True)
class RecordedHold:
    """A finished hold and where it was: what the window draws and the file's holds row."""

    point_index: int
    repetition: int  # 1-based, per trigger point
    hold: AnalysisHold
    blind: bool


class RecordingSession:
    """Records one serial sensor into one file. ``start`` then ``stop`` (or let
    ``stopped`` be set by a failure and call ``stop`` to finalise)."""

    def __init__(self, options: SessionOptions) -> None:
        self.options = options
        self.driver = (make_driver(options.device, **({"default_unit": options.ascii_unit}
                                                      if options.device == "ascii" else {}))
                       if options.device != "palpation" else None)
        self.decoder = FrameDecoder()
        self.tracker = ContinuityTracker()
        self.device_info: DeviceInfo | None = None
        self.calibration: Calibration | None = None
        self.warnings: list[str] = []  # known at the start (calibration)
        self.live_warnings: dict[str, str] = {}  # conditions now: saturated, range, drift
        self.ring: RingBuffer | None = None
        self.stopped = threading.Event()
        self.error: str | None = None
        self._messages: queue.Queue = queue.Queue()
        self._queue: queue.Queue = queue.Queue()
        self._queued = 0
        self._recording = False
        self._link: SerialLink | None = None
        self._writer: RecordingWriter | None = None
        self._writer_thread: threading.Thread | None = None
        self._t0 = 0.0
        self._session_start: datetime | None = None
        self._zero = 0.0
        self._scale = 1.0
        self._samples = 0
        self._anchor: tuple[float, int] | None = None  # (session seconds, device tick µs)
        self._last_flag = 0
        self._last_periodic = -math.inf
        self._last_host = 0.0
        self._reconnects = 0
        self._writer_lost = 0
        self._lock = threading.Lock()
        self.protocol = options.protocol
        area = options.contact_area_cm2
        if not area > 0 and self.protocol is not None:
            area = self.protocol.contact_area_cm2
        self.contact_area_cm2 = area if area and area > 0 else math.nan
        self.point_index = 0
        self.blind = False
        self.paused = False
        self.holds: list[RecordedHold] = []
        self.live_hold: LiveHold | None = None
        self._repetitions: dict[int, int] = {}
        self._detector = HoldDetector(self.hold_config(0))
        self._detector_point = 0
        self._hold_point = 0
        self._last_raw = np.zeros(0, dtype=np.int32)
        self._lsl: ForceOutlet | None = None

    # ---- start / stop -------------------------------------------------------------------

    def start(self) -> None:
        """Open the port, identify the device, create the file, start streaming."""
        baud = self.options.baudrate or (self.driver.baudrate if self.driver else 921600)
        self._link = SerialLink(self.options.port, self, baudrate=baud)
        self._link.start()
        try:
            if self.driver is not None:
                self._zero, self._scale = 0.0, 1.0 / GAUGE_COUNTS_PER_NEWTON
                self._link.write(self.driver.start())
            else:
                self._handshake()
            self._open_file()
        except BaseException:
            self._link.stop()
            raise
        if self.options.lsl:
            info = self.device_info
            self._lsl = ForceOutlet(f"palpation {info.device_id if info else self.options.port}",
                                    info.device_id if info else self.options.port,
                                    info.nominal_rate_hz if info else 0.0)
        self._writer_thread = threading.Thread(target=self._write_loop, name="hdf5-writer",
                                               daemon=True)
        self._writer_thread.start()
        self._recording = True
        self._post(Event(self._now(), "record_start", text=self.options.port))
        if self.driver is None:
            self._command(CMD_START)
        elif self.driver.poll_interval_s:
            self._poller = threading.Thread(target=self._poll_loop, name="gauge-poller",
                                            daemon=True)
            self._poller.start()

    def _handshake(self) -> None:
        deadline = time.monotonic() + self.options.handshake_s
        self._command(CMD_IDENTIFY)
        info = self._await(DeviceInfo, deadline)
        if info is None:
            raise SessionError(
                f"no answer from {self.options.port} within {self.options.handshake_s:g} s: "
                "is it a palpation-v1 device (for a gauge or a line-per-reading device use "
                "--device mark10|imada|wagner|ascii)?")
        self.device_info = info
        if self.options.rate_hz:
            self._command(CMD_SET_RATE, self.options.rate_hz)
            ack = self._await(Ack, deadline)
            if ack is None or not ack.ok:
                raise SessionError(f"{self.options.port}: device refused rate "
                                   f"{self.options.rate_hz:g} Hz")
            self.device_info = replace(info, nominal_rate_hz=ack.value / 1e3)
        self.tracker.nominal_rate_hz = self.device_info.nominal_rate_hz
        self._command(CMD_TARE)
        ack = self._await(Ack, deadline)
        self._zero = float(ack.value) if ack is not None and ack.ok else 0.0
        cpn = self.device_info.counts_per_newton
        self._scale = 1.0 / cpn if cpn and math.isfinite(cpn) else 1.0
        self._choose_calibration()

    def _choose_calibration(self) -> None:
        """The given calibration, else the newest saved for this device, else the factory
        scale; what a user should know about the choice goes to ``warnings``."""
        info = self.device_info
        cal = self.options.calibration
        if cal is None and self.options.use_saved_calibration:
            problems: list[str] = []
            cal = find_calibration(info.device_id, self._link.usb_identity, problems=problems)
            self.warnings += [f"unreadable calibration skipped: {p}" for p in problems]
        self.calibration = cal
        if cal is not None:
            self.warnings += warnings_for(cal, device=info.as_attrs())
        elif math.isfinite(info.counts_per_newton):
            self.warnings.append(f"no calibration for {info.device_id}: force uses the "
                                 "device's factory scale (palpation calibrate)")
        else:
            self.warnings.append(f"no calibration for {info.device_id} and no factory scale: "
                                 "the force column holds tared counts (palpation calibrate)")

    def _await(self, kind: type, deadline: float):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._messages.get(timeout=left)
            except queue.Empty:
                return None
            if isinstance(msg, kind):
                return msg

    def _command(self, command: int, rate_hz: float | None = None) -> None:
        if self._link is not None:
            self._link.write(encode_command(command, rate_hz))

    def _open_file(self) -> None:
        self._session_start = datetime.now(UTC)
        self._t0 = time.monotonic()
        rate = self.device_info.nominal_rate_hz if self.device_info else 0.0
        self.ring = RingBuffer(max(1000, int(self.options.ring_seconds * max(rate, 100.0))))
        device = self.device_info.as_attrs() if self.device_info else {
            "counts_per_newton": GAUGE_COUNTS_PER_NEWTON}
        device.update(link=self.driver.name if self.driver else "palpation-v1",
                      port=self.options.port,
                      usb_identity=self._link.usb_identity)
        if self.calibration is not None:
            calibration = self.calibration.recording_attrs(zero_counts=self._zero)
        else:
            calibration = self._scale_attrs()
        self._writer = RecordingWriter(
            self.options.out, session=self.options.metadata, device=device,
            calibration=calibration, session_start=self._session_start,
            software_version=__version__)
        if self.driver is None:
            self._post(Event(0.0, "tare", value=self._zero, text="counts at zero load"))
        for warning in self.warnings:
            self._post(Event(0.0, "note", text=f"warning: {warning}"))

    def _scale_attrs(self) -> dict:
        """The /calibration attributes without a calibration record: a plain scale."""
        if self.driver is not None:
            source, coefficients = "device", [0.0, self._scale]
        elif self.device_info and math.isfinite(self.device_info.counts_per_newton):
            source, coefficients = "factory", [-self._zero * self._scale, self._scale]
        else:
            source, coefficients = "none", [-self._zero, 1.0]
        return {"source": source, "calibration_id": "", "model": "polynomial",
                "coefficients": np.asarray(coefficients, dtype=np.float64), "unit": "N",
                "json": ""}

    def stop(self) -> dict:
        """Stop streaming, drain the queue into the file and finalise it; returns the
        summary. Safe to call after a failure: what was written stays readable."""
        self._recording = False
        if self._link is not None:
            self._link.write(self.driver.stop() if self.driver else encode_command(CMD_STOP))
            self._link.stop()
        if self._writer is None:
            return {}
        self._post(Event(self._now(), "record_stop"))
        self._post(self._link_stats())
        self._queue.put(None)
        if self._writer_thread is not None:
            self._writer_thread.join(60)
        summary = self.summary()
        if self.error is None:
            try:
                self._writer.close()
            except RecordingFileError as exc:
                self.error = str(exc)
        self.stopped.set()
        return summary

    # ---- status -------------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._t0

    @property
    def start_monotonic(self) -> float:
        """The host monotonic time (= LSL's local_clock) of session time zero."""
        return self._t0

    def status(self) -> SessionStatus:
        elapsed = self._now() if self._t0 else 0.0
        with self._lock:
            samples = self._samples
        crc = self.decoder.stats.crc_errors
        garbage = self.decoder.stats.garbage_bytes + (self.driver.garbage_bytes if self.driver
                                                      else 0)
        return SessionStatus(
            connected=bool(self._link and self._link.connected.is_set()), elapsed_s=elapsed,
            samples=samples, rate_hz=samples / elapsed if elapsed > 0 else 0.0,
            gaps=self.tracker.gap_count, missing_frames=self.tracker.missing_frames,
            crc_errors=crc, garbage_bytes=garbage, reconnects=self._reconnects,
            writer_lost=self._writer_lost, error=self.error, recording=not self.paused,
            blind=self.blind, point_index=self.point_index)

    def summary(self) -> dict:
        s = self.status()
        end = datetime.now(UTC).isoformat(timespec="milliseconds")
        return {"samples": s.samples, "duration_s": s.elapsed_s,
                "effective_rate_hz": s.rate_hz, "gaps": s.gaps,
                "missing_frames": s.missing_frames, "crc_errors": s.crc_errors,
                "garbage_bytes": s.garbage_bytes, "reconnects": s.reconnects,
                "writer_lost": s.writer_lost, "holds": 0, "session_end": end}

    def add_event(self, kind: str, value: float = math.nan, text: str = "") -> None:
        """Record an event now (from any thread): markers, pain ratings, trigger points."""
        with self._lock:
            index = self._samples
        self._post(Event(self._now(), kind, value=value, text=text, sample_index=index))

    # ---- coaching state (called from the window) ----------------------------------------

    def band_n(self, point_index: int | None = None) -> tuple[float, float]:
        """Target band in newtons of a trigger point (the current one by default)."""
        if self.protocol is None:
            return (math.nan, math.nan)
        i = self.point_index if point_index is None else point_index
        return self.protocol.points[i].dose.band_n(self.contact_area_cm2)

    def hold_config(self, point_index: int) -> HoldConfig:
        """Hold detection thresholds for a point (``analysis.holds.config_for_band``)."""
        return config_for_band(*self.band_n(point_index))

    def set_point(self, index: int) -> None:
        """Move to another trigger point (recorded as an event)."""
        if self.protocol is None:
            return
        index = max(0, min(len(self.protocol.points) - 1, index))
        if index != self.point_index:
            self.point_index = index
            self.add_event("trigger_point", value=index,
                           text=self.protocol.points[index].label)

    def tare(self) -> None:
        """Zero the force at the current load: the device measures its zero (an ASCII
        device: the latest readings); the tare event records the counts."""
        if self.driver is not None:
            raw = self._last_raw
            if len(raw):
                self._zero = float(raw.mean())
                self.add_event("tare", value=self._zero, text="counts at zero load")
        else:
            self._command(CMD_TARE)

    def set_blind(self, blind: bool) -> None:
        """Blind trial: the window hides feedback; recording goes on, marked by events."""
        if blind != self.blind:
            self.blind = blind
            self.add_event("blind_on" if blind else "blind_off")

    def set_recording(self, on: bool) -> None:
        """Pause or resume writing samples to the file (the live view keeps running)."""
        if on == (not self.paused):
            return
        self.paused = not on
        self.add_event("record_start" if on else "record_stop", text="resumed" if on
                       else "paused")

    def _track_holds(self, timestamps: np.ndarray, force: np.ndarray) -> None:
        """Feed the hold detector (reader thread) and record holds as they happen."""
        if self._detector_point != self.point_index and self.live_hold is None:
            self._detector = HoldDetector(self.hold_config(self.point_index))
            self._detector_point = self.point_index
        for ev in self._detector.feed(timestamps, force):
            if ev.kind == "start":
                self._hold_point = self._detector_point
                self._post(Event(ev.hold.start_s, "hold_start", text=self._point_label(
                    self._hold_point)))
            else:
                self._hold_ended(ev.hold)
        self.live_hold = self._detector.current

    def _hold_ended(self, hold: AnalysisHold) -> None:
        point = self._hold_point
        rep = self._repetitions.get(point, 0) + 1
        self._repetitions[point] = rep
        recorded = RecordedHold(point, rep, hold, self.blind)
        self.holds.append(recorded)
        low, high = self.band_n(point)
        self._post(Event(hold.end_s, "hold_end", value=hold.duration_s,
                         text=self._point_label(point)))
        if not self.paused:
            self._queue.put(("hold", HoldRow(
                trigger_point=self._point_label(point), repetition=rep, start=hold.start_s,
                end=hold.end_s, duration=hold.duration_s, peak_n=hold.peak_n,
                mean_n=hold.mean_n, time_in_band=hold.time_in_band_s, target_low_n=low,
                target_high_n=high, blind=self.blind)))
        if (self.options.auto_advance and self.protocol is not None
                and point == self.point_index
                and rep >= self.protocol.points[point].dose.repetitions):
            self.set_point(point + 1)

    def _point_label(self, index: int) -> str:
        return self.protocol.points[index].label if self.protocol is not None else ""

    # ---- link listener (reader thread) ----------------------------------------------------

    def connection_made(self, link: SerialLink, reconnect: bool) -> None:
        if not reconnect:
            return
        self._reconnects += 1
        self.decoder.discard_pending()
        self._post(Event(self._now(), "reconnect", text=link.path))
        if self.driver is not None:
            self.driver.reset()  # a gauge may have lost its streaming mode with its power
            link.write(self.driver.start())
        else:
            link.write(encode_command(CMD_IDENTIFY))
            link.write(encode_command(CMD_START))

    def connection_lost(self, reason: str, host_time: float) -> None:
        if self._recording:
            self._post(Event(host_time - self._t0, "disconnect", text=reason))

    def data_received(self, data: bytes, host_time: float) -> None:
        if self.driver is not None:
            self._gauge_received(data, host_time)
            return
        result = self.decoder.feed(data)
        for _, msg in result.messages:
            if not self._recording:
                self._messages.put(msg)
            elif isinstance(msg, DeviceInfo):
                self._post(Event(host_time - self._t0, "device_info",
                                 text=f"{msg.device_id} fw {msg.firmware_version}"))
            elif isinstance(msg, Ack) and msg.command == CMD_TARE and msg.ok:
                self._zero = float(msg.value)
                self._post(Event(host_time - self._t0, "tare", value=self._zero,
                                 text="counts at zero load"))
        block = result.samples
        if not self._recording or not len(block):
            return
        un = self.tracker.feed(block.seq, block.tick)
        host = host_time - self._t0
        timestamps = self._timestamps(un.tick_us, un.restarts, host)
        force = self.to_newtons(block.raw)
        self._deliver(force, timestamps, block.raw, un.tick_us, un.sequence, block.flags, host)
        for gap in un.gaps:
            self._post(Event(float(timestamps[gap.index]), "gap", value=gap.missing,
                             sample_index=self._samples - len(block) + gap.index))

    def _gauge_received(self, data: bytes, host_time: float) -> None:
        readings = self.driver.feed(data)
        if self._recording:
            for err in readings.errors:
                self._post(Event(host_time - self._t0, "note",
                                 text=f"gauge error {err.code}: {err.message}"))
        n = len(readings.force_n)
        if not self._recording or n == 0:
            return
        host = host_time - self._t0
        seq = np.arange(self._samples, self._samples + n, dtype=np.int64)
        tick = np.full(n, round(host * 1e6), dtype=np.int64)
        raw = np.round(readings.force_n * GAUGE_COUNTS_PER_NEWTON).astype(np.int32)
        self._deliver(self.to_newtons(raw), np.full(n, host), raw, tick, seq,
                      np.zeros(n, np.uint8), host)

    def to_newtons(self, raw: np.ndarray) -> np.ndarray:
        """Raw counts to newtons, tared: the calibration's curve, else the plain scale."""
        if self.calibration is not None:
            zero = self._zero_force
            return self.calibration.force(raw) - zero
        return (raw.astype(np.float64) - self._zero) * self._scale

    @property
    def tare_counts(self) -> float:
        """Raw counts at zero load (the latest tare)."""
        return self._zero_counts

    @property
    def _zero(self) -> float:
        """The tare: raw counts at zero load. Setting it also evaluates the calibration at
        that count once, so that each sample costs one polynomial evaluation."""
        return self._zero_counts

    @_zero.setter
    def _zero(self, counts: float) -> None:
        self._zero_counts = counts
        cal = getattr(self, "calibration", None)
        self._zero_force = float(cal.force(counts)) if cal is not None else 0.0

    def _poll_loop(self) -> None:
        """Ask a polled gauge for a reading every poll interval, one query at a time; a
        query unanswered for a second is given up (the gauge may be off or replugging)."""
        driver, link = self.driver, self._link
        asked = time.monotonic()
        while self._recording and not self.stopped.is_set():
            now = time.monotonic()
            if driver.pending_replies >= driver.max_pending and now - asked > 1.0:
                driver.reset()
            if driver.pending_replies < driver.max_pending and link.write(driver.poll()):
                asked = now
            time.sleep(driver.poll_interval_s)

    def _timestamps(self, tick_us: np.ndarray, restarts: list[int], host: float) -> np.ndarray:
        """Device clock mapped to session seconds, re-anchored at each device epoch."""
        out = np.empty(len(tick_us))
        bounds = [0, *restarts, len(tick_us)] if restarts else [0, len(tick_us)]
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            if a == b:
                continue
            if self._anchor is None or a in restarts:
                self._anchor = (host, int(tick_us[a]))
            out[a:b] = self._anchor[0] + (tick_us[a:b] - self._anchor[1]) / 1e6
        return out

    def _deliver(self, force, timestamps, raw, tick, seq, flags, host: float) -> None:
        n = len(force)
        self.ring.push(timestamps, force, flags)
        if self._lsl is not None:
            self._lsl.push(force, timestamps + self._t0)  # session time → LSL local_clock
        self._last_raw = raw[-16:]
        with self._lock:
            first = self._samples
            self._samples += n
        self._button_events(flags, timestamps, first)
        self._track_holds(timestamps, force)
        self._watch(force, flags, host)
        if self.paused:
            return
        with self._lock:
            overrun = self._queued + n > self.options.queue_limit
            if not overrun:
                self._queued += n
        if overrun:
            self._writer_lost += n
            self._post(Event(host, "writer_overrun", value=n, sample_index=first,
                             text="writer fell behind; samples dropped"))
        else:
            self._queue.put(("samples", {
                "data": force, "timestamps": timestamps, "raw_counts": raw.astype(np.int32),
                "device_tick_us": tick, "sequence": seq, "host_time": np.full(n, host),
                "flags": flags.astype(np.uint8)}))
        self._last_host = host
        if host - self._last_periodic >= 1.0:
            self._last_periodic = host
            self._queue.put(("clock", (host, int(tick[-1]))))
            self._post(self._link_stats())

    def _watch(self, force: np.ndarray, flags: np.ndarray, host: float) -> None:
        """Conditions a user must hear about while they last: a saturated sensor, force
        beyond the calibrated range, a resting force that has drifted from the tare (judged
        only between holds). Each new episode is also written to the file as a note."""
        now: dict[str, str] = {}
        if (flags & FLAG_SATURATED).any():
            now["saturated"] = "sensor saturated: the reading is at the ADC's limit"
        cal = self.calibration
        if cal is not None and float(force.max()) > cal.range["max_n"] * 1.02:
            now["range"] = f"force above the calibrated range ({cal.range['max_n']:.0f} N)"
        if self.live_hold is not None or len(force) < 8:
            if "drift" in self.live_warnings:
                now["drift"] = self.live_warnings["drift"]
        else:
            rest = float(np.median(force))
            limit = max(0.5, 0.03 * self.band_n()[1]) if self.protocol else 0.5
            if abs(rest) > limit:
                now["drift"] = f"tare drift: at rest the sensor reads {rest:+.1f} N (press T)"
        for kind in now.keys() - self.live_warnings.keys():
            self._post(Event(host, "note", text=f"warning: {now[kind]}"))
        self.live_warnings = now

    def _button_events(self, flags: np.ndarray, timestamps: np.ndarray, first: int) -> None:
        pressed = (flags & FLAG_BUTTON).astype(np.int8)
        if not self._last_flag and not pressed.any():
            return
        change = np.flatnonzero(np.diff(pressed, prepend=self._last_flag))
        self._last_flag = int(pressed[-1])
        for i in change.tolist():
            kind = "button_down" if pressed[i] else "button_up"
            self._post(Event(float(timestamps[i]), kind, sample_index=first + i))

    def _link_stats(self) -> LinkStats:
        s = self.status()
        return LinkStats(host_time=self._last_host, samples=s.samples, crc_errors=s.crc_errors,
                         garbage_bytes=s.garbage_bytes, seq_gaps=s.gaps,
                         missing_frames=s.missing_frames, reconnects=s.reconnects,
                         writer_lost=s.writer_lost)

    def _post(self, item: Event | LinkStats) -> None:
        self._queue.put(("event", item) if isinstance(item, Event) else ("stats", item))

    # ---- writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        """Every ``drain_s``: everything queued becomes one block append per dataset, then a
        flush, so a killed process loses at most the last ``drain_s`` of data."""
        writer = self._writer
        done = False
        try:
            while not done:
                time.sleep(self.options.drain_s)
                blocks, events, stats, holds = [], [], [], []
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is None:
                        done = True
                        break
                    kind, payload = item
                    if kind == "samples":
                        blocks.append(payload)
                    elif kind == "event":
                        events.append(payload)
                    elif kind == "stats":
                        stats.append(payload)
                    elif kind == "hold":
                        holds.append(payload)
                    else:
                        writer.append_clock_pair(*payload)
                if blocks:
                    merged = {k: np.concatenate([b[k] for b in blocks]) for k in blocks[0]}
                    writer.append_samples(**merged)
                    with self._lock:
                        self._queued -= len(merged["data"])
                if events:
                    writer.append_events(events)
                for row in stats:
                    writer.append_link_stats(row)
                if holds:
                    writer.append_holds(holds)
                writer.flush()
        except (RecordingFileError, OSError) as exc:
            self.error = f"recording stopped: {exc}"
            self._recording = False
            self.stopped.set()
