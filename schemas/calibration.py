"""Sensor calibration: fit newtons from raw counts against known loads, judge the fit, store it.

Pure logic and JSON files: no threads, no Qt, no serial port. The record's layout, the metric
definitions and where files live are written down in schemas/CALIBRATION.md; the JSON Schema is
schemas/calibration-v1.json. The model is the recording file's: force_N = sum(c[i] * counts**i),
coefficients lowest order first.

Typical use::

    points = [CalPoint(load_to_newtons(m, "kg"), counts, "load", n, sd) for ...]
    cal = Calibration.from_fit(fit(points, "linear"), device={"device_id": "SIM-0001"})
    save_calibration(cal)
    cal = find_calibration("SIM-0001")          # newest for that device, or None
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import tempfile
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.polynomial import Polynomial
from numpy.polynomial import polynomial as P

from schemas import __version__
from schemas.units import is_pressure, newtons_per_unit

SCHEMA_NAME = "palpation-calibration"
SCHEMA_VERSION = "1.0.0"
MODELS = {"linear": 1, "poly2": 2, "poly3": 3}  # model -> polynomial degree
DIRECTIONS = ("load", "unload", "tare")
DEVICE_KEYS = ("device_id", "model", "usb_identity", "sensor_kind", "firmware_version")
METRIC_KEYS = (
    "nonlinearity_pct_fs",
    "hysteresis_pct_fs",
    "repeatability_n",
    "repeatability_pct_fs",
    "max_residual_pct_fs",
)
RANGE_KEYS = ("min_n", "max_n", "min_counts", "max_counts")
DEFAULT_MAX_AGE_DAYS = 180
# Loads closer than this fraction of full scale are the same nominal load (1 ppm).
SAME_LOAD_FRACTION = 1e-6


class CalibrationError(ValueError):
    """A calibration cannot be made, read or stored; str() is one line: "FILE: field: problem"."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


def load_to_newtons(value: float, unit: str) -> float:
    """A reference load in newtons: masses (g, kg, lb: weight under standard gravity) or forces
    (N, kgf, gf, lbf, ...). Pressure units and negative or non-finite loads raise ValueError."""
    if is_pressure(unit):  # also raises ValueError for unknown units
        raise ValueError(f"{unit} is a pressure; give the reference load as a mass or a force")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"reference load must be a finite number >= 0, got {value!r}")
    return value * newtons_per_unit(unit)


