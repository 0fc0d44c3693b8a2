"""Per-hold and across-hold metrics of static compression (pure functions on numpy arrays).

The metrics are the ones the literature uses for force consistency (see
docs/SOURCES.md): absolute, constant and variable error against a target, % error, CV
across repetitions, rate of force application, time to and time in the target band, hold
duration and steadiness; the distance to an instructor's curve (dynamic time warping) is in
``analysis.curves``.

Holds themselves come from ``analysis.holds`` (the live detector): ``recording_metrics``
segments offline with ``segment_holds`` so the report and the live hold clock agree. The
fields the detector already computes (start, end, duration, peak, time in band, time to band)
are taken from its ``Hold``; this module adds what needs the whole hold at once.

Definitions (all forces in N, times in s):

* Smoothed force ``s``: centred 100 ms moving average of the hold's samples. It removes
  8-12 Hz physiological tremor (a 10 Hz sine averages out exactly) but leaves a linear ramp
  unchanged, so it is used to *locate* things; levels are averaged from the raw force.
* Plateau: the part of the hold after the overshoot has settled and before the release.
  1. ``core``: the middle half of the stretch from the smoothed peak to the end of the hold.
     Its median smoothed force is the eventual level ``L``; a straight line (least squares)
     fitted to the core samples within 10 % of ``L`` is the trend (fatigue drift).
  2. The plateau starts at the first sample at or after the peak whose smoothed force lies
     within +-``PLATEAU_TOL`` (8 %) of ``L`` around the trend (the overshoot has settled),
     and ends half a smoothing window (50 ms) before the last sample within +-4 % (half
     the tolerance) of it: the release has begun there, and the smoothed force starts
     falling half a window before the raw force does.
  3. Inside it, samples whose smoothed force falls more than ``PLATEAU_TOL`` x ``L`` below the
     trend are re-press dips and are left out (the therapist briefly unloaded; the level they
     held is what is measured).
  4. There is no plateau (plateau metrics NaN) when the window lasts less than
     ``PLATEAU_MIN_S`` (0.5 s), or when the trend changes by more than ``PLATEAU_MAX_CHANGE``
     (20 % of ``L``) across it (a ramp straight into a release has no level to report).
* plateau_mean_n: mean raw force over the plateau samples (dips excluded); plateau_cv its
  SD / mean.
* steadiness_n: SD of the plateau force (raw, dips excluded) about the least-squares line
  through it: tremor and wander, not the slow fatigue drift (which would otherwise dominate
  the SD of a long hold and say nothing about a steady hand).
* ramp_rate_n_per_s: 0.6 L / (t80 - t20) where t20/t80 are the first times the smoothed
  force reaches 20 % / 80 % of the plateau mean on the loading side (before the peak),
  linearly interpolated between samples. ramp_rate_kpa_per_s converts it through
  ``schemas.units`` with the contact area (NaN without one).
* overshoot_pct (settling overshoot): (peak of the *smoothed* force - plateau mean) / plateau
  mean x 100. The raw peak (``peak_n``, as the live detector reports it) also carries the
  tremor, which would make even a perfect loading look like a few % overshoot.
* peak_over_band_pct: (peak_n - the band's top) / the band's top x 100, negative when the
  peak stayed in or under the band: what the "overshoot" flag judges (``analysis.definitions``).
* impulse_ns: trapezoidal integral of the raw force over the hold's samples.
* Errors against the target (band midpoint): constant_error_n = plateau mean - target,
  abs_error_n = |constant error|, pct_error = abs_error / target x 100.
* early_release: duration < min_hold_s; too_long: duration > max_hold_s (a maximum of 0 is
  no maximum, as for a threshold ramp); dose_met: time_in_band >= min_hold_s and
  duration <= max_hold_s (the dose adherence criterion). All three are False for a hold the
  end of the recording cut off (``complete`` False, ``analysis.holds``): it is not judged.
* band_low_n, band_high_n, min_hold_s, max_hold_s: the dose the hold was judged against (its
  own file's protocol), so rows from recordings made with different protocols stay readable.

The name, unit and one-line definition of every field, which the table, the report and review
all show, are in ``analysis.definitions``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.holds import Hold, config_for_band, segment_holds
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
    "hold_metrics",
    "recording_metrics",
    "variable_error",
]

SMOOTH_S = 0.1  # moving-average window that locates peak, plateau and ramp
PLATEAU_TOL = 0.08  # plateau: smoothed force within this fraction of the level around the trend
PLATEAU_MIN_S = 0.5  # shorter windows are not a plateau
PLATEAU_MAX_CHANGE = 0.20  # trend change across the plateau, fraction of the level
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
    start_s: float
    end_s: float
    duration_s: float
    time_in_band_s: float
    time_to_band_s: float
    plateau_start_s: float
    plateau_end_s: float
    ramp_rate_n_per_s: float
    ramp_rate_kpa_per_s: float
    peak_n: float
    plateau_mean_n: float
    plateau_cv: float
    steadiness_n: float
    overshoot_pct: float
    peak_over_band_pct: float
    complete: bool
    early_release: bool
    too_long: bool
    dose_met: bool
    impulse_ns: float
    pain: float
    button_presses: int
    target_n: float
    band_low_n: float
    band_high_n: float
    min_hold_s: float
    max_hold_s: float
    abs_error_n: float
    constant_error_n: float
    pct_error: float


@dataclass
class ConsistencyRow:
    """Across-hold statistics of one trigger point with feedback on (blind False) or off."""

    trigger_point: str
    blind: bool
    n: int
    plateau_mean_n: float
    plateau_sd_n: float
    plateau_cv: float
    duration_mean_s: float
    duration_sd_s: float
    duration_cv: float
    variable_error_n: float
    adherence_pct: float
    reps: list[int] = field(default_factory=list)


# ---------------------------------------------------------------------------- one hold
def _smooth(f: np.ndarray, w: int) -> np.ndarray:
    """Centred moving average over 2*w+1 samples (shrinking at the edges)."""
    n = f.size
    if w <= 0 or n < 3:
        return f.astype(np.float64, copy=True)
    c = np.empty(n + 1)
    c[0] = 0.0
    np.cumsum(f, out=c[1:])
    i = np.arange(n)
    lo = np.maximum(i - w, 0)
    hi = np.minimum(i + w + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)


def _line(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares line through (x, y) as (mean x, mean y, slope)."""
    xm = float(x.mean())
    dx = x - xm
    den = float(np.square(dx).sum())  # ufunc reductions, not BLAS: no thread start-up
    slope = float((dx * (y - y.mean())).sum()) / den if den > 0 else 0.0
    return xm, float(y.mean()), slope


