"""Shared helpers for tests that run the real command and the real simulator."""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.sim.adc import AdcModel
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from firmware_bridge.sim.therapist import Therapist
from recorder.session import RecordingSession, SessionOptions
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording
from schemas.session_protocol import Dose, load_preset
from schemas.validate import validate

ROOT = Path(__file__).parents[1]
# A session protocol's two trigger points, left and right, appended to a test's own dose.
TRAPEZIUS_LEFT_RIGHT = """[[point]]
name = "upper trapezius"
muscle = "trapezius"
side = "left"
[[point]]
name = "upper trapezius"
muscle = "trapezius"
side = "right"
"""


def palpation_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "recorder.cli", *args]


def run_palpation(*args: str, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(palpation_cmd(*args), capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kw)


class Simulator:
    """``palpation simulate`` in a subprocess; its device path is the first stdout line."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.link = tmp_path / "sensor"
        self.report = tmp_path / "sim-report.json"
        self.truth = tmp_path / "sim-truth.json"
        self.proc = subprocess.Popen(
            palpation_cmd("simulate", "--link", str(self.link), "--report", str(self.report),
                          "--truth", str(self.truth), *args),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def simulator(tmp_path):
    sims = []

    def start(*args: str) -> Simulator:
        sims.append(Simulator(tmp_path, *args))
        return sims[-1]

    yield start
    for s in sims:
        s.stop()


def therapist_stream(profile: str, seed: int, cycles: int, fs: float = 1000.0):
    """A simulated therapist for ``cycles`` cycles at ``fs`` through the ADC model, back in
    newtons with the ADC's true scale and offset (calibration is not what such tests test):
    (therapist, end_s, t, true force, measured force)."""
    th = Therapist(profile, seed=seed)
    end_s = th.cycle_start_s(cycles)  # no hold straddles the end
    idx = np.arange(math.floor(end_s * fs))
    t = idx / fs
    true_n = th.force(t)
    adc = AdcModel(seed=seed)
    counts, saturated = adc.counts(true_n, idx)
    assert not saturated.any()
    return th, end_s, t, true_n, (counts - adc.offset_counts) / adc.counts_per_newton


def wait_until(cond, timeout: float = 10.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def fast_session(out, seed=4, profile="expert", **session_attrs):
    """A recording session on the simulated sensor with short holds (2.5 s), so that tests
    see several holds in seconds; ``session_attrs`` go to /session (e.g. trainee, subject).
    Returns the session and a function that ends it all."""
    protocol = load_preset("nmt-static")
    dose = Dose(unit="N", target_low=30.0, target_high=50.0, min_hold_s=2.5, max_hold_s=2.5,
                rest_s=1.0)
    sensor = SimulatedSensor(rate_hz=1000.0, seed=seed, dose=dose, profile=profile,
                             trigger_points=[p.label for p in protocol.points])
    server = PtyServer(sensor)
    session = RecordingSession(SessionOptions(port=server.start(), out=out, protocol=protocol,
                                              metadata={"protocol_toml": protocol.to_toml(),
                                                        **session_attrs}))
    session.start()

    def end():
        session.stop()
        server.close()

    return session, end


@contextlib.contextmanager
def simulated_session(out, protocol, seed: int):
    """The simulated sensor (expert, 1 kHz) working through ``protocol`` on a pty, recorded
    by the real session with the device's factory scale (no saved calibration); yields the
    session, the sensor and the server, and stops them all."""
    sensor = SimulatedSensor(rate_hz=1000.0, seed=seed, dose=protocol.points[0].dose,
                             trigger_points=[p.label for p in protocol.points],
                             contact_area_cm2=protocol.contact_area_cm2)
    server = PtyServer(sensor)
    session = RecordingSession(SessionOptions(
        port=server.start(), out=out, protocol=protocol, use_saved_calibration=False,
        metadata={"protocol_toml": protocol.to_toml()}))
    session.start()
    try:
        yield session, sensor, server
    finally:
        session.stop()
        server.close()


def recordings_made(folder: Path) -> list[Path]:
    """The finalised recordings the recorder made under ``folder`` (files with a record_start
    event; hand-written, damaged and foreign files are left to the tests that made them)."""
    made = []
    for path in sorted(folder.rglob("*.h5")):
        try:
            validate(path)
            events = open_recording(path).events
        except RecordingFileError:
            continue
        if any(e.kind == "record_start" for e in events):
            made.append(path)
    return made


@pytest.fixture(autouse=True)
def throwaway_catalog(tmp_path_factory, monkeypatch):
    """Every recording ``record`` makes is added to the catalog: in tests a throwaway one
    (outside tmp_path, which some tests list), never the user's."""
    monkeypatch.setenv("PALPATION_CATALOG", str(tmp_path_factory.mktemp("catalog") / "c.sqlite"))


@pytest.fixture(autouse=True)
def recordings_agree_with_themselves(request, tmp_path):
    """After every test, each recording it made passes ``validate --deep``: its stored force
    is what its raw counts, calibration and tare events say. Tests that write force columns
    by hand (marked ``hand_made_force``) are left out."""
    yield
    if request.node.get_closest_marker("hand_made_force"):
        return
    for path in recordings_made(tmp_path):
        validate(path, deep=True)


os.environ.setdefault("PYTHONUNBUFFERED", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # real windows, drawn without a screen
