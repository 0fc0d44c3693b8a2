"""Calibrating a gauge: the real ``palpation calibrate`` (in-process, so that the person
placing the masses can be played by the test) on an Imada emulator over a real pty, saved
under ``--sensor-id``; the real recording session then applies it. The emulated gauge reads
3 % high with a 0.5 N offset, so its own newtons are wrong by a known amount and the
calibrated ones must equal the masses placed."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from firmware_bridge.sim.gauges import ImadaEmulator
from firmware_bridge.sim.server import PtyServer
from recorder.cli import main
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording
from schemas.session_protocol import load_preset
from schemas.units import GRAVITY

GAIN, OFFSET_N = 1.03, 0.5  # what the gauge shows for a true load F: GAIN * F + OFFSET_N
RESOLUTION_N = 0.01  # the emulated Imada prints N with 2 decimals


class Bench:
    """The calibration bench: the true load on the gauge, and a person who places the load
    each prompt names ("Put 5 kg on it", "Take everything off")."""

    def __init__(self) -> None:
        self.load_n = 0.0
        self.gain = GAIN

    def gauge_force(self, t: float) -> float:
        return self.gain * self.load_n + OFFSET_N

    def person(self, prompt: str = "") -> str:
        m = re.search(r"Put ([0-9.]+) kg", prompt)
        self.load_n = float(m.group(1)) * GRAVITY if m else 0.0
        return ""


@pytest.fixture
def bench(tmp_path, monkeypatch):
    monkeypatch.setenv("PALPATION_DATA_DIR", str(tmp_path / "data"))
    b = Bench()
    monkeypatch.setattr("builtins.input", b.person)
    with PtyServer(ImadaEmulator(b.gauge_force, unit="N"), link=tmp_path / "gauge"):
        yield b, str(tmp_path / "gauge")


def calibrate(port: str, *extra: str) -> int:
    return main(["calibrate", "--port", port, "--device", "imada", "--sensor-id", "DS2-lab3",
                 "--seconds", "0.2", *extra])


def test_gauge_calibrated_under_its_sensor_id_is_applied_by_record(bench, tmp_path, capsys):
    b, port = bench
    assert calibrate(port, "--points", "0,1,3,5", "--unit", "kg") == 0
    out = capsys.readouterr().out
    (saved,) = (tmp_path / "data" / "calibrations").glob("DS2-lab3_*.json")
    record = json.loads(saved.read_text())
    assert record["device"]["device_id"] == "DS2-lab3"
    assert record["device"]["model"] == "imada" and record["device"]["sensor_kind"] == "gauge"
    # counts are the gauge's millinewtons: newtons = (counts / 1000 - offset) / gain
    assert record["coefficients"][1] == pytest.approx(1 / (1000 * GAIN), rel=1e-3)
    assert record["coefficients"][0] == pytest.approx(-OFFSET_N / GAIN, abs=0.01)
    # 5 kg is 49.0 N, 1.0 N short of nmt-static's 30-50 N band: said at calibrate time
    assert "1.0 N above its top" in out and "30.0..50.0 N" in out

    b.load_n = 40.0
    rec_path = tmp_path / "gauge.h5"
    session = RecordingSession(SessionOptions(port=port, out=rec_path, device="imada",
                                              sensor_id="DS2-lab3",
                                              protocol=load_preset("nmt-static")))
    session.start()
    time.sleep(0.6)
    session.stop()
    rec = open_recording(rec_path)
    assert rec.device["device_id"] == "DS2-lab3"
    assert len(rec.force) >= 10
    # the gauge showed 41.7 N; the calibrated force is the 40 N on it
    assert np.abs(rec.raw_counts / 1000 - (GAIN * 40.0 + OFFSET_N)).max() < RESOLUTION_N
    assert np.abs(rec.force - 40.0).max() < RESOLUTION_N
    # and the record-time warning that the calibration stops short of the band
    assert any("does not cover the target band 30.0..50.0 N" in w for w in session.warnings)


def test_gauge_check_passes_within_tolerance_and_fails_when_the_gauge_drifts(bench, capsys):
    b, port = bench
    assert calibrate(port, "--points", "0,2,6", "--unit", "kg") == 0
    capsys.readouterr()
    assert calibrate(port, "--check", "4", "--unit", "kg") == 0
    out = capsys.readouterr().out
    assert "PASS: the tolerance is 2 % of the load" in out
    assert "outside the calibrated range" not in out

    b.gain *= 1.05  # the gauge now reads 5 % higher than when it was calibrated
    assert calibrate(port, "--check", "4", "--unit", "kg") == 1
    out = capsys.readouterr().out
    assert "FAIL: the tolerance is 2 % of the load" in out
    error_pct = float(re.search(r"\(([-+0-9.]+) %\)", out).group(1))
    assert error_pct == pytest.approx(5.0, abs=0.1)


def test_check_above_the_calibrated_range_warns(bench, capsys):
    b, port = bench
    assert calibrate(port, "--points", "0,1,2", "--unit", "kg") == 0
    capsys.readouterr()
    assert calibrate(port, "--check", "3", "--unit", "kg") == 0
    out = capsys.readouterr().out
    assert "PASS" in out
    assert "29.42 N is outside the calibrated range 0.00 .. 19.61 N" in out


def test_a_gauge_needs_a_sensor_id_and_no_simulate(capsys):
    assert main(["calibrate", "--port", "/dev/null", "--device", "imada"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--sensor-id" in err
    assert main(["calibrate", "--simulate", "--device", "mark10", "--sensor-id", "x"]) == 1
    assert "--simulate is the simulated protocol-v1 sensor" in capsys.readouterr().err


def test_a_gauge_without_a_saved_calibration_keeps_its_newtons_and_says_so(tmp_path,
                                                                          monkeypatch):
    from recorder.force import choose_calibration

    monkeypatch.setenv("PALPATION_DATA_DIR", str(tmp_path))
    cal, warnings = choose_calibration(None, "", None, True, "DS2-lab3")
    assert cal is None
    assert warnings == ["no calibration saved for DS2-lab3: force is the instrument's own "
                        "newtons (palpation calibrate --sensor-id DS2-lab3)"]
    assert choose_calibration(None, "", None, True, "") == (None, [])