@dataclass
class CalPoint:
    """One calibration reading: a known load and the mean raw counts the sensor gave under it.

    `direction` says how the load was reached: "load" (increasing), "unload" (decreasing) or
    "tare" (the zero-load reading taken when taring; load_n must be 0). `n_samples` readings were
    averaged into `counts`; `sd_counts` is their standard deviation (NaN when unknown).
    """

    load_n: float
    counts: float
    direction: str = "load"
    n_samples: int = 1
    sd_counts: float = math.nan

    @classmethod
    def measure(cls, load_n: float, samples: Any, direction: str = "load") -> CalPoint:
        """A point from the raw counts recorded while `load_n` rested on the sensor."""
        values = np.asarray(samples, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("no samples for this calibration point")
        sd = float(values.std(ddof=1)) if values.size > 1 else math.nan
        return cls(float(load_n), float(values.mean()), direction, int(values.size), sd)


@dataclass
class CalibrationFit:
    """A least-squares polynomial of force (N) against counts, and how good it is.

    Residuals are fitted minus applied force, in N, one per point. Percentages are of full
    scale, the largest calibrated load. NaN means "cannot be computed from these points"
    (no unloading points for hysteresis, no repeated points for repeatability).
    """

    model: str
    coefficients: list[float]
    points: list[CalPoint]
    residuals_n: list[float]
    full_scale_n: float
    max_residual_n: float
    max_residual_pct_fs: float
    nonlinearity_n: float
    nonlinearity_pct_fs: float
    hysteresis_n: float
    hysteresis_pct_fs: float
    repeatability_n: float
    repeatability_pct_fs: float
    range: dict[str, float]
    increasing: bool  # force rises with counts over the whole calibrated counts range

    @property
    def rms_residual_n(self) -> float:
        return float(np.sqrt(np.mean(np.square(self.residuals_n))))

    def metrics(self) -> dict[str, float]:
        return {key: getattr(self, key) for key in METRIC_KEYS}

    def force(self, counts: Any) -> np.ndarray:
        return P.polyval(np.asarray(counts, dtype=np.float64), self.coefficients)


def fit(points: list[CalPoint], model: str = "linear") -> CalibrationFit:
    """Fit force_N as a polynomial of counts ("linear", "poly2" or "poly3") by least squares.

    Every point counts once (loading, unloading and tare alike). ValueError when the points
    cannot determine the model (too few distinct readings, no load above zero, bad values).
    """
    if model not in MODELS:
        raise ValueError(f"unknown calibration model {model!r} (known: {', '.join(MODELS)})")
    degree = MODELS[model]
    points = [_checked_point(p, i) for i, p in enumerate(points)]
    load = np.array([p.load_n for p in points], dtype=np.float64)
    counts = np.array([p.counts for p in points], dtype=np.float64)
    if len(np.unique(counts)) < degree + 1:
        raise ValueError(
            f"{model} needs at least {degree + 1} distinct readings, got {len(np.unique(counts))}"
        )
    full_scale = float(load.max())
    if full_scale <= 0:
        raise ValueError("no load above zero: a calibration needs at least one known load")
    coefficients = Polynomial.fit(counts, load, degree).convert().coef
    coefficients = np.pad(coefficients, (0, degree + 1 - len(coefficients)))
    fitted = P.polyval(counts, coefficients)
    residuals = fitted - load
    max_residual = float(np.abs(residuals).max())
    nonlinearity = _terminal_nonlinearity(points, load, counts, full_scale)
    hysteresis = _hysteresis(points, load, counts, full_scale, coefficients)
    repeatability = _repeatability(points, load, fitted, full_scale)
    rng = {
        "min_n": float(load.min()),
        "max_n": full_scale,
        "min_counts": float(counts.min()),
        "max_counts": float(counts.max()),
    }
    return CalibrationFit(
        model=model,
        coefficients=[float(c) for c in coefficients],
        points=points,
        residuals_n=[float(r) for r in residuals],
        full_scale_n=full_scale,
        max_residual_n=max_residual,
        max_residual_pct_fs=_pct(max_residual, full_scale),
        nonlinearity_n=nonlinearity,
        nonlinearity_pct_fs=_pct(nonlinearity, full_scale),
        hysteresis_n=hysteresis,
        hysteresis_pct_fs=_pct(hysteresis, full_scale),
        repeatability_n=repeatability,
        repeatability_pct_fs=_pct(repeatability, full_scale),
        range=rng,
        increasing=increasing_over(coefficients, rng["min_counts"], rng["max_counts"]),
    )


def increasing_over(coefficients: Any, lo: float, hi: float) -> bool:
    """True when the polynomial's slope is > 0 everywhere on [lo, hi] (checked exactly: the
    slope's minimum lies at an end or where its own derivative is zero)."""
    slope = Polynomial(np.asarray(coefficients, dtype=np.float64)).deriv()
    where = [lo, hi, *_real_roots_inside(slope.deriv(), lo, hi)]
    return bool(all(slope(x) > 0 for x in where))


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

        try:
            data = json.loads(text, parse_constant=refuse_constant)
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
        return _Reader(source).calibration(data)

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
        slope = Polynomial(np.asarray(self.coefficients, dtype=np.float64)).deriv()
        where = [lo, hi, *_real_roots_inside(slope.deriv(), lo, hi)]
        return float(max(abs(slope(x)) for x in where))

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


# ---- files -------------------------------------------------------------------------------


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file; CalibrationError "FILE: field: problem" otherwise."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CalibrationError(f"{p}: not JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise CalibrationError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return Calibration.from_json(text, str(p))


def calibration_dir() -> Path:
    """Where calibrations live: $PALPATION_DATA_DIR/calibrations if set, else the user's data
    folder + palpation/calibrations (XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/
    Application Support on macOS, %APPDATA% on Windows)."""
    override = os.environ.get("PALPATION_DATA_DIR")
    if override:
        return Path(override).expanduser() / "calibrations"
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "palpation" / "calibrations"


def calibration_filename(cal: Calibration) -> str:
    """DEVICE_YYYYMMDD_SHORTID.json, the device id reduced to file-name-safe characters."""
    device = re.sub(r"[^A-Za-z0-9._-]+", "-", cal.device.get("device_id", "")).strip("-.")
    device = device[:40] or "device"
    return f"{device}_{cal.created_at.strftime('%Y%m%d')}_{cal.id[:8]}.json"


def save_calibration(cal: Calibration, directory: str | Path | None = None) -> Path:
    """Check `cal`, then write it atomically into calibration_dir() (or `directory`)."""
    cal.check(f"calibration {cal.id}")
    folder = Path(directory) if directory is not None else calibration_dir()
    target = folder / calibration_filename(cal)
    text = cal.to_json() + "\n"
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, prefix=f".{target.name}.", suffix=".tmp",
            delete=False,
        ) as out:
            tmp = Path(out.name)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        tmp = None
        _fsync_dir(folder)
    except OSError as exc:
        raise CalibrationError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return target


