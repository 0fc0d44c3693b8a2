"""The threshold-ramp view (recorder/ramp_view.py): the real live window, offscreen, over a real
simulated ppt-ramp session (the simulator on a pty, the real session), judged by its widgets'
state, by the pixels of a screenshot and against the simulator's ground truth."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import numpy as np
import pyqtgraph as pg
import pytest
from pyqtgraph.Qt import QtGui

from analysis.holds import config_for_band
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from firmware_bridge.sim.truth import ramp_thresholds
from recorder.panels import COLORS, HoldPlot
from recorder.ramp_view import CORRIDOR_BRUSH, THRESHOLD_COLOR, button_press
from recorder.session import RecordingSession, SessionOptions
from recorder.window import LiveWindow
from schemas.session_protocol import load_preset
from tests.test_window import band_pixel_count, colours_at, spin

APP = pg.mkQApp("palpation-tests")
CUTOFF_KPA = 250.0


def sensitive_ppt_protocol():
    """The ppt-ramp preset (1 cm² probe, 40-60 kPa/s) for a sensitive subject: a 250 kPa
    cut-off puts the simulated thresholds (30-50 % of it) at 75-125 kPa, reached 1.5-2.5 s
    into a ramp at 50 kPa/s, so a test sees a threshold within about 5 s; 1 s rests."""
    protocol = load_preset("ppt-ramp")
    points = tuple(replace(p, dose=replace(p.dose, target_high=CUTOFF_KPA, rest_s=1.0))
                   for p in protocol.points)
    return replace(protocol, points=points)


@pytest.fixture
def ramp_window(tmp_path):
    """The live window over a simulated ppt-ramp session (expert, seed 3, 1 kHz), recording
    with the device's factory scale (no saved calibration), and the simulated sensor."""
    protocol = sensitive_ppt_protocol()
    sensor = SimulatedSensor(rate_hz=1000.0, seed=3, dose=protocol.points[0].dose,
                             trigger_points=[p.label for p in protocol.points],
                             contact_area_cm2=protocol.contact_area_cm2)
    server = PtyServer(sensor)
    session = RecordingSession(SessionOptions(
        port=server.start(), out=tmp_path / "ppt.h5", protocol=protocol,
        use_saved_calibration=False, metadata={"protocol_toml": protocol.to_toml()}))
    session.start()
    window = LiveWindow(session)
    window.show()
    yield window, sensor
    window.close()
    session.stop()
    server.close()


def shade(rgba: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The colour ``rgba`` paints over the plot background (alpha blending)."""
    bg = QtGui.QColor(COLORS["background"])
    *rgb, a = rgba
    return tuple(round(base + (c - base) * a / 255)
                 for base, c in zip((bg.red(), bg.green(), bg.blue()), rgb, strict=True))


def near(colour, want, tol: int = 3) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(colour, want, strict=True))


def test_ramp_view_over_a_simulated_ppt_session(ramp_window):
    """While the simulated therapist ramps to the subject's first threshold: the ramp view
    replaces the hold panel, its axes read kPa (never kkPa), no band is shaded anywhere, the
    line under the readout gives the live rate and then the threshold, and the threshold is
    marked where the truth says the button went down."""
    window, sensor = ramp_window
    view, plot = window.ramp, window.ramp.plot
    lines: list[str] = []
    end = time.monotonic() + 20
    while not view.ramps.get(0) and time.monotonic() < end:
        spin(0.02)
        lines.append(window.clock_label.text())
    assert view.ramps.get(0), "no ramp finished within 20 s"
    spin(0.1)
    assert plot.isVisible() and not window.heart.isVisible()
    for p in (plot, window.trace):
        axis = p.getPlotItem().getAxis("left")
        assert (axis.labelText, axis.labelUnits) == ("pressure (kPa)", "")
        assert "kkPa" not in axis.labelString()
    assert not window.trace.band.isVisible()
    # the texts: nothing at rest, the rate while ramping, then the threshold
    assert lines[0] == ""
    rates = [int(m[1]) for m in (re.fullmatch(r"ramp (\d+) kPa/s · (on pace|too slow|too fast)",
                                             line) for line in lines) if m]
    assert rates and 40 <= np.median(rates) <= 60
    (ramp,) = view.ramps[0]
    x, y = ramp.threshold
    assert window.clock_label.text() == f"threshold {y:.0f} kPa"
    assert "READY" in window.cue_label.text() or "LIFT" in window.cue_label.text()
    # against the truth: the recorded pressure is the applied force at the press, seen through
    # the device's factory scale (4000 counts/N against the ADC's true 4173.2: 4.3 % high);
    # 1 kPa (0.1 N) is one 1 kHz sample of an expert's steepest slope (ramp and tremor, see
    # test_therapist) plus the ADC's noise (25 counts, 6 mN).
    (first, *_) = ramp_thresholds(sensor.truth())
    scale = sensor.adc.counts_per_newton / sensor.adc.nominal_counts_per_newton
    assert y == pytest.approx(first.threshold_n * scale * 10.0, abs=1.0)
    # the time since the ramp began: the detector starts a ramp where the recorded force
    # crosses its off threshold; within 5 ms (a sample each end, noise over a 5 N/s slope)
    off_true_n = config_for_band(*sensor.therapist.dose.band_n(1.0)).off_n / scale
    grid = np.arange(first.start_s - 1.0, first.press_s, 1e-4)
    crossed = grid[np.flatnonzero(sensor.therapist.force(grid) >= off_true_n)[0]]
    assert x == pytest.approx(first.press_s - crossed, abs=5e-3)
    # the pixels: the marker where the threshold is, the corridor's wedge, no band anywhere
    (mx,), (my,) = plot.marker.getData()  # the last ramp stays drawn until the next
    assert (mx, my) == pytest.approx((x, y))
    assert band_pixel_count(window.grab().toImage()) == 0
    want = QtGui.QColor(THRESHOLD_COLOR)
    (marker,) = colours_at(window, plot, [(x, y)])
    assert near(marker, (want.red(), want.green(), want.blue())), marker
    inside, outside = colours_at(window, plot, [(3.0, 45.0 * 3.0), (3.0, 20.0 * 3.0)])
    assert near(inside, shade(CORRIDOR_BRUSH)), inside
    assert near(outside, shade((0, 0, 0, 0))), outside


def test_button_press_is_the_first_press_edge():
    flags = np.array([0, 0, 1, 1, 0, 1], dtype=np.uint8)
    assert button_press(flags) == 2
    assert button_press(np.array([1, 1, 0, 0], dtype=np.uint8)) is None  # down before the ramp
    assert button_press(np.array([1, 0, 1], dtype=np.uint8)) == 2
    assert button_press(np.zeros(5, dtype=np.uint8)) is None


def test_pressure_axis_over_1000_kpa_reads_kpa():
    """pyqtgraph's units= SI-prefixed kPa into "kkPa" once the axis passed 1000; the label is
    now the formatter's text."""
    plot = HoldPlot(unit="kPa")
    plot.set_current(np.array([0.0, 5.0]), np.array([0.0, 1500.0]))
    plot.resize(600, 400)
    plot.show()
    spin(0.05)
    axis = plot.getPlotItem().getAxis("left")
    assert "pressure (kPa)" in axis.labelString() and "kkPa" not in axis.labelString()
    assert axis.range[1] > 1000
    plot.close()
