"""Events read off the stream: the button edges and the live warnings."""

from __future__ import annotations

import numpy as np

from firmware_bridge.frames import FLAG_BUTTON, FLAG_SATURATED
from recorder.watch import ButtonEdges, LiveWarnings, TareGuard
from tests.test_stage_tare import curve


def test_button_edges_across_blocks():
    edges = ButtonEdges()
    t = np.arange(4) / 100
    down = edges.feed(np.array([0, 0, FLAG_BUTTON, FLAG_BUTTON], np.uint8), t,
                      row=lambda i: 10 + i)
    assert [(e.kind, e.sample_index, e.time) for e in down] == [("button_down", 12, 0.02)]
    assert edges.feed(np.full(4, FLAG_BUTTON, np.uint8), t, row=lambda i: 14 + i) == []
    up = edges.feed(np.zeros(4, np.uint8), t + 1, row=lambda i: 18 + i)
    assert [(e.kind, e.sample_index) for e in up] == [("button_up", 18)]


def test_warnings_begin_once_and_last_while_the_condition_does():
    cal = curve()  # calibrated up to 100 N
    w = LiveWarnings(cal)
    flags = np.zeros(10, np.uint8)
    assert w.watch(np.zeros(10), flags, False, 30.0, 1.0) == [] and w.now == {}
    sat = flags.copy()
    sat[3] = FLAG_SATURATED
    notes = w.watch(np.full(10, 120.0), sat, True, 30.0, 2.0)
    assert sorted(w.now) == ["range", "saturated"] and len(notes) == 2
    assert all(n.kind == "note" and n.time == 2.0 for n in notes)
    assert w.watch(np.full(10, 120.0), sat, True, 30.0, 3.0) == []  # not again
    # rest is judged once the force has been steady for 2 s: +3 N is beyond 2 % of 100 N
    assert w.watch(np.full(10, 3.0), flags, False, 30.0, 4.0) == []
    assert w.watch(np.full(10, 3.0), flags, False, 30.0, 5.0) == [] and "zero" not in w.now
    moved = w.watch(np.full(10, 3.0), flags, False, 30.0, 6.5)
    assert list(w.now) == ["zero"] and "+3.0 N" in moved[0].text and "press T" in moved[0].text
    assert w.watch(np.full(10, 25.0), flags, True, 30.0, 7.0) == []  # a hold: it stays
    assert list(w.now) == ["zero"]
    w.watch(np.full(10, 0.2), flags, False, 30.0, 8.0)
    assert w.watch(np.full(10, 0.2), flags, False, 30.0, 10.5) == [] and w.now == {}


def test_a_thumb_on_its_way_in_or_a_short_rest_is_never_taken_for_a_moved_zero():
    w = LiveWarnings(curve())
    flags = np.zeros(100, np.uint8)
    for k in range(30):  # 3 s of approach, 0 to 15 N, before the hold detector starts a hold
        t0 = k * 0.1
        assert w.watch(np.linspace(t0, t0 + 0.1, 100) * 5.0, flags, False, 30.0, t0 + 0.1) == []
    assert w.watch(np.full(100, 15.0), flags, False, 30.0, 4.0) == []  # steady for 1 s only
    assert w.now == {}


def test_a_tare_under_load_is_refused_and_a_second_press_within_2_s_forces_it():
    guard = TareGuard()
    rest = np.random.default_rng(1).normal(0.05, 0.02, 1000)
    assert guard.judge(0.0, rest, holding=False, full_scale=100.0) == (True, "")
    assert guard.judge(1.0, rest, holding=True, full_scale=100.0) == (
        False, "a hold is in progress")
    assert guard.judge(2.5, rest, holding=True, full_scale=100.0) == (
        True, "a hold is in progress")  # forced, and said so
    assert guard.judge(3.0, rest, holding=True, full_scale=100.0)[0] is False  # forcing is spent
    assert guard.judge(6.0, rest, holding=True, full_scale=100.0)[0] is False  # too late
    allowed, why = TareGuard().judge(0.0, np.linspace(0, 8, 1000), False, 100.0)
    assert not allowed and "unsteady" in why
    allowed, why = TareGuard().judge(0.0, np.full(1000, 42.0), False, 100.0)
    assert not allowed and "under load (+42.0 N" in why