def list_calibrations(
    directory: str | Path | None = None, problems: list[str] | None = None
) -> list[tuple[Path, Calibration]]:
    """Every readable calibration in the folder, oldest first. Files that fail to load are
    skipped; their one-line errors are appended to `problems` if given."""
    folder = Path(directory) if directory is not None else calibration_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append((path, load_calibration(path)))
        except CalibrationError as exc:
            if problems is not None:
                problems.append(str(exc))
    found.sort(key=lambda item: (item[1].created_at, item[0].name))
    return found


def find_calibration(
    device_id: str,
    usb_identity: str = "",
    *,
    directory: str | Path | None = None,
    problems: list[str] | None = None,
) -> Calibration | None:
    """The newest calibration for a device: matched on device_id when it is given, else on
    usb_identity; None when nothing matches (or neither is given)."""
    if device_id:
        key, wanted = "device_id", device_id
    elif usb_identity:
        key, wanted = "usb_identity", usb_identity
    else:
        return None
    matches = [
        cal for _, cal in list_calibrations(directory, problems) if cal.device.get(key) == wanted
    ]
    return matches[-1] if matches else None


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


# ---- metrics -----------------------------------------------------------------------------


def _checked_point(p: CalPoint, i: int) -> CalPoint:
    if not isinstance(p, CalPoint):
        raise ValueError(f"points[{i}]: expected a CalPoint, got {type(p).__name__}")
    if not (math.isfinite(p.load_n) and p.load_n >= 0):
        raise ValueError(f"points[{i}].load_n: expected a finite load >= 0 N, got {p.load_n}")
    if not math.isfinite(p.counts):
        raise ValueError(f"points[{i}].counts: expected a finite number, got {p.counts}")
    if p.direction not in DIRECTIONS:
        raise ValueError(f"points[{i}].direction: {p.direction!r} is not one of {DIRECTIONS}")
    if p.direction == "tare" and p.load_n != 0:
        raise ValueError(f"points[{i}]: a tare point is a zero-load reading, got {p.load_n} N")
    if int(p.n_samples) != p.n_samples or p.n_samples < 1:
        raise ValueError(f"points[{i}].n_samples: expected an integer >= 1, got {p.n_samples}")
    if p.sd_counts < 0:  # NaN (unknown) passes
        raise ValueError(f"points[{i}].sd_counts: expected >= 0, got {p.sd_counts}")
    return CalPoint(float(p.load_n), float(p.counts), p.direction, int(p.n_samples),
                    float(p.sd_counts))


def _nominal(load: np.ndarray, full_scale: float) -> np.ndarray:
    """Group index of each load: loads within SAME_LOAD_FRACTION of full scale are one load."""
    order = np.argsort(load, kind="stable")
    steps = np.diff(load[order]) > SAME_LOAD_FRACTION * full_scale
    groups = np.empty(len(load), dtype=np.int64)
    groups[order] = np.concatenate([[0], np.cumsum(steps)])
    return groups


def _loading(points: list[CalPoint]) -> np.ndarray:
    return np.array([p.direction in ("load", "tare") for p in points])


def _terminal_nonlinearity(points, load, counts, full_scale) -> float:
    """Largest distance (N) of the loading points, averaged per nominal load, from the terminal
    line through the zero-load (lowest) and the highest loading point."""
    up = _loading(points)
    if not up.any():
        return math.nan
    groups = _nominal(load, full_scale)
    ids = np.unique(groups[up])
    mean_load = np.array([load[up & (groups == g)].mean() for g in ids])
    mean_counts = np.array([counts[up & (groups == g)].mean() for g in ids])
    if len(ids) < 2 or mean_counts[-1] == mean_counts[0]:
        return math.nan
    slope = (mean_load[-1] - mean_load[0]) / (mean_counts[-1] - mean_counts[0])
    line = mean_load[0] + slope * (mean_counts - mean_counts[0])
    return float(np.abs(line - mean_load).max())


