"""A serial link with a reader thread that survives unplugging.

Shaped like pyserial's ``serial.threaded``: a listener gets ``connection_made``,
``data_received`` and ``connection_lost``. Headless, reads are batched (take everything waiting,
then let up to ``BATCH_S`` of data gather before the next read) so that a 1 kHz sensor costs
~20 wake-ups a second instead of 1000; while reads come back full, it reads again at once
so that a 100 kHz sensor never waits on the batching. Headless, the reads are also handed to
the listener a few together, about every ``HAND_OVER_S`` (or ``HAND_OVER_BYTES``), since a
listener's run on a chunk costs nearly the same for 50 samples as for 1800; each read of a
hand-over still counts: ``data_received`` gets, besides the bytes and the host time of the
newest read, every read's end in the bytes and its host time (``Read``), so that each stays an
observation of the device clock and each sample keeps the time of the read that brought it.
With ``batch_s=0`` (a live window is open, and a sample's way to the screen must not wait) it
reads as soon as bytes arrive and hands each read over at once. Host times are the host's
monotonic clock. When the port fails the link reopens it, by its path or by its USB identity.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import serial

from firmware_bridge.ports import find_by_identity, identity_of

MAX_CHUNK = 1 << 20
# Most bytes left to gather between two reads. A tty hands a read at most its line
# discipline's 4 KiB buffer, and refills it from the driver's buffer (a pty's holds 20 KiB)
# a little later, so a read returns about that much however long the pause was: a read this
# large means the stream is fast and the reader may be behind, so it reads again at once.
SAFE_BYTES = 4096
BUSY_BYTES = 4096
# Headless, reads are handed to the listener together, once per HAND_OVER_S or per this many
# bytes: a 100 kHz sensor is read ~440 times a second but its pipeline runs ~55 times, and a
# run costs nearly the same whether it gets 200 samples or 1800.
HAND_OVER_BYTES = 32768
FIRST_PAUSE_S = 0.001  # after a read that was not paused for, pauses grow from this, doubling
# headless: how long data may gather between reads. Longer costs less CPU (50 ms: ~1 % of a
# core less at 1 kHz than 25 ms) but gives the device clock's fit fewer observations; with the
# fit's quarter-second bins, 50 ms still keeps timestamps within 2 ms p99 (test_clock_e2e)
BATCH_S = 0.05
# headless: how often the reads are handed to the listener (every fourth read at 1 kHz). The
# pipeline's runs, not the reads, were most of the reader's CPU: at 1 kHz, 1.3 % of a core
# with a run per read, 0.7 % with this. Each read stays a clock observation (``Read``)
HAND_OVER_S = 0.2


class LinkError(Exception):
    """The port cannot be opened or used; the message is one line for the user."""


@dataclass(frozen=True)
class Read:
    """One read of a hand-over: its bytes are ``data[previous read's end:end]``, read at host
    monotonic time ``host_time``."""

    end: int
    host_time: float


class LinkListener(Protocol):
    def connection_made(self, link: SerialLink, reconnect: bool) -> None: ...

    def data_received(self, data: bytes, host_time: float, reads: tuple[Read, ...]) -> None:
        """``data`` read by ``reads`` (in order; the last ends at ``len(data)`` and was read
        at ``host_time``)."""

    def connection_lost(self, reason: str, host_time: float) -> None: ...


FLOW_CONTROLS = ("none", "rtscts", "xonxoff")


def open_port(path: str, baudrate: int, flow: str = "none") -> serial.Serial:
    """Open ``path`` for the link with ``flow`` control (an Imada on USB wants RTS/CTS), with
    a one-line LinkError on failure."""
    if flow not in FLOW_CONTROLS:
        raise ValueError(f"flow control must be one of {', '.join(FLOW_CONTROLS)}")
    try:
        return serial.Serial(path, baudrate=baudrate, timeout=0.05, write_timeout=1.0,
                             rtscts=flow == "rtscts", xonxoff=flow == "xonxoff")
    except (serial.SerialException, OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).split(":")[0]
        raise LinkError(f"cannot open serial port {path}: {reason}") from None


class SerialLink:
    """Owns the port and the reader thread; ``write`` may be called from any thread."""

    def __init__(self, path: str, listener: LinkListener, *, baudrate: int = 921600,
                 batch_s: float = BATCH_S, hand_over_s: float = HAND_OVER_S,
                 reconnect: bool = True, retry_s: float = 0.25, flow: str = "none") -> None:
        self.path = path
        self.listener = listener
        self.baudrate = baudrate
        self.flow = flow
        self.batch_s = batch_s
        self.hand_over_s = hand_over_s
        self.reconnect = reconnect
        self.retry_s = retry_s
        self.usb_identity = ""
        self.connected = threading.Event()
        self._port: serial.Serial | None = None
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bytes_received = 0
        self._last_read = time.monotonic()
        self._rate = 0.0  # bytes per second, smoothed
        self._last_pause = 0.0  # seconds the reader paused before its latest read
        self._held: list[bytes] = []  # read, not yet handed to the listener
        self._held_reads: list[Read] = []  # the reads of ``_held``
        self._held_bytes = 0
        self._handed_at = -math.inf  # host time of the latest hand-over

    def start(self) -> None:
        """Open the port (LinkError if it cannot be opened) and start reading."""
        self._port = open_port(self.path, self.baudrate, self.flow)
        self.usb_identity = identity_of(self._port.port)
        self.connected.set()
        self.listener.connection_made(self, False)
        self._thread = threading.Thread(target=self._run, name="serial-reader", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        port = self._port
        if port is not None:
            with contextlib.suppress(OSError, AttributeError, TypeError):
                port.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout)
        self._close()

    def write(self, data: bytes) -> bool:
        """Send bytes; False if the link is down (the caller decides whether that matters)."""
        with self._write_lock:
            port = self._port
            if port is None or not self.connected.is_set():
                return False
            try:
                port.write(data)
                return True
            except (serial.SerialException, OSError):
                return False

    def _close(self) -> None:
        with self._write_lock:
            port, self._port = self._port, None
            self.connected.clear()
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                port = self._port
                try:
                    first = port.read(port.in_waiting or 1)  # after a pause, bytes are waiting
                    if not first:
                        self._hand_over()  # quiet for a read timeout: what is held goes now
                        continue
                    data = self._drain(port, first)
                except (serial.SerialException, OSError, TypeError, AttributeError) as exc:
                    if self._stop.is_set():
                        return
                    self._hand_over()
                    self._close()
                    self.listener.connection_lost(_reason(exc), time.monotonic())
                    if not self.reconnect or not self._reopen():
                        return
                    continue
                now = time.monotonic()
                self.bytes_received += len(data)
                pause = self._pause(len(data), now)
                self._held.append(data)
                self._held_bytes += len(data)
                self._held_reads.append(Read(self._held_bytes, now))
                if not self._holding(now, pause):
                    self._hand_over()
                self._stop.wait(pause)
        finally:
            self._hand_over()

    def _holding(self, now: float, pause: float) -> bool:
        """Whether to keep what was read for the next read: only headless, until it holds
        HAND_OVER_BYTES or the next read, ``pause`` from now, would come more than half a
        pause after hand_over_s since the last hand-over (so that reads ``batch_s`` apart
        are handed over every ``hand_over_s / batch_s`` reads despite their jitter)."""
        return (self.batch_s > 0 and self._held_bytes < HAND_OVER_BYTES
                and now - self._handed_at < self.hand_over_s - pause / 2)

    def _hand_over(self) -> None:
        """Give the listener the bytes held with their reads."""
        if self._held:
            data, reads = b"".join(self._held), tuple(self._held_reads)
            self._held, self._held_reads, self._held_bytes = [], [], 0
            self._handed_at = reads[-1].host_time
            self.listener.data_received(data, reads[-1].host_time, reads)

    def _pause(self, nbytes: int, now: float) -> float:
        """How long to let the next batch gather: ``batch_s``, but never so long that more
        than ``SAFE_BYTES`` would pile up at the current data rate, and not at all while reads
        come back full. The rate is measured between reads, so after a silence (the device's
        replies to a handshake, then its stream starting at 100 kHz) it reads near zero: a
        pause is therefore at most twice the last one (from FIRST_PAUSE_S), and the rate
        is known before a long pause is taken."""
        elapsed = max(now - self._last_read, 1e-4)
        self._last_read = now
        self._rate = 0.7 * self._rate + 0.3 * nbytes / elapsed
        if nbytes >= BUSY_BYTES:
            return 0.0  # and the next pause goes on from the last one
        self._last_pause = min(self.batch_s, SAFE_BYTES / self._rate if self._rate > 0
                               else math.inf, max(FIRST_PAUSE_S, 2.0 * self._last_pause))
        return self._last_pause

    def _drain(self, port: serial.Serial, data: bytes) -> bytes:
        """Everything waiting now. A tty hands out at most its line-discipline buffer (4 KiB)
        per read while more sits behind it, so read until nothing is left."""
        chunks = [data]
        size = len(data)
        while size < MAX_CHUNK:
            waiting = port.in_waiting
            if not waiting:
                break
            chunks.append(port.read(waiting))
            size += len(chunks[-1])
        return b"".join(chunks)

    def _reopen(self) -> bool:
        while not self._stop.wait(self.retry_s):
            path = find_by_identity(self.usb_identity) or self.path
            try:
                port = open_port(path, self.baudrate, self.flow)
            except LinkError:
                continue
            with self._write_lock:
                self._port = port
                self.connected.set()
            self.listener.connection_made(self, True)
            return True
        return False


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]
