"""Each hold against an instructor's reference recording: the one home of a hold's curve and of
the reference at a trigger point, shared by the hold table (``palpation analyze --reference``)
and the report.

The reference at a trigger point is the mean curve of the reference recording's complete holds
there (``analysis.curves.reference_curve``: each stretched to their mean length); a hold's
distance to it is DTW per second of hold and the median absolute difference (``analysis.curves``),
and its plateau mean and duration are compared with the means of those reference holds. A point
the reference has no complete hold at gets ``ref_holds`` 0 and NaN distances. Incomplete holds
(cut off by the end, a disconnect or a gap) never enter a reference; a hold of the analysed
recording gets its distances whether complete or not (its ``complete`` column says which).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.curves import dtw_per_second, median_abs_difference, reference_curve
from analysis.definitions import REFERENCE_METRICS
from analysis.metrics import HoldMetrics, recording_metrics

__all__ = ["DTW_DT_S", "REFERENCE_COLUMNS", "PointReference", "ReferenceHolds",
           "curve_distances", "hold_curve", "reference_columns", "reference_holds"]

DTW_DT_S = 0.05  # grid of the curves compared by DTW (20 Hz keeps it quick)

_AT = ("the reference curve at the hold's trigger point (the mean of the reference "
       "recording's complete holds there, each stretched to their mean length)")

#: The hold-table columns of ``reference_columns``: name -> (unit, definition).
REFERENCE_COLUMNS: dict[str, tuple[str, str]] = {
    "ref_holds": ("", "complete holds of the reference recording at the hold's trigger point "
                      "(0: none, and the other ref_ columns are empty)"),
    "ref_dtw_n": ("N", f"DTW per second of hold between the hold's curve and {_AT}: "
                       f"{REFERENCE_METRICS['dtw_per_s_n'].definition}"),
    "ref_median_abs_diff_n": ("N", f"median absolute difference between the hold's curve and "
                                   f"{_AT}: {REFERENCE_METRICS['median_difference_n'].definition}"),
    "ref_plateau_diff_n": ("N", "plateau_mean_n minus the mean plateau_mean_n of the reference's "
                                "complete holds at the point (those with a plateau)"),
    "ref_duration_diff_s": ("s", "duration_s minus the mean duration_s of the reference's "
                                 "complete holds at the point"),
}


def hold_curve(rec, m: HoldMetrics) -> tuple[np.ndarray, np.ndarray]:
    """The hold's samples in recording ``rec``: (seconds since it began, force in N)."""
    t = np.asarray(rec.timestamps, dtype=np.float64)
    f = np.asarray(rec.force, dtype=np.float64)
    a, b = (int(v) for v in np.searchsorted(t, (m.start_s, m.end_s), side="left"))
    return t[a:b] - m.start_s, f[a:b]


@dataclass(frozen=True)
class PointReference:
    """The reference at one trigger point: its mean curve (s since start, N), how many
    complete holds made it, and their mean plateau (NaN: none had one) and duration."""

    curve: tuple[np.ndarray, np.ndarray]
    holds: int
    plateau_mean_n: float
    duration_s: float


@dataclass(frozen=True)
class ReferenceHolds:
    """A reference recording reduced to what holds are compared with: per trigger point label."""

    name: str  # the reference file's name
    points: dict[str, PointReference]


def reference_holds(reference, metrics: list[HoldMetrics] | None = None) -> ReferenceHolds:
    """The reference at each trigger point of the recording ``reference``, from its complete
    holds (``metrics``: its ``recording_metrics``, computed here when None; pass them when
    they were computed with other settings, so a reference is analysed as the recordings)."""
    rows = [m for m in (recording_metrics(reference) if metrics is None else metrics)
            if m.complete]
    points: dict[str, PointReference] = {}
    for label in dict.fromkeys(m.trigger_point for m in rows):
        at = [m for m in rows if m.trigger_point == label]
        plateaus = [m.plateau_mean_n for m in at if math.isfinite(m.plateau_mean_n)]
        points[label] = PointReference(
            curve=reference_curve([hold_curve(reference, m) for m in at]), holds=len(at),
            plateau_mean_n=float(np.mean(plateaus)) if plateaus else math.nan,
            duration_s=float(np.mean([m.duration_s for m in at])))
    return ReferenceHolds(Path(reference.path).name, points)


def curve_distances(curve: tuple[np.ndarray, np.ndarray],
                    ref: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    """(DTW per second of hold, median absolute difference), in N, of a hold's curve against a
    reference curve (both (s since start, N)); NaN for a curve of fewer than two samples."""
    if len(curve[0]) < 2 or len(ref[0]) < 2:
        return math.nan, math.nan
    return (dtw_per_second(curve, ref, dt=DTW_DT_S), median_abs_difference(curve, ref))


def reference_columns(rec, metrics: list[HoldMetrics], reference) -> list[dict]:
    """One dict of ``REFERENCE_COLUMNS`` per hold of ``metrics`` (the recording ``rec``'s, in
    order): its distance to the ``reference`` (a recording, or its ``reference_holds``, built
    once for a batch) at the hold's trigger point."""
    if not isinstance(reference, ReferenceHolds):
        reference = reference_holds(reference)
    out = []
    for m in metrics:
        ref = reference.points.get(m.trigger_point)
        if ref is None:
            out.append({"ref_holds": 0, **dict.fromkeys(list(REFERENCE_COLUMNS)[1:], math.nan)})
            continue
        dtw, mad = curve_distances(hold_curve(rec, m), ref.curve)
        out.append({"ref_holds": ref.holds, "ref_dtw_n": dtw, "ref_median_abs_diff_n": mad,
                    "ref_plateau_diff_n": m.plateau_mean_n - ref.plateau_mean_n,
                    "ref_duration_diff_s": m.duration_s - ref.duration_s})
    return out
