"""The name, unit and definition of every hold metric and flag: one vocabulary for the hold
table (``palpation analyze``, ``analysis/TABLE.md``), the instructor's report and review.

Why one place: a trainee who reads "mean 30.9 N" in review and "plateau mean 34.0 N" in the
report for the same hold cannot tell which to believe. Every screen that shows a metric takes
its name and definition from ``METRICS``, and every screen that flags a hold calls
``hold_flags``, so they cannot drift apart. The numbers themselves come from
``analysis.metrics`` (``HoldMetrics``); this module only says what they mean.

Units are those of the stored value: "N" marks a force, which a screen may show in its own
display unit (``schemas.units``); times are in s, ratios in %.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

from analysis.metrics import HoldMetrics

__all__ = [
    "FLAGS",
    "INCOMPLETE",
    "METRICS",
    "OVERSHOOT_FLAG_PCT",
    "REFERENCE_METRICS",
    "STEADINESS_FLAG_FRAC",
    "Flag",
    "Metric",
    "hold_flags",
]

OVERSHOOT_FLAG_PCT = 15.0  # overshoot: the peak more than this % above the band's top
STEADINESS_FLAG_FRAC = 0.05  # unsteady: steadiness above this fraction of the target


@dataclass(frozen=True)
class Metric:
    """A column of the hold table: the short name screens show, the unit of the stored value
    ("" for none) and a one-line definition."""

    name: str
    unit: str
    definition: str


METRICS: dict[str, Metric] = {
    "trigger_point": Metric("trigger point", "", "trigger point label, e.g. 'upper trapezius L'"),
    "repetition": Metric("repetition", "", "1-based, per trigger point"),
    "blind": Metric("feedback off", "", "True when feedback was hidden (retention trial)"),
    "feedback": Metric("feedback mode", "",
                       "the training block's feedback mode for the hold (concurrent, "
                       "bandwidth, faded, terminal, summary, none; empty: no training "
                       "schedule)"),
    "feedback_live": Metric("live feedback", "",
                            "True when the trainee saw live feedback during the hold (the "
                            "schedule gave it and it was not hidden)"),
    "start_s": Metric("start", "s",
                      "hold start (upward crossing of the off threshold), session time"),
    "end_s": Metric("end", "s", "hold end, session time"),
    "duration_s": Metric("duration", "s", "end − start"),
    "time_in_band_s": Metric("time in band", "s", "time inside the target band"),
    "graded_time_in_band_s": Metric(
        "time in band, graded", "s",
        "time in the band with partial credit near it: full inside, falling linearly to none "
        "10 % of the target outside (what the score counts)"),
    "time_to_band_s": Metric("time to band", "s",
                             "start to the first sample in the band (NaN: never)"),
    "plateau_start_s": Metric("plateau start", "s",
                              "start of the plateau (the overshoot has settled)"),
    "plateau_end_s": Metric("plateau end", "s", "end of the plateau (the release begins)"),
    "ramp_rate_n_per_s": Metric("ramp rate", "N/s",
                                "loading rate between 20 % and 80 % of the plateau mean"),
    "ramp_rate_kpa_per_s": Metric("ramp rate (pressure)", "kPa/s",
                                  "the same as pressure (NaN without a contact area)"),
    "peak_n": Metric("peak", "N", "highest force of the hold"),
    "plateau_mean_n": Metric("plateau mean", "N",
                             "mean force on the plateau, between the settled overshoot and "
                             "the release (re-press dips left out)"),
    "plateau_cv": Metric("plateau CV", "", "SD / mean of the force on the plateau"),
    "steadiness_n": Metric("steadiness", "N",
                           "SD of the plateau force about its trend line (tremor, wander)"),
    "drift_n": Metric("drift", "N",
                      "change of the plateau's trend line from its start to its end "
                      "(negative: the force faded)"),
    "overshoot_pct": Metric("settling overshoot", "%",
                            "(smoothed peak − plateau mean) / plateau mean"),
    "peak_over_band_pct": Metric("peak over band", "%",
                                 "(peak − the band's top) / the band's top; negative: the peak "
                                 "stayed under the top"),
    "complete": Metric("complete", "",
                       "False when the end of the recording, a disconnect or a gap in the "
                       "samples (longer than max_gap_s) cut the hold off: it is shown but "
                       "never judged nor counted as done, and statistics leave it out"),
    "early_release": Metric("early release", "",
                            "True when shorter than the dose's minimum hold"),
    "too_long": Metric("too long", "", "True when longer than the dose's maximum hold"),
    "dose_met": Metric("dose met", "",
                       "time in band ≥ minimum hold and duration ≤ maximum hold"),
    "impulse_n_s": Metric("impulse", "N·s", "force–time integral over the hold"),
    "pain": Metric("pain", "0–10", "last pain rating during the hold (NaN: none)"),
    "button_presses": Metric("button presses", "", "subject's button presses during the hold"),
    "target_n": Metric("target", "N", "middle of the target band"),
    "band_low_n": Metric("band bottom", "N",
                         "lower edge of the target band the hold was judged against (its "
                         "file's protocol)"),
    "band_high_n": Metric("band top", "N",
                          "upper edge of the target band the hold was judged against"),
    "min_hold_s": Metric("minimum hold", "s", "the dose's shortest hold that counts"),
    "max_hold_s": Metric("maximum hold", "s", "the dose's longest advised hold (0: none)"),
    "ramp_min_n_per_s": Metric("ramp minimum", "N/s",
                               "the dose's slowest advised loading rate (0: no minimum; NaN: "
                               "not coached)"),
    "ramp_max_n_per_s": Metric("ramp maximum", "N/s",
                               "the dose's fastest advised loading rate (inf: no maximum; "
                               "NaN: not coached)"),
    "abs_error_n": Metric("absolute error", "N",
                          "|plateau mean − target|, the target being the band's middle"),
    "constant_error_n": Metric("constant error", "N",
                               "plateau mean − target (positive: pressed harder)"),
    "pct_error": Metric("% error", "%", "absolute error / target"),
    "self_estimate": Metric("self-estimate", "",
                            "the trainee's estimate after the hold: −1 too light, 0 right, "
                            "+1 too firm (NaN: none given)"),
    "estimate_correct": Metric("estimate right", "",
                               "the self-estimate says where the plateau mean lay: under, "
                               "in or over the band (False: no estimate or no plateau)"),
    "score": Metric("score", "0–100",
                    "100 minus the deductions for time in band, early release, overshoot, "
                    "steadiness, drift and ramp rate ('The hold score' in analysis/TABLE.md; "
                    "NaN: not judged)"),
}
assert list(METRICS) == [f.name for f in fields(HoldMetrics)], "define every HoldMetrics field"

# Comparisons of a hold's curve with the instructor's reference curve at its point
# (``analysis.metrics.reference_curve``, ``dtw_per_second``, ``median_abs_difference``).
REFERENCE_METRICS: dict[str, Metric] = {
    "dtw_per_s_n": Metric(
        "DTW per second of hold", "N",
        "the two curves aligned in time (dynamic time warping), their force gaps summed (N·s) "
        "and divided by the longer hold's length (s): the typical force gap once timing "
        "differences are taken out; 0 = the same shape; compare it with half the band's "
        "width, the gap from the band's middle to its edge"),
    "median_difference_n": Metric(
        "median difference", "N",
        "median |force gap| between the two curves, both timed from their start, over the "
        "time both cover (no alignment: slow or late loading counts)"),
}


@dataclass(frozen=True)
class Flag:
    """A verdict screens mark a hold with: ``key`` (a stable identifier, e.g. for a CSS
    class), ``name`` as shown, ``definition`` saying what it is measured against, and
    ``raised`` deciding it from the hold's row."""

    key: str
    name: str
    definition: str
    raised: Callable[[HoldMetrics], bool]


