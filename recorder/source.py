"""Where samples come from: a protocol-v1 device or a commercial gauge, behind one interface.

A source turns the bytes its link delivers into ``Readings`` (raw counts, flags, and for a
device its sequence numbers and clock; with the reads of a hand-over, the read each sample
came with) and speaks the device's commands. The link's reader thread calls ``feed``; the
caller's thread calls the commands (``SerialLink.write`` may be used from any thread). The
one handshake of a protocol-v1 device (identify, then optionally the rate and a tare) is
``DeviceSource.handshake``: the recording session, the calibration probe and every reconnect
(``restart``: identify and start again) go through this class.

A gauge reports newtons, stored as integer millinewton "counts" so that every link has raw
counts; a polled gauge is asked for each reading by a poller thread of its own.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from firmware_bridge.asciilines import ACCEPTED_FORMATS
from firmware_bridge.continuity import SEQ_MOD, TICK_MOD
from firmware_bridge.frames import (
    CMD_IDENTIFY,
    CMD_SET_RATE,
    CMD_START,
    CMD_STOP,
    CMD_TARE,
    FLAG_SATURATED,
    Ack,
    DeviceInfo,
    FrameDecoder,
    encode_command,
)
from firmware_bridge.gauges import (
    SILENCE_S,
    GaugeDriver,
    GaugeError,
    GaugeNotice,
    GaugeReadings,
    make_driver,
)
from firmware_bridge.link import BATCH_S, Read, SerialLink

GAUGE_COUNTS_PER_NEWTON = 1000.0  # gauges and ASCII lines: raw counts are millinewtons
UNANSWERED_POLL_S = 1.0  # a query unanswered this long is given up (gauge off or replugging)
BOOT_S = 2.0  # an Arduino resets when the port opens: silence this long is its boot
NO_PARSE_S = 2.0  # lines arrive but none is a reading this long after the first: stop
RESYNC_US = 0.5e6  # a gauge's ticks this far behind the host restart from the host clock
JOIN_S = BATCH_S / 2  # reads of a hand-over closer than this to a piece's first: one piece


class NoAnswer(Exception):
    """The device did not identify itself in time."""


class RateRefused(Exception):
    """The device did not accept the sampling rate asked for."""


@dataclass
class Readings:
    """What one chunk of bytes held, in arrival order within each kind."""

    raw: np.ndarray  # int32 counts
    flags: np.ndarray  # uint8, protocol-v1 FLAG_* bits (0 for gauges)
    seq: np.ndarray | None = None  # device sequence numbers; None: numbered on arrival
    tick_us: np.ndarray | None = None  # device clock; None: stamped with the host clock
    messages: list[DeviceInfo | Ack | GaugeError | GaugeNotice] = field(default_factory=list)
    # host monotonic time of the read each sample came with; None: all with the chunk's one
    # read (the link hands over several reads together headless, see ``feed_reads``)
    read_times: np.ndarray | None = None


def feed_reads(feed: Callable[[bytes], Readings], data: bytes,
               reads: Sequence[Read]) -> Readings:
    """``data`` decoded by ``feed`` read by read, so that each sample keeps the host time of
    the read that brought it (``read_times``): each read is an observation of the device
    clock (``recorder.timeline``). Reads less than ``JOIN_S`` after the first of a piece are
    decoded with it and their samples take its last read's time: such reads come from a
    stream too fast to batch (the link reads it every few ms), whose hand-overs already
    observe the clock many times a quarter second, and a decode per read would cost it
    hundreds more decoder runs a second. A single piece is decoded whole."""
    pieces: list[Read] = []
    first = -math.inf  # host time of the first read of the last piece
    for read in reads:
        if read.host_time - first < JOIN_S:
            pieces[-1] = read
        else:
            pieces.append(read)
            first = read.host_time
    if len(pieces) <= 1:
        return feed(data)
    parts, start = [], 0
    for piece in pieces:
        parts.append(feed(data[start:piece.end]))
        start = piece.end
    out = _concat(parts)
    out.read_times = np.repeat([p.host_time for p in pieces], [len(p.raw) for p in parts])
    return out


class DeviceSource:
    """A protocol-v1 device: the frame decoder and the device's commands."""

    link_name = "palpation-v1"
    baudrate = 921600
    tares_itself = True  # a tare is a command; the device answers with its zero counts
    prompt_reads = False  # reads may be batched (the device streams)

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.info: DeviceInfo | None = None
        self._replies: queue.Queue = queue.Queue()
        self._awaiting = False  # a handshake is waiting: messages go to it

    @property
    def crc_errors(self) -> int:
        return self.decoder.stats.crc_errors

    @property
    def garbage_bytes(self) -> int:
        return self.decoder.stats.garbage_bytes

    def feed(self, data: bytes, reads: Sequence[Read] = ()) -> Readings:
        """Decode a chunk (reader thread), read by ``reads`` (see ``feed_reads``)."""
        return feed_reads(self._feed_read, data, reads)

    def _feed_read(self, data: bytes) -> Readings:
        """Decode one read; during a handshake its messages go to it."""
        result = self.decoder.feed(data)
        messages = [msg for _, msg in result.messages]
        if self._awaiting:
            for msg in messages:
                self._replies.put(msg)
            messages = []
        block = result.samples
        return Readings(block.raw, block.flags, block.seq, block.tick, messages)

    def handshake(self, link: SerialLink, timeout_s: float, *, rate_hz: float | None = None,
                  tare: bool = False) -> float | None:
        """Identify the device (NoAnswer), set its rate if asked (RateRefused), and tare if
        asked: returns the counts at zero load (0 if the tare went unanswered), else None.
        ``info`` then holds what the device said, with the rate it accepted."""
        deadline = time.monotonic() + timeout_s
        self._awaiting = True
        try:
            link.write(encode_command(CMD_IDENTIFY))
            info = self._await(DeviceInfo, deadline)
            if info is None:
                raise NoAnswer
            if rate_hz:
                link.write(encode_command(CMD_SET_RATE, rate_hz))
                ack = self._await(Ack, deadline)
                if ack is None or not ack.ok:
                    raise RateRefused(f"device refused rate {rate_hz:g} Hz")
                info = replace(info, nominal_rate_hz=ack.value / 1e3)
            self.info = info
            if not tare:
                return None
            link.write(encode_command(CMD_TARE))
            ack = self._await(Ack, deadline)
            return float(ack.value) if ack is not None and ack.ok else 0.0
        finally:
            self._awaiting = False

    def connect(self, link: SerialLink, timeout_s: float, rate_hz: float | None) -> float | None:
        """What a recording does first: the handshake with a tare."""
        return self.handshake(link, timeout_s, rate_hz=rate_hz, tare=True)

    def start(self, link: SerialLink) -> None:
        link.write(encode_command(CMD_START))

    def restart(self, link: SerialLink) -> None:
        """After a reconnect (reader thread): drop the half frame, identify and start again."""
        self.decoder.discard_pending()
        link.write(encode_command(CMD_IDENTIFY) + encode_command(CMD_START))

    def tare(self, link: SerialLink) -> None:
        link.write(encode_command(CMD_TARE))

    def stop(self, link: SerialLink) -> None:
        link.write(encode_command(CMD_STOP))

    def device_attrs(self) -> dict:
        """The /device attributes this source knows."""
        return {**self.info.as_attrs(), "link": self.link_name}

    def _await(self, kind: type, deadline: float):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._replies.get(timeout=left)
            except queue.Empty:
                return None
            if isinstance(msg, kind):
                return msg


