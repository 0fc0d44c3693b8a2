"""The live window and review, real Qt widgets on the offscreen platform, fed by the real
simulator over a pty through the real session."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pyqtgraph as pg
import pytest
from pyqtgraph.Qt import QT_LIB, QtCore, QtGui, QtTest, QtWidgets

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from firmware_bridge.sim.therapist import Therapist
from recorder.coach_view import COMPLETE_MESSAGE
from recorder.panels import COLORS
from recorder.review import ReviewWindow
from recorder.session import RecordingSession, SessionOptions
from recorder.verdict_panel import VERDICT_COLORS
from recorder.window import LiveWindow
from schemas.reader import open_recording
from schemas.session_protocol import load_protocol
from tests.conftest import ROOT, fast_session, run_palpation

APP = pg.mkQApp("palpation-tests")


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        APP.processEvents()
        time.sleep(0.005)


def band_shade() -> tuple[int, int, int]:
    """The colour the target band paints over the plot background (alpha blending)."""
    bg = QtGui.QColor(COLORS["background"])
    r, g, b, a = COLORS["band"]
    return tuple(round(base + (c - base) * a / 255)
                 for base, c in zip((bg.red(), bg.green(), bg.blue()), (r, g, b), strict=True))


def colours_at(window, plot, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """The window's pixels at data coordinates (x, y) of ``plot``, from a grab of it."""
    img = window.grab().toImage()
    vb = plot.getPlotItem().getViewBox()
    out = []
    for x, y in points:
        pos = plot.mapTo(window, plot.mapFromScene(vb.mapViewToScene(QtCore.QPointF(x, y))))
        c = img.pixelColor(pos)
        out.append((c.red(), c.green(), c.blue()))
    return out


def assert_band_drawn(window, plot, band: tuple[float, float], before_s: float) -> None:
    """Inside the band (in display units; left of the hold window, at ``before_s`` seconds)
    most pixels have the band's colour; just above it, none does."""
    low, high = band
    xs = [before_s * k / 12 for k in range(1, 12)]
    want = band_shade()

    def is_band(c):
        return all(abs(a - b) <= 3 for a, b in zip(c, want, strict=True))

    inside = colours_at(window, plot, [(x, low + f * (high - low)) for x in xs
                                       for f in (0.15, 0.85)])
    above = colours_at(window, plot, [(x, high * 1.2) for x in xs])
    assert sum(map(is_band, inside)) >= 0.8 * len(inside), (want, inside)
    assert not any(map(is_band, above)), (want, above)


@pytest.fixture
def live(tmp_path):
    """A fast recording session and its window."""
    out = tmp_path / "live.h5"
    session, end = fast_session(out)
    window = LiveWindow(session)
    window.show()
    yield session, window, out
    window.close()
    end()


def test_qt_binding_is_the_pinned_one():
    assert QT_LIB == "PyQt6"


def test_window_draws_live_data_and_keys_become_events(live):
    session, window, out = live
    spin(1.5)
    assert window.clock.fps() > 10  # frames are being painted
    assert window.readout.text() not in ("", "—")
    assert len(window.trace.curve.getData()[0]) > 100
    assert session.point_index == 0
    dose = session.protocol.points[0].dose
    assert_band_drawn(window, window.heart, dose.band_n(session.contact_area_cm2),
                      dose.min_hold_s)
    Key = QtCore.Qt.Key
    QtTest.QTest.keyClick(window, Key.Key_M)
    QtTest.QTest.keyClicks(window, "7")
    QtTest.QTest.keyClicks(window, "+")
    QtTest.QTest.keyClick(window, Key.Key_Right)
    QtTest.QTest.keyClick(window, Key.Key_B)
    spin(0.3)
    assert not window.readout.isVisible() and "BLIND" in window.cue_label.text()
    QtTest.QTest.keyClick(window, Key.Key_B)
    QtTest.QTest.keyClick(window, Key.Key_Space)
    spin(0.3)
    assert "PAUSED" in window.status.text()
    QtTest.QTest.keyClick(window, Key.Key_Space)
    QtTest.QTest.keyClick(window, Key.Key_T)
    spin(0.3)
    if "tare refused" in window.warning_label.text():  # under load or unsteady: T again
        QtTest.QTest.keyClick(window, Key.Key_T)  # forces it
    QtTest.QTest.keyClick(window, Key.Key_C)
    spin(0.3)
    (dialog,) = [d for d in window.findChildren(QtWidgets.QDialog) if d.isVisible()]
    assert "tare" in dialog.text.text() and "counts" in dialog.text.text()
    dialog.accept()
    spin(0.3)
    window.close()
    session.stop()
    rec = open_recording(out)
    kinds = [e.kind for e in rec.events]
    pains = [e.value for e in rec.events if e.kind == "pain"]
    assert "marker" in kinds and pains == [7.0, 10.0]
    assert [e.text for e in rec.events if e.kind == "trigger_point"][0] == "upper trapezius R"
    for kind in ("blind_on", "blind_off", "record_stop", "record_start"):
        assert kind in kinds, kind
    assert kinds.count("tare") == 2  # at the start and from the key


