"""Calibration fit: newtons as a polynomial of raw counts, fitted to known loads, and how good
the fit is (residuals, nonlinearity, hysteresis, repeatability; defined in CALIBRATION.md).

Pure numpy: no files, no JSON. ``schemas.calibration.record`` turns a fit into a record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.polynomial import Polynomial
from numpy.polynomial import polynomial as P

from schemas.units import LOAD_UNITS, canonical_unit, is_pressure, newtons_per_unit

MODELS = {"linear": 1, "poly2": 2, "poly3": 3}  # model -> polynomial degree
DIRECTIONS = ("load", "unload", "tare")
METRIC_KEYS = (
    "nonlinearity_pct_fs",
    "hysteresis_pct_fs",
    "repeatability_n",
    "repeatability_pct_fs",
    "max_residual_pct_fs",
)
RANGE_KEYS = ("min_n", "max_n", "min_counts", "max_counts")
# Loads closer than this fraction of full scale are the same nominal load (1 ppm).
SAME_LOAD_FRACTION = 1e-6


def load_to_newtons(value: float, unit: str) -> float:
    """A reference load in newtons: masses (g, kg, lb: weight under standard gravity) or forces
    (N, kgf, gf, lbf, ...). Pressure units and negative or non-finite loads raise ValueError."""
    try:
        canonical_unit(unit)
    except ValueError:
        raise ValueError(f"unknown load unit {unit!r} (known: {', '.join(LOAD_UNITS)})") from None
    if is_pressure(unit):
        raise ValueError(f"{unit} is a pressure; give the reference load as a mass or a force "
                         f"({', '.join(LOAD_UNITS)})")
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
    return bool(all(s > 0 for s in slopes_at_extremes(coefficients, lo, hi)))


def slopes_at_extremes(coefficients: Any, lo: float, hi: float) -> list[float]:
    """The polynomial's slope (N per count) at every place on [lo, hi] where the slope can be
    smallest or largest: both ends and where its own derivative is zero."""
    slope = Polynomial(np.asarray(coefficients, dtype=np.float64)).deriv()
    where = [lo, hi, *_real_roots_inside(slope.deriv(), lo, hi)]
    return [float(slope(x)) for x in where]


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