class NoReadings(ValueError):
    """A gauge or sketch sent nothing that parses as a reading; one message for the user."""


class GaugeSource:
    """A commercial gauge or an ASCII line device, through its driver
    (firmware_bridge.gauges). ``connect`` sends the set-up and waits for a first reading
    (readings until ``start`` are kept, not lost); while recording one thread polls a polled
    gauge and watches for silence: no reading for ``SILENCE_S`` with the port open sends the
    set-up again (a Wagner FDIX power-cycled behind an RS-232 adapter forgets ``CB``).

    Timestamps: lines with the device's clock (``--ascii-time``) carry it as the device tick;
    a streaming gauge of known rate gets ticks spaced by its period, so readings that arrive
    together are not all stamped with one host time; otherwise readings get the host time.
    Overload sets FLAG_SATURATED; errors and notices are messages."""

    info = None
    tares_itself = False  # tared on the host, from the latest readings
    crc_errors = 0  # lines carry no checksum

    def __init__(self, driver: GaugeDriver) -> None:
        self.driver = driver
        self.link_name = driver.name
        self.baudrate = driver.baudrate
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: SerialLink | None = None
        self._lock = threading.Lock()
        self._held: list[Readings] | None = None  # readings between connect and start
        self._released: list[Readings] = []  # held readings, for the first feed after start
        self._asked = 0.0
        self._notes: list[GaugeNotice] = []  # from the watchdog, for the next feed
        self._last_reading = time.monotonic()
        self._first = threading.Event()
        self._seq = 0
        self._last_tick: float | None = None

    @property
    def garbage_bytes(self) -> int:
        return self.driver.garbage_bytes

    @property
    def prompt_reads(self) -> bool:
        """A polled gauge's reply must be read as it arrives: the next query waits for it."""
        return self.driver.poll_interval_s is not None

    def feed(self, data: bytes, reads: Sequence[Read] = ()) -> Readings:
        """The readings of a chunk (reader thread), read by ``reads`` (see ``feed_reads``)."""
        return feed_reads(self._feed_read, data, reads)

    def _feed_read(self, data: bytes) -> Readings:
        readings = self.driver.feed(data)
        commands = self.driver.take_commands()
        if commands and self._link is not None:
            self._link.write(commands)
        n = len(readings)
        if n:
            self._last_reading = time.monotonic()
            self._first.set()
        raw = np.round(readings.force_n * GAUGE_COUNTS_PER_NEWTON).astype(np.int32)
        flags = np.zeros(n, np.uint8)
        if readings.overload is not None:
            flags[readings.overload] = FLAG_SATURATED
        seq, tick = self._stamps(readings)
        with self._lock:
            notes, self._notes = self._notes, []
            out = Readings(raw, flags, seq, tick,
                           messages=[*readings.errors, *notes, *readings.notices])
            if self._held is not None:
                self._held.append(out)
                return Readings(np.zeros(0, np.int32), np.zeros(0, np.uint8))
            if self._released:
                out, self._released = _concat([*self._released, out]), []
        return out

    def _stamps(self, readings: GaugeReadings) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(sequence, device tick µs), both wrapped as a device's, or (None, None)."""
        n = len(readings)
        if readings.device_us is not None:
            ticks = np.round(readings.device_us).astype(np.int64)
        elif self.driver.rate_hz and n:
            period = 1e6 / self.driver.rate_hz
            now = time.monotonic() * 1e6
            if self._last_tick is None or now - (self._last_tick + n * period) > RESYNC_US:
                self._last_tick = now - n * period  # the first, or after a silence
            ticks = np.round(self._last_tick + period * np.arange(1, n + 1)).astype(np.int64)
            self._last_tick += n * period
        else:
            return None, None
        seq = (self._seq + np.arange(n, dtype=np.int64)) % SEQ_MOD
        self._seq += n
        return seq, ticks % TICK_MOD

    def connect(self, link: SerialLink, timeout_s: float, rate_hz: float | None) -> None:
        """Send the set-up and wait for a first reading (NoReadings if none comes)."""
        self._link = link
        with self._lock:
            self._held = []
        link.write(self.driver.start())
        self._await_first_reading(link)

    def _await_first_reading(self, link: SerialLink) -> None:
        """A board that resets when the port opens (an Arduino) prints nothing for up to
        BOOT_S, then maybe a banner: after the first line, NO_PARSE_S for a reading."""
        driver = self.driver
        opened = time.monotonic()
        first_line: float | None = None
        while not self._first.wait(0.05):
            now = time.monotonic()
            if first_line is None and driver.lines:
                first_line = now
            if first_line is None and now - opened > BOOT_S + NO_PARSE_S:
                raise NoReadings(f"{link.path}: nothing received in {BOOT_S + NO_PARSE_S:g} s "
                                 f"at {link.baudrate} baud ({_device_hint(driver)})")
            if first_line is not None and now - first_line > NO_PARSE_S:
                raise NoReadings(_no_parse_message(link.path, driver, self._held_notices()))
            self._ask(link)

    def _held_notices(self) -> list[str]:
        """What the gauge made the driver say since ``connect`` (e.g. that it is in peak
        mode): the reason no reading came, if there is one."""
        with self._lock:
            return [m.text for r in self._held or [] for m in r.messages
                    if isinstance(m, GaugeNotice)]

    def _ask(self, link: SerialLink) -> None:
        """One poll of a polled gauge, unless a query is pending (given up after
        UNANSWERED_POLL_S)."""
        driver = self.driver
        if not driver.poll_interval_s:
            return
        now = time.monotonic()
        if driver.pending_replies >= driver.max_pending and now - self._asked > UNANSWERED_POLL_S:
            driver.reset()
        if driver.pending_replies < driver.max_pending and link.write(driver.poll()):
            self._asked = now

    def start(self, link: SerialLink) -> None:
        """Release the readings held since ``connect``; poll and watch from a thread."""
        with self._lock:
            self._released, self._held = self._held or [], None
        self._last_reading = time.monotonic()
        self._thread = threading.Thread(target=self._run, args=(link,), name="gauge-poller",
                                        daemon=True)
        self._thread.start()

    def restart(self, link: SerialLink) -> None:
        """After a reconnect: a gauge may have lost its streaming mode with its power."""
        self.driver.reset()
        link.write(self.driver.start())

    def stop(self, link: SerialLink) -> None:
        self._halt.set()
        link.write(self.driver.stop())
        if self._thread is not None:
            self._thread.join(2.0)

    def device_attrs(self) -> dict:
        return {"counts_per_newton": GAUGE_COUNTS_PER_NEWTON, "link": self.link_name}

    def _run(self, link: SerialLink) -> None:
        """Poll every poll interval (a polled gauge), and send the set-up again after
        SILENCE_S without a reading while the port is open."""
        interval = self.driver.poll_interval_s or 0.1
        while not self._halt.wait(interval):
            self._ask(link)
            start = self.driver.start()
            silent = time.monotonic() - self._last_reading
            if start and silent > SILENCE_S and link.connected.is_set():
                self._last_reading = time.monotonic()
                with self._lock:
                    self._notes.append(GaugeNotice(
                        f"no reading for {silent:.1f} s with the port open: set-up sent again"))
                link.write(start)
