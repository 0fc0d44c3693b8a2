"""Events read off the stream: the button edges and the live warnings."""

from __future__ import annotations

import numpy as np

from firmware_bridge.frames import FLAG_BUTTON, FLAG_SATURATED
from recorder.watch import ButtonEdges, LiveWarnings
from tests.test_stage_tare import curve


def test_button_edges_across_blocks():
    edges = ButtonEdges()
    t = np.arange(4) / 100
    down = edges.feed(np.array([0, 0, FLAG_BUTTON, FLAG_BUTTON], np.uint8), t, first=10)
    assert [(e.kind, e.sample_index, e.time) for e in down] == [("button_down", 12, 0.02)]
    assert edges.feed(np.full(4, FLAG_BUTTON, np.uint8), t, first=14) == []
    up = edges.feed(np.zeros(4, np.uint8), t + 1, first=18)
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
    drift = w.watch(np.full(10, 1.2), flags, False, 30.0, 4.0)  # rest beyond 0.9 N
    assert list(w.now) == ["drift"] and "+1.2 N" in drift[0].text
    assert w.watch(np.full(10, 25.0), flags, True, 30.0, 5.0) == []  # a hold: drift stays
    assert list(w.now) == ["drift"]
    assert w.watch(np.full(10, 0.2), flags, False, 30.0, 6.0) == [] and w.now == {}
