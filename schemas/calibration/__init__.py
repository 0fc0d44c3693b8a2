"""Sensor calibration: fit newtons from raw counts against known loads, judge the fit, store it.

Pure logic and JSON files: no threads, no Qt, no serial port. The record's layout, the metric
definitions and where files live are written down in schemas/CALIBRATION.md; the JSON Schema is
schemas/calibration-v1.json. The model is the recording file's: force_N = sum(c[i] * counts**i),
coefficients lowest order first.

One module per job, every public name importable from here: ``fit`` (the polynomial and how
good it is), ``record`` (the record, its JSON and its checks against the schema), ``store``
(the files in the calibration folder).

Typical use::

    points = [CalPoint(load_to_newtons(m, "kg"), counts, "load", n, sd) for ...]
    cal = Calibration.from_fit(fit(points, "linear"), device={"device_id": "SIM-0001"})
    save_calibration(cal)
    cal = find_calibration("SIM-0001")          # newest for that device, or None
"""

from schemas.calibration.fit import (
    DIRECTIONS,
    METRIC_KEYS,
    MODELS,
    RANGE_KEYS,
    SAME_LOAD_FRACTION,
    CalibrationFit,
    CalPoint,
    fit,
    increasing_over,
    load_to_newtons,
    slopes_at_extremes,
)
from schemas.calibration.record import (
    DEFAULT_MAX_AGE_DAYS,
    DEVICE_KEYS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    Calibration,
    CalibrationError,
    coverage_warnings,
    warnings_for,
)
from schemas.calibration.store import (
    calibration_dir,
    calibration_filename,
    find_calibration,
    list_calibrations,
    load_calibration,
    save_calibration,
)

__all__ = [
    "DEFAULT_MAX_AGE_DAYS",
    "DEVICE_KEYS",
    "DIRECTIONS",
    "METRIC_KEYS",
    "MODELS",
    "RANGE_KEYS",
    "SAME_LOAD_FRACTION",
    "SCHEMA_NAME",
    "SCHEMA_VERSION",
    "CalPoint",
    "Calibration",
    "CalibrationError",
    "CalibrationFit",
    "calibration_dir",
    "calibration_filename",
    "coverage_warnings",
    "find_calibration",
    "fit",
    "increasing_over",
    "list_calibrations",
    "load_calibration",
    "load_to_newtons",
    "save_calibration",
    "slopes_at_extremes",
    "warnings_for",
]