def test_holds_are_drawn_and_recorded_as_they_happen(live):
    session, window, out = live
    end = time.monotonic() + 20
    while not session.holds and time.monotonic() < end:
        spin(0.2)
    assert session.holds
    spin(0.3)
    first = session.holds[0]
    assert first.point_index == 0 and 2.0 < first.hold.duration_s < 6.0
    # the finished hold is on its small multiple, and the next point is shown
    assert len(window.history[0]) == 1
    assert window.multiples.plots[0]._history
    assert session.point_index >= 1
    window.close()
    session.stop()
    rec = open_recording(out)
    assert len(rec.holds) >= 1
    assert rec.holds[0]["trigger_point"].decode() == "upper trapezius L"
    assert 30.0 <= rec.holds[0]["mean_n"] <= 50.0
    kinds = [e.kind for e in rec.events]
    assert kinds.count("hold_end") == len(rec.holds)


def test_review_opens_a_recording_with_a_reference(tmp_path):
    a, b = tmp_path / "trainee.h5", tmp_path / "instructor.h5"
    sessions = [fast_session(a, seed=1, profile="novice"), fast_session(b, seed=2)]
    end = time.monotonic() + 20
    while not all(s.holds for s, _ in sessions) and time.monotonic() < end:
        time.sleep(0.2)
    for _, stop in sessions:
        stop()
    rec, ref = open_recording(a), open_recording(b)
    assert len(rec.holds) >= 1 and len(ref.holds) >= 1
    w = ReviewWindow(rec, ref)
    w.show()
    spin(0.2)
    assert w.protocol is not None and w.protocol.name
    assert len(w.labels) == 12 and w.labels[0] == "upper trapezius L"
    assert w.heart._history and w.heart._reference
    assert "duration" in w.details.text()
    dose = w.protocol.points[0].dose
    assert_band_drawn(w, w.heart, dose.band_n(w.area), dose.min_hold_s)
    QtTest.QTest.keyClick(w, QtCore.Qt.Key.Key_Right)
    spin(0.1)
    assert w.point == 1 and "upper trapezius R" in w.title.text()
    png = tmp_path / "review.png"
    r = run_palpation("review", str(a), "--reference", str(b), "--screenshot", str(png))
    assert r.returncode == 0, r.stderr
    img = QtGui.QImage(str(png))
    assert img.width() >= 800 and img.height() >= 600
    assert band_pixel_count(img) > 2000  # the shaded band on the central and small panels
    w.close()


def test_record_window_and_screenshot_from_the_command_line(tmp_path):
    png, out = tmp_path / "live.png", tmp_path / "cli.h5"
    r = run_palpation("record", "--simulate", "--duration", "3", "--out", str(out),
                      "--screenshot", str(png))
    assert r.returncode == 0, r.stderr
    img = QtGui.QImage(str(png))
    assert img.width() >= 800 and band_pixel_count(img) > 2000
    assert open_recording(out).finalised


