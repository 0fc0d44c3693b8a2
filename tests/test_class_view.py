"""``palpation class``: the real class view (offscreen) over real LSL on loopback, fed by four
simulated stations, each a separate ``palpation record --simulate --headless --lsl
--station`` process started by the command's own helper. One class serves every test (a
module fixture), in order: the screenshot, killing a station, restarting it, and finally
stopping the class and comparing the tiles with the stations' files.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pylsl")

from pyqtgraph.Qt import QtCore, QtGui, QtTest, QtWidgets  # noqa: E402

from analysis.class_summary import build_class_summary, summary_table  # noqa: E402
from analysis.metrics import recording_metrics  # noqa: E402
from analysis.score import score_metrics  # noqa: E402
from recorder.class_inlets import StationInlets  # noqa: E402
from recorder.class_model import STALE_AFTER_S, ClassModel, summary_rows  # noqa: E402
from recorder.class_view import ClassWindow  # noqa: E402
from recorder.cli.classroom import _Station, start_stations, stop_stations  # noqa: E402
from recorder.panels import COLORS  # noqa: E402
from schemas.reader import open_recording  # noqa: E402
from tests.conftest import run_palpation  # noqa: E402

APP = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
NAMES = [f"sim-{k}" for k in range(1, 5)]
KILLED = "sim-2"


def spin_until(window, condition, timeout_s: float) -> float:
    """Run the view's event loop until ``condition()`` or ``timeout_s``; the seconds taken."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not within {timeout_s:g} s")
        APP.processEvents()
        time.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    out = tmp_path_factory.mktemp("class")
    stations: list[_Station] = []
    model = ClassModel(NAMES)
    inlets = StationInlets(model)
    window = ClassWindow(model, inlets.poll)
    window.resize(1200, 800)
    window.show()
    try:
        with pytest.MonkeyPatch.context() as mp:  # before the autouse throwaway catalog runs
            mp.setenv("PALPATION_CATALOG", str(out / "catalog.sqlite"))
            start_stations(4, out, stations)
        spin_until(window, lambda: all(st.band_n is not None and st.ring.total > 500
                                       for st in model.stations.values()), 45)
        yield {"model": model, "window": window, "inlets": inlets, "stations": stations,
               "out": out}
    finally:
        stop_stations(stations)
        inlets.close()
        window.close()


def band_shade() -> tuple[int, int, int]:
    """The colour the target band paints over the plot background (alpha blending)."""
    bg = QtGui.QColor(COLORS["background"])
    r, g, b, a = COLORS["band"]
    return tuple(round(base + (c - base) * a / 255)
                 for base, c in zip((bg.red(), bg.green(), bg.blue()), (r, g, b), strict=True))


def band_pixels(img: QtGui.QImage, rect: QtCore.QRect) -> int:
    want = QtGui.QColor(*band_shade()).rgb()
    return sum(img.pixel(x, y) == want for y in range(rect.top(), rect.bottom(), 3)
               for x in range(rect.left(), rect.right(), 3))


def test_screenshot_shows_the_band_in_every_tile_and_each_stations_pseudonym(klass):
    window = klass["window"]
    spin_until(window, lambda: len(window.tiles) == 4, 5)
    APP.processEvents()
    img = window.grab().toImage()
    for name in NAMES:
        tile = window.tiles[name]
        rect = QtCore.QRect(tile.mapTo(window, QtCore.QPoint(0, 0)), tile.size())
        assert band_pixels(img, rect) > 500, name
        assert f"Station {name[-1]}" in tile.title.text()
    blank = QtCore.QRect(0, 0, window.width(), window.tiles["sim-1"].y() - 2)
    assert band_pixels(img, blank) == 0  # the line above the tiles: no band there


def test_a_number_key_or_a_click_fills_the_window_with_a_tile_and_esc_goes_back(klass):
    window = klass["window"]
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_3)
    APP.processEvents()
    shown = [n for n, t in window.tiles.items() if t.isVisible()]
    assert shown == ["sim-3"] and window.tiles["sim-3"].width() > 0.9 * window.width()
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)
    APP.processEvents()
    assert all(t.isVisible() for t in window.tiles.values())
    QtTest.QTest.mouseClick(window.tiles["sim-4"].title, QtCore.Qt.MouseButton.LeftButton)
    APP.processEvents()
    assert [n for n, t in window.tiles.items() if t.isVisible()] == ["sim-4"]
    QtTest.QTest.keyClick(window, QtCore.Qt.Key.Key_Escape)
    APP.processEvents()


def test_the_big_screen_grid_has_no_small_text(klass):
    """A projector's view of the same class: every text shown in the grid is 18 pt or more."""
    big = ClassWindow(klass["model"], lambda: None, big_screen=True)
    big.resize(1600, 1000)
    big.show()
    try:
        spin_until(big, lambda: len(big.tiles) == 4, 5)
        sizes = label_sizes(big)
        assert len(sizes) >= 12 and min(sizes) >= 18
        assert min(label_sizes(klass["window"])) < 18  # the ordinary view has small lines
    finally:
        big.close()


def label_sizes(window) -> list[int]:
    """The point sizes of the texts shown in ``window``'s tiles."""
    return [w.font().pointSize() for tile in window.tiles.values()
            for w in tile.findChildren(QtWidgets.QLabel) if w.isVisible() and w.text()]


