"""schemas.calibration: fits, metrics on hand-made points, JSON records, files and storage."""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from schemas.calibration import (
    DIRECTIONS,
    METRIC_KEYS,
    MODELS,
    RANGE_KEYS,
    Calibration,
    CalibrationError,
    CalPoint,
    calibration_dir,
    coverage_warnings,
    find_calibration,
    fit,
    load_calibration,
    load_to_newtons,
    save_calibration,
    warnings_for,
)
from schemas.session_protocol import Dose, SessionProtocol, TriggerPoint, load_preset
from schemas.units import GRAVITY, LOAD_UNITS, canonical_unit

SCHEMAS = Path(__file__).parents[1] / "schemas"
TRUE_CPN = 4173.2  # counts per newton of the simulated load cell (firmware_bridge.sim.adc)
TRUE_OFFSET = 84_213.0


def load_cell_points(seed: int = 1, noise: float = 25.0) -> list[CalPoint]:
    """0..100 N in 10 N steps, three repeats each, HX711-like noise on every reading."""
    rng = np.random.default_rng(seed)
    points = []
    for load in np.repeat(np.arange(0.0, 101.0, 10.0), 3):
        counts = TRUE_OFFSET + TRUE_CPN * load + rng.normal(0.0, noise)
        points.append(CalPoint(load, counts, "load" if load else "tare", 80, noise))
    return points


def loop_points() -> list[CalPoint]:
    """Hand-made loading/unloading loop on a 0.01 N/count sensor, 0..40 N.

    Loading: 20 N reads 3010 instead of 3000 (0.1 N off the terminal line); 40 N is read twice
    (4995, 5005). Unloading reads 100 counts above loading at 30 N, 50 at 20 N, 0 at 0 N.
    """
    return [
        CalPoint(0.0, 1000.0, "tare", 50, 3.0),
        CalPoint(10.0, 2000.0, "load", 50, 3.0),
        CalPoint(20.0, 3010.0, "load", 50, 3.0),
        CalPoint(30.0, 4000.0, "load", 50, 3.0),
        CalPoint(40.0, 4995.0, "load", 50, 3.0),
        CalPoint(40.0, 5005.0, "load", 50, 3.0),
        CalPoint(30.0, 4100.0, "unload", 50, 3.0),
        CalPoint(20.0, 3060.0, "unload", 50, 3.0),
        CalPoint(0.0, 1000.0, "unload", 50, 3.0),
    ]


def make_cal(points=None, model="linear", device_id="SIM-0001", **kw) -> Calibration:
    device = {"device_id": device_id, "model": "palpation simulator", "sensor_kind": "simulated",
              "firmware_version": "1.0.0", **kw.pop("device", {})}
    return Calibration.from_fit(fit(points or loop_points(), model), device=device,
                                sensor_note="1 cm² tip", software_version="0.1.0-test", **kw)


# ---- loads and fits ------------------------------------------------------------------------


def test_loads_in_mass_and_force_units_become_newtons():
    assert load_to_newtons(1, "kg") == pytest.approx(GRAVITY)
    assert load_to_newtons(500, "g") == pytest.approx(0.5 * GRAVITY)
    assert load_to_newtons(2, "kgf") == pytest.approx(2 * GRAVITY)
    assert load_to_newtons(1, "lbf") == pytest.approx(4.4482216152605)
    assert load_to_newtons(12.5, "N") == 12.5
    for bad in ((1, "kPa"), (1, "furlong"), (-1, "N"), (math.nan, "kg")):
        with pytest.raises(ValueError):
            load_to_newtons(*bad)


