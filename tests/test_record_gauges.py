"""Recording commercial gauges end to end: the real recorder (its poller and reconnect) on
each gauge's emulator over a pty."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from firmware_bridge.sim.gauges import ImadaEmulator, Mark10Emulator, WagnerEmulator
from firmware_bridge.sim.server import PtyServer
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
    with PtyServer(emulator(), link=tmp_path / "gauge") as server:
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
    with PtyServer(WagnerEmulator(wave, model="fdix"), link=tmp_path / "gauge") as server:
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


@pytest.mark.parametrize("device, emulator, resolution_n", [
    ("mark10", lambda: Mark10Emulator(wave, unit="N"), 0.0005),
    ("imada", lambda: ImadaEmulator(wave, unit="N"), 0.005),
])
def test_polled_gauge_is_asked_by_the_session_one_query_at_a_time(tmp_path, device, emulator,
                                                                   resolution_n):
    """The session's own poller drives a polled gauge: every answer the gauge sent is one
    recorded reading, in order, at about the driver's poll interval."""
    seconds = 1.5
    with PtyServer(emulator(), link=tmp_path / "gauge") as server:
        out = tmp_path / f"{device}.h5"
        s = RecordingSession(SessionOptions(port=str(tmp_path / "gauge"), out=out,
                                            device=device))
        s.start()
        time.sleep(seconds)
        s.stop()
        sent = list(server.emulator.sent)
    rec = open_recording(out)
    poll_s = s.source.driver.poll_interval_s
    # about one reading per poll interval: the poller neither stalls nor floods the gauge
    assert 0.5 * seconds / poll_s <= len(rec.force) <= seconds / poll_s
    # each answer recorded once and in order; only the last may have been in flight at stop
    assert len(sent) - 1 <= len(rec.force) <= len(sent)
    sent_n = np.array([newtons for _, newtons, _ in sent[:len(rec.force)]])
    millinewton = 0.0005  # raw counts of a gauge are millinewtons
    np.testing.assert_allclose(rec.force, sent_n, atol=resolution_n * 1.0001 + millinewton)
    assert (np.diff(rec.sequence) == 1).all()
