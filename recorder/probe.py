"""Read raw counts from a sensor without recording: what calibration needs.

Connects like a session (the same handshake, ``recorder.source.DeviceSource``, without the
tare), keeps the raw counts of the last readings, and averages a window of them on request.
No file, no ring buffer, no window.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from firmware_bridge.frames import FLAG_SATURATED, DeviceInfo
from firmware_bridge.link import SerialLink
from recorder.source import DeviceSource, NoAnswer

HANDSHAKE_S = 3.0


class ProbeError(Exception):
    """One line for the user."""


class SensorProbe:
    """A protocol-v1 sensor streaming raw counts into memory."""

    def __init__(self, port: str, baudrate: int = 921600) -> None:
        self.port = port
        self.source = DeviceSource()
        self._lock = threading.Lock()
        self._raw: list[np.ndarray] = []
        self._saturated = 0
        self._collecting = False
        self.link = SerialLink(port, self, baudrate=baudrate, batch_s=0.01)

    @property
    def info(self) -> DeviceInfo | None:
        """What the device said in the handshake."""
        return self.source.info

    def __enter__(self) -> SensorProbe:
        self.link.start()
        try:
            self.source.handshake(self.link, HANDSHAKE_S)
        except NoAnswer:
            self.link.stop()
            raise ProbeError(
                f"no answer from {self.port}: is it a palpation-v1 device?") from None
        self.source.start(self.link)
        return self

    def __exit__(self, *exc) -> None:
        self.source.stop(self.link)
        self.link.stop()

    def connection_made(self, link: SerialLink, reconnect: bool) -> None:
        if reconnect:
            self.source.restart(link)

    def connection_lost(self, reason: str, host_time: float) -> None:
        pass

    def data_received(self, data: bytes, host_time: float) -> None:
        readings = self.source.feed(data)
        if self._collecting and len(readings.raw):
            with self._lock:
                self._raw.append(readings.raw.copy())
                self._saturated += int((readings.flags & FLAG_SATURATED).astype(bool).sum())

    def collect(self, seconds: float, settle_s: float = 0.3) -> np.ndarray:
        """Raw counts over ``seconds``, after letting the load settle for ``settle_s``;
        ProbeError if the sensor is saturated or sends nothing."""
        time.sleep(settle_s)
        with self._lock:
            self._raw, self._saturated = [], 0
            self._collecting = True
        time.sleep(seconds)
        with self._lock:
            self._collecting = False
            raw = np.concatenate(self._raw) if self._raw else np.empty(0, np.int32)
            saturated = self._saturated
        if not len(raw):
            raise ProbeError(f"{self.port}: no readings in {seconds:g} s")
        if saturated:
            raise ProbeError(f"{self.port}: sensor saturated at this load ({saturated} readings)"
                             "; use a smaller load")
        return raw