def _concat(parts: list[Readings]) -> Readings:
    """Readings of consecutive chunks as one."""
    full = [p for p in parts if len(p.raw)]

    def joined(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in full]
        return None if not full or any(a is None for a in arrays) else np.concatenate(arrays)

    return Readings(np.concatenate([p.raw for p in parts]),
                    np.concatenate([p.flags for p in parts]), joined("seq"), joined("tick_us"),
                    [m for p in parts for m in p.messages])


def _device_hint(driver: GaugeDriver) -> str:
    """What to check when a device sends nothing that parses."""
    if driver.name == "ascii":
        return "check --baud (the sketch's Serial.begin), or run: palpation probe --port PORT"
    return (f"is it a {driver.name} gauge? check --baud, --flow and the cable, "
            "or run: palpation probe --port PORT")


def _no_parse_message(port: str, driver: GaugeDriver, notices: list[str]) -> str:
    """No line parsed: the gauge's notices if it gave any (peak readings only), else one
    offending line and what would have been accepted."""
    seconds = f"{NO_PARSE_S:g} s"
    if notices:
        return f"{port}: no live reading within {seconds}: {'; '.join(notices)}"
    if driver.unitless_lines:
        return (f"{port}: the readings carry no unit (e.g. {driver.last_bad_line!r}); say "
                f"which with {'--ascii-unit' if driver.name == 'ascii' else '--gauge-unit'}")
    if driver.name == "ascii":
        return (f"{port}: no line parsed as a reading within {seconds}, e.g. "
                f"{driver.last_bad_line!r}; {ACCEPTED_FORMATS}")
    return (f"{port}: no reading within {seconds} (last line {driver.last_bad_line!r}); "
            f"{_device_hint(driver)}")


def make_source(device: str, ascii_unit: str = "N", **options) -> DeviceSource | GaugeSource:
    """The source for ``--device``: "palpation" (protocol v1) or a gauge driver's name, with
    the driver's options (``firmware_bridge.gauges``); ``ascii_unit`` is the unit of ASCII
    lines that give none."""
    if device == "palpation":
        return DeviceSource()
    if device == "ascii":
        options.setdefault("unit", ascii_unit)
    return GaugeSource(make_driver(device, **options))
