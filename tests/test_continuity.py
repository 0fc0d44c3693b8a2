"""Sequence/tick unwrapping and gap detection across wrap-around and device restarts."""

import numpy as np

from firmware_bridge.continuity import ContinuityTracker


def wire(n, start=0, rate=1000.0, tick0=0):
    k = np.arange(start, start + n)
    return k % 65536, (tick0 + np.round(k * 1e6 / rate).astype(np.int64)) % 2**32


def test_clean_stream_across_sequence_wrap_has_no_gaps():
    seq, tick = wire(200_000, start=65_000)
    t = ContinuityTracker(1000.0)
    parts = [t.feed(seq[a:a + 7_777], tick[a:a + 7_777]) for a in range(0, 200_000, 7_777)]
    un = np.concatenate([p.sequence for p in parts])
    assert (np.diff(un) == 1).all() and un[0] == 65_000
    assert t.gap_count == 0 and t.missing_frames == 0


def test_gap_is_counted_with_its_size_across_wrap():
    seq, tick = wire(70_000, start=65_530)
    keep = np.ones(70_000, bool)
    keep[3:10] = False  # crosses 65535 -> 0
    keep[50_000] = False
    t = ContinuityTracker(1000.0)
    out = t.feed(seq[keep], tick[keep])
    assert [(g.index, g.missing) for g in out.gaps] == [(3, 7), (49_993, 1)]
    assert t.missing_frames == 8
    assert out.sequence[-1] == 65_530 + 70_000 - 1


def test_gap_longer_than_a_counter_turn_is_resolved_from_the_tick():
    seq, tick = wire(300_000, rate=100_000.0)
    keep = np.ones(300_000, bool)
    keep[1000:1000 + 65_536 + 500] = False  # 0.66 s outage: counter alone would say 500
    t = ContinuityTracker(100_000.0)
    out = t.feed(seq[keep], tick[keep])
    assert [g.missing for g in out.gaps] == [65_536 + 500]
    assert (out.sequence == np.flatnonzero(keep)).all()


def test_without_nominal_rate_a_gap_is_taken_modulo_the_counter():
    seq, tick = wire(10)
    t = ContinuityTracker()
    out = t.feed(seq[[0, 1, 5]], tick[[0, 1, 5]])
    assert [g.missing for g in out.gaps] == [3]


def test_device_restart_starts_a_new_epoch_and_stays_monotonic():
    s1, k1 = wire(100, start=0, tick0=5_000_000)
    s2, k2 = wire(50, start=0, tick0=0)  # power cycle: counter and clock back to 0
    t = ContinuityTracker(1000.0)
    a = t.feed(s1, k1)
    b = t.feed(s2, k2)
    assert b.restarts == [0] and t.gap_count == 0
    allseq = np.concatenate((a.sequence, b.sequence))
    alltick = np.concatenate((a.tick_us, b.tick_us))
    assert (np.diff(allseq) == 1).all() and (np.diff(alltick) > 0).all()


def test_tick_wrap_is_unwrapped():
    seq, tick = wire(5000, tick0=2**32 - 1_000_000)
    out = ContinuityTracker(1000.0).feed(seq, tick)
    assert (np.diff(out.tick_us) == 1000).all()
    assert out.tick_us[-1] > 2**32


def test_loss_of_exactly_one_counter_turn_is_not_mistaken_for_contiguity():
    seq, tick = wire(200_000, rate=100_000.0)
    keep = np.ones(200_000, bool)
    keep[5000:5000 + 65_536] = False  # the counter after the outage looks like the next one
    t = ContinuityTracker(100_000.0)
    first = t.feed(seq[:5000], tick[:5000])
    rest = t.feed(seq[keep][5000:], tick[keep][5000:])
    assert not first.gaps and [g.missing for g in rest.gaps] == [65_536]
