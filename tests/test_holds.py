"""Tests of hold segmentation (analysis.holds), validated against the simulated therapist.

The simulator knows exactly when each hold starts and ends (crossings of 5 % of target), so the
detector is checked against that ground truth through the real ADC model (noise, rounding),
for a steady expert and a novice with re-press dips and 4 % tremor. Synthetic signals pin down
the edge cases: debounce, hysteresis, lift-off merging, chatter, gaps, chunking.
"""

from __future__ import annotations

import functools
import math
from dataclasses import astuple, fields

import numpy as np
import pytest

from analysis.holds import (
    Hold,
    HoldConfig,
    HoldDetector,
    HoldEvent,
    config_for_band,
    segment_holds,
)
from firmware_bridge.sim.therapist import THRESHOLD_FRAC, HoldTruth, Therapist
from tests.conftest import therapist_stream

FS = 1000.0
CYCLES = 3
TOL_S = 0.050  # start/end agreement with the simulator's truth
EXACT = ("index", "start_s", "end_s", "duration_s", "peak_n", "peak_s", "time_to_band_s",
         "samples", "complete")


class Stream:
    """Three cycles of a simulated therapist at 1 kHz through the ADC, back in newtons."""

    def __init__(self, profile: str, seed: int) -> None:
        self.th, self.end_s, self.t, self.true_n, self.force_n = therapist_stream(
            profile, seed, cycles=CYCLES, fs=FS)
        self.truth: list[HoldTruth] = self.th.holds_between(0.0, self.end_s)
        self.config = config_for_band(self.th.band_low_n, self.th.band_high_n)


@functools.cache
def stream(profile: str, seed: int) -> Stream:
    """Cached: generating the stream is the expensive part of these tests."""
    return Stream(profile, seed)


def feed_chunks(det: HoldDetector, t: np.ndarray, f: np.ndarray,
                sizes: list[int] | None = None) -> list[HoldEvent]:
    """Feed ``t, f`` in chunks of the given sizes (one chunk if None), then finish."""
    events: list[HoldEvent] = []
    if sizes is None:
        events += det.feed(t, f)
    else:
        a = 0
        for s in sizes:
            events += det.feed(t[a:a + s], f[a:a + s])
            a += s
        assert a >= t.size
    return events + det.finish()


def random_sizes(n: int, rng: np.random.Generator) -> list[int]:
    """Chunk sizes summing to >= n: half tiny (1-50 samples), half up to 5000."""
    out: list[int] = []
    total = 0
    while total < n:
        s = int(rng.integers(1, 50)) if rng.random() < 0.5 else int(rng.integers(1, 5000))
        out.append(s)
        total += s
    return out


def in_band_time(th: Therapist, h: HoldTruth, low: float, high: float) -> float:
    """Time in band of the noise-free simulated force over [start_s, end_s], on a 10 kHz grid."""
    fine = 10_000.0
    t = np.arange(math.ceil(h.start_s * fine), math.floor(h.end_s * fine)) / fine
    f = th.force(t)
    return np.count_nonzero((f >= low) & (f <= high)) / fine


# ---------------------------------------------------------------- configuration


def test_config_for_band_thresholds_match_the_simulator_definition() -> None:
    th = Therapist("expert")
    cfg = config_for_band(th.band_low_n, th.band_high_n)
    assert cfg.off_n == pytest.approx(THRESHOLD_FRAC * th.target_n)  # 1.5 N at 30 N
    assert cfg.on_n == pytest.approx(2 * cfg.off_n)
    assert cfg.off_n < cfg.on_n < cfg.band_low_n
    explicit = config_for_band(30.0, 50.0, target_n=35.0)
    assert explicit.off_n == pytest.approx(1.75) and explicit.band_high_n == 50.0
    # PPT ramp (no lower band): the target is 20 % of the cut-off, so off at 1 % of it
    ppt = config_for_band(0.0, 60.0)
    assert (ppt.off_n, ppt.on_n) == pytest.approx((0.6, 1.2))
    # no band at all: fixed 1 N / 2 N, and every force counts as "in band"
    none = config_for_band(math.nan, math.nan)
    assert (none.off_n, none.on_n, none.band_low_n) == (1.0, 2.0, 0.0)
    assert none.band_high_n > 1e300
    with pytest.raises(ValueError):
        config_for_band(40.0, 30.0)  # upside-down band


