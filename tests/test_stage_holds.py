"""The hold tracker: the one detector per trigger point, repetitions, rows and auto-advance."""

from __future__ import annotations

import math

import numpy as np

from recorder.hold_tracker import HoldTracker
from schemas.events import Event
from schemas.events import Hold as HoldRow
from schemas.session_protocol import Dose, SessionProtocol, TriggerPoint

FS = 100.0


def protocol(repetitions: int) -> SessionProtocol:
    dose = Dose(unit="N", target_low=30.0, target_high=50.0, min_hold_s=2.0,
                repetitions=repetitions)
    points = [TriggerPoint(name, name, "", "", dose) for name in ("a", "b", "c")]
    return SessionProtocol(name="t", description="", unit="N", contact_area_cm2=None,
                           kind="static", points=tuple(points))


def presses(n: int, hold_s: float = 3.0, rest_s: float = 2.0, level: float = 40.0):
    """``n`` square presses at ``level`` N, each ``hold_s`` long, ``rest_s`` apart."""
    period = hold_s + rest_s
    t = np.arange(int(n * period * FS) + int(FS)) / FS
    force = np.where((t % period >= 1.0) & (t % period < 1.0 + hold_s) & (t < n * period),
                     level, 0.0)
    return t, force


def feed(tracker: HoldTracker, t, force, block: int = 7) -> list:
    out = []
    for a in range(0, len(t), block):
        out += tracker.feed(t[a:a + block], force[a:a + block], now_s=99.0, samples=a + block)
    return out


def test_each_finished_hold_is_a_repetition_and_a_row_then_the_point_advances():
    tracker = HoldTracker(protocol(repetitions=2), math.nan)
    t, force = presses(3)
    out = feed(tracker, t, force)
    rows = [x for x in out if isinstance(x, HoldRow)]
    kinds = [x.kind for x in out if isinstance(x, Event)]
    assert kinds == ["hold_start", "hold_end", "hold_start", "hold_end", "trigger_point",
                     "hold_start", "hold_end"]
    assert [(r.trigger_point, r.repetition) for r in rows] == [("a", 1), ("a", 2), ("b", 1)]
    assert [h.point_index for h in tracker.holds] == [0, 0, 1]
    assert tracker.point_index == 1
    first = rows[0]
    assert abs(first.duration - 3.0) < 0.02 and abs(first.mean_n - 40.0) < 1e-9
    assert (first.target_low_n, first.target_high_n) == (30.0, 50.0) and not first.blind
    assert tracker.holds[0].hold.start_s == first.start


def test_without_auto_advance_the_point_stays_and_moves_only_when_told():
    tracker = HoldTracker(protocol(repetitions=1), math.nan, auto_advance=False)
    t, force = presses(2)
    feed(tracker, t, force)
    assert tracker.point_index == 0 and len(tracker.holds) == 2
    (moved,) = tracker.move_to(7, time_s=1.5, sample_index=42)  # clamped to the last point
    assert (moved.kind, moved.value, moved.text, moved.sample_index) == (
        "trigger_point", 2, "c", 42)
    assert tracker.move_to(2, 1.6, 43) == []


def test_blind_trials_mark_the_rows_and_the_live_hold_is_shown():
    tracker = HoldTracker(protocol(repetitions=5), math.nan)
    assert [e.kind for e in tracker.set_blind(True, 0.0, 0)] == ["blind_on"]
    assert tracker.set_blind(True, 0.1, 1) == []
    t, force = presses(1)
    half = int(2.5 * FS)
    tracker.feed(t[:half], force[:half], 0.0, half)
    assert tracker.live is not None and tracker.live.confirmed
    rows = [x for x in tracker.feed(t[half:], force[half:], 0.0, len(t))
            if isinstance(x, HoldRow)]
    assert rows[0].blind and tracker.live is None


def test_no_protocol_means_no_band_and_no_points():
    tracker = HoldTracker(None, math.nan)
    assert all(math.isnan(v) for v in tracker.band_n())
    assert tracker.move_to(3, 0.0, 0) == [] and tracker.label(0) == ""
    t, force = presses(1, level=10.0)  # the fallback thresholds: 2 N on, 1 N off
    assert [x.kind for x in feed(tracker, t, force) if isinstance(x, Event)] == [
        "hold_start", "hold_end"]


def test_the_protocol_ends_at_the_last_points_last_repetition_then_no_hold_counts():
    tracker = HoldTracker(protocol(repetitions=1), math.nan)
    t, force = presses(5)
    out = feed(tracker, t, force)
    kinds = [(x.kind, x.text) for x in out if isinstance(x, Event)]
    assert kinds[-2:] == [("hold_end", "c"), ("protocol_complete", "t")]
    assert tracker.complete and [h.point_index for h in tracker.holds] == [0, 1, 2]
    assert [(r.trigger_point, r.repetition) for r in out if isinstance(r, HoldRow)] == [
        ("a", 1), ("b", 1), ("c", 1)]
    assert tracker.live is None  # the 4th and 5th presses are not holds
    # moving back to a point works it again: its next press counts, as repetition 2
    tracker.move_to(1, 30.0, 3000)
    assert not tracker.complete
    t2, force2 = presses(1)
    rows = [x for x in feed(tracker, t2 + 40.0, force2) if isinstance(x, HoldRow)]
    assert [(r.trigger_point, r.repetition) for r in rows] == [("b", 2)]
