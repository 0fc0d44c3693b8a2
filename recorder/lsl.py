"""Publish the live force stream as a Lab Streaming Layer outlet, so a lab can record it in
sync with EMG or EEG (LabRecorder and friends).

One channel, newtons, float32, at the device's nominal rate. Each sample carries the device
clock mapped to the host's monotonic clock, which is LSL's ``local_clock``; LSL's own clock
synchronisation then carries it to the other machines.

A classroom station (``record --lsl --station NAME``, issue 14) names its force stream
``palpation NAME`` with source_id ``palpation-station:NAME:force`` and adds a marker stream of
JSON messages (``MarkerOutlet``, the format in ``recorder.station_messages``); both carry the
station in their description (``station``), and keep their source_ids across a restart so
that inlets recover.
"""

from __future__ import annotations

import time

import numpy as np

from firmware_bridge.frames import DeviceInfo

LINGER_S = 0.3  # a closing marker outlet waits this long for its last messages to go out


# Headless, a session publishing on LSL reads at least this often and passes on every read at
# once: others watch the stream live (a class view's tile), so its samples may be at most one
# short batch late, while reading as bytes arrive would cost a station twice the CPU.
LSL_BATCH_S = 0.02


class LslError(Exception):
    """One line for the user."""


def _pylsl():
    try:
        import pylsl
    except ImportError:
        raise LslError("--lsl needs pylsl: pip install 'palpation-recorder[lsl]'") from None
    return pylsl


def station_source_id(station: str, stream: str) -> str:
    """The source_id of a station's ``stream`` ("force" or "markers")."""
    return f"palpation-station:{station}:{stream}"


class ForceOutlet:
    def __init__(self, name: str, source_id: str, rate_hz: float, station: str = "") -> None:
        pylsl = _pylsl()
        info = pylsl.StreamInfo(name, "Force", 1, rate_hz, "float32", source_id)
        if station:
            info.desc().append_child_value("station", station)
        channel = info.desc().append_child("channels").append_child("channel")
        channel.append_child_value("label", "force")
        channel.append_child_value("unit", "newtons")
        channel.append_child_value("type", "Force")
        self._outlet = pylsl.StreamOutlet(info)

    @classmethod
    def for_device(cls, info: DeviceInfo | None, port: str, station: str = "") -> ForceOutlet:
        """The outlet of a device (its id and nominal rate), or of a gauge (its port); a
        station's is named after the station."""
        rate = info.nominal_rate_hz if info is not None else 0.0
        if station:
            return cls(f"palpation {station}", station_source_id(station, "force"), rate,
                       station)
        if info is None:
            return cls(f"palpation {port}", port, rate)
        return cls(f"palpation {info.device_id}", info.device_id, rate)

    def close(self) -> None:
        """Withdraw the stream from the network (the recording ended): inlets see it end, and
        a later outlet of the same device is the only one a lookup finds."""
        self._outlet = None

    def push(self, force_n: np.ndarray, lsl_times: np.ndarray) -> None:
        """Samples with their LSL timestamps (seconds of ``pylsl.local_clock``)."""
        if self._outlet is not None:
            self._outlet.push_chunk(force_n.astype(np.float32).reshape(-1, 1),
                                    lsl_times.astype(np.float64))


class MarkerOutlet:
    """A station's marker stream: one JSON message per string sample, irregular rate,
    stamped with ``pylsl.local_clock()`` when sent."""

    def __init__(self, station: str) -> None:
        pylsl = _pylsl()
        info = pylsl.StreamInfo(f"palpation {station} markers", "Markers", 1,
                                pylsl.IRREGULAR_RATE, "string",
                                station_source_id(station, "markers"))
        info.desc().append_child_value("station", station)
        self._clock = pylsl.local_clock
        self._outlet = pylsl.StreamOutlet(info)

    def push(self, text: str) -> None:
        if self._outlet is not None:
            self._outlet.push_sample([text], self._clock())

    def close(self) -> None:
        """Withdraw the stream (the station stopped), after ``LINGER_S`` when an inlet is
        connected: liblsl drops what it has not yet sent when an outlet goes, the last
        messages (``bye``) included."""
        if self._outlet is not None and self._outlet.have_consumers():
            time.sleep(LINGER_S)
        self._outlet = None
