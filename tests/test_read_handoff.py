"""Headless, the link hands its reads over a few together (``HAND_OVER_S``) to spare the
pipeline's runs, but every read stays a clock observation and keeps its own host time.

Over real pseudo-terminals: the link with the simulated sensor served in-process, then a
recording of ``palpation simulate`` (bursty USB-like delivery) whose file must show one host
time per read and clock pairs that are the least-delayed of *all* reads, not only of the last
read of each hand-over. The timeline alone: an earlier read of a hand-over sets the fit.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_bridge.frames import CMD_START, encode_command
from firmware_bridge.link import BATCH_S, HAND_OVER_S, SerialLink
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from recorder.session import RecordingSession, SessionOptions
from recorder.source import JOIN_S, DeviceSource, Readings
from recorder.timeline import Timeline
from schemas.clockfit import BIN_S
from schemas.reader import open_recording
from tests.conftest import Simulator

pytestmark = pytest.mark.timeout(60)


class HandOvers:
    """Each hand-over's bytes, host time and reads, and its readings decoded read by read."""

    def __init__(self) -> None:
        self.source = DeviceSource()
        self.got: list[tuple[int, float, tuple]] = []
        self.readings: list[Readings] = []

    def connection_made(self, link, reconnect):
        pass

    def connection_lost(self, reason, host_time):
        pass

    def data_received(self, data, host_time, reads):
        self.got.append((len(data), host_time, reads))
        self.readings.append(self.source.feed(data, reads))


def hand_overs(batch_s: float, seconds: float = 1.5) -> HandOvers:
    """The link reading the simulated 1 kHz sensor with ``batch_s`` for ``seconds``."""
    with PtyServer(SimulatedSensor(rate_hz=1000.0, seed=3)) as server:
        listener = HandOvers()
        link = SerialLink(server.path, listener, batch_s=batch_s, hand_over_s=HAND_OVER_S)
        link.start()
        link.write(encode_command(CMD_START))
        time.sleep(seconds)
        link.stop()
    return listener


def test_headless_hand_overs_carry_several_reads_that_split_the_bytes_in_order():
    got = hand_overs(BATCH_S)
    steady = got.got[2:]  # the first reads: the handshake's silence, then the backlog
    per_hand_over = np.mean([len(reads) for _, _, reads in steady])
    assert HAND_OVER_S / BATCH_S - 1 <= per_hand_over <= HAND_OVER_S / BATCH_S + 0.5
    for size, host_time, reads in got.got:
        ends = [r.end for r in reads]
        times = [r.host_time for r in reads]
        assert ends[-1] == size and (np.diff([0, *ends]) > 0).all()
        assert times[-1] == host_time and (np.diff(times) > 0).all()
    # read by read, the decoded stream is whole, and each sample keeps its read's time (reads
    # JOIN_S apart: those closer, as the first few after the start, are decoded together)
    seq = np.concatenate([r.seq for r in got.readings]).astype(np.int64)
    assert len(seq) > 1000 and (np.diff(seq) == 1).all()
    apart = [(r, reads) for r, (_, _, reads) in zip(got.readings[2:], steady, strict=True)
             if len(reads) > 1 and np.diff([read.host_time for read in reads]).min() >= JOIN_S]
    assert len(apart) >= len(steady) / 2  # at 1 kHz, reads BATCH_S apart are all apart
    for readings, reads in apart:
        assert set(np.unique(readings.read_times)) <= {r.host_time for r in reads}
        assert len(np.unique(readings.read_times)) > 1


def test_with_a_window_every_read_is_handed_over_alone():
    got = hand_overs(0.0, seconds=0.5)
    assert len(got.got) > 100 and all(len(reads) == 1 for _, _, reads in got.got)
    assert all(r.read_times is None for r in got.readings)


def test_a_recording_keeps_each_reads_time_and_its_clock_observation(tmp_path):
    """A headless recording over bursty delivery: a host time per read (about 1/BATCH_S a
    second, not 1/HAND_OVER_S), and each stored clock pair is the least-delayed newest
    sample of all the reads in its quarter second of device time."""
    sim = Simulator(tmp_path, "--clock-ppm", "300", "--burst-ms", "1,16", "--seed", "5")
    session = RecordingSession(SessionOptions(port=sim.path, out=tmp_path / "s.h5"))
    try:
        session.start()
        time.sleep(6.0)
    finally:
        session.stop()
        sim.stop()
    assert session.error is None
    rec = open_recording(tmp_path / "s.h5")
    host, tick = rec.host_time, rec.device_tick_us
    newest = np.flatnonzero(np.diff(host) != 0).tolist() + [len(host) - 1]  # of each read
    reads_per_s = len(newest) / (host[-1] - host[0])
    assert 0.6 / BATCH_S <= reads_per_s <= 1.2 / BATCH_S and reads_per_s > 1.5 / HAND_OVER_S
    delay = host[newest] - tick[newest] / 1e6
    bins = tick[newest] // round(BIN_S * 1e6)
    expected = []  # the least-delayed read of each bin (the first of equals), in order
    for b in np.unique(bins):
        mine = np.flatnonzero(bins == b)
        best = newest[mine[np.argmin(delay[mine])]]
        expected.append((host[best], tick[best]))
    pairs = rec.clock_pairs
    assert list(zip(pairs["host_time"], pairs["device_tick_us"], strict=True)) == expected


def device_block(ticks_us: list[int]) -> Readings:
    n = len(ticks_us)
    return Readings(np.zeros(n, np.int32), np.zeros(n, np.uint8),
                    np.arange(n, dtype=np.uint16), np.asarray(ticks_us, np.uint32))


def test_the_earlier_read_of_a_hand_over_sets_the_fit_when_it_was_less_delayed():
    """Two reads in one block: the first's newest sample came 2 ms after it was taken, the
    second's 5 ms. The fit runs under both, through the first (the last alone would say
    5 ms); each sample's arrival is its own read's."""
    tl = Timeline()
    block = device_block([0, 1_000, 2_000, 3_000, 4_000, 5_000])
    arrival = np.array([1.004, 1.004, 1.004, 1.010, 1.010, 1.010])
    placed = tl.place(block, arrival)
    assert placed.timestamps == pytest.approx(1.002 + np.arange(6) / 1000, abs=1e-12)
    assert tl.finish() == [(1.004, 2_000)]  # the bin's least-delayed observation
