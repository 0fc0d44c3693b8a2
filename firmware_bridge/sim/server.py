"""The one pseudo-terminal server: any emulated device on a pty the host opens like a serial port.

The server owns the port and the wire; the device it serves (an :class:`Emulator`: the
simulated sensor, a force-gauge emulator) owns only its protocol. The host side sees a serial
port like any USB device's:

- Like a real device, the emulator holds at most ``tx_buffer`` unsent bytes when the host does
  not keep up: it is told the room left and drops (and counts) what does not fit.
- ``link`` (optional) is a symlink kept pointing at the current device path, re-pointed
  atomically when the port re-enumerates; ``on_path`` is told every path, the first and each
  replug.
- ``power_cycle()`` (from any thread) powers the device off and on, on the same port (an RS-232
  device behind an adapter) or on a new one (``replug=True``: a USB device re-enumerating).
- :class:`Faults` injects damaged bytes and a scheduled unplug: the pty closes (the host reads
  fail), the link goes away as udev's node does, and after ``reappear_after`` seconds a
  freshly powered device appears on a new pty.
- Delivery as a USB-serial adapter's (``Faults.burst_ms``): bytes wait in the server and
  reach the host in bursts, at random intervals uniform in ``burst_ms``; with
  ``hiccups_per_s`` the host is sometimes late to take them (a scheduling hiccup, Poisson,
  uniform in ``HICCUP_MS``). Without ``burst_ms`` bytes go out as soon as they are made.
  A burst's frames are made ``MAKE_AHEAD_S`` before it leaves, for every sample taken by the
  time it leaves: making them costs the simulator about a millisecond, which a real device,
  sending each sample as it takes it, does not spend, and which would otherwise delay every
  burst (and every sample's least delay) by as much.

``run()`` serves in the calling thread until stopped; ``start()``/``close()`` (or ``with``) is
the one way to serve from a background thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

HICCUP_MS = (20.0, 200.0)  # how late a host scheduling hiccup makes a delivery
MAKE_AHEAD_S = 0.003  # a burst's frames are made this long before it leaves (making takes ~1 ms)


@dataclass
class Faults:
    corrupt: float = 0.0  # probability that any byte sent is damaged
    disconnect_after: float | None = None  # seconds after start
    reappear_after: float | None = None  # seconds after the disconnect
    burst_ms: tuple[float, float] | None = None  # deliver in bursts this far apart (ms)
    hiccups_per_s: float = 0.0  # host scheduling hiccups per second (with burst_ms)


class Emulator(Protocol):
    """A device the server can serve. Times are seconds on the server's clock (since the
    server was made); ``tick_s`` is how often it wants to be asked for output."""

    name: str

    @property
    def tick_s(self) -> float: ...

    def power_on(self, now: float) -> bytes:
        """Switched on (again): back to the power-on state; returns what it sends first."""

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host; returns the replies."""

    def output(self, now: float, room: int) -> bytes:
        """What it sends on its own up to ``now``, at most ``room`` bytes."""