def band_pixel_count(img: QtGui.QImage) -> int:
    """Pixels of the band's colour in a screenshot (every 2nd pixel of every 2nd row)."""
    want = QtGui.QColor(*band_shade()).rgb()
    return sum(img.pixel(x, y) == want for y in range(0, img.height(), 2)
               for x in range(0, img.width(), 2)) * 4


def test_no_display_is_a_clear_error(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "recorder.cli", "record", "--simulate", "--out",
                        str(tmp_path / "x.h5")], capture_output=True, text=True, env=env,
                       cwd=ROOT, timeout=60)
    assert r.returncode == 1 and "no display" in r.stderr and "--headless" in r.stderr


STRESS = """
import numpy as np, pyqtgraph as pg
app = pg.mkQApp()
w = pg.GraphicsLayoutWidget(); w.resize(1200, 800); w.show()
rng = np.random.default_rng(0)
curves = []
for i in range(12):
    p = w.addPlot(row=i // 4, col=i % 4)
    curves += [p.plot(pen=pg.mkPen(width=1)) for _ in range(8)]
for frame in range(80):
    for c in curves:
        n = int(rng.integers(500, 4000))
        c.setData(np.arange(n, dtype=float), rng.standard_normal(n).cumsum())
    app.processEvents()
print("ok", len(curves))
"""


