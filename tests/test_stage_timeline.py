"""The timeline stage: sequence numbers, lost frames and the fitted device clock in session
seconds, with the clock pairs the file keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recorder.source import Readings
from recorder.timeline import Timeline


def device_block(seq, tick_us) -> Readings:
    n = len(seq)
    return Readings(np.zeros(n, np.int32), np.zeros(n, np.uint8),
                    np.asarray(seq, np.uint16), np.asarray(tick_us, np.uint32))


def test_the_first_read_maps_its_newest_sample_to_its_arrival_and_gaps_are_placed():
    tl = Timeline()
    tl.nominal_rate_hz = 1000.0
    a = tl.place(device_block([10, 11, 12], [5_000, 6_000, 7_000]), host=2.0)
    assert a.timestamps == pytest.approx([1.998, 1.999, 2.0], abs=1e-12)
    assert a.first == 0 and not a.gaps
    b = tl.place(device_block([15, 16], [10_000, 11_000]), host=9.0)  # 2 frames lost
    assert b.timestamps == pytest.approx([2.003, 2.004], abs=1e-12)  # not the late read
    assert b.first == 3 and [(g.index, g.missing) for g in b.gaps] == [(0, 2)]
    assert b.sequence.tolist() == [15, 16] and tl.samples == 5
    assert tl.continuity.missing_frames == 2


def test_after_a_read_with_less_delay_timestamps_catch_up_with_the_fit_at_half_speed():
    tl = Timeline()
    a = tl.place(device_block([0, 1], [0, 1_000]), host=1.005)  # the newest sample 4 ms late
    b = tl.place(device_block([2, 3], [2_000, 3_000]), host=1.0051)  # 2.1 ms late
    c = tl.place(device_block([4, 5], [4_000, 5_000]), host=1.020)
    d = tl.place(device_block([6], [6_000]), host=1.030)
    assert a.timestamps == pytest.approx([1.004, 1.005], abs=1e-12)
    # the fit now puts b at 1.0041 and 1.0051, before or at a's last sample (1.005):
    # from there the timestamps run at half speed until they meet the fit, in c
    assert b.timestamps == pytest.approx([1.0055, 1.006], abs=1e-12)
    assert c.timestamps == pytest.approx([1.0065, 1.0071], abs=1e-12)
    assert d.timestamps == pytest.approx([1.0081], abs=1e-12)  # on the fit: 1.0021 + device s


def test_a_drifting_device_clock_is_fitted_to_the_host_clock():
    """A clock 5000 ppm fast read every 3-16 ms, each read arriving 0.1-3 ms late."""
    rng = np.random.default_rng(1)
    rate, ppm, seconds = 1000.0, 5000.0, 30.0
    tick = np.arange(int(seconds * rate)) * 1000  # device µs
    true = 3.0 + tick / 1e6 / (1 + ppm * 1e-6)
    tl, stamped, i = Timeline(), [], 0
    reads = 3.0 + np.cumsum(rng.uniform(0.003, 0.016, int(seconds / 0.003)))
    for at in reads[reads < true[-1]]:
        j = int(np.searchsorted(true, at, side="right"))
        if j > i:
            host = float(at + rng.uniform(1e-4, 3e-3))
            stamped.append(tl.place(device_block(np.arange(i, j) % 65536, tick[i:j]), host)
                           .timestamps)
            i = j
    error = np.concatenate(stamped) - true[:i]
    assert np.all(np.diff(np.concatenate(stamped)) > 0)
    assert np.percentile(np.abs(error[5000:]), 99) < 1e-3  # after 5 s of device time
    assert np.abs(error[10000:]).max() < 0.5e-3  # the fit settles as the span grows
    assert tl.clock.fit().drift_ppm == pytest.approx(ppm, abs=30)


def test_clock_pairs_are_the_least_delay_read_of_each_quarter_second_of_device_time():
    tl = Timeline()
    reads = [(0, 1_000, 10.0030), (1, 400_000, 10.4005), (2, 900_000, 10.9080),
             (3, 1_200_000, 11.2010), (4, 1_700_000, 11.7040), (5, 2_100_000, 12.1000)]
    pairs = []
    for seq, tick, host in reads:
        tl.place(device_block([seq], [tick]), host)
        pairs += tl.take_pairs()
    # a bin closes when a read falls in a later one; the bin of tick 2.1 s is still open
    assert pairs == [(10.0030, 1_000), (10.4005, 400_000), (10.9080, 900_000),
                     (11.2010, 1_200_000), (11.7040, 1_700_000)]
    assert tl.take_pairs() == []


def test_a_device_restart_starts_a_new_fit_and_closes_the_old_epochs_pair():
    tl = Timeline()
    tl.place(device_block([0, 1], [1_000_000, 1_001_000]), host=1.0)
    after = tl.place(device_block([0, 1], [500, 1_500]), host=30.0)  # clock went back
    assert after.timestamps == pytest.approx([29.999, 30.0], abs=1e-12)
    assert (np.diff(np.concatenate([[1], after.sequence])) >= 1).all()
    assert tl.take_pairs() == [(1.0, 1_001_000)]
    # the file marks the new epoch at its first sample, for palpation refit
    assert [(e.kind, e.sample_index) for e in after.events] == [("device_restart", 2),
                                                                ("clock_fit", 2)]
    assert after.events[0].time == pytest.approx(29.999, abs=1e-12)
    assert after.events[0].value == after.tick_us[0] == 1_001_001  # where the epoch begins
    assert json.loads(after.events[1].text)["offset_s"] == pytest.approx(30.0 - 1.002001)


def test_a_clock_fit_event_marks_the_first_sample_stamped_with_each_refreshed_fit():
    tl = Timeline()
    a = tl.place(device_block([0, 1], [0, 1_000]), host=1.005)
    b = tl.place(device_block([2, 3], [2_000, 3_000]), host=1.0051)  # less delay: a new fit
    c = tl.place(device_block([4, 5], [4_000, 5_000]), host=1.020)  # more delay: the same fit
    assert [(e.kind, e.sample_index, e.time) for e in a.events] == [("clock_fit", 0, 1.004)]
    (refreshed,) = b.events
    assert (refreshed.kind, refreshed.sample_index, refreshed.value) == ("clock_fit", 2, 0.0)
    assert refreshed.time == b.timestamps[0]  # where it was first applied (catching up)
    fit = json.loads(refreshed.text)
    assert fit == {"offset_s": pytest.approx(1.0021, abs=1e-12), "rate": 1.0, "from_sample": 2}
    assert len(refreshed.to_row()[4]) == len(refreshed.text)  # not cut to the file's 120 bytes
    assert c.events == []


def test_finish_gives_the_open_bins_pair_too():
    tl = Timeline()
    tl.place(device_block([0], [1_000]), host=10.0030)
    tl.place(device_block([1], [400_000]), host=10.4005)
    assert tl.take_pairs() == [(10.0030, 1_000)]  # the bin of 0.4 s is still open
    assert tl.finish() == [(10.4005, 400_000)]
    assert tl.take_pairs() == []


def test_gauge_readings_are_numbered_on_arrival_and_stamped_with_the_host_time():
    tl = Timeline()
    raw = np.array([1, 2, 3], np.int32)
    first = tl.place(Readings(raw, np.zeros(3, np.uint8)), host=1.25)
    second = tl.place(Readings(raw[:1], np.zeros(1, np.uint8)), host=1.5)
    assert first.timestamps.tolist() == [1.25] * 3 and first.tick_us.tolist() == [1_250_000] * 3
    assert first.sequence.tolist() == [0, 1, 2] and second.sequence.tolist() == [3]
    assert second.first == 3 and not second.gaps
    assert tl.take_pairs() == []  # a gauge has no device clock to fit


def test_a_block_the_file_leaves_out_points_its_events_at_the_next_row_recorded():
    """While paused a block reaches no row: a restart in it is marked at the row the next
    recorded sample gets, and rows after it follow the file, not the samples placed."""
    tl = Timeline()
    tl.place(device_block([0, 1, 2], [1_000_000, 1_001_000, 1_002_000]), host=1.0, row=0)
    paused = tl.place(device_block([0, 1], [500, 1_500]), host=30.0, row=3, recorded=False)
    assert [(e.kind, e.sample_index) for e in paused.events] == [("device_restart", 3),
                                                                 ("clock_fit", 3)]
    assert json.loads(paused.events[1].text)["from_sample"] == 3
    assert (paused.row(0), paused.row(1)) == (3, 3)
    resumed = tl.place(device_block([5, 6], [5_500, 6_500]), host=30.01, row=3)
    assert [g.index for g in resumed.gaps] == [0] and resumed.row(1) == 4 and tl.samples == 7
