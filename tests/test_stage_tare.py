"""The one tare rule (schemas.tare) and the force stage that applies it live."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.polynomial import polynomial as P

from firmware_bridge.frames import DeviceInfo
from recorder.force import ForceStage, choose_calibration, starting_tare
from schemas.calibration import Calibration, CalPoint, fit
from schemas.tare import Tare

RAW = np.array([83_000, 84_000, 90_000, 120_000], dtype=np.int32)


def curve(device_id: str = "SIM-0001") -> Calibration:
    """A curved (poly2) calibration made another day, its own zero at 83 000 counts."""
    loads = np.linspace(0.0, 100.0, 11)
    points = [CalPoint(f, 83_000 + 4000 * f + 2.0 * f * f, "load" if f else "tare")
              for f in loads]
    return Calibration.from_fit(fit(points, "poly2"), device={"device_id": device_id},
                                software_version="test")


def test_calibrated_force_is_the_curve_shifted_so_the_tare_reads_zero():
    cal = curve()
    tare = Tare(84_000.0, cal)
    force = tare.newtons(RAW)
    np.testing.assert_allclose(force, cal.force(RAW) - cal.force(84_000.0))
    assert force[1] == 0.0
    assert Tare(None, cal).newtons(RAW).tolist() == cal.force(RAW).tolist()


@pytest.mark.parametrize("tare", [
    Tare(84_000.0, curve()),
    Tare(84_000.0, newtons_per_count=1 / 4000, scale_source="factory"),
    Tare(84_000.0, scale_source="none"),
    Tare(None, newtons_per_count=1e-3, scale_source="device"),
])
def test_the_file_attributes_describe_the_force_the_rule_gives(tare):
    attrs = tare.attrs()
    assert attrs["model"] == "polynomial" and attrs["unit"] == "N"
    np.testing.assert_allclose(P.polyval(RAW.astype(float), attrs["coefficients"]),
                               tare.newtons(RAW), rtol=1e-12, atol=1e-9)


def test_plain_scale_sources_and_a_new_zero():
    factory = Tare(84_000.0, newtons_per_count=1 / 4000, scale_source="factory")
    assert factory.attrs()["source"] == "factory" and factory.attrs()["json"] == ""
    assert Tare(None, newtons_per_count=1e-3, scale_source="device").attrs()[
        "coefficients"].tolist() == [0.0, 1e-3]
    moved = factory.with_zero(90_000.0)
    assert moved.newtons(RAW)[2] == 0.0 and factory.zero_counts == 84_000.0


def test_starting_tare_picks_calibration_then_factory_scale_then_none():
    cal = curve()
    info = DeviceInfo("SIM-0001", counts_per_newton=4000.0)
    assert starting_tare(info, 84_000.0, cal).calibration is cal
    factory = starting_tare(info, 84_000.0, None)
    assert factory.scale_source == "factory" and factory.newtons_per_count == 1 / 4000
    bare = starting_tare(DeviceInfo("X"), 84_000.0, None)
    assert bare.scale_source == "none" and bare.newtons(RAW)[1] == 0.0
    gauge = starting_tare(None, None, None)
    assert gauge.scale_source == "device" and gauge.newtons(RAW)[0] == 83.0


def test_choose_calibration_says_what_force_means(tmp_path, monkeypatch):
    monkeypatch.setenv("PALPATION_DATA_DIR", str(tmp_path))
    info = DeviceInfo("SIM-0001", counts_per_newton=4000.0)
    cal, warnings = choose_calibration(info, "", None, use_saved=True)
    assert cal is None and "factory scale" in warnings[0]
    _, warnings = choose_calibration(DeviceInfo("X"), "", None, use_saved=True)
    assert "holds tared counts" in warnings[0]
    given = curve()
    cal, _ = choose_calibration(info, "", given, use_saved=True)
    assert cal is given


def test_force_stage_tares_from_its_latest_readings():
    stage = ForceStage(starting_tare(None, None, None))
    assert stage.tare_here(1.0, 0) == [] and stage.zero_counts == 0.0
    stage.newtons(np.arange(100, dtype=np.int32))
    (event,) = stage.tare_here(2.5, 100)
    assert (event.kind, event.time, event.sample_index) == ("tare", 2.5, 100)
    assert event.value == pytest.approx(np.arange(84, 100).mean()) == stage.zero_counts
    assert stage.newtons(np.array([92], np.int32))[0] == pytest.approx(0.0005)
