"""Read raw counts from a sensor without recording: what calibration needs.

Connects like a session (identify, start), keeps the raw counts of the last readings, and
averages a window of them on request. No file, no ring buffer, no window.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from firmware_bridge.frames import (
    CMD_IDENTIFY,
    CMD_START,
    CMD_STOP,
    FLAG_SATURATED,
    DeviceInfo,
    FrameDecoder,
    encode_command,
)
from firmware_bridge.link import SerialLink


class ProbeError(Exception):
    """One line for the user."""


class SensorProbe:
    """A protocol-v1 sensor streaming raw counts into memory."""

    def __init__(self, port: str, baudrate: int = 921600) -> None:
        self.port = port
        self.decoder = FrameDecoder()
        self.info: DeviceInfo | None = None
        self._identified = threading.Event()
        self._lock = threading.Lock()
        self._raw: list[np.ndarray] = []
        self._saturated = 0
        self._collecting = False
        self.link = SerialLink(port, self, baudrate=baudrate, batch_s=0.01)

    def __enter__(self) -> SensorProbe:
        self.link.start()
        self.link.write(encode_command(CMD_IDENTIFY))
        if not self._identified.wait(3.0):
            self.link.stop()
            raise ProbeError(f"no answer from {self.port}: is it a palpation-v1 device?")
        self.link.write(encode_command(CMD_START))
        return self

    def __exit__(self, *exc) -> None:
        self.link.write(encode_command(CMD_STOP))
        self.link.stop()

    def connection_made(self, link: SerialLink, reconnect: bool) -> None:
        if reconnect:
            link.write(encode_command(CMD_IDENTIFY) + encode_command(CMD_START))

    def connection_lost(self, reason: str, host_time: float) -> None:
        pass

    def data_received(self, data: bytes, host_time: float) -> None:
        result = self.decoder.feed(data)
        for _, msg in result.messages:
            if isinstance(msg, DeviceInfo):
                self.info = msg
                self._identified.set()
        if self._collecting and len(result.samples):
            with self._lock:
                self._raw.append(result.samples.raw.copy())
                self._saturated += int((result.samples.flags & FLAG_SATURATED).astype(bool).sum())

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