def _over(value: float, limit: float) -> bool:
    return math.isfinite(value) and math.isfinite(limit) and value > limit


FLAGS: tuple[Flag, ...] = (
    Flag("short", "too short", "released before the dose's minimum hold",
         lambda m: bool(m.early_release)),
    Flag("long", "too long", "held past the dose's maximum hold",
         lambda m: bool(m.too_long)),
    Flag("band", "too little time in band",
         "in the target band for less than the minimum hold",
         lambda m: _over(m.min_hold_s, m.time_in_band_s)),
    Flag("over", "overshoot",
         f"peak more than {OVERSHOOT_FLAG_PCT:g} % above the band's top",
         lambda m: _over(m.peak_over_band_pct, OVERSHOOT_FLAG_PCT)),
    Flag("unsteady", "unsteady",
         f"steadiness (SD about the plateau's trend) above {STEADINESS_FLAG_FRAC * 100:g} % "
         "of the target (the band's middle)",
         lambda m: _over(m.steadiness_n, STEADINESS_FLAG_FRAC * m.target_n)),
)


#: The one flag of a hold the end of the recording, a disconnect or a gap cut off, which is
#: not judged otherwise.
INCOMPLETE = Flag("incomplete", "incomplete",
                  "cut off by the end of the recording (still pressed at the last sample), "
                  "a disconnect or a gap in the samples: not judged, not counted as done",
                  lambda m: not m.complete)


def hold_flags(m: HoldMetrics) -> list[Flag]:
    """The flags hold ``m`` raises, in the order of ``FLAGS``; only ``INCOMPLETE`` for a
    hold something cut off (``complete`` False)."""
    if not m.complete:
        return [INCOMPLETE]
    return [f for f in FLAGS if f.raised(m)]
