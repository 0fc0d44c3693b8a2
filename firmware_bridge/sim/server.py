"""Serve a simulated sensor on a pseudo-terminal, with fault injection.

The host side sees a serial port like any USB sensor's. Like a real USB device, the
simulator holds at most ``tx_buffer`` unsent bytes when the host does not keep up; past that
it drops whole frames and keeps counting sequence numbers, so the host sees the gap.
A simulated unplug closes the pty (the host reads fail) and a replug, like a bus-powered
board, powers the device up afresh on a new pty, re-pointing the ``link`` symlink.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from firmware_bridge.sim.device import SimulatedDevice


@dataclass
class Faults:
    corrupt: float = 0.0  # probability that any byte sent is damaged
    disconnect_after: float | None = None  # seconds after start
    reappear_after: float | None = None  # seconds after the disconnect


class PtyServer:
    """Runs a device built by ``make_device`` on a pty until ``stop`` is set or ``duration``
    seconds pass. ``on_path`` is told every device path, the first one and each replug."""

    def __init__(self, make_device: Callable[[], SimulatedDevice], *,
                 on_path: Callable[[str], None], link: Path | None = None,
                 faults: Faults | None = None, tx_buffer: int = 65536, seed: int = 0) -> None:
        self.make_device = make_device
        self.on_path = on_path
        self.link = link
        self.faults = faults or Faults()
        self.tx_buffer = tx_buffer
        self._rng = np.random.default_rng([seed, 11])
        self.device: SimulatedDevice | None = None
        self.corrupted_bytes = 0
        self.power_cycles = 0
        self.totals: dict[str, int] = {}

    def run(self, stop: threading.Event | None = None, duration: float | None = None) -> None:
        stop = stop or threading.Event()
        start = time.monotonic()
        deadline = start + duration if duration else None
        disconnect_at = (start + self.faults.disconnect_after
                         if self.faults.disconnect_after is not None else None)
        therapist_origin: float | None = None  # world time when the therapist began
        while not stop.is_set():
            master, slave = self._open_pty()
            power_up = time.monotonic()
            device = self.make_device()
            if therapist_origin is not None:
                device.therapist_offset = power_up - therapist_origin
            self.device = device
            try:
                ended = self._serve(master, device, power_up, stop, deadline, disconnect_at)
            finally:
                self._add_totals(device)
                os.close(master)
                os.close(slave)
            if device.therapist_offset is not None:
                therapist_origin = power_up - device.therapist_offset
            if ended:
                break
            if self.link is not None:  # unplugged: the device node goes away, as udev's does
                with contextlib.suppress(FileNotFoundError):
                    self.link.unlink()
            disconnect_at = None
            self.power_cycles += 1
            if self.faults.reappear_after is None:
                break
            if stop.wait(self.faults.reappear_after):
                break
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()

    def _open_pty(self) -> tuple[int, int]:
        master, slave = os.openpty()
        tty.setraw(slave)
        fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
        path = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(path, tmp)
            os.replace(tmp, self.link)
        self.on_path(path)
        return master, slave

    def _serve(self, master: int, device: SimulatedDevice, power_up: float,
               stop: threading.Event, deadline: float | None,
               disconnect_at: float | None) -> bool:
        """Serve until stop/deadline (True) or the scheduled unplug (False)."""
        pending = bytearray(device.power_up_message())
        period = min(0.05, max(0.002, 1.0 / device.rate_hz))
        while True:
            now = time.monotonic()
            if stop.is_set() or (deadline is not None and now >= deadline):
                return True
            if disconnect_at is not None and now >= disconnect_at:
                return False
            readable, _, _ = select.select([master], [], [], period)
            now = time.monotonic()
            if readable:
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    data = b""
                except OSError:
                    data = b""  # nobody has the port open yet
                if data:
                    pending += device.receive(data, now - power_up)
                    period = min(0.05, max(0.002, 1.0 / device.rate_hz))
            room = max(0, self.tx_buffer - len(pending))
            frames = device.frames_until(now - power_up, room)
            if frames:
                pending += self._corrupt(frames)
            if pending:
                try:
                    sent = os.write(master, pending)
                except (BlockingIOError, OSError):
                    sent = 0
                del pending[:sent]

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

    def _add_totals(self, device: SimulatedDevice) -> None:
        for key, value in asdict(device.counters).items():
            self.totals[key] = self.totals.get(key, 0) + value

    def report(self) -> dict:
        """What the simulator did, for tests and benchmarks to compare against."""
        return {**self.totals, "corrupted_bytes": self.corrupted_bytes,
                "power_cycles": self.power_cycles}


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
