"""Recording commercial gauges end to end: the real recorder (its poller and reconnect) on
each gauge's emulator over a pty."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from firmware_bridge.sim.gauges import (
    GaugePtyServer,
    ImadaEmulator,
    Mark10Emulator,
    WagnerEmulator,
)
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording


def wave(t: float) -> float:
    return 20.0 + 10.0 * math.sin(t)


@pytest.mark.parametrize("device, emulator", [
    ("mark10", lambda: Mark10Emulator(wave, unit="lbF")),
    ("imada", lambda: ImadaEmulator(wave, unit="kgf")),
    ("wagner", lambda: WagnerEmulator(wave, model="fdix")),
])
def test_gauge_is_recorded_in_newtons(tmp_path, device, emulator):
    with GaugePtyServer(emulator(), link=tmp_path / "gauge") as server:
        out = tmp_path / f"{device}.h5"
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device=device))
        s.start()
        time.sleep(1.5)
        s.stop()
        sent = server.emulator.sent
    rec = open_recording(out)
    assert rec.device["link"] == device
    assert len(rec.force) >= 10
    sent_n = np.array([newtons for _, newtons, _ in sent])
    # every recorded reading is one the gauge sent, within the gauge's display resolution
    gap = np.abs(rec.force[:, None] - sent_n[None, :]).min(axis=1)
    assert gap.max() < 0.05


def test_wagner_power_cycle_is_rearmed_after_reconnect(tmp_path):
    with GaugePtyServer(WagnerEmulator(wave, model="fdix"), link=tmp_path / "gauge") as server:
        out = tmp_path / "wagner.h5"
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device="wagner"))
        s.start()
        time.sleep(1.0)
        before = s.status().samples
        server.power_cycle(replug=True)  # a USB gauge: new port name, streaming lost
        deadline = time.monotonic() + 10
        while s.status().reconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        after = s.status().samples
        s.stop()
    assert s.status().reconnects == 1
    assert after > before + 20  # streaming was re-armed by the driver's start()
    kinds = [e.kind for e in open_recording(out).events]
    assert "disconnect" in kinds and "reconnect" in kinds