def _hysteresis(points, load, counts, full_scale, coefficients) -> float:
    """Largest |f(unloading counts) - f(loading counts)| (N) at a nominal load measured both
    ways, counts averaged per direction, f the fitted curve; NaN without such a load."""
    up = _loading(points)
    down = ~up
    groups = _nominal(load, full_scale)
    gaps = []
    for g in np.unique(groups):
        here = groups == g
        if (here & up).any() and (here & down).any():
            c_up, c_down = counts[here & up].mean(), counts[here & down].mean()
            gaps.append(abs(P.polyval(c_down, coefficients) - P.polyval(c_up, coefficients)))
    return float(max(gaps)) if gaps else math.nan


def _repeatability(points, load, fitted, full_scale) -> float:
    """Pooled SD (N) of the fitted forces of repeated points: same nominal load, same direction
    (tare counts as loading); NaN without repeats."""
    up = _loading(points)
    groups = _nominal(load, full_scale) * 2 + np.where(up, 0, 1)
    squares, dof = 0.0, 0
    for g in np.unique(groups):
        values = fitted[groups == g]
        if len(values) > 1:
            squares += float(np.sum(np.square(values - values.mean())))
            dof += len(values) - 1
    return math.sqrt(squares / dof) if dof else math.nan


def _pct(value: float, full_scale: float) -> float:
    return 100.0 * value / full_scale if math.isfinite(value) else math.nan


def _real_roots_inside(poly: Polynomial, lo: float, hi: float) -> list[float]:
    if poly.degree() < 1:
        return []
    return [float(r.real) for r in poly.roots() if abs(r.imag) < 1e-12 and lo < r.real < hi]


