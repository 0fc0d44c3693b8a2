"""The Lab Streaming Layer outlet, received by a real inlet on loopback."""

from __future__ import annotations

import threading
import time

import numpy as np
import pylsl

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording


def test_outlet_carries_every_sample_with_its_device_time(tmp_path):
    sensor = SimulatedSensor(rate_hz=200.0, seed=8)
    paths, ready, stop = [], threading.Event(), threading.Event()
    server = PtyServer(sensor, on_path=lambda p: (paths.append(p), ready.set()))
    th = threading.Thread(target=server.run, args=(stop,), daemon=True)
    th.start()
    assert ready.wait(5)
    out = tmp_path / "lsl.h5"
    session = RecordingSession(SessionOptions(port=paths[0], out=out, lsl=True))
    session.start()
    (info,) = pylsl.resolve_byprop("name", "palpation SIM-0001", timeout=10)
    assert info.type() == "Force" and info.nominal_srate() == 200.0
    inlet = pylsl.StreamInlet(info)
    inlet.open_stream(timeout=5)
    values, stamps = [], []
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        chunk, ts = inlet.pull_chunk(timeout=0.2)
        values += [c[0] for c in chunk]
        stamps += ts
    session.stop()
    stop.set()
    th.join(5)
    rec = open_recording(out)
    assert len(values) > 250
    # the received samples are a contiguous run of the recorded ones, value for value
    i = int(np.argmin(np.abs(rec.force - values[0]) + np.abs(
        rec.timestamps + session.start_monotonic - stamps[0])))
    n = len(values)
    assert np.allclose(rec.force[i:i + n], values, atol=1e-4)
    # timestamps are the fitted device clock mapped to LSL time: the file's, sample for sample
    assert np.allclose(np.array(stamps) - session.start_monotonic, rec.timestamps[i:i + n],
                       rtol=0, atol=1e-6)
    assert abs(stamps[0] - (rec.timestamps[i] + session.start_monotonic)) < 1e-6
