"""The calibration record: what a calibration file holds and a recording embeds, its JSON form,
and the checks a record must pass to be loaded.

A record is checked against its JSON Schema, schemas/calibration-v1.json, with ``jsonschema``;
this module adds only what the schema cannot say (another major version, the range and
residuals that must agree with the points and coefficients, a curve that rises) and turns
the first problem into a one-line message "SOURCE: field: what is wrong".
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import best_match
from numpy.polynomial import polynomial as P

from schemas import __version__
from schemas.calibration.fit import (
    METRIC_KEYS,
    RANGE_KEYS,
    CalibrationFit,
    CalPoint,
    increasing_over,
    slopes_at_extremes,
)
from schemas.units import GRAVITY

if TYPE_CHECKING:
    from schemas.session_protocol import SessionProtocol

SCHEMA_NAME = "palpation-calibration"
SCHEMA_VERSION = "1.0.0"
DEVICE_KEYS = ("device_id", "model", "usb_identity", "sensor_kind", "firmware_version")
DEFAULT_MAX_AGE_DAYS = 180


class CalibrationError(ValueError):
    """A calibration cannot be made, read or stored; str() is one line: "FILE: field: problem"."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass
class Calibration:
    """A calibration record: what `save_calibration` writes and a recording embeds as JSON."""

    id: str
    created: str  # ISO-8601 with UTC offset
    device: dict[str, str]
    sensor_note: str
    unit: str
    model: str
    coefficients: list[float]
    points: list[CalPoint]
    residuals: list[float]  # N, fitted minus applied, one per point
    metrics: dict[str, float]
    range: dict[str, float]
    software_version: str
    schema_version: str = SCHEMA_VERSION

    @classmethod
    def from_fit(
        cls,
        result: CalibrationFit,
        *,
        device: dict[str, str] | None = None,
        sensor_note: str = "",
        created: datetime | None = None,
        software_version: str | None = None,
    ) -> Calibration:
        """A new record (fresh id) from a fit; a fit that does not rise with counts is refused."""
        if not result.increasing:
            lo, hi = result.range["min_counts"], result.range["max_counts"]
            raise CalibrationError(
                f"{result.model} fit: force does not increase with counts over {lo:g}..{hi:g} "
                "counts; refused (use fewer terms or more points)"
            )
        unknown = sorted(set(device or {}) - set(DEVICE_KEYS))
        if unknown:
            raise ValueError(f"unknown device field(s) {unknown}; known: {', '.join(DEVICE_KEYS)}")
        if software_version is None:
            software_version = __version__
        stamp = (created or datetime.now()).astimezone()
        return cls(
            id=uuid.uuid4().hex,
            created=stamp.isoformat(timespec="seconds"),
            device={key: str((device or {}).get(key, "")) for key in DEVICE_KEYS},
            sensor_note=sensor_note,
            unit="N",
            model=result.model,
            coefficients=list(result.coefficients),
            points=list(result.points),
            residuals=list(result.residuals_n),
            metrics=result.metrics(),
            range=dict(result.range),
            software_version=str(software_version),
        )

    # ---- JSON --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (NaN becomes null)."""
        return {
            "schema_name": SCHEMA_NAME,
            "schema_version": self.schema_version,
            "id": self.id,
            "created": self.created,
            "device": dict(self.device),
            "sensor_note": self.sensor_note,
            "unit": self.unit,
            "model": self.model,
            "coefficients": [float(c) for c in self.coefficients],
            "range": {key: float(self.range[key]) for key in RANGE_KEYS},
            "metrics": {key: _nullable(self.metrics[key]) for key in METRIC_KEYS},
            "points": [
                {**asdict(p), "sd_counts": _nullable(p.sd_counts)} for p in self.points
            ],
            "residuals": [float(r) for r in self.residuals],
            "software_version": self.software_version,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The record as JSON text (indent=None: one compact line, as embedded in recordings)."""
        separators = (",", ":") if indent is None else None
        return json.dumps(self.to_dict(), indent=indent, separators=separators,
                          ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_json(cls, text: str, source: str = "calibration") -> Calibration:
        """Parse and check a record; CalibrationError "SOURCE: field: problem" otherwise."""
        def refuse_constant(name: str) -> None:
            raise ValueError(f"{name} is not allowed in a calibration; use null")

        def finite(literal: str) -> float:
            value = float(literal)
            if not math.isfinite(value):
                raise ValueError(f"{literal} is too large for a number")
            return value

        try:
            data = json.loads(text, parse_constant=refuse_constant, parse_float=finite)
        except json.JSONDecodeError as exc:
            raise CalibrationError(
                f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
        except ValueError as exc:
            raise CalibrationError(f"{source}: not valid JSON ({exc})") from None
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "calibration") -> Calibration:
        """Check a parsed record (see schemas/CALIBRATION.md) and build it."""
        _check_major_version(data, source)
        error = best_match(_VALIDATOR.iter_errors(data))
        if error is not None:
            where, what = _explain(error)
            raise CalibrationError(f"{source}: {where}: {what}")
        record = _from_valid(data)
        _check_consistency(record, source)
        return record

    def check(self, source: str = "calibration") -> None:
        """Raise CalibrationError if this record would not load back (same checks as loading)."""
        try:
            text = self.to_json()
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CalibrationError(f"{source}: cannot be written as JSON ({exc})") from None
        Calibration.from_dict(json.loads(text), source)

    # ---- use -----------------------------------------------------------------------------

    def force(self, counts: Any) -> np.ndarray:
        """Force in N for raw counts (as calibrated: no tare applied)."""
        return P.polyval(np.asarray(counts, dtype=np.float64), self.coefficients)

    def tared_coefficients(self, zero_counts: float) -> list[float]:
        """Coefficients of f(counts) - f(zero_counts): the curve moved so `zero_counts` reads 0 N.

        The recording file's convention (a factory calibration stores [-zero*scale, scale]);
        see "Tare" in schemas/CALIBRATION.md.
        """
        shifted = [float(c) for c in self.coefficients]
        shifted[0] -= float(self.force(float(zero_counts)))
        return shifted

    def in_range(self, force_n: Any) -> np.ndarray:
        """Mask of forces inside the calibrated loads, min_n..max_n (NaN is outside)."""
        f = np.asarray(force_n, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (f >= self.range["min_n"]) & (f <= self.range["max_n"])

    def resolution_n(self) -> float:
        """Newtons per count: the slope of a linear calibration; for a curve, the steepest slope
        over the calibrated counts (the coarsest step a single count makes)."""
        lo, hi = self.range["min_counts"], self.range["max_counts"]
        return max(abs(s) for s in slopes_at_extremes(self.coefficients, lo, hi))

    @property
    def created_at(self) -> datetime:
        return datetime.fromisoformat(self.created)

    def age_days(self, now: datetime | None = None) -> float:
        """Days since the calibration was made (a naive `now` is local time; None: now)."""
        now = (now or datetime.now()).astimezone()
        return (now - self.created_at).total_seconds() / 86400.0

    def recording_attrs(self, zero_counts: float | None = None) -> dict[str, Any]:
        """The /calibration attributes of a recording that uses this calibration.

        With `zero_counts` (the tare taken at the start) the coefficients are the tared ones,
        as a factory calibration's are; the json attribute holds the record itself, compact.
        """
        coefficients = (
            self.coefficients if zero_counts is None else self.tared_coefficients(zero_counts)
        )
        return {
            "source": "file",
            "calibration_id": self.id,
            "model": "polynomial",
            "coefficients": np.asarray(coefficients, dtype=np.float64),
            "unit": "N",
            "json": self.to_json(indent=None),
        }


def warnings_for(
    cal: Calibration,
    now: datetime | None = None,
    max_age_days: float = DEFAULT_MAX_AGE_DAYS,
    device: dict[str, Any] | None = None,
) -> list[str]:
    """Reasons to distrust `cal` now, one sentence each (empty when there are none).

    `device` (the /device attributes or DeviceInfo.as_attrs()) adds a check that the
    calibration was made for this device and firmware.
    """
    out = []
    age = cal.age_days(now)
    if age > max_age_days:
        out.append(f"calibration is {int(age)} days old (recalibrate every {max_age_days:g} days)")
    elif age < -1.0 / 24:
        out.append(f"calibration is dated {cal.created}, in the future: check the clock")
    for key in ("device_id", "firmware_version", "sensor_kind"):
        theirs, ours = str((device or {}).get(key, "")), cal.device.get(key, "")
        if theirs and ours and theirs != ours:
            out.append(f"calibration was made for {key} {ours!r}; the device reports {theirs!r}")
    kind = f"{cal.device.get('sensor_kind', '')} {cal.sensor_note}".lower()
    if any(word in kind for word in ("fsr", "thin-film", "thin film", "piezoresist")):
        out.append("thin-film sensor (FSR): even calibrated, absolute newtons are approximate "
                   "(drift, sensor-to-sensor spread); compare forces within a session")
    if not math.isfinite(cal.metrics.get("hysteresis_pct_fs", math.nan)):
        out.append("no unloading points: hysteresis unknown")
    worst = cal.metrics.get("max_residual_pct_fs", math.nan)
    if math.isfinite(worst) and worst > 2.0:
        out.append(f"fit residuals reach {worst:.1f} % of full scale")
    return out


def coverage_warnings(cal: Calibration, protocol: SessionProtocol) -> list[str]:
    """Where the protocol's target bands reach beyond the calibrated range, and by how much:
    one sentence per distinct band, naming its trigger points (empty when every band is
    covered). Outside the range the force is extrapolated, and a recording's live warnings
    flag every such sample, so the calibration should span the bands."""
    low_n, high_n = cal.range["min_n"], cal.range["max_n"]
    slack = 1e-6 * max(abs(high_n), 1.0)  # 5.1 kg is 50.01 N: no warning for rounding
    bands: dict[tuple[float, float], list[str]] = {}
    for index, point in enumerate(protocol.points):
        bands.setdefault(protocol.band_n(index), []).append(point.label)
    out = []
    for (band_lo, band_hi), labels in bands.items():
        short = [f"{band_hi - high_n:.1f} N above its top" if band_hi > high_n + slack else "",
                 f"{low_n - band_lo:.1f} N below its bottom" if band_lo < low_n - slack else ""]
        if not any(short):
            continue
        where = ("every point" if len(labels) == len(protocol.points)
                 else ", ".join(labels[:3]) + (f" and {len(labels) - 3} more"
                                               if len(labels) > 3 else ""))
        out.append(f"the calibrated range {low_n:.1f}..{high_n:.1f} N does not cover the "
                   f"target band {band_lo:.1f}..{band_hi:.1f} N of protocol "
                   f"\"{protocol.name}\" ({where}): {' and '.join(x for x in short if x)}; "
                   f"calibrate with loads from {min(band_lo, low_n):.0f} N to at least "
                   f"{band_hi:.0f} N ({band_hi / GRAVITY:.1f} kg)")
    return out


# ---- checking a record -------------------------------------------------------------------

_SCHEMA: dict[str, Any] = json.loads(
    (resources.files("schemas") / "calibration-v1.json").read_text(encoding="utf-8"))
_FORMATS = FormatChecker(formats=())


@_FORMATS.checks("date-time", raises=ValueError)
def _iso_time_with_offset(value: Any) -> bool:
    """The schema's date-time as `Calibration.created_at` reads it: ``datetime.fromisoformat``
    with a UTC offset. (jsonschema checks a format only with a checker for it.)"""
    return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None


_VALIDATOR = Draft202012Validator(_SCHEMA, format_checker=_FORMATS)
_NOUNS = {"object": "a JSON object", "array": "a list", "string": "a string",
          "number": "a number", "integer": "an integer", "null": "null", "boolean": "true/false"}


def _check_major_version(data: Any, source: str) -> None:
    """Name a calibration of another major version before anything else: its fields may differ
    from ours, so any other complaint would mislead. (The schema's pattern only says 1.x.y.)"""
    if not isinstance(data, dict) or data.get("schema_name") != SCHEMA_NAME:
        return
    version = data.get("schema_version")
    found = re.fullmatch(r"(\d+)\.\d+\.\d+", version) if isinstance(version, str) else None
    if found is None:
        return
    major, ours = int(found.group(1)), int(SCHEMA_VERSION.split(".")[0])
    if major > ours:
        raise CalibrationError(f"{source}: schema_version: {version} was written by a newer "
                               f"palpation (this one reads {ours}.x); upgrade palpation")
    if major < ours:
        raise CalibrationError(f"{source}: schema_version: {version} is not supported (this "
                               f"one reads {ours}.x)")


def _explain(error: ValidationError) -> tuple[str, str]:
    """(where, what) of a schema violation: the field's JSON path, and the rule it breaks in
    words. A field's ``title`` in the schema, where given, says what its pattern wants."""
    where = "(top level)" if error.json_path == "$" else error.json_path.removeprefix("$.")
    kind, value, bound = error.validator, error.instance, error.validator_value
    schema = error.schema
    if kind == "required":
        missing = next(key for key in bound if key not in value)
        return (missing if where == "(top level)" else f"{where}.{missing}"), "missing"
    if kind == "type":
        what = f"expected {_expected(schema)}, got {_json_type(value)}"
    elif kind == "const":
        what = f"is {value!r}, expected {bound!r}"
    elif kind == "enum":
        what = f"{value!r} is not one of {', '.join(map(str, bound))}"
    elif kind in ("minimum", "exclusiveMinimum"):
        sign = ">=" if kind == "minimum" else ">"
        what = f"expected {_expected(schema, nullable=False)} {sign} {bound:g}, got {value!r}"
    elif kind in ("minItems", "maxItems"):
        exact = schema.get("minItems") == schema.get("maxItems")
        size = "" if exact else ("at least " if kind == "minItems" else "at most ")
        what = f"expected {size}{bound} items, got {len(value)}"
    elif kind in ("pattern", "format") and "title" in schema:
        what = f"{value!r} is not {schema['title']}"
    else:
        what = error.message
    return where, what + _condition(error)


def _expected(schema: dict[str, Any], *, nullable: bool = True) -> str:
    """The JSON type(s) a schema wants, in words: "a number or null", "a list of numbers"."""
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else [t for t in types if nullable or t != "null"]
    items = schema.get("items", {})
    if types == ["array"] and isinstance(items.get("type"), str):
        return f"a list of {items['type']}s"
    return " or ".join(_NOUNS[t] for t in types)


def _condition(error: ValidationError) -> str:
    """" (when model is 'poly2')" for a rule that holds only under the schema's if/then."""
    node: Any = _SCHEMA
    condition = ""
    for part in error.absolute_schema_path:
        if isinstance(node, dict) and "$ref" in node:  # a local reference, "#/$defs/point"
            node = functools.reduce(operator.getitem, node["$ref"].removeprefix("#/").split("/"),
                                    _SCHEMA)
        if part == "$ref":  # the path names the reference only in some jsonschema versions
            continue
        if part == "then":
            rules = node["if"].get("properties", {}).items()
            condition = " and ".join(f"{key} is {rule['const']!r}" for key, rule in rules
                                     if "const" in rule)
        node = node[part]
    return f" (when {condition})" if condition else ""


def _from_valid(data: dict[str, Any]) -> Calibration:
    """The record in `data`, which the schema has accepted."""
    points = [CalPoint(float(p["load_n"]), float(p["counts"]), p["direction"],
                       int(p["n_samples"]), _nan_for_null(p["sd_counts"]))
              for p in data["points"]]
    return Calibration(
        id=data["id"], created=data["created"],
        device={key: data["device"][key] for key in DEVICE_KEYS},
        sensor_note=data["sensor_note"], unit=data["unit"], model=data["model"],
        coefficients=[float(c) for c in data["coefficients"]], points=points,
        residuals=[float(r) for r in data["residuals"]],
        metrics={key: _nan_for_null(data["metrics"][key]) for key in METRIC_KEYS},
        range={key: float(data["range"][key]) for key in RANGE_KEYS},
        software_version=data["software_version"], schema_version=data["schema_version"],
    )


def _check_consistency(cal: Calibration, source: str) -> None:
    """What the schema cannot express: one residual per point, equal to fitted minus applied
    force; the range the points' extents; force rising with counts over that range."""
    def refuse(where: str, what: str) -> CalibrationError:
        return CalibrationError(f"{source}: {where}: {what}")

    residuals, rng = cal.residuals, cal.range
    if len(residuals) != len(cal.points):
        raise refuse("residuals", f"{len(residuals)} values for {len(cal.points)} points")
    load = np.array([p.load_n for p in cal.points])
    counts = np.array([p.counts for p in cal.points])
    extents = {"min_n": load.min(), "max_n": load.max(),
               "min_counts": counts.min(), "max_counts": counts.max()}
    for key, value in extents.items():
        if rng[key] != value:
            raise refuse(f"range.{key}", f"is {rng[key]:g} but the points give {value:g}")
    expected = P.polyval(counts, cal.coefficients) - load
    tolerance = 1e-6 * rng["max_n"] + 1e-9
    worst = int(np.argmax(np.abs(expected - np.asarray(residuals))))
    if abs(expected[worst] - residuals[worst]) > tolerance:
        raise refuse(f"residuals[{worst}]", f"is {residuals[worst]:g} N but the coefficients "
                     f"give {expected[worst]:g} N (record edited by hand?)")
    if not increasing_over(cal.coefficients, rng["min_counts"], rng["max_counts"]):
        raise refuse("coefficients", "force does not increase with counts over the calibrated "
                     f"range ({rng['min_counts']:g}..{rng['max_counts']:g} counts); refused "
                     "(force must rise with counts everywhere it is used)")


def _nullable(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _nan_for_null(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
