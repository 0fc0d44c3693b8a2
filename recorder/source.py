"""Where samples come from: a protocol-v1 device or a commercial gauge, behind one interface.

A source turns the bytes its link delivers into ``Readings`` (raw counts, flags, and for a
device its sequence numbers and clock) and speaks the device's commands. The link's reader
thread calls ``feed``; the caller's thread calls the commands (``SerialLink.write`` may be used
from any thread). The one handshake of a protocol-v1 device (identify, then optionally the rate
and a tare) is ``DeviceSource.handshake``: the recording session, the calibration probe and
every reconnect (``restart``: identify and start again) go through this class.

A gauge reports newtons, stored as integer millinewton "counts" so that every link has raw
counts; a polled gauge is asked for each reading by a poller thread of its own.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np

from firmware_bridge.frames import (
    CMD_IDENTIFY,
    CMD_SET_RATE,
    CMD_START,
    CMD_STOP,
    CMD_TARE,
    Ack,
    DeviceInfo,
    FrameDecoder,
    encode_command,
)
from firmware_bridge.gauges import GaugeDriver, GaugeError, make_driver
from firmware_bridge.link import SerialLink

GAUGE_COUNTS_PER_NEWTON = 1000.0  # gauges and ASCII lines: raw counts are millinewtons
UNANSWERED_POLL_S = 1.0  # a query unanswered this long is given up (gauge off or replugging)


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
    messages: list[DeviceInfo | Ack | GaugeError] = field(default_factory=list)


class DeviceSource:
    """A protocol-v1 device: the frame decoder and the device's commands."""

    link_name = "palpation-v1"
    baudrate = 921600
    tares_itself = True  # a tare is a command; the device answers with its zero counts

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

    def feed(self, data: bytes) -> Readings:
        """Decode a chunk (reader thread); during a handshake its messages go to it."""
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


class GaugeSource:
    """A commercial gauge or an ASCII line device, through its driver
    (firmware_bridge.gauges); a polled gauge gets a poller thread while it streams."""

    info = None
    tares_itself = False  # tared on the host, from the latest readings
    crc_errors = 0  # lines carry no checksum

    def __init__(self, driver: GaugeDriver) -> None:
        self.driver = driver
        self.link_name = driver.name
        self.baudrate = driver.baudrate
        self._halt = threading.Event()
        self._poller: threading.Thread | None = None

    @property
    def garbage_bytes(self) -> int:
        return self.driver.garbage_bytes

    def feed(self, data: bytes) -> Readings:
        readings = self.driver.feed(data)
        n = len(readings.force_n)
        raw = np.round(readings.force_n * GAUGE_COUNTS_PER_NEWTON).astype(np.int32)
        return Readings(raw, np.zeros(n, np.uint8), messages=list(readings.errors))

    def connect(self, link: SerialLink, timeout_s: float, rate_hz: float | None) -> None:
        """Put the gauge in its streaming mode, if it has one; there is no handshake."""
        link.write(self.driver.start())

    def start(self, link: SerialLink) -> None:
        if self.driver.poll_interval_s:
            self._poller = threading.Thread(target=self._poll, args=(link,),
                                            name="gauge-poller", daemon=True)
            self._poller.start()

    def restart(self, link: SerialLink) -> None:
        """After a reconnect: a gauge may have lost its streaming mode with its power."""
        self.driver.reset()
        link.write(self.driver.start())

    def stop(self, link: SerialLink) -> None:
        self._halt.set()
        link.write(self.driver.stop())
        if self._poller is not None:
            self._poller.join(2.0)

    def device_attrs(self) -> dict:
        return {"counts_per_newton": GAUGE_COUNTS_PER_NEWTON, "link": self.link_name}

    def _poll(self, link: SerialLink) -> None:
        """Ask for a reading every poll interval, one query at a time; a query unanswered
        for UNANSWERED_POLL_S is given up."""
        driver = self.driver
        asked = time.monotonic()
        while not self._halt.is_set():
            now = time.monotonic()
            if driver.pending_replies >= driver.max_pending and now - asked > UNANSWERED_POLL_S:
                driver.reset()
            if driver.pending_replies < driver.max_pending and link.write(driver.poll()):
                asked = now
            self._halt.wait(driver.poll_interval_s)


def make_source(device: str, ascii_unit: str = "N") -> DeviceSource | GaugeSource:
    """The source for ``--device``: "palpation" (protocol v1) or a gauge driver's name."""
    if device == "palpation":
        return DeviceSource()
    options = {"default_unit": ascii_unit} if device == "ascii" else {}
    return GaugeSource(make_driver(device, **options))