def test_linear_fit_recovers_the_scale_within_0_1_percent_from_noisy_points():
    result = fit(load_cell_points(), "linear")
    scale = result.coefficients[1]
    assert scale == pytest.approx(1 / TRUE_CPN, rel=1e-3)
    # Zero load of the true sensor reads about 0 N (noise 25 counts = 6 mN per reading).
    assert float(result.force(TRUE_OFFSET)) == pytest.approx(0.0, abs=0.02)
    assert result.increasing
    assert result.range == {"min_n": 0.0, "max_n": 100.0,
                            "min_counts": pytest.approx(TRUE_OFFSET, abs=100),
                            "max_counts": pytest.approx(TRUE_OFFSET + 100 * TRUE_CPN, abs=100)}
    # Noise of 25 counts is 0.006 N: every figure stays in the hundredths of a percent.
    assert result.max_residual_pct_fs < 0.05
    assert result.repeatability_n == pytest.approx(25 / TRUE_CPN, rel=0.5)
    assert math.isnan(result.hysteresis_pct_fs)  # no unloading points


def test_poly2_fits_an_fsr_like_curve_better_than_linear():
    # FSR in a voltage divider on a 10-bit ADC: counts = 1023 F / (F + F0), concave.
    loads = np.linspace(0.0, 50.0, 11)
    points = [CalPoint(f, 1023 * f / (f + 60.0)) for f in loads]
    linear, poly2 = fit(points, "linear"), fit(points, "poly2")
    assert poly2.increasing
    assert poly2.max_residual_n < linear.max_residual_n / 4
    assert poly2.rms_residual_n < linear.rms_residual_n / 4
    # Terminal nonlinearity belongs to the sensor, not to the model: 15 % for this curve.
    assert linear.nonlinearity_pct_fs == pytest.approx(15.0)
    assert poly2.nonlinearity_pct_fs == pytest.approx(15.0)
    assert make_cal(points, "poly2").force(1023 * 25 / 85) == pytest.approx(25, abs=1)


def test_nonlinearity_hysteresis_and_repeatability_on_hand_made_points():
    result = fit(loop_points(), "linear")
    slope = result.coefficients[1]
    assert slope == pytest.approx(0.01, rel=0.02)
    # Terminal line through (1000 counts, 0 N) and (5000 counts, 40 N), 0.01 N/count: the 20 N
    # loading point reads 3010 -> the line says 20.1 N -> 0.1 N = 0.25 % of 40 N. The 40 N
    # repeats average to 5000, exactly on the line's end.
    assert result.nonlinearity_n == pytest.approx(0.1)
    assert result.nonlinearity_pct_fs == pytest.approx(0.25)
    # Unloading reads 100 counts above loading at 30 N, 50 at 20 N, 0 at 0 N; through the
    # fitted slope the largest gap is 100 counts.
    assert result.hysteresis_n == pytest.approx(100 * slope)
    assert result.hysteresis_pct_fs == pytest.approx(100 * 100 * slope / 40)
    # One repeated pair (40 N loading: 4995, 5005): SD 7.07 counts; the two 0 N readings are a
    # tare and an unloading, different directions, so not a repeat.
    assert result.repeatability_n == pytest.approx(math.sqrt(50) * slope)
    assert result.repeatability_pct_fs == pytest.approx(100 * math.sqrt(50) * slope / 40)
    # Residuals are fitted minus applied, in N, one per point.
    expected = result.force([p.counts for p in loop_points()]) - [p.load_n for p in loop_points()]
    np.testing.assert_allclose(result.residuals_n, expected)
    assert result.max_residual_pct_fs == pytest.approx(100 * np.abs(expected).max() / 40)


def test_pooled_repeatability_over_several_groups():
    points = [CalPoint(0.0, 0.0, "tare"), CalPoint(10.0, 990.0), CalPoint(10.0, 1010.0),
              CalPoint(20.0, 1995.0), CalPoint(20.0, 2005.0), CalPoint(20.0, 2000.0)]
    result = fit(points)
    # Pooled variance: (1 * 200 + 2 * 25) / (1 + 2) counts², through the slope.
    assert result.repeatability_n == pytest.approx(math.sqrt(250 / 3) * result.coefficients[1])


