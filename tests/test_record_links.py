"""Recording from other kinds of links: ASCII line devices, silent ports, a slow writer."""

from __future__ import annotations

import os
import threading
import time
import tty

import numpy as np
from serial.tools import list_ports

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from recorder.session import RecordingSession, SessionError, SessionOptions
from schemas.reader import open_recording
from tests.conftest import run_palpation


def test_record_ascii_line_device(tmp_path, simulator):
    sim = simulator("--format", "ascii", "--rate", "200")
    out = tmp_path / "ascii.h5"
    r = run_palpation("record", "--port", str(sim.link), "--device", "ascii", "--out", str(out),
                      "--duration", "2", "--headless")
    assert r.returncode == 0, r.stderr
    rec = open_recording(out)
    assert rec.device["link"] == "ascii"
    assert 250 <= len(rec.force) <= 450
    # raw counts of an ASCII link are the device's millinewtons
    assert np.allclose(rec.raw_counts / 1000.0, rec.force, atol=1e-3)
    assert (np.diff(rec.sequence) == 1).all()


def test_ascii_lines_with_garbage_are_counted_not_fatal(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    stop = threading.Event()

    def feed():
        i = 0
        while not stop.is_set():
            os.write(master, b"%d.5 N\r\n" % (i % 50) if i % 10 else b"garbage!\r\n")
            i += 1
            time.sleep(0.002)

    th = threading.Thread(target=feed, daemon=True)
    th.start()
    out = tmp_path / "g.h5"
    s = RecordingSession(SessionOptions(port=path, out=out, device="ascii"))
    s.start()
    time.sleep(1.0)
    status = s.status()
    s.stop()
    stop.set()
    th.join(2)
    os.close(master)
    os.close(slave)
    rec = open_recording(out)
    assert status.garbage_bytes > 0
    assert len(rec.force) > 100 and set(np.round(rec.force % 1, 3)) == {0.5}


def test_silent_port_gives_a_clear_error(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        s = RecordingSession(SessionOptions(port=os.ttyname(slave), out=tmp_path / "x.h5",
                                            handshake_s=0.5))
        try:
            s.start()
            raise AssertionError("a silent port must not start a session")
        except SessionError as exc:
            assert "no answer from" in str(exc) and "--device mark10|imada|wagner|ascii" in str(exc)
        assert not (tmp_path / "x.h5").exists()
    finally:
        os.close(master)
        os.close(slave)


def serve_in_thread(rate):
    sensor = SimulatedSensor(rate_hz=rate, seed=2)
    paths, ready, stop = [], threading.Event(), threading.Event()
    server = PtyServer(sensor, on_path=lambda p: (paths.append(p), ready.set()))
    th = threading.Thread(target=server.run, args=(stop,), daemon=True)
    th.start()
    assert ready.wait(5)
    return paths[0], stop, th


def test_writer_that_falls_behind_counts_and_records_the_loss(tmp_path):
    path, stop, th = serve_in_thread(2000.0)
    out = tmp_path / "overrun.h5"
    s = RecordingSession(SessionOptions(port=path, out=out, queue_limit=100, drain_s=0.3))
    s.start()
    time.sleep(1.5)
    s.stop()
    stop.set()
    th.join(5)
    rec = open_recording(out)
    lost = [e for e in rec.events if e.kind == "writer_overrun"]
    assert lost and rec.link_stats[-1]["writer_lost"] == sum(e.value for e in lost)
    assert len(rec.force) + sum(e.value for e in lost) == s.status().samples
    assert rec.summary["writer_lost"] > 0


def test_rate_can_be_set_from_10_hz(tmp_path):
    path, stop, th = serve_in_thread(1000.0)
    out = tmp_path / "slow.h5"
    s = RecordingSession(SessionOptions(port=path, out=out, rate_hz=10.0))
    s.start()
    time.sleep(1.55)
    s.stop()
    stop.set()
    th.join(5)
    rec = open_recording(out)
    assert rec.device["nominal_rate_hz"] == 10.0
    assert 13 <= len(rec.force) <= 17
    assert np.allclose(np.diff(rec.device_tick_us), 100_000)


def test_devices_lists_every_port_the_system_reports():
    """A header, then one line per port pyserial finds (path, USB identity or '-',
    description); the "none found" line only when it finds none."""
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    r = run_palpation("devices")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    if not ports:
        assert lines == ["no serial ports found"]
        return
    header, *lines = lines
    assert header.split() == ["PORT", "USB", "IDENTITY", "(VID:PID", "SERIAL)", "DESCRIPTION"]
    assert [line.split()[0] for line in lines] == [p.device for p in ports]
    for line, port in zip(lines, ports, strict=True):
        identity = f"{port.vid:04x}:{port.pid:04x}" if port.vid is not None else "-"
        assert line.split()[1].startswith(identity)
        assert line.rstrip().endswith((port.description or "").strip())
