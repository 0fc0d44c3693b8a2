"""Recording hobby sketches as they print (issue 11): the real session on an emulated
Arduino over a pty, values compared exactly."""

from __future__ import annotations

import math
import re
import time

import numpy as np
import pytest

from firmware_bridge.asciilines import ColumnFormat
from firmware_bridge.sim.gauges import SketchEmulator
from firmware_bridge.sim.server import PtyServer
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording
from tests.conftest import run_palpation

IN_FLIGHT_S = 0.25  # the server's tick, the link's read batching, the reader's last chunk


def wave(t: float) -> float:
    return 20.0 + 10.0 * math.sin(3 * t)


def record(tmp_path, emulator, seconds: float = 1.5, **options):
    out = tmp_path / f"{emulator.fmt}.h5"
    with PtyServer(emulator, link=tmp_path / "sketch") as server:
        s = RecordingSession(SessionOptions(port=str(tmp_path / "sketch"), out=out,
                                            device="ascii", **options))
        s.start()
        time.sleep(seconds)
        stopping = server.now()
        s.stop()
        sent = list(emulator.sent)
    return open_recording(out), sent, stopping


def assert_every_reading(rec, sent, stopping: float):
    """Every value the sketch printed, in order, as millinewton counts; only those printed
    in the last IN_FLIGHT_S before the recording stopped may be missing."""
    counts = np.round(np.array([n for _, n, _ in sent]) * 1000).astype(np.int64)
    settled = sum(t < stopping - IN_FLIGHT_S for t, _, _ in sent)
    assert settled <= len(rec.raw_counts) <= len(sent)
    assert rec.raw_counts.tolist() == counts[:len(rec.raw_counts)].tolist()
    np.testing.assert_allclose(rec.force, rec.raw_counts / 1000.0, rtol=1e-12, atol=0)


@pytest.mark.parametrize("fmt", ["sparkfun", "bogde", "plain"])
def test_sketch_recording_holds_every_reading_in_newtons(tmp_path, fmt):
    emulator = SketchEmulator(wave, fmt=fmt, rate_hz=40, boot_s=0.6)
    unit = {"bogde": "g"}.get(fmt, "N")
    rec, sent, stopping = record(tmp_path, emulator, ascii_unit=unit)
    assert len(sent) >= 30
    assert_every_reading(rec, sent, stopping)


def test_csv_with_millis_column_is_timed_by_the_device_clock(tmp_path):
    emulator = SketchEmulator(wave, fmt="csv", rate_hz=50, boot_s=0.3)
    rec, sent, stopping = record(tmp_path, emulator, ascii_unit="kgf",
                       gauge={"columns": ColumnFormat.from_options(2, "1:ms")})
    assert_every_reading(rec, sent, stopping)
    # the device's millis(), 20 ms apart, is the device tick; timestamps follow it (the
    # clock fit may move them by a read's latency while it has less than a second)
    assert set(np.diff(rec.device_tick_us).tolist()) == {20_000}
    steps = np.diff(rec.timestamps)
    assert (np.abs(steps - 0.020) < 1e-9).mean() >= 0.8
    assert steps.min() > 0


def test_no_parsable_line_stops_with_the_line_and_the_formats_and_no_file(tmp_path):
    emulator = SketchEmulator(wave, fmt="tsv-micros", rate_hz=20, boot_s=0.2)
    out = tmp_path / "none.h5"
    with PtyServer(emulator, link=tmp_path / "sketch"):
        r = run_palpation("record", "--port", str(tmp_path / "sketch"), "--device", "ascii",
                          "--headless", "--duration", "3", "--out", str(out))
    assert r.returncode != 0
    printed = [repr(line.decode().strip()) for _, _, line in emulator.sent]
    shown = re.search(r"no line parsed as a reading within 2 s, e\.g\. ('.*?'); ", r.stderr)
    assert shown is not None and shown.group(1) in printed
    assert "--ascii-column" in r.stderr and "Reading: 8.5 lbs" in r.stderr
    assert not out.exists()