def test_fit_refuses_what_cannot_be_fitted():
    with pytest.raises(ValueError, match="distinct readings"):
        fit([CalPoint(0, 10, "tare"), CalPoint(5, 20)], "poly2")
    with pytest.raises(ValueError, match="no load above zero"):
        fit([CalPoint(0, 10), CalPoint(0, 20)])
    with pytest.raises(ValueError, match="tare point"):
        fit([CalPoint(1, 10, "tare"), CalPoint(5, 20)])
    with pytest.raises(ValueError, match="direction"):
        fit([CalPoint(0, 10, "up"), CalPoint(5, 20)])
    with pytest.raises(ValueError, match="unknown calibration model"):
        fit(loop_points(), "spline")


def test_a_curve_that_falls_with_counts_is_refused():
    falling = [CalPoint(0.0, 5000.0, "tare"), CalPoint(10.0, 4000.0), CalPoint(20.0, 3000.0)]
    result = fit(falling)
    assert not result.increasing
    with pytest.raises(CalibrationError, match="does not increase"):
        Calibration.from_fit(result)
    # A poly2 through a sensor that saturates hard turns down inside its own range.
    loads = np.linspace(0.0, 50.0, 11)
    saturating = [CalPoint(f, 1023 * f / (f + 20.0)) for f in loads]
    assert not fit(saturating, "poly2").increasing
    assert fit(saturating, "poly3").increasing


# ---- the record ----------------------------------------------------------------------------


def test_calibration_record_uses_and_json_round_trip():
    cal = make_cal()
    assert len(cal.id) == 32 and cal.unit == "N" and cal.schema_version == "1.0.0"
    assert datetime.fromisoformat(cal.created).tzinfo is not None
    assert set(cal.metrics) == set(METRIC_KEYS) and set(cal.range) == set(RANGE_KEYS)
    assert all(math.isfinite(v) for v in cal.metrics.values())
    again = Calibration.from_json(cal.to_json())
    assert again == cal
    assert Calibration.from_json(cal.to_json(indent=None)) == cal
    assert "\n" not in cal.to_json(indent=None)
    counts = np.array([1000.0, 3000.0, 5000.0])
    np.testing.assert_array_equal(again.force(counts), cal.force(counts))
    np.testing.assert_array_equal(cal.in_range([-0.5, 0.0, 20.0, 40.0, 40.5, math.nan]),
                                  [False, True, True, True, False, False])
    # Tare: the curve moved so that the tare counts read 0 N, slope unchanged.
    tared = cal.tared_coefficients(1200.0)
    assert tared[1] == cal.coefficients[1]
    assert np.polynomial.polynomial.polyval(1200.0, tared) == pytest.approx(0.0, abs=1e-12)
    assert cal.resolution_n() == pytest.approx(abs(cal.coefficients[1]))


def test_unknown_metrics_are_null_in_json_and_nan_in_python():
    cal = make_cal(load_cell_points())
    record = json.loads(cal.to_json())
    assert record["metrics"]["hysteresis_pct_fs"] is None
    assert math.isnan(Calibration.from_json(cal.to_json()).metrics["hysteresis_pct_fs"])
    point = CalPoint.measure(10.0, [100, 102, 98])
    assert (point.counts, point.n_samples, point.sd_counts) == (100.0, 3, 2.0)
    single = make_cal([CalPoint(0, 0, "tare"), CalPoint.measure(5.0, [500])])
    assert json.loads(single.to_json())["points"][1]["sd_counts"] is None


def test_age_and_warnings():
    created = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    cal = make_cal(load_cell_points(), created=created)
    assert cal.age_days(created + timedelta(days=3, hours=12)) == pytest.approx(3.5)
    assert warnings_for(cal, created + timedelta(days=10)) == [
        "no unloading points: hysteresis unknown"]
    old = warnings_for(make_cal(created=created), created + timedelta(days=200))
    assert old == ["calibration is 200 days old (recalibrate every 180 days)"]
    assert warnings_for(make_cal(created=created), created + timedelta(days=200),
                        max_age_days=365) == []
    future = warnings_for(make_cal(created=created), created - timedelta(days=2))
    assert "in the future" in future[0]
    other = warnings_for(make_cal(created=created), created,
                         device={"device_id": "SIM-0002", "firmware_version": "1.0.0"})
    assert other == ["calibration was made for device_id 'SIM-0001'; the device reports "
                     "'SIM-0002'"]
    fsr = make_cal(created=created, device={"sensor_kind": "FSR / analog"})
    assert any("thin-film sensor" in w for w in warnings_for(fsr, created))