def _nullable(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- checking a record -------------------------------------------------------------------


class _Reader:
    """Checks a parsed record field by field; every failure names the source and JSON path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> None:
        raise CalibrationError(f"{self.source}: {where}: {what}")

    def get(self, obj: dict, key: str, where: str) -> Any:
        if key not in obj:
            self.fail(where, "missing")
        return obj[key]

    def string(self, obj: dict, key: str, where: str | None = None) -> str:
        where = where or key
        value = self.get(obj, key, where)
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {_json_type(value)}")
        return value

    def number(self, obj: dict, key: str, where: str, *, nullable: bool = False) -> float:
        value = self.get(obj, key, where)
        if value is None and nullable:
            return math.nan
        if not _is_number(value):
            expected = "a number or null" if nullable else "a number"
            self.fail(where, f"expected {expected}, got {_json_type(value)}")
        return float(value)

    def obj(self, parent: dict, key: str, where: str | None = None) -> dict:
        where = where or key
        value = self.get(parent, key, where)
        if not isinstance(value, dict):
            self.fail(where, f"expected an object, got {_json_type(value)}")
        return value

    def array(self, parent: dict, key: str, what: str) -> list:
        value = self.get(parent, key, key)
        if not isinstance(value, list):
            self.fail(key, f"expected a list of {what}, got {_json_type(value)}")
        return value

    def numbers(self, parent: dict, key: str) -> list[float]:
        values = self.array(parent, key, "numbers")
        if not all(_is_number(v) for v in values):
            self.fail(key, "expected a list of numbers")
        return [float(v) for v in values]

    def calibration(self, data: Any) -> Calibration:
        if not isinstance(data, dict):
            self.fail("(top level)", f"expected a JSON object, got {_json_type(data)}")
        name = self.string(data, "schema_name")
        if name != SCHEMA_NAME:
            self.fail("schema_name", f"is {name!r}, expected {SCHEMA_NAME!r} "
                      "(not a palpation calibration)")
        version = self.string(data, "schema_version")
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
        if not match:
            self.fail("schema_version", f"{version!r} is not a version like {SCHEMA_VERSION}")
        major, supported = int(match.group(1)), int(SCHEMA_VERSION.split(".")[0])
        if major > supported:
            self.fail("schema_version", f"{version} was written by a newer palpation "
                      f"(this one reads {supported}.x); upgrade palpation")
        if major < supported:
            self.fail("schema_version", f"{version} is not supported (this one reads "
                      f"{supported}.x)")
        ident = self.string(data, "id")
        if not re.fullmatch(r"[0-9a-f]{32}", ident):
            self.fail("id", f"{ident!r} is not 32 lower-case hex digits (a uuid4 hex)")
        created = self.string(data, "created")
        try:
            stamp = datetime.fromisoformat(created)
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            self.fail("created", f"{created!r} is not an ISO-8601 time with UTC offset")
        device_obj = self.obj(data, "device")
        device = {key: self.string(device_obj, key, f"device.{key}") for key in DEVICE_KEYS}
        note = self.string(data, "sensor_note")
        unit = self.string(data, "unit")
        if unit != "N":
            self.fail("unit", f"is {unit!r}, expected 'N'")
        model = self.string(data, "model")
        if model not in MODELS:
            self.fail("model", f"{model!r} is not one of {', '.join(MODELS)}")
        coefficients = self.numbers(data, "coefficients")
        if len(coefficients) != MODELS[model] + 1:
            self.fail("coefficients", f"model {model} has {MODELS[model] + 1} coefficients, "
                      f"got {len(coefficients)}")
        points = self.points(data, MODELS[model] + 1)
        residuals = self.numbers(data, "residuals")
        if len(residuals) != len(points):
            self.fail("residuals", f"{len(residuals)} values for {len(points)} points")
        rng_obj = self.obj(data, "range")
        rng = {key: self.number(rng_obj, key, f"range.{key}") for key in RANGE_KEYS}
        metrics_obj = self.obj(data, "metrics")
        metrics = {
            key: self.number(metrics_obj, key, f"metrics.{key}", nullable=True)
            for key in METRIC_KEYS
        }
        software = self.string(data, "software_version")
        self.consistent(coefficients, points, residuals, rng)
        return Calibration(
            id=ident, created=created, device=device, sensor_note=note, unit=unit, model=model,
            coefficients=coefficients, points=points, residuals=residuals, metrics=metrics,
            range=rng, software_version=software, schema_version=version,
        )

    def points(self, data: dict, needed: int) -> list[CalPoint]:
        items = self.array(data, "points", "points")
        points = []
        for i, item in enumerate(items):
            where = f"points[{i}]"
            if not isinstance(item, dict):
                self.fail(where, f"expected an object, got {_json_type(item)}")
            load = self.number(item, "load_n", f"{where}.load_n")
            if load < 0:
                self.fail(f"{where}.load_n", f"{load} is negative")
            counts = self.number(item, "counts", f"{where}.counts")
            direction = self.string(item, "direction", f"{where}.direction")
            if direction not in DIRECTIONS:
                self.fail(f"{where}.direction", f"{direction!r} is not one of "
                          f"{', '.join(DIRECTIONS)}")
            if direction == "tare" and load != 0:
                self.fail(f"{where}.load_n", f"a tare point has load 0, got {load}")
            n = self.get(item, "n_samples", f"{where}.n_samples")
            if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                self.fail(f"{where}.n_samples", f"expected an integer >= 1, got {n!r}")
            sd = self.number(item, "sd_counts", f"{where}.sd_counts", nullable=True)
            if sd < 0:
                self.fail(f"{where}.sd_counts", f"{sd} is negative")
            points.append(CalPoint(load, counts, direction, n, sd))
        if len(points) < needed:
            self.fail("points", f"{len(points)} points; the model needs at least {needed}")
        return points

    def consistent(self, coefficients, points, residuals, rng) -> None:
        """Range from the points, residuals from the curve, and a curve that rises."""
        load = np.array([p.load_n for p in points])
        counts = np.array([p.counts for p in points])
        extents = {"min_n": load.min(), "max_n": load.max(),
                   "min_counts": counts.min(), "max_counts": counts.max()}
        for key, value in extents.items():
            if rng[key] != value:
                self.fail(f"range.{key}", f"is {rng[key]:g} but the points give {value:g}")
        if rng["max_n"] <= 0:
            self.fail("points", "no load above zero")
        expected = P.polyval(counts, coefficients) - load
        tolerance = 1e-6 * rng["max_n"] + 1e-9
        worst = int(np.argmax(np.abs(expected - np.asarray(residuals))))
        if abs(expected[worst] - residuals[worst]) > tolerance:
            self.fail(f"residuals[{worst}]", f"is {residuals[worst]:g} N but the coefficients "
                      f"give {expected[worst]:g} N (record edited by hand?)")
        if not increasing_over(coefficients, rng["min_counts"], rng["max_counts"]):
            self.fail("coefficients", "force does not increase with counts over the "
                      f"calibrated range ({rng['min_counts']:g}..{rng['max_counts']:g} counts); "
                      "refused (force must rise with counts everywhere it is used)")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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
