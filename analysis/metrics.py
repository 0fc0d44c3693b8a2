"""The hold table: one row per hold (``HoldMetrics``) and a recording's rows (pure functions
on numpy arrays). The across-hold statistics are ``analysis.consistency``'s (re-exported).

The metrics are the ones the literature uses for force consistency (see
docs/SOURCES.md): absolute, constant and variable error against a target, % error, CV
across repetitions, rate of force application, time to and time in the target band, hold
duration and steadiness; the distance to an instructor's curve (dynamic time warping) is in
``analysis.curves``.

Holds themselves come from ``analysis.holds`` (the live detector): ``recording_metrics``
segments offline with ``segment_holds`` so the report and the live hold clock agree. The
fields the detector already computes (start, end, duration, peak, time in band, time to band)
are taken from its ``Hold``; the curve's plateau, ramp, overshoot, steadiness and drift come
from ``analysis.hold_shape`` (its docstring defines them), and the score from
``analysis.score`` (``score``, ``estimate_correct``).

Definitions (all forces in N, times in s):

* ramp_rate_kpa_per_s converts ramp_rate_n_per_s through ``schemas.units`` with the contact
  area (NaN without one).
* peak_over_band_pct: (peak_n - the band's top) / the band's top x 100, negative when the
  peak stayed in or under the band: what the "overshoot" flag judges (``analysis.definitions``).
* impulse_n_s: trapezoidal integral of the raw force over the hold's samples.
* Errors against the target (band midpoint): constant_error_n = plateau mean - target,
  abs_error_n = |constant error|, pct_error = abs_error / target x 100.
* early_release: duration < min_hold_s; too_long: duration > max_hold_s (a maximum of 0 is
  no maximum, as for a threshold ramp); dose_met: time_in_band >= min_hold_s and
  duration <= max_hold_s (the dose adherence criterion). All three are False for a hold the
  end of the recording, a disconnect or a gap cut off (``complete`` False): it is not judged.
* band_low_n, band_high_n, min_hold_s, max_hold_s, ramp_min/max_n_per_s: the dose the hold was
  judged against (its own file's protocol, and the point's anchored band once the subject set
  it), so rows from recordings made with different protocols stay readable and scorable.
* feedback, feedback_live, self_estimate, estimate_correct: the hold's feedback condition and
  the trainee's estimate of it, from the file's events (``recording_metrics``).

The name, unit and one-line definition of every field, which the table, the report and review
all show, are in ``analysis.definitions``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np

from analysis.consistency import ConsistencyRow, consistency, estimate_accuracy, variable_error
from analysis.hold_records import RunningSums
from analysis.hold_shape import (
    PLATEAU_MAX_CHANGE,
    PLATEAU_MIN_S,
    PLATEAU_TOL,
    SMOOTH_S,
    Shape,
    shape,
)
from analysis.holds import AUTO_GAP_FACTOR, Hold, config_for_band, segment_holds
from analysis.score import estimate_correct, graded_time_in_band, score_metrics
from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings
from schemas.session_protocol import Dose, protocol_of
from schemas.units import from_newtons

__all__ = [
    "PLATEAU_MAX_CHANGE",
    "PLATEAU_MIN_S",
    "PLATEAU_TOL",
    "SMOOTH_S",
    "ConsistencyRow",
    "HoldMetrics",
    "band_or_nan",
    "consistency",
    "estimate_accuracy",
    "hold_metrics",
    "recording_metrics",
    "span_hold",
    "variable_error",
]

_NAN = math.nan


def band_or_nan(dose: Dose, area_cm2: float = _NAN) -> tuple[float, float]:
    """``dose.band_n(area_cm2)``, or (NaN, NaN) when its pressure unit has no contact area:
    a hold is still measured, only not against a band."""
    try:
        return dose.band_n(area_cm2)
    except ValueError:
        return (_NAN, _NAN)


@dataclass
class HoldMetrics:
    """One row of the hold table (see the module docstring for the definitions)."""

    trigger_point: str
    repetition: int
    blind: bool
    feedback: str
    feedback_live: bool
    start_s: float
    end_s: float
    duration_s: float
    time_in_band_s: float
    graded_time_in_band_s: float
    time_to_band_s: float
    plateau_start_s: float
    plateau_end_s: float
    ramp_rate_n_per_s: float
    ramp_rate_kpa_per_s: float
    peak_n: float
    plateau_mean_n: float
    plateau_cv: float
    steadiness_n: float
    drift_n: float
    overshoot_pct: float
    peak_over_band_pct: float
    complete: bool
    early_release: bool
    too_long: bool
    dose_met: bool
    impulse_n_s: float
    pain: float
    button_presses: int
    target_n: float
    band_low_n: float
    band_high_n: float
    min_hold_s: float
    max_hold_s: float
    ramp_min_n_per_s: float
    ramp_max_n_per_s: float
    abs_error_n: float
    constant_error_n: float
    pct_error: float
    self_estimate: float
    estimate_correct: bool
    score: float


# ---------------------------------------------------------------------------- one hold
def _hold_events(events: Iterable, hold: Hold) -> tuple[float, int]:
    """(last pain rating, button presses) among ``events`` inside the hold; NaN: no rating."""
    pain = _NAN
    presses = 0
    for e in events:
        if hold.start_s <= e.time <= hold.end_s:
            if e.kind == "pain":
                pain = float(e.value)
            elif e.kind == "button_down":
                presses += 1
    return pain, presses



def hold_metrics(t: np.ndarray, f: np.ndarray, hold: Hold, dose: Dose, events: Iterable = (),
                 *, area_cm2: float = _NAN, trigger_point: str = "", repetition: int = 0,
                 blind: bool = False, band_n: tuple[float, float] | None = None,
                 feedback: str = "", feedback_live: bool | None = None,
                 self_estimate: float = _NAN,
                 settings: AnalysisSettings = DEFAULT_SETTINGS) -> HoldMetrics:
    """Metrics of one hold, scored: ``t``, ``f`` the whole recording (or any stretch holding the
    hold), ``hold`` from ``analysis.holds`` (measured against the band it is judged by: time
    in band and time to band are the detector's), ``dose`` the point's protocol dose, ``band_n``
    the band in N (default: the dose's for ``area_cm2``; a point's anchored band once the
    subject set it; the target is its midpoint), ``events`` objects with ``time`` and ``kind``
    (and ``value`` for ``pain``), e.g. ``schemas.events.Event``. ``feedback`` is the hold's
    mode, ``feedback_live`` whether live feedback was on (default: not ``blind``), and
    ``self_estimate`` the trainee's estimate (-1, 0, +1; NaN: none); ``settings`` the
    plateau's definition (``analysis.hold_shape``)."""
    a, b = (int(v) for v in np.searchsorted(t, (hold.start_s, hold.end_s), side="left"))
    b = max(b, a)
    tt, ff = (np.asarray(x[a:b], dtype=np.float64) for x in (t, f))
    low, high = band_n if band_n is not None else band_or_nan(dose, area_cm2)
    target = 0.5 * (low + high)
    pain, presses = _hold_events(events, hold)
    impulse = float(np.trapezoid(ff, tt)) if ff.size >= 2 else 0.0
    sh = shape(tt, ff, settings) if ff.size >= 8 else Shape()
    ramp_kpa, corridor = _ramp_in_kpa(sh.ramp_n_per_s, area_cm2), _corridor(dose, area_cm2)
    const = sh.plateau_mean_n - target
    m = HoldMetrics(
        trigger_point=trigger_point, repetition=int(repetition), blind=bool(blind),
        feedback=feedback,
        feedback_live=(not blind) if feedback_live is None else bool(feedback_live),
        start_s=hold.start_s, end_s=hold.end_s, duration_s=hold.duration_s,
        time_in_band_s=hold.time_in_band_s,
        graded_time_in_band_s=graded_time_in_band(tt, ff, low, high),
        time_to_band_s=hold.time_to_band_s,
        plateau_start_s=sh.plateau_start_s, plateau_end_s=sh.plateau_end_s,
        ramp_rate_n_per_s=sh.ramp_n_per_s, ramp_rate_kpa_per_s=ramp_kpa,
        peak_n=hold.peak_n, plateau_mean_n=sh.plateau_mean_n, plateau_cv=sh.cv,
        steadiness_n=sh.steadiness_n, drift_n=sh.drift_n, overshoot_pct=sh.overshoot_pct,
        peak_over_band_pct=(hold.peak_n - high) / high * 100.0 if high > 0 else _NAN,
        complete=hold.complete,  # False: cut off (end, disconnect, gap), not judged
        early_release=hold.complete and bool(hold.duration_s < dose.min_hold_s),
        too_long=hold.complete and bool(dose.max_hold_s > 0
                                        and hold.duration_s > dose.max_hold_s),
        dose_met=hold.complete and bool(hold.time_in_band_s >= dose.min_hold_s
                                        and hold.duration_s <= dose.max_hold_s),
        impulse_n_s=impulse, pain=pain, button_presses=presses, target_n=target,
        band_low_n=low, band_high_n=high, min_hold_s=float(dose.min_hold_s),
        max_hold_s=float(dose.max_hold_s),
        ramp_min_n_per_s=corridor[0], ramp_max_n_per_s=corridor[1],
        abs_error_n=abs(const), constant_error_n=const,
        pct_error=abs(const) / target * 100.0 if target > 0 else _NAN,
        self_estimate=float(self_estimate), estimate_correct=False, score=_NAN,
    )
    if math.isfinite(m.self_estimate):
        m.estimate_correct = estimate_correct(int(m.self_estimate), m)
    m.score = score_metrics(m).score
    return m


def _ramp_in_kpa(ramp_n_per_s: float, area_cm2: float) -> float:
    """A loading rate as pressure (NaN without a contact area)."""
    try:
        return float(from_newtons(ramp_n_per_s, "kPa", area_cm2))
    except ValueError:
        return _NAN


def _corridor(dose: Dose, area_cm2: float) -> tuple[float, float]:
    """The dose's ramp corridor in N/s (NaN, NaN: not coached, or a pressure corridor without
    a contact area)."""
    try:
        return dose.ramp_n_per_s(area_cm2) or (_NAN, _NAN)
    except ValueError:
        return (_NAN, _NAN)


def span_hold(t: np.ndarray, f: np.ndarray, start_s: float, end_s: float,
              band_n: tuple[float, float], *, index: int = 0, complete: bool = True) -> Hold:
    """The detector's statistics of the samples from ``start_s`` to ``end_s`` against
    ``band_n`` (N), as a ``Hold``: for a hold whose ends are known but whose band is another
    (the live window's finished hold; a hold after the subject anchored its point's band).
    Each sample weighs its interval since the one before, capped as the detector caps a gap
    (``AUTO_GAP_FACTOR`` x the median interval)."""
    t = np.asarray(t, dtype=np.float64)
    a, b = (int(v) for v in np.searchsorted(t, (start_s, end_s), side="left"))
    sums = RunningSums()
    if b > a:
        d = np.empty(b - a)
        d[0] = t[a] - t[a - 1] if a > 0 else 0.0
        d[1:] = np.diff(t[a:b])
        np.maximum(d, 0.0, out=d)  # a clock stepping back covers no time
        cap = AUTO_GAP_FACTOR * float(np.median(d[1:])) if b - a > 1 else math.inf
        raw = d.copy() if d.max() > cap else None
        np.minimum(d, cap, out=d)
        sums.add(t[a:b], np.asarray(f[a:b], dtype=np.float64), d, raw,
                 config_for_band(*band_n), 0, b - a)
    return sums.freeze(index, float(start_s), float(end_s), complete)


# ---------------------------------------------------------------------------- a recording
def recording_metrics(rec, settings: AnalysisSettings = DEFAULT_SETTINGS) -> list[HoldMetrics]:
    """Metrics of every hold of a ``schemas.reader.Recording``, segmented offline with
    ``settings`` (the live recorder's by default).

    Doses come from the protocol stored in the file (``session.protocol_toml``). Which point
    is being worked follows the ``trigger_point`` events (point 0 before the first), or the
    ``/holds`` rows when there are no such events; each stretch is segmented with that point's
    thresholds, as the live recorder does. Holds that start after a ``protocol_complete``
    event and before the next ``trigger_point`` event are left out: the live recorder stops
    counting there (``recorder.hold_tracker``), and from that ``trigger_point`` on it detects
    with a fresh detector, so the data are segmented afresh from there too. Each hold is then
    named after the ``/holds`` row it overlaps most (its repetition too); without one, after
    the current point (repetitions counted here). Pain, button presses, blind, the feedback
    condition and the self-estimate come from the events (``_conditions``). A point's
    ``target_anchor`` event (the subject set its target) gives the holds there that start
    after it the anchored band (``Dose.anchored_band_n``): their time in band is measured
    against it, their boundaries still by the protocol's band's thresholds. A hold that a
    disconnect or a gap in the samples cut into is incomplete (``_cut_off``).
    """
    t = np.asarray(rec.timestamps, dtype=np.float64)
    f = np.asarray(rec.force, dtype=np.float64)
    proto = protocol_of(rec)
    area = _NAN if proto is None or proto.contact_area_cm2 is None else float(
        proto.contact_area_cm2)
    rows = rec.holds
    row_tp = [r["trigger_point"].decode("utf-8", "replace") for r in rows]
    evs = sorted(rec.events, key=lambda e: e.time)
    sched = _schedule(evs, rows, row_tp, t, proto)
    doses = {lab: _dose_for(lab, proto, rows, row_tp)
             for lab in [*(lab for _, lab in sched), *row_tp]}
    configs = [config_for_band(*band_or_nan(doses[lab], area), settings=settings)
               for _, lab in sched]
    holds = _counted_holds(t, f, sched, configs, evs, settings.max_gap_s)

    sched_t = np.array([s[0] for s in sched])
    pain_btn = [e for e in evs if e.kind in ("pain", "button_down")]
    starts = np.array([float(r["start"]) for r in rows])
    ends = np.array([float(r["end"]) for r in rows])
    pe_t = np.array([e.time for e in pain_btn])
    anchors = [(e.time, e.text, float(e.value)) for e in evs if e.kind == "target_anchor"]
    reps: dict[str, int] = {}
    out = []
    for h, cond in zip(holds, _conditions(evs, holds), strict=True):
        label, rep = _row_name(h, rows, row_tp, starts, ends)
        if label is None:
            label = sched[int(np.searchsorted(sched_t, h.start_s, "right")) - 1][1]
            rep = reps.get(label, 0) + 1
        reps[label] = rep
        a = int(np.searchsorted(pe_t, h.start_s, "left"))
        hev = pain_btn[a:int(np.searchsorted(pe_t, h.end_s, "right"))]
        band = _anchored_band(anchors, label, h.start_s, doses[label])
        if band is not None:
            h = span_hold(t, f, h.start_s, h.end_s, band, index=h.index, complete=h.complete)
        out.append(hold_metrics(t, f, h, doses[label], hev, area_cm2=area,
                                trigger_point=label, repetition=rep, band_n=band,
                                settings=settings, **asdict(cond)))
    return out


def _row_name(h: Hold, rows: np.ndarray, row_tp: list[str], starts: np.ndarray,
              ends: np.ndarray) -> tuple[str | None, int]:
    """The trigger point and repetition of the ``/holds`` row (``rows``, starting at
    ``starts`` and ending at ``ends``) that ``h`` overlaps most; (None, 0) when it overlaps
    none."""
    if starts.size:
        ov = np.minimum(ends, h.end_s) - np.maximum(starts, h.start_s)
        j = int(np.argmax(ov))
        if ov[j] > 0:
            return row_tp[j], int(rows[j]["repetition"])
    return None, 0


def _counted_holds(t: np.ndarray, f: np.ndarray, sched: list[tuple[float, str]],
                   configs: list, evs: list, max_gap_s: float) -> list[Hold]:
    """The holds the live recorder would count (none from a ``protocol_complete`` to the next
    ``trigger_point``), each incomplete when the link or the samples broke in it."""
    closed = _closed_spans(evs)
    links = np.array([e.time for e in evs if e.kind in LINK_BREAKS])
    return [_cut_off(h, t, links, max_gap_s)
            for h in _segment(t, f, sched, configs, [b for _, b in closed])
            if not any(a <= h.start_s < b for a, b in closed)]


#: Events of a link that broke: a hold they fall in was not seen whole.
LINK_BREAKS = ("disconnect", "reconnect")


def _cut_off(h: Hold, t: np.ndarray, links: np.ndarray, max_gap_s: float) -> Hold:
    """``h``, incomplete when a disconnect or reconnect event lies in it, or when a step
    between samples longer than ``max_gap_s`` lies in it or at either end (where the detector
    takes the last or first sample seen as the hold's end or start: not observed)."""
    if not h.complete:
        return h
    a = max(int(np.searchsorted(t, h.start_s, "left")), 1)
    b = min(int(np.searchsorted(t, h.end_s, "right")), t.size - 1)
    gap = b >= a and float(np.max(t[a:b + 1] - t[a - 1:b])) > max_gap_s
    broke = bool(np.any((links >= h.start_s) & (links <= h.end_s)))
    return replace(h, complete=False) if gap or broke else h


@dataclass(frozen=True)
class _Condition:
    """A hold's feedback condition and the trainee's estimate of it (``hold_metrics``' keys)."""

    blind: bool
    feedback: str
    feedback_live: bool
    self_estimate: float


def _conditions(evs: list, holds: list[Hold]) -> list[_Condition]:
    """Per hold (in time order), from the events (in time order): blind (``blind_on`` until
    ``blind_off``, at its start); feedback and feedback_live from the latest ``feedback``
    event at or before its start (text the mode, value 1 live), live only when not blind too
    (without such events: "" and not blind); self_estimate: the first ``self_estimate``
    event at or after its end and before the next hold starts (NaN: none)."""
    def latest(kinds: tuple[str, ...], at: float):
        chosen = [e for e in evs if e.kind in kinds and e.time <= at]
        return chosen[-1] if chosen else None

    estimates = [e for e in evs if e.kind == "self_estimate"]
    out = []
    for k, h in enumerate(holds):
        b = latest(("blind_on", "blind_off"), h.start_s)
        blind = b is not None and b.kind == "blind_on"
        fb = latest(("feedback",), h.start_s)
        until = holds[k + 1].start_s if k + 1 < len(holds) else math.inf
        est = next((float(e.value) for e in estimates if h.end_s <= e.time < until), _NAN)
        out.append(_Condition(
            blind=blind, feedback=fb.text if fb is not None else "",
            feedback_live=(fb is None or bool(fb.value)) and not blind, self_estimate=est))
    return out


def _anchored_band(anchors: list[tuple[float, str, float]], label: str, at: float,
                   dose: Dose) -> tuple[float, float] | None:
    """The band of point ``label`` for a hold starting at ``at``: ``dose.anchored_band_n`` of
    the latest ``target_anchor`` (time, label, target N > 0) there before it; None: not
    anchored (the protocol's band applies)."""
    set_before = [target for time, lab, target in anchors
                  if lab == label and time <= at and target > 0]  # NaN or <= 0: no target
    return dose.anchored_band_n(set_before[-1]) if set_before else None


def _dose_for(label: str, proto, rows, row_tp: list[str]) -> Dose:
    """The dose of the point named ``label``: the protocol's; else the band the recorder
    stored with its ``/holds`` rows (in N, no hold window); else none (NaN)."""
    labels = [p.label for p in proto.points] if proto is not None else []
    if label in labels:
        return proto.points[labels.index(label)].dose
    for lab, r in zip(row_tp, rows, strict=True):
        if lab == label:
            return Dose(unit="N", target_low=float(r["target_low_n"]),
                        target_high=float(r["target_high_n"]), min_hold_s=_NAN,
                        max_hold_s=_NAN)
    return Dose(unit="N", target_low=_NAN, target_high=_NAN, min_hold_s=_NAN, max_hold_s=_NAN)


def _schedule(evs: list, rows, row_tp: list[str], t: np.ndarray,
              proto) -> list[tuple[float, str]]:
    """Which point is worked from when: (time, label) from the ``trigger_point`` events, or
    from the ``/holds`` rows without them (the change halfway between two rows); the first
    point (or "hold") before the first entry."""
    sched = [(e.time, e.text) for e in evs if e.kind == "trigger_point"]
    if not sched and len(rows):
        prev_end = -math.inf
        for lab, r in zip(row_tp, rows, strict=True):
            if not sched or sched[-1][1] != lab:
                tb = -math.inf if not sched else 0.5 * (prev_end + float(r["start"]))
                sched.append((tb, lab))
            prev_end = float(r["end"])
    default = proto.points[0].label if proto is not None and proto.points else "hold"
    if not sched or sched[0][0] > (t[0] if t.size else 0.0):
        sched.insert(0, (-math.inf, default))
    return sched


def _closed_spans(evs: list) -> list[tuple[float, float]]:
    """(from, until) of each stretch the live recorder counted no hold in: from a
    ``protocol_complete`` event to the next ``trigger_point`` event (or the end, inf)."""
    spans: list[tuple[float, float]] = []
    start = None
    for e in evs:
        if e.kind == "protocol_complete" and start is None:
            start = e.time
        elif e.kind == "trigger_point" and start is not None:
            spans.append((start, e.time))
            start = None
    if start is not None:
        spans.append((start, math.inf))
    return spans


def _segment(t: np.ndarray, f: np.ndarray, sched: list[tuple[float, str]], configs: list,
             restarts: list[float]) -> list[Hold]:
    """Holds of the whole recording: one detector over it when every point has the same
    thresholds, else a fresh one per point's stretch (as the live tracker switches); a fresh
    one also from each of ``restarts`` (where the live tracker started one)."""
    cuts = [b for b in restarts if math.isfinite(b)]
    if any(c != configs[0] for c in configs):
        cuts += [s[0] for s in sched[1:]]
    sched_t = np.array([s[0] for s in sched])
    pieces = [0, *np.searchsorted(t, sorted(cuts)).tolist(), t.size]
    holds: list[Hold] = []
    for a, b in itertools.pairwise(pieces):
        if b > a:
            k = int(np.searchsorted(sched_t, t[a], "right")) - 1
            holds += segment_holds(t[a:b], f[a:b], configs[max(k, 0)])
    return holds