# ---- files ---------------------------------------------------------------------------------


def write_record(path: Path, edit=None, text: str | None = None) -> Path:
    record = json.loads(make_cal().to_json())
    if edit:
        edit(record)
    path.write_text(text if text is not None else json.dumps(record, indent=2))
    return path


def refusal(path: Path) -> str:
    with pytest.raises(CalibrationError) as info:
        load_calibration(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


def test_bad_files_are_refused_in_one_line_naming_file_and_field(tmp_path):
    cal = tmp_path / "cal.json"
    good = write_record(cal)
    text = good.read_text()

    assert refusal(tmp_path / "absent.json").startswith("cannot read")
    broken = text.replace('"unit": "N",', '"unit": "N"', 1)
    assert refusal(write_record(cal, text=broken)).startswith("not JSON (line ")
    assert refusal(write_record(cal, text='{"a": NaN}')).startswith("not valid JSON")
    assert refusal(write_record(cal, text='{"a": 1e400}')) == "not valid JSON (1e400 is too " \
                                                              "large for a number)"
    assert refusal(write_record(cal, text="[1, 2]")) == "(top level): expected a JSON object, " \
                                                       "got a list"

    def drop(key):
        return lambda r: r.pop(key)

    def put(where, value):
        def edit(r):
            *parents, last = where
            for key in parents:
                r = r[key]
            r[last] = value
        return edit

    cases = [
        (drop("coefficients"), "coefficients: missing"),
        (put(["coefficients"], "0.01"), "coefficients: expected a list of numbers"),
        (put(["coefficients"], [0.0, "x"]), "coefficients[1]: expected a number, got a string"),
        (put(["coefficients"], [0.0, 0.01, 0.0]),
         "coefficients: expected 2 items, got 3 (when model is 'linear')"),
        (put(["model"], "poly3"), "coefficients: expected 4 items, got 2 (when model is 'poly3')"),
        (put(["schema_version"], "2.0.0"), "schema_version: 2.0.0 was written by a newer"),
        (put(["schema_version"], "0.9.0"), "schema_version: 0.9.0 is not supported"),
        (put(["schema_name"], "something-else"), "schema_name: is 'something-else'"),
        (drop("device"), "device: missing"),
        (put(["device", "device_id"], 7), "device.device_id: expected a string"),
        (put(["points", 1, "direction"], "sideways"), "points[1].direction: 'sideways'"),
        (put(["points", 2, "load_n"], None), "points[2].load_n: expected a number, got null"),
        (put(["points", 2, "load_n"], -1), "points[2].load_n: expected a number >= 0, got -1"),
        (put(["points", 1, "direction"], "tare"),
         "points[1].load_n: is 10.0, expected 0 (when direction is 'tare')"),
        (put(["points", 0, "n_samples"], 0), "points[0].n_samples: expected an integer"),
        (put(["metrics", "repeatability_n"], "high"), "metrics.repeatability_n: expected a "
                                                      "number or null"),
        (put(["created"], "2026-01-10T09:00:00"), "created: '2026-01-10T09:00:00' is not"),
        (put(["created"], "yesterday+01:00"), "created: 'yesterday+01:00' is not an ISO-8601 "
                                              "time with UTC offset"),
        (put(["id"], "not-a-uuid"), "id: 'not-a-uuid' is not 32"),
        (put(["unit"], "kgf"), "unit: is 'kgf', expected 'N'"),
        (put(["range", "max_n"], 50.0), "range.max_n: is 50 but the points give 40"),
        (put(["residuals", 3], 1.5), "residuals[3]: is 1.5 N but the coefficients give"),
        (put(["residuals"], [0.0]), "residuals: 1 values for 9 points"),
    ]
    for edit, expected in cases:
        message = refusal(write_record(cal, edit))
        assert message.startswith(expected), (expected, message)


def test_a_decreasing_calibration_file_is_refused(tmp_path):
    def falling(record):
        record["coefficients"] = [50.0, -0.01]  # force falls as counts rise
        counts = [p["counts"] for p in record["points"]]
        loads = [p["load_n"] for p in record["points"]]
        record["residuals"] = [50.0 - 0.01 * c - f for c, f in zip(counts, loads, strict=True)]

    message = refusal(write_record(tmp_path / "cal.json", falling))
    assert message.startswith("coefficients: force does not increase with counts over the "
                              "calibrated range (1000..5005 counts); refused")
    # A poly3 whose slope dips below zero between two points is caught too (exact check).
    def dipping(record):
        record["model"] = "poly3"
        lo, hi = 1000.0, 5005.0
        mid = (lo + hi) / 2
        # f'(x) = 3a (x - mid)^2 - e: negative around mid, positive near the ends.
        a, e = 1e-9, 1e-3
        record["coefficients"] = [0.0, 3 * a * mid**2 - e, -3 * a * mid, a]
        poly = np.polynomial.Polynomial(record["coefficients"])
        record["residuals"] = [float(poly(p["counts"])) - p["load_n"]
                               for p in record["points"]]

    assert "does not increase" in refusal(write_record(tmp_path / "cal.json", dipping))


# ---- storage -------------------------------------------------------------------------------


def test_calibration_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PALPATION_DATA_DIR", str(tmp_path / "data"))
    assert calibration_dir() == tmp_path / "data" / "calibrations"
    monkeypatch.delenv("PALPATION_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("APPDATA", str(tmp_path / "appdata"))
    if sys.platform == "win32":
        expected = tmp_path / "appdata" / "palpation" / "calibrations"
    elif sys.platform == "darwin":
        expected = tmp_path / "home" / "Library" / "Application Support" / "palpation" / \
            "calibrations"
    else:
        expected = tmp_path / "xdg" / "palpation" / "calibrations"
        assert calibration_dir() == expected
        monkeypatch.delenv("XDG_DATA_HOME")
        expected = tmp_path / "home" / ".local" / "share" / "palpation" / "calibrations"
    assert calibration_dir() == expected


def test_save_then_find_newest_by_device(tmp_path, monkeypatch):
    monkeypatch.setenv("PALPATION_DATA_DIR", str(tmp_path))
    day = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    older = make_cal(created=day)
    newer = make_cal(created=day + timedelta(days=30))
    other = make_cal(device_id="SIM-0002", created=day + timedelta(days=60),
                     device={"usb_identity": "2341:0043 A1B2"})
    paths = [save_calibration(c) for c in (newer, other, older)]  # order must not matter
    folder = tmp_path / "calibrations"
    assert all(p.parent == folder for p in paths)
    assert paths[0].name == f"SIM-0001_20260331_{newer.id[:8]}.json"
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in paths)  # no temps
    assert load_calibration(paths[2]) == older

    (folder / "junk.json").write_text("{not json")
    problems: list[str] = []
    assert find_calibration("SIM-0001", problems=problems) == newer
    assert problems == [f"{folder / 'junk.json'}: not JSON (line 1, column 2: Expecting "
                        "property name enclosed in double quotes)"]
    assert find_calibration("SIM-0002") == other
    assert find_calibration("", usb_identity="2341:0043 A1B2") == other
    assert find_calibration("SIM-0003") is None
    assert find_calibration("") is None
    assert find_calibration("SIM-0001", directory=tmp_path / "nowhere") is None

    # Saving again (same id) replaces the file; a bad record is never written.
    assert save_calibration(newer) == paths[0]
    broken = make_cal()
    broken.coefficients = [0.0, -0.01]
    broken.residuals = [-0.01 * p.counts - p.load_n for p in broken.points]
    with pytest.raises(CalibrationError, match="does not increase"):
        save_calibration(broken)
    broken.coefficients = [0.0, math.nan]
    with pytest.raises(CalibrationError, match="cannot be written as JSON"):
        save_calibration(broken)
    assert len(list(folder.iterdir())) == 4


def test_json_schema_file_matches_the_records_written():
    schema = json.loads((SCHEMAS / "calibration-v1.json").read_text())
    record = json.loads(make_cal().to_json())
    props = schema["properties"]
    assert set(schema["required"]) == set(record) == set(props)
    assert props["schema_version"]["pattern"].startswith("^" + record["schema_version"][0])
    assert props["model"]["enum"] == list(MODELS)
    assert set(props["device"]["required"]) == set(record["device"])
    assert set(props["range"]["required"]) == set(RANGE_KEYS)
    assert set(props["metrics"]["required"]) == set(METRIC_KEYS)
    point = schema["$defs"]["point"]
    assert set(point["required"]) == set(record["points"][0])
    assert point["properties"]["direction"]["enum"] == list(DIRECTIONS)


def test_saved_record_validates_against_json_schema(tmp_path):
    schema = json.loads((SCHEMAS / "calibration-v1.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for cal in (make_cal(), make_cal(load_cell_points(), "poly3")):
        validator.validate(json.loads(save_calibration(cal, tmp_path).read_text()))
    bad = json.loads(make_cal().to_json())
    bad["points"][0]["direction"] = "sideways"
    assert not validator.is_valid(bad)


# ---- does a calibration cover a protocol? --------------------------------------------------


def kg_points(*kgs: float) -> list[CalPoint]:
    return [CalPoint(load_to_newtons(m, "kg"), 1000.0 + 100.0 * load_to_newtons(m, "kg"),
                     "tare" if m == 0 else "load", 50, 3.0) for m in kgs]


def test_a_range_short_of_the_band_is_warned_with_the_shortfall():
    cal = make_cal(kg_points(0, 0.5, 1, 2))  # the old README example: 0..19.6 N
    (warning,) = coverage_warnings(cal, load_preset("nmt-static"))
    assert "0.0..19.6 N does not cover the target band 30.0..50.0 N" in warning
    assert "(every point)" in warning and "30.4 N above its top" in warning
    assert "at least 50 N (5.1 kg)" in warning
    cal = make_cal(kg_points(0, 2, 5.1))  # 50.01 N: covers 30..50 N
    assert coverage_warnings(cal, load_preset("nmt-static")) == []
    assert "40.0 N above its top" in coverage_warnings(cal, load_preset("ischemic"))[0]


def test_coverage_names_the_points_of_each_band_and_the_bottom():
    def point(name: str, low: float, high: float) -> TriggerPoint:
        return TriggerPoint(name, name, "", "", Dose("N", low, high))

    protocol = SessionProtocol("p", "", "N", None, "static",
                               (point("a", 30, 50), point("b", 5, 15), point("c", 30, 50)))
    cal = make_cal([CalPoint(10.0, 2000.0, "load", 50, 3.0),
                    CalPoint(40.0, 5000.0, "load", 50, 3.0)])  # 10..40 N
    warnings = coverage_warnings(cal, protocol)
    assert len(warnings) == 2
    assert "30.0..50.0 N" in warnings[0] and "(a, c)" in warnings[0]
    assert "10.0 N above its top" in warnings[0]
    assert "(b)" in warnings[1] and "5.0 N below its bottom" in warnings[1]


def test_one_list_of_load_units_is_the_one_load_to_newtons_accepts():
    for unit in LOAD_UNITS:
        assert load_to_newtons(1, unit) > 0
        canonical_unit(unit)
    with pytest.raises(ValueError) as e:
        load_to_newtons(1, "stone")
    assert f"(known: {', '.join(LOAD_UNITS)})" in str(e.value)
