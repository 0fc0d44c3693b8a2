"""The timeline stage: sequence numbers, lost frames and the device clock in session seconds."""

from __future__ import annotations

import numpy as np

from recorder.source import Readings
from recorder.timeline import Timeline


def device_block(seq, tick_us) -> Readings:
    n = len(seq)
    return Readings(np.zeros(n, np.int32), np.zeros(n, np.uint8),
                    np.asarray(seq, np.uint16), np.asarray(tick_us, np.uint32))


def test_device_clock_is_anchored_at_the_first_read_and_gaps_are_placed():
    tl = Timeline()
    tl.nominal_rate_hz = 1000.0
    a = tl.place(device_block([10, 11, 12], [5_000, 6_000, 7_000]), host=2.0)
    assert a.timestamps.tolist() == [2.0, 2.001, 2.002] and a.first == 0 and not a.gaps
    b = tl.place(device_block([15, 16], [10_000, 11_000]), host=9.0)  # 2 frames lost
    assert b.timestamps.tolist() == [2.005, 2.006]  # the device clock, not the late read
    assert b.first == 3 and [(g.index, g.missing) for g in b.gaps] == [(0, 2)]
    assert b.sequence.tolist() == [15, 16] and tl.samples == 5
    assert tl.continuity.missing_frames == 2


def test_a_device_restart_starts_a_new_epoch_at_the_host_time():
    tl = Timeline()
    tl.place(device_block([0, 1], [1_000_000, 1_001_000]), host=1.0)
    after = tl.place(device_block([0, 1], [500, 1_500]), host=30.0)  # clock went back
    assert after.timestamps.tolist() == [30.0, 30.001]
    assert (np.diff(np.concatenate([[1], after.sequence])) >= 1).all()


def test_gauge_readings_are_numbered_on_arrival_and_stamped_with_the_host_time():
    tl = Timeline()
    raw = np.array([1, 2, 3], np.int32)
    first = tl.place(Readings(raw, np.zeros(3, np.uint8)), host=1.25)
    second = tl.place(Readings(raw[:1], np.zeros(1, np.uint8)), host=1.5)
    assert first.timestamps.tolist() == [1.25] * 3 and first.tick_us.tolist() == [1_250_000] * 3
    assert first.sequence.tolist() == [0, 1, 2] and second.sequence.tolist() == [3]
    assert second.first == 3 and not second.gaps