@pytest.mark.parametrize("kwargs", [
    {"on_n": 1.0, "off_n": 1.0, "band_low_n": 5.0, "band_high_n": 6.0},
    {"on_n": 2.0, "off_n": 1.0, "band_low_n": 7.0, "band_high_n": 6.0},
    {"on_n": 2.0, "off_n": 1.0, "band_low_n": 5.0, "band_high_n": 6.0, "min_hold_s": -1.0},
    {"on_n": 2.0, "off_n": 1.0, "band_low_n": 5.0, "band_high_n": 6.0, "max_dt_s": 0.0},
    {"on_n": math.nan, "off_n": 1.0, "band_low_n": 5.0, "band_high_n": 6.0},
])
def test_config_rejects_nonsense(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        HoldConfig(**kwargs)


# ---------------------------------------------------------------- against the simulator


@pytest.mark.parametrize("profile", ["expert", "novice"])
def test_a_hold_cut_off_by_the_end_is_incomplete_a_released_one_is_not(profile: str) -> None:
    s = stream(profile, 1)
    g = s.truth[4]
    # the data ends mid-plateau: the fifth hold is still pressed, so it is incomplete
    cut = s.t <= 0.5 * (g.plateau_start_s + g.release_s)
    holds = segment_holds(s.t[cut], s.force_n[cut], s.config)
    assert [h.complete for h in holds] == [True] * 4 + [False]
    assert holds[-1].start_s == pytest.approx(g.start_s, abs=TOL_S)
    assert holds[-1].end_s == s.t[cut][-1]
    # the data ends 0.1 s after the release crossed the threshold (inside the 0.3 s merge gap,
    # so no re-press could have been ruled out yet): released, so complete, ending there
    cut = s.t <= g.end_s + 0.1
    holds = segment_holds(s.t[cut], s.force_n[cut], s.config)
    assert [h.complete for h in holds] == [True] * 5
    assert holds[-1].end_s == pytest.approx(g.end_s, abs=TOL_S)


@pytest.mark.parametrize("profile", ["expert", "novice"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holds_match_simulated_truth(profile: str, seed: int) -> None:
    s = stream(profile, seed)
    holds = segment_holds(s.t, s.force_n, s.config)
    assert len(s.truth) == CYCLES * s.th.holds_per_cycle
    assert len(holds) == len(s.truth)  # exact count: no split, no merge, nothing spurious
    start_err = [abs(h.start_s - g.start_s) for h, g in zip(holds, s.truth, strict=True)]
    end_err = [abs(h.end_s - g.end_s) for h, g in zip(holds, s.truth, strict=True)]
    assert max(start_err) < TOL_S, max(start_err)
    assert max(end_err) < TOL_S, max(end_err)
    for i, (h, g) in enumerate(zip(holds, s.truth, strict=True)):
        assert h.index == i and h.complete
        # every re-press dip lies inside the one hold that contains it
        assert all(h.start_s < r < h.end_s for r in g.reprs)
        assert h.peak_n == pytest.approx(g.peak_n, rel=0.25)  # tremor rides on the peak
        assert h.samples == pytest.approx(h.duration_s * FS, abs=2)
        assert h.missing_s == 0.0
        assert 0 <= h.time_in_band_s + h.time_above_s <= h.duration_s


def test_novice_streams_really_contain_dips_and_tremor() -> None:
    """The no-split claim is only tested if the novice truth has re-press dips."""
    dips = sum(len(g.reprs) for seed in (0, 1, 2) for g in stream("novice", seed).truth)
    assert dips >= 30
    s = stream("novice", 0)
    assert all(g.tremor_rms_frac == pytest.approx(0.04) for g in s.truth)


@pytest.mark.parametrize("profile", ["expert", "novice"])
def test_time_in_band_matches_truth_signal(profile: str) -> None:
    s = stream(profile, 0)
    holds = segment_holds(s.t, s.force_n, s.config)
    for h, g in zip(holds, s.truth, strict=True):
        want = in_band_time(s.th, g, s.th.band_low_n, s.th.band_high_n)
        assert want > 1.0  # a meaningful comparison
        assert h.time_in_band_s == pytest.approx(want, rel=0.01)
        assert h.time_to_band_s < g.plateau_start_s - g.start_s + 1.0


def test_chunking_does_not_change_holds_or_events() -> None:
    s = stream("novice", 1)
    whole = feed_chunks(HoldDetector(s.config), s.t, s.force_n)
    sizes = random_sizes(s.t.size, np.random.default_rng(5))
    pieces = feed_chunks(HoldDetector(s.config), s.t, s.force_n, sizes)
    assert len(whole) == 2 * len(s.truth)
    assert [(e.kind, e.at_s) for e in whole] == [(e.kind, e.at_s) for e in pieces]
    for a, b in zip(whole, pieces, strict=True):
        for name in EXACT:  # decided at individual samples: bit-identical
            x, y = getattr(a.hold, name), getattr(b.hold, name)
            assert x == y or (math.isnan(x) and math.isnan(y)), name
        for name in ("mean_n", "time_in_band_s", "time_above_s", "missing_s"):
            assert getattr(a.hold, name) == pytest.approx(getattr(b.hold, name), rel=1e-9)
    offline = segment_holds(s.t, s.force_n, s.config)
    assert [astuple(e.hold) for e in whole if e.kind == "end"] == [astuple(h) for h in offline]


def test_start_event_carries_the_partial_hold() -> None:
    s = stream("expert", 0)
    events = feed_chunks(HoldDetector(s.config), s.t, s.force_n, [1000] * (s.t.size // 1000 + 1))
    assert [e.kind for e in events] == ["start", "end"] * len(s.truth)
    for start, end in zip(events[::2], events[1::2], strict=True):
        part, full = start.hold, end.hold
        assert not part.complete and full.complete
        assert part.index == full.index and part.start_s == full.start_s
        assert start.at_s == part.end_s
        assert start.at_s == pytest.approx(part.start_s + s.config.min_hold_s, abs=2 / FS)
        assert part.samples < full.samples and part.time_in_band_s <= full.time_in_band_s
        # an end is only known once the force has stayed below off_n for merge_gap_s
        assert end.at_s == pytest.approx(full.end_s + s.config.merge_gap_s, abs=2 / FS)


def test_live_view_follows_the_hold() -> None:
    s = stream("novice", 2)
    g = s.truth[0]
    det = HoldDetector(s.config)
    seen = []
    for a in range(0, int((g.end_s + 1.0) * FS), 50):
        det.feed(s.t[a:a + 50], s.force_n[a:a + 50])
        seen.append((float(s.t[min(a + 49, s.t.size - 1)]), det.current))
    before = [cur for t, cur in seen if t < g.start_s]
    during = [cur for t, cur in seen if g.plateau_start_s < t < g.release_s]
    after = [cur for t, cur in seen if t > g.end_s + s.config.merge_gap_s + 0.1]
    assert all(cur is None for cur in before)
    assert during and all(cur is not None and cur.confirmed for cur in during)
    last = during[-1]
    assert last.start_s == pytest.approx(g.start_s, abs=TOL_S)
    assert last.elapsed_s > g.plateau_start_s - g.start_s
    assert last.peak_n >= last.last_n > 0 and last.time_in_band_s > 0
    assert not last.releasing
    assert after and all(cur is None for cur in after)
    releasing = [cur for t, cur in seen if g.end_s < t < g.end_s + s.config.merge_gap_s - 0.05]
    assert releasing and all(cur is not None and cur.releasing for cur in releasing)


# ---------------------------------------------------------------- gaps in the stream


def test_gap_in_stream_is_not_time_in_band() -> None:
    s = stream("expert", 0)
    g = s.truth[4]
    gap0 = g.plateau_start_s + 2.0
    keep = (s.t < gap0) | (s.t >= gap0 + 5.0)  # 5 s of frames lost mid-plateau
    full = segment_holds(s.t, s.force_n, s.config)
    gapped = segment_holds(s.t[keep], s.force_n[keep], s.config)
    assert len(gapped) == len(full)  # the gap does not split or drop the hold
    a, b = full[4], gapped[4]
    assert b.start_s == a.start_s and b.end_s == a.end_s
    assert b.missing_s == pytest.approx(5.0, abs=0.01)
    assert a.time_in_band_s - b.time_in_band_s == pytest.approx(5.0, abs=0.01)
    assert b.time_in_band_s + b.time_above_s <= b.duration_s - 4.99
    for h0, h1 in zip(full[5:], gapped[5:], strict=True):
        assert h1.start_s == h0.start_s and h1.time_in_band_s == pytest.approx(h0.time_in_band_s)


def test_explicit_max_dt_and_gap_while_idle() -> None:
    # 10 s gap while idle at 3 s; then a 2 s gap after which the stream resumes mid-hold
    t = np.concatenate([np.arange(0, 3000), np.arange(13_000, 20_000),
                        np.arange(22_000, 26_000)]) / FS
    f = np.where(((t > 14.0) & (t < 18.0)) | ((t >= 22.0) & (t < 25.0)), 30.0, 0.0)
    cfg = config_for_band(25.5, 34.5, max_dt_s=0.002)
    h, resumed = segment_holds(t, f, cfg)
    assert h.missing_s == 0.0
    assert h.time_in_band_s == pytest.approx(4.0, abs=2 / FS)
    # the crossing was not observed: the hold starts at the first sample, and the gap before
    # it is neither missing time nor time in band of this hold
    assert resumed.start_s == 22.0 and resumed.missing_s == 0.0
    assert resumed.time_in_band_s == pytest.approx(3.0, abs=2 / FS)


# ---------------------------------------------------------------- synthetic edge cases

CFG = HoldConfig(on_n=3.0, off_n=1.5, band_low_n=25.5, band_high_n=34.5, min_hold_s=1.0,
                 merge_gap_s=0.3)


def trapezoid(t: np.ndarray, t0: float, t1: float, level: float, ramp: float = 0.5
              ) -> np.ndarray:
    """A hold: linear ramp up from t0, plateau at ``level``, linear release ending at t1."""
    up = np.clip((t - t0) / ramp, 0, 1)
    down = np.clip((t1 - t) / ramp, 0, 1)
    return level * np.minimum(up, down)


def test_taps_and_light_contact_are_not_holds() -> None:
    t = np.arange(0, 30_000) / FS
    f = (trapezoid(t, 1.0, 1.8, 30.0, ramp=0.2)  # 0.8 s tap: debounced
         + trapezoid(t, 5.0, 15.0, 2.5, ramp=0.2)  # 10 s of contact below on_n
         + trapezoid(t, 20.0, 25.0, 30.0))  # a real hold
    (h,) = segment_holds(t, f, CFG)
    assert h.start_s == pytest.approx(20.0 + 0.5 * 1.5 / 30.0, abs=1e-6)  # interpolated
    assert h.end_s == pytest.approx(25.0 - 0.5 * 1.5 / 30.0, abs=1e-6)
    ramp_mean = 0.5 * (1.5 + 30.0)  # each ramp inside the hold: 1.5 -> 30 N in 0.475 s
    assert h.peak_n == 30.0
    assert h.mean_n == pytest.approx((30.0 * 4.0 + 2 * 0.475 * ramp_mean) / 4.95, rel=1e-3)
    assert h.time_in_band_s == pytest.approx(4.0 + 2 * 0.5 * (1 - 25.5 / 30), abs=2 / FS)
    assert h.time_to_band_s == pytest.approx(0.5 * (25.5 - 1.5) / 30.0, abs=2 / FS)


def test_lift_off_merges_only_within_merge_gap() -> None:
    t = np.arange(0, 30_000) / FS
    short = (t > 5.0) & (t < 5.2)  # 0.2 s off the skin: re-press, same hold
    long = (t > 15.0) & (t < 15.6)  # 0.6 s: a new hold
    f = trapezoid(t, 1.0, 25.0, 30.0, ramp=0.05)
    f[short | long] = 0.0
    holds = segment_holds(t, f, CFG)
    assert len(holds) == 2
    assert holds[0].end_s == pytest.approx(15.0, abs=2 / FS)
    assert holds[1].start_s == pytest.approx(15.6, abs=2 / FS)
    # the samples of the bridged lift-off belong to the hold (mean includes them)
    assert holds[0].samples == pytest.approx((15.0 - 1.0) * FS, abs=3)


def test_chatter_at_threshold_does_not_split_and_end_is_last_crossing() -> None:
    """Strong 10 Hz tremor on a slow release crosses off_n several times: one hold."""
    t = np.arange(0, 20_000) / FS
    base = trapezoid(t, 1.0, 15.0, 30.0, ramp=10.0)  # 3 N/s release
    f = base * (1 + 0.15 * np.sin(2 * np.pi * 10 * t)) + 0.3 * np.sin(2 * np.pi * 9 * t) * (
        base > 0.5)
    above = f >= CFG.off_n
    ups = np.flatnonzero(above[1:] & ~above[:-1])
    downs = np.flatnonzero(~above[1:] & above[:-1])
    assert len(ups) > 1 and len(downs) > 1  # the test signal really chatters
    sizes = random_sizes(t.size, np.random.default_rng(0))
    runs = [feed_chunks(HoldDetector(CFG), t, f),  # crossings bridged vectorised
            feed_chunks(HoldDetector(CFG), t, f, sizes),
            feed_chunks(HoldDetector(CFG), t, f, [1] * t.size)]  # the scalar walk only
    for events in runs:
        (h,) = [e.hold for e in events if e.kind == "end"]
        assert h.start_s == pytest.approx(t[ups[0]], abs=1 / FS)  # first upward crossing
        assert h.end_s == pytest.approx(t[downs[-1]], abs=1 / FS)  # last downward crossing
        assert [(e.kind, e.at_s, e.hold.start_s, e.hold.end_s) for e in events] == [
            (e.kind, e.at_s, e.hold.start_s, e.hold.end_s) for e in runs[0]]


def test_confirmation_falling_inside_a_bridged_dip() -> None:
    """The debounce ends during a brief lift-off: confirmed at the first sample after it."""
    t = np.arange(0, 6000) / FS
    f = trapezoid(t, 1.0, 5.0, 30.0, ramp=0.01)
    f[(t > 1.9) & (t < 2.1)] = 0.0  # start ~1.0005 s, so start + min_hold_s is in the dip
    for sizes in (None, [1] * t.size, [1950, 100, 3950]):
        events = feed_chunks(HoldDetector(CFG), t, f, sizes)
        assert [e.kind for e in events] == ["start", "end"]
        assert events[0].at_s == pytest.approx(2.1, abs=1.5 / FS)
        assert f[round(events[0].at_s * FS)] >= CFG.off_n


def test_non_finite_samples_are_dropped() -> None:
    t = np.arange(0, 10_000) / FS
    f = trapezoid(t, 1.0, 8.0, 30.0)
    bad = f.copy()
    bad[4000:4003] = np.nan
    bad[5000] = np.inf
    (h,) = segment_holds(t, bad, CFG)
    (ref,) = segment_holds(t, f, CFG)
    assert h.start_s == ref.start_s and h.end_s == ref.end_s
    assert h.samples == ref.samples - 4
    assert h.time_in_band_s == pytest.approx(ref.time_in_band_s, abs=1e-9)


def test_finish_closes_an_open_hold_at_the_last_sample() -> None:
    t = np.arange(0, 5000) / FS
    f = np.where(t > 1.0, 30.0, 0.0)
    det = HoldDetector(CFG)
    assert det.feed(t[:1500], f[:1500]) == []
    early = det.current  # shown at once, before the debounce confirms it
    assert early is not None and not early.confirmed and early.elapsed_s < CFG.min_hold_s
    events = det.feed(t[1500:], f[1500:])
    assert [e.kind for e in events] == ["start"]
    assert det.current is not None and det.current.confirmed
    (end,) = det.finish()
    assert end.kind == "end" and end.hold.end_s == t[-1]
    assert not end.hold.complete  # still pressed at the last sample: cut off, not done
    assert det.current is None and det.holds_found == 1
    # a fresh stream afterwards: nothing is interpolated across the two
    det.feed(t + 10.0, f)
    (again,) = [e for e in det.finish() if e.kind == "end"]
    assert again.hold.index == 1 and again.hold.start_s == pytest.approx(11.0, abs=1 / FS)


def test_short_stream_still_uses_automatic_interval() -> None:
    det = HoldDetector(CFG)
    assert det.feed(np.arange(5) / FS, np.zeros(5)) == []  # buffered until 16 steps
    assert det.max_dt_s is None
    det.finish()
    assert det.max_dt_s == pytest.approx(5 / FS)


def test_hold_fields_are_their_declared_python_types() -> None:
    """Holds go to the file, the table and the UI: each field is exactly the plain type it
    declares (no numpy scalar, no int where a float is declared)."""
    s = stream("novice", 0)
    for h in segment_holds(s.t, s.force_n, s.config):
        assert type(h) is Hold
        assert {f.name: type(getattr(h, f.name)).__name__ for f in fields(Hold)} == {
            f.name: f.type for f in fields(Hold)}