def _first_crossing(t: np.ndarray, s: np.ndarray, level: float) -> float:
    """Interpolated time of the first sample of ``s`` at or above ``level`` (NaN if none)."""
    idx = np.flatnonzero(s >= level)
    if idx.size == 0:
        return _NAN
    k = int(idx[0])
    if k == 0 or s[k] == s[k - 1]:
        return float(t[k])
    return float(t[k - 1] + (level - s[k - 1]) * (t[k] - t[k - 1]) / (s[k] - s[k - 1]))


def _plateau(t: np.ndarray, s: np.ndarray, ipk: int) -> tuple[np.ndarray, int, int] | None:
    """(keep-mask over [p0, p1], p0, p1) in the hold's sample indices, or None."""
    n = s.size
    if n - ipk < 8:
        return None
    c0 = ipk + (n - ipk) // 4
    c1 = ipk + 3 * (n - ipk) // 4
    core = s[c0:c1]
    if core.size < 4:
        return None
    level = float(np.median(core))
    if not level > 0:
        return None
    keep = np.abs(core - level) <= 0.10 * level
    if np.count_nonzero(keep) < 4:
        return None
    xm, ym, slope = _line(t[c0:c1][keep], core[keep])
    tol = PLATEAU_TOL * level
    tail_t = t[ipk:]
    dev = s[ipk:] - (ym + slope * (tail_t - xm))
    inside = np.flatnonzero(np.abs(dev) <= tol)
    settled = np.flatnonzero(np.abs(dev) <= 0.5 * tol)
    if settled.size == 0:
        return None
    p0 = ipk + int(inside[0])
    # release: the smoothed force leaves the trend half a window before the raw force does
    p1 = int(np.searchsorted(t, t[ipk + int(settled[-1])] - 0.5 * SMOOTH_S, "right")) - 1
    if p1 <= p0:
        return None
    span = float(t[p1] - t[p0])
    if span < PLATEAU_MIN_S or abs(slope) * span > PLATEAU_MAX_CHANGE * level:
        return None
    mask = dev[p0 - ipk:p1 - ipk + 1] >= -tol  # drop re-press dips
    return mask, p0, p1


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


