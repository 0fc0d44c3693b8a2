"""Publish the live force stream as a Lab Streaming Layer outlet, so a lab can record it in
sync with EMG or EEG (LabRecorder and friends).

One channel, newtons, float32, at the device's nominal rate. Each sample carries the device
clock mapped to the host's monotonic clock, which is LSL's ``local_clock``; LSL's own clock
synchronisation then carries it to the other machines.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.frames import DeviceInfo


class LslError(Exception):
    """One line for the user."""


class ForceOutlet:
    def __init__(self, name: str, source_id: str, rate_hz: float) -> None:
        try:
            import pylsl
        except ImportError:
            raise LslError("--lsl needs pylsl: pip install 'palpation-recorder[lsl]'") from None
        info = pylsl.StreamInfo(name, "Force", 1, rate_hz, "float32", source_id)
        channel = info.desc().append_child("channels").append_child("channel")
        channel.append_child_value("label", "force")
        channel.append_child_value("unit", "newtons")
        channel.append_child_value("type", "Force")
        self._outlet = pylsl.StreamOutlet(info)

    @classmethod
    def for_device(cls, info: DeviceInfo | None, port: str) -> ForceOutlet:
        """The outlet of a device (its id and nominal rate), or of a gauge (its port)."""
        if info is None:
            return cls(f"palpation {port}", port, 0.0)
        return cls(f"palpation {info.device_id}", info.device_id, info.nominal_rate_hz)

    def close(self) -> None:
        """Withdraw the stream from the network (the recording ended): inlets see it end, and
        a later outlet of the same device is the only one a lookup finds."""
        self._outlet = None

    def push(self, force_n: np.ndarray, lsl_times: np.ndarray) -> None:
        """Samples with their LSL timestamps (seconds of ``pylsl.local_clock``)."""
        if self._outlet is not None:
            self._outlet.push_chunk(force_n.astype(np.float32).reshape(-1, 1),
                                    lsl_times.astype(np.float64))