class PtyServer:
    """Serves ``emulator`` on a pty; see the module docstring."""

    def __init__(self, emulator: Emulator, *, on_path: Callable[[str], None] | None = None,
                 link: Path | None = None, faults: Faults | None = None,
                 tx_buffer: int = 65536, seed: int = 0) -> None:
        self.emulator = emulator
        self.on_path = on_path
        self.link = link
        self.faults = faults or Faults()
        self.tx_buffer = tx_buffer
        self.t0 = time.monotonic()
        self.path = ""
        self.corrupted_bytes = 0
        self.power_cycles = 0
        self.bursts = 0
        self.hiccups = 0
        self._rng = np.random.default_rng([seed, 11])
        self._delivery_rng = np.random.default_rng([seed, 12])
        self._release_at = 0.0  # server time of the next burst
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._pending = bytearray()

    def now(self) -> float:
        """Seconds on the server's clock."""
        return time.monotonic() - self.t0

    # --- serving ----------------------------------------------------------------------
    def start(self) -> str:
        """Serve from a daemon thread; returns the first device path. The pty is opened
        here, so failing to get one raises OSError in the caller."""
        self._plug_in()
        self._thread = threading.Thread(target=self._serve, args=(self._stop, None),
                                        name=f"{self.emulator.name}-pty", daemon=True)
        self._thread.start()
        return self.path

    def close(self) -> None:
        """Stop serving (``start``) and wait for the thread; the pty and the link go away."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PtyServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, stop: threading.Event | None = None, duration: float | None = None) -> None:
        """Serve in this thread until ``stop`` is set, ``duration`` seconds pass, or the
        device is unplugged for good (``Faults.disconnect_after`` without ``reappear_after``)."""
        deadline = time.monotonic() + duration if duration else None
        self._plug_in()
        self._serve(stop or self._stop, deadline)

    def _serve(self, stop: threading.Event, deadline: float | None) -> None:
        faults = self.faults
        unplug_at = (time.monotonic() + faults.disconnect_after
                     if faults.disconnect_after is not None else None)
        try:
            while not stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if unplug_at is not None and now >= unplug_at:
                    unplug_at = None
                    self._unplug()
                    self.power_cycles += 1
                    if faults.reappear_after is None or stop.wait(faults.reappear_after):
                        break
                    self._plug_in()
                    continue
                self._step()
        finally:
            self._unplug()

    def _step(self) -> None:
        """One turn of the wire: wait up to a tick for host bytes, answer, send."""
        with self._lock:
            master = self._master
        wait = self.emulator.tick_s
        if self.faults.burst_ms is not None and self._release_at > self.now():
            # nothing leaves before the burst, so the device makes its frames just before it:
            # one wake-up per burst, not one per tick
            wait = max(0.0, self._release_at - MAKE_AHEAD_S - self.now())
        try:
            readable, _, _ = select.select([master], [], [], wait)
        except (OSError, ValueError):
            return  # the pty is being replaced
        with self._lock:
            if master != self._master:
                return
            now = self.now()
            if readable:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    data = b""  # nobody has the port open yet
                if data:
                    self._pending += self.emulator.receive(data, now)
            room = max(0, self.tx_buffer - len(self._pending))
            ahead = (self.faults.burst_ms is not None
                     and 0.0 < self._release_at - now <= MAKE_AHEAD_S)
            out = self.emulator.output(self._release_at if ahead else now, room)
            if out:
                self._pending += self._corrupt(out)
            if ahead:  # the burst's samples are all taken once it leaves
                time.sleep(max(0.0, self._release_at - self.now()))
                now = self.now()
            if self._pending and self._released(now):
                try:
                    sent = os.write(master, self._pending)
                except OSError:
                    sent = 0
                del self._pending[:sent]

    def _released(self, now: float) -> bool:
        """Whether pending bytes go out now: always without bursts; with them, when the
        burst is due (then the next one is drawn, a hiccup later now and then)."""
        burst = self.faults.burst_ms
        if burst is None:
            return True
        if now < self._release_at:
            return False
        rng = self._delivery_rng
        gap_s = rng.uniform(*burst) / 1000.0
        if rng.random() < self.faults.hiccups_per_s * gap_s:
            gap_s += rng.uniform(*HICCUP_MS) / 1000.0
            self.hiccups += 1
        self._release_at = now + gap_s
        self.bursts += 1
        return True

    # --- the port -----------------------------------------------------------------------
    def power_cycle(self, *, replug: bool = False) -> str:
        """Power the device off and on. ``replug=False``: the port stays (an RS-232 device
        behind an adapter). ``replug=True``: a USB device, the port vanishes and a new one
        appears (``link`` follows). Returns the device path."""
        with self._lock:
            self.power_cycles += 1
            if replug:
                self._close_pty()
                self._open_pty()
            self._pending = bytearray(self.emulator.power_on(self.now()))
            return self.path

    def _plug_in(self) -> None:
        """A freshly powered device on a new pty."""
        with self._lock:
            self._open_pty()
            self._pending = bytearray(self.emulator.power_on(self.now()))

    def _unplug(self) -> None:
        """The pty closes and the device node goes away, as udev's does."""
        with self._lock:
            if self._master < 0:
                return
            self._close_pty()
            if self.link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.link.unlink()

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
        self._master, self._slave = master, slave
        self.path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link)
        if self.on_path is not None:
            self.on_path(self.path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1

    def _corrupt(self, data: bytes) -> bytes:
        p = self.faults.corrupt
        if p <= 0:
            return data
        n = self._rng.binomial(len(data), p)
        if n == 0:
            return data
        buf = np.frombuffer(data, dtype=np.uint8).copy()
        where = self._rng.integers(0, len(buf), n)
        buf[where] ^= self._rng.integers(1, 256, n, dtype=np.uint8)
        self.corrupted_bytes += n
        return buf.tobytes()