@dataclass(frozen=True)
class _Shape:
    """What the force curve of one hold shows: its plateau and loading ramp (NaN: not found)."""

    plateau_mean_n: float = _NAN
    cv: float = _NAN
    steadiness_n: float = _NAN
    overshoot_pct: float = _NAN
    ramp_n_per_s: float = _NAN
    plateau_start_s: float = _NAN
    plateau_end_s: float = _NAN


def _shape(tt: np.ndarray, ff: np.ndarray) -> _Shape:
    """Plateau (level, CV, steadiness about its trend, overshoot of the smoothed peak above it)
    and the 20-80 % loading rate, from the samples ``tt``, ``ff`` of one hold (8 or more)."""
    n = ff.size
    dt = float(tt[-1] - tt[0]) / (n - 1)
    w = int(round(0.5 * SMOOTH_S / dt)) if dt > 0 else 0
    s = _smooth(ff, w)
    ipk = int(np.argmax(s))
    pl = _plateau(tt, s, ipk)
    if pl is None:
        return _Shape()
    mask, p0, p1 = pl
    pt, pf = tt[p0:p1 + 1][mask], ff[p0:p1 + 1][mask]
    plateau_mean = float(pf.mean())
    sd = float(pf.std(ddof=1)) if pf.size > 1 else _NAN
    xm, ym, slope = _line(pt, pf)
    resid = pf - (ym + slope * (pt - xm))
    load_t, load_s = tt[:ipk + 1], s[:ipk + 1]
    t20 = _first_crossing(load_t, load_s, 0.2 * plateau_mean)
    t80 = _first_crossing(load_t, load_s, 0.8 * plateau_mean)
    return _Shape(
        plateau_mean_n=plateau_mean,
        cv=sd / plateau_mean if plateau_mean > 0 else _NAN,
        steadiness_n=float(np.sqrt(np.square(resid).sum() / max(pf.size - 2, 1))),
        overshoot_pct=(float(s[ipk]) - plateau_mean) / plateau_mean * 100.0,
        ramp_n_per_s=0.6 * plateau_mean / (t80 - t20) if t80 > t20 else _NAN,
        plateau_start_s=float(tt[p0]), plateau_end_s=float(tt[p1]),
    )