def test_killing_a_station_greys_its_tile_within_2s_while_the_others_carry_on(klass):
    window, model = klass["window"], klass["model"]
    victim = next(s for s in klass["stations"] if s.name == KILLED)
    others = {n: model.stations[n].ring.total for n in NAMES if n != KILLED}
    victim.process.send_signal(signal.SIGKILL)
    victim.process.wait(timeout=10)
    killed = time.monotonic()
    tile = window.tiles[KILLED]
    spin_until(window, lambda: tile.stale, 4)
    st = model.stations[KILLED]
    silent = time.monotonic() - st.last_arrival
    assert STALE_AFTER_S < silent <= 2.0
    assert time.monotonic() - killed <= 2.0 + 0.1  # its last sample came before the kill
    assert tile.link.text().startswith("no data for ")
    spin_until(window, lambda: all(model.stations[n].ring.total > others[n] + 200
                                   for n in others), 5)
    assert not any(window.tiles[n].stale for n in others)


def test_restarting_the_station_brings_back_the_same_tile_with_a_gap(klass):
    window, model = klass["window"], klass["model"]
    tile = window.tiles[KILLED]
    before = model.stations[KILLED].ring.total
    out = klass["out"] / f"{KILLED}-restarted.h5"
    cmd = [sys.executable, "-m", "recorder.cli", "record", "--simulate", "--headless", "--lsl",
           "--station", KILLED, "--pseudonym", "Station 2", "--seed", "22", "--out", str(out)]
    log = open(klass["out"] / f"{KILLED}-restarted.log", "w")  # noqa: SIM115 (kept by Popen)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    klass["stations"].append(_Station(KILLED, out, proc))
    spin_until(window, lambda: not tile.stale and model.stations[KILLED].ring.total > before,
               30)
    assert window.tiles[KILLED] is tile and len(window.tiles) == 4
    assert model.stations[KILLED].restarts >= 1
    assert "1 gap" in tile.link.text() or "gaps" in tile.link.text()


def _file_holds(path):
    rows = [m for m in recording_metrics(open_recording(path)) if m.complete]
    return [(m.trigger_point, m.repetition, score_metrics(m).score) for m in rows]


def test_the_tiles_show_the_holds_and_scores_of_the_stations_files(klass):
    """The stations never killed: every complete hold in the file, with its point, repetition
    and score (``analysis.score`` offline), is on the tile, and nothing else is."""
    window, model = klass["window"], klass["model"]
    kept = [n for n in NAMES if n != KILLED]
    spin_until(window, lambda: all(model.stations[n].holds for n in kept), 60)
    problems = stop_stations(klass["stations"])
    assert problems == [f"{KILLED} exited with status -9 (see {klass['out'] / KILLED}.log)"]
    spin_until(window, lambda: all(model.stations[n].stopped for n in kept), 5)
    for name in kept:
        on_tile = [(h.point, h.repetition, h.score) for h in model.stations[name].holds]
        in_file = _file_holds(klass["out"] / f"{name}.h5")
        assert len(on_tile) == len(in_file) >= 1, (name, on_tile, in_file)
        for (p1, r1, s1), (p2, r2, s2) in zip(on_tile, in_file, strict=True):
            assert (p1, r1) == (p2, r2)
            assert math.isclose(s1, s2, abs_tol=0.5), (name, s1, s2)
        tile = window.tiles[name]
        assert f"score {on_tile[-1][2]:.0f}" in tile.score.text()
    rows = summary_rows(model)
    table = summary_table(rows)
    for row, name in zip(rows, NAMES, strict=True):
        assert row.station == name and name in table
    page = build_class_summary(rows)
    assert page.count("<tr>") == 1 + len(NAMES) and "<svg" in page
    means = {r.station: r.mean_score() for r in rows}
    for name in kept:
        assert math.isclose(means[name], np.mean([s for *_, s in _file_holds(
            klass["out"] / f"{name}.h5")]), abs_tol=0.5)


def _hold(station: str, flags: list[str], score: float) -> dict:
    return {"v": 1, "station": station, "kind": "hold", "session_s": 0.0, "point": "p",
            "repetition": 1, "duration_s": 20.0, "time_in_band_s": 15.0, "peak_n": 40.0,
            "score": score, "deduction": "", "flags": flags, "complete": True}


def test_the_need_rule_flags_a_fault_repeated_in_two_of_the_last_three_holds():
    """Pure model: a fault in 2 of the last 3 holds is repeated; older holds do not count;
    more repeated faults rank first. The flag names are the ones ``hold_flags`` gives."""
    model = ClassModel()
    for flags in (["overshoot"], ["overshoot"], [], []):  # the overshoots fell out of the window
        model.on_message(_hold("calm", flags, 90.0), 0.0)
    for flags in (["overshoot", "unsteady"], ["unsteady"], ["overshoot", "unsteady"]):
        model.on_message(_hold("wobbly", flags, 60.0), 0.0)
    for flags in (["too little time in band"], ["too little time in band"], []):
        model.on_message(_hold("light", flags, 70.0), 0.0)
    assert not model.stations["calm"].need().helps
    assert model.stations["wobbly"].need().repeated == ("overshoot", "unsteady")
    assert model.stations["light"].need().text() == "not in band (last 3 holds)"
    assert [s.name for s in model.ranked()] == ["wobbly", "light"]


def test_bad_options_are_one_line_errors_before_anything_starts(tmp_path):
    r = run_palpation("class", "--out-dir", str(tmp_path))
    assert r.returncode == 1 and r.stderr.strip() == (
        "palpation: error: --out-dir is where --simulate's stations record; add --simulate N")
    r = run_palpation("class", "--simulate", "0")
    assert r.returncode == 1 and "give 1 to 40 stations" in r.stderr and "Traceback" not in r.stderr
    r = run_palpation("class", "--simulate", "2", "--report", str(tmp_path / "no" / "x.html"))
    assert r.returncode == 1 and "does not exist" in r.stderr and not list(tmp_path.iterdir())