def test_multi_curve_stress_does_not_crash_the_binding():
    """docs/SOURCES.md: PySide6 6.12 crashed in arrayToQPath under this kind of load; the pinned
    binding must survive it (run in a child so that a crash is a failure, not a lost run)."""
    r = subprocess.run([sys.executable, "-c", STRESS], capture_output=True, text=True,
                       timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["ok", "96"]


DRILL = """
name = "drill"
description = "one trigger point, two short holds"
kind = "static"
unit = "N"

[dose]
target_low = 30.0
target_high = 34.0
min_hold_s = 1.0
max_hold_s = 5.0
repetitions = 2
rest_s = 1.0
ramp_min = 40.0
ramp_max = 80.0

[[point]]
name = "upper trapezius"
muscle = "trapezius (upper fibres)"
side = "left"
note = "mid-belly of the upper fibres, between C7 and the acromion"
"""


def wait_for(condition, timeout_s: float) -> None:
    end = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < end:
        spin(0.05)
    assert condition()


def pixels_of(window, widget, color: str) -> float:
    """The fraction of ``widget``'s pixels, in a grab of the window, that are ``color``."""
    img = window.grab().toImage()
    origin = widget.mapTo(window, QtCore.QPoint(0, 0))
    want = QtGui.QColor(color).rgb()
    xs = range(origin.x(), origin.x() + widget.width(), 2)
    ys = range(origin.y(), origin.y() + widget.height(), 2)
    return sum(img.pixel(x, y) == want for y in ys for x in xs) / (len(xs) * len(ys))


def truth_of(sensor: SimulatedSensor, index: int) -> tuple[float, float]:
    """The simulated hold's duration and its highest force (tremor included) at 1 kHz, as
    the uncalibrated sensor reports it (its true gain over the nominal factory gain)."""
    h = sensor.therapist.holds_between(0.0, 1e3)[index]
    t = np.arange(math.ceil(h.start_s * 1e3), h.end_s * 1e3) / 1e3
    gain = sensor.adc.counts_per_newton / sensor.adc.nominal_counts_per_newton
    return h.end_s - h.start_s, float(sensor.therapist.force(t).max()) * gain


def test_each_hold_gets_a_verdict_until_the_next_and_the_protocol_ends(tmp_path):
    """A drill of two 1-5 s holds (band 30-34 N) by a seeded novice: hold 1 is in the window
    with a 29 % overshoot over the band's top (dose met, flagged: amber), hold 2 is held past
    5 s (dose not met: red) and ends the protocol; both judged as the simulator pressed them."""
    (tmp_path / "drill.toml").write_text(DRILL)
    protocol = load_protocol(tmp_path / "drill.toml")
    therapist = Therapist("novice", dose=protocol.points[0].dose, seed=5,
                          trigger_points=[protocol.points[0].label], start_delay_s=0.5)
    sensor = SimulatedSensor(rate_hz=1000.0, seed=5, load=therapist)
    server = PtyServer(sensor)
    out = tmp_path / "drill.h5"
    session = RecordingSession(SessionOptions(port=server.start(), out=out, protocol=protocol,
                                              metadata={"protocol_toml": protocol.to_toml()}))
    session.start()
    window = LiveWindow(session)
    window.show()
    try:
        spin(0.3)
        assert window.note_label.text() == protocol.points[0].note
        assert "repetition 1 of 2" in window.point_label.text()
        assert window.verdict_label.verdict is None
        assert all(pixels_of(window, window.verdict_label, c) == 0
                   for c in VERDICT_COLORS.values())
        check_first_verdict(window, sensor)
        check_verdict_gives_way_to_the_next_hold(window)
        check_second_verdict_ends_the_protocol(window, sensor)
    finally:
        window.close()
        session.stop()
        server.close()
    rec = open_recording(out)
    assert len(rec.holds) == 2
    assert [e.kind for e in rec.events].count("protocol_complete") == 1


def check_first_verdict(window: LiveWindow, sensor: SimulatedSensor) -> None:
    """The drill's hold 1 is judged as pressed: in the window, dose met, flagged for its
    overshoot, on amber; the protocol is not complete."""
    panel = window.verdict_label
    wait_for(lambda: panel.verdict is not None, 15)
    spin(0.2)
    first = panel.verdict.metrics
    duration, peak = truth_of(sensor, 0)
    assert abs(first.duration_s - duration) < 0.05
    assert abs(first.peak_n - peak) < 0.02 * peak
    assert first.peak_over_band_pct > 25 and 1 < duration < 5  # what the seed pressed
    assert panel.verdict.duration == "in window" and panel.verdict.dose_met
    assert [f.name for f in panel.verdict.flags] == ["overshoot"]
    text = panel.text()
    assert "upper trapezius L, repetition 1: DOSE MET — overshoot" in text
    assert "in window 1–5 s" in text
    assert f"in band {first.time_in_band_s:.1f} s of 1 s needed" in text
    assert (f"peak {first.peak_n:.1f} N, {first.peak_over_band_pct:.0f} % above the "
            "band&#x27;s top 34 N: overshoot") in text
    assert pixels_of(window, panel, VERDICT_COLORS["flagged"]) > 0.6
    assert pixels_of(window, window.cue_label, COLORS["complete"]) == 0


def check_verdict_gives_way_to_the_next_hold(window: LiveWindow) -> None:
    """The verdict stays until the next hold starts, then gives way to the hold clock."""
    panel, session = window.verdict_label, window.session
    wait_for(lambda: session.live_hold is not None or panel.verdict is None, 10)
    assert session.live_hold is not None  # the verdict was still there when it began
    spin(0.2)
    assert panel.verdict is None and panel.text() == ""
    assert all(pixels_of(window, panel, c) == 0 for c in VERDICT_COLORS.values())
    assert window.clock_label.text().startswith("in band ")
    assert window.clock_label.text().endswith(" s · hold 1–5 s")


def check_second_verdict_ends_the_protocol(window: LiveWindow, sensor: SimulatedSensor) -> None:
    """The drill's hold 2 is held past 5 s: dose not met, on red; the protocol is complete
    and the cue says so."""
    panel, session = window.verdict_label, window.session
    wait_for(lambda: session.protocol_complete and panel.verdict is not None, 15)
    spin(0.2)
    second = panel.verdict.metrics
    duration, _ = truth_of(sensor, 1)
    assert abs(second.duration_s - duration) < 0.05 and duration > 5
    assert panel.verdict.duration == "too long" and not panel.verdict.dose_met
    assert "repetition 2: DOSE NOT MET — too long" in panel.text()
    assert "held past the 5 s maximum" in panel.text()
    assert pixels_of(window, panel, VERDICT_COLORS["not met"]) > 0.6
    assert window.cue_label.text() == COMPLETE_MESSAGE
    assert pixels_of(window, window.cue_label, COLORS["complete"]) > 0.01
    assert "2 of 2 repetitions done" in window.point_label.text()