def hold_metrics(t: np.ndarray, f: np.ndarray, hold: Hold, dose: Dose, events: Iterable = (),
                 *, area_cm2: float = _NAN, trigger_point: str = "", repetition: int = 0,
                 blind: bool = False) -> HoldMetrics:
    """Metrics of one hold: ``t``, ``f`` the whole recording (or any stretch holding the hold),
    ``hold`` from ``analysis.holds`` (its config's band should be ``dose``'s band: time in
    band and time to band are the detector's), ``dose`` the point's protocol dose (its band in
    newtons for ``area_cm2``; the target is the band's midpoint; the area also gives the ramp
    in kPa/s), ``events`` objects with ``time`` and ``kind`` (and ``value`` for ``pain``),
    e.g. ``schemas.events.Event``."""
    a, b = (int(v) for v in np.searchsorted(t, (hold.start_s, hold.end_s), side="left"))
    b = max(b, a)
    tt, ff = (np.asarray(x[a:b], dtype=np.float64) for x in (t, f))
    low, high = band_or_nan(dose, area_cm2)
    target = 0.5 * (low + high)
    pain, presses = _hold_events(events, hold)
    impulse = float(np.trapezoid(ff, tt)) if ff.size >= 2 else 0.0
    shape = _shape(tt, ff) if ff.size >= 8 else _Shape()
    try:
        ramp_kpa = float(from_newtons(shape.ramp_n_per_s, "kPa", area_cm2))
    except ValueError:
        ramp_kpa = _NAN
    const = shape.plateau_mean_n - target
    return HoldMetrics(
        trigger_point=trigger_point, repetition=int(repetition), blind=bool(blind),
        start_s=hold.start_s, end_s=hold.end_s, duration_s=hold.duration_s,
        time_in_band_s=hold.time_in_band_s, time_to_band_s=hold.time_to_band_s,
        plateau_start_s=shape.plateau_start_s, plateau_end_s=shape.plateau_end_s,
        ramp_rate_n_per_s=shape.ramp_n_per_s, ramp_rate_kpa_per_s=ramp_kpa,
        peak_n=hold.peak_n, plateau_mean_n=shape.plateau_mean_n, plateau_cv=shape.cv,
        steadiness_n=shape.steadiness_n, overshoot_pct=shape.overshoot_pct,
        peak_over_band_pct=(hold.peak_n - high) / high * 100.0 if high > 0 else _NAN,
        complete=hold.complete,  # False: cut off by the recording's end, not judged
        early_release=hold.complete and bool(hold.duration_s < dose.min_hold_s),
        too_long=hold.complete and bool(dose.max_hold_s > 0
                                        and hold.duration_s > dose.max_hold_s),
        dose_met=hold.complete and bool(hold.time_in_band_s >= dose.min_hold_s
                                        and hold.duration_s <= dose.max_hold_s),
        impulse_ns=impulse, pain=pain, button_presses=presses, target_n=target,
        band_low_n=low, band_high_n=high, min_hold_s=float(dose.min_hold_s),
        max_hold_s=float(dose.max_hold_s),
        abs_error_n=abs(const), constant_error_n=const,
        pct_error=abs(const) / target * 100.0 if target > 0 else _NAN,
    )


# ---------------------------------------------------------------------------- across holds
def _sd(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1)) if x.size > 1 else _NAN


def variable_error(values: Iterable[float]) -> float:
    """Variable error: SD (n - 1) of the constant errors; non-finite values are ignored."""
    v = np.asarray(list(values), dtype=np.float64)
    return _sd(v[np.isfinite(v)])


def consistency(rows: Sequence[HoldMetrics]) -> list[ConsistencyRow]:
    """Per trigger point and feedback condition (blind False = feedback on): n, mean, SD
    (n - 1) and CV of the plateau mean and of the duration, variable error, and dose
    adherence (% of holds with ``dose_met``). Holds without a plateau count in n, duration and
    adherence but not in the plateau statistics. Rows in order of first appearance."""
    groups: dict[tuple[str, bool], list[HoldMetrics]] = {}
    for r in rows:
        groups.setdefault((r.trigger_point, bool(r.blind)), []).append(r)
    out = []
    for (tp, blind), rs in groups.items():
        pm = np.array([r.plateau_mean_n for r in rs], dtype=np.float64)
        pm = pm[np.isfinite(pm)]
        du = np.array([r.duration_s for r in rs], dtype=np.float64)
        pmean = float(pm.mean()) if pm.size else _NAN
        dmean = float(du.mean())
        psd, dsd = _sd(pm), _sd(du)
        out.append(ConsistencyRow(
            trigger_point=tp, blind=blind, n=len(rs),
            plateau_mean_n=pmean, plateau_sd_n=psd,
            plateau_cv=psd / pmean if pmean > 0 else _NAN,
            duration_mean_s=dmean, duration_sd_s=dsd,
            duration_cv=dsd / dmean if dmean > 0 else _NAN,
            variable_error_n=variable_error(r.constant_error_n for r in rs),
            adherence_pct=100.0 * sum(r.dose_met for r in rs) / len(rs),
            reps=[r.repetition for r in rs],
        ))
    return out


# ---------------------------------------------------------------------------- a recording
def recording_metrics(rec) -> list[HoldMetrics]:
    """Metrics of every hold of a ``schemas.reader.Recording``, segmented offline.

    Doses come from the protocol stored in the file (``session.protocol_toml``). Which point
    is being worked follows the ``trigger_point`` events (point 0 before the first), or the
    ``/holds`` rows when there are no such events; each stretch is segmented with that point's
    thresholds, as the live recorder does. Holds that start after a ``protocol_complete``
    event and before the next ``trigger_point`` event are left out: the live recorder stops
    counting there (``recorder.hold_tracker``), and from that ``trigger_point`` on it detects
    with a fresh detector, so the data are segmented afresh from there too. Each hold is then
    named after the ``/holds`` row it overlaps most (its repetition too); without one, after
    the current point (repetitions counted here). Pain, button presses and blind (feedback
    off: ``blind_on`` until ``blind_off``, taken at the hold's start) come from the events.
    """
    t = np.asarray(rec.timestamps, dtype=np.float64)
    f = np.asarray(rec.force, dtype=np.float64)
    proto = protocol_of(rec)
    area = _NAN
    if proto is not None and proto.contact_area_cm2 is not None:
        area = float(proto.contact_area_cm2)
    rows = rec.holds
    row_tp = [r["trigger_point"].decode("utf-8", "replace") for r in rows]
    evs = sorted(rec.events, key=lambda e: e.time)
    sched = _schedule(evs, rows, row_tp, t, proto)
    doses = {lab: _dose_for(lab, proto, rows, row_tp)
             for lab in [*(lab for _, lab in sched), *row_tp]}
    closed = _closed_spans(evs)
    configs = [config_for_band(*band_or_nan(doses[lab], area)) for _, lab in sched]
    holds = [h for h in _segment(t, f, sched, configs, [b for _, b in closed])
             if not any(a <= h.start_s < b for a, b in closed)]

    sched_t = np.array([s[0] for s in sched])
    pain_btn = [e for e in evs if e.kind in ("pain", "button_down")]
    blind_ev = [(e.time, e.kind == "blind_on") for e in evs if e.kind in ("blind_on", "blind_off")]
    blind_t = np.array([b[0] for b in blind_ev])
    starts = np.array([float(r["start"]) for r in rows])
    ends = np.array([float(r["end"]) for r in rows])
    pe_t = np.array([e.time for e in pain_btn])
    reps: dict[str, int] = {}
    out = []
    for h in holds:
        label, rep = None, 0
        if starts.size:
            ov = np.minimum(ends, h.end_s) - np.maximum(starts, h.start_s)
            j = int(np.argmax(ov))
            if ov[j] > 0:
                label, rep = row_tp[j], int(rows[j]["repetition"])
        if label is None:
            label = sched[int(np.searchsorted(sched_t, h.start_s, "right")) - 1][1]
            rep = reps.get(label, 0) + 1
        reps[label] = rep
        k = int(np.searchsorted(blind_t, h.start_s, "right")) - 1
        blind = blind_ev[k][1] if k >= 0 else False
        a = int(np.searchsorted(pe_t, h.start_s, "left"))
        hev = pain_btn[a:int(np.searchsorted(pe_t, h.end_s, "right"))]
        out.append(hold_metrics(t, f, h, doses[label], hev, area_cm2=area,
                                trigger_point=label, repetition=rep, blind=blind))
    return out


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
