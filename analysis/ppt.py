"""Pressure-pain thresholds (PPT algometry, the ``ppt_ramp`` protocol kind): each ramp's
threshold, and per site the mean of its series, the left-right difference and the change
between sessions judged against the minimal detectable change.

Why a module of its own: the threshold is a reading of the subject's button, not of the hold's
shape, and the summary follows the algometry literature's conventions (DFNS, Rolke 2006: the
threshold of a site is the mean of its series; Chesterton 2007: a change counts only beyond the
MDC95), which the hold metrics do not have.

* ``ppt_columns``: per hold, ``threshold_n``, the force on the first sample where the subject's
  button goes down within the hold (``/acquisition/force/flags`` bit 0 rising; a button
  already down on the sample before the hold is no press), and ``threshold_kpa`` over the
  session's contact area.
* ``ppt_summary_rows``: per session (file) and site (trigger point label, e.g. "upper
  trapezius L": the protocol's point name and side, ``TriggerPoint.label``), the series of
  thresholds and its mean (the first trial kept or dropped), the left-right difference for
  paired sites, and the change from the same subject's previous session with the same rater,
  flagged only when it exceeds the MDC95 (``analysis.reliability``: from the data's own SEM, or
  given). Incomplete ramps and ramps without a press are left out and counted.
* ``ppt_section``: that summary as the report's "Pressure-pain thresholds" section.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import numpy as np

from analysis.metrics import HoldMetrics
from analysis.svg import DASH, esc, num
from schemas.session_protocol import protocol_of
from schemas.units import from_newtons

__all__ = ["BUTTON_BIT", "FIRST_TRIAL_RULES", "MIN_MDC_PAIRS", "PPT_COLUMNS",
           "PPT_SUMMARY_COLUMNS", "contact_area", "first_press", "ppt_columns",
           "ppt_hold_rows", "ppt_section", "ppt_summary_rows"]

BUTTON_BIT = 0x01  # /acquisition/force/flags bit 0: the subject's button is down
FIRST_TRIAL_RULES = ("keep", "drop")
MIN_MDC_PAIRS = 5  # an ICC (hence the data's own SEM) needs at least 5 targets
_NAN = math.nan

#: The hold-table columns of ``ppt_columns``: name -> (unit, definition).
PPT_COLUMNS: dict[str, tuple[str, str]] = {
    "threshold_n": ("N", "pressure-pain threshold: the force on the first sample where the "
                         "subject's button goes down within the hold (flags bit 0 rising); "
                         "empty: the button was not pressed during the hold"),
    "threshold_kpa": ("kPa", "threshold_n over the session's contact area (the file's "
                             "contact_area_cm2, else its protocol's); empty without an area "
                             "or a press"),
}

#: The columns of ``ppt_summary_rows``: name -> (unit, definition).
PPT_SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "file": ("", "the recording (one session)"),
    "trainee": ("", "the rater"),
    "subject": ("", "the person tested"),
    "session": ("", "the session label"),
    "session_start": ("ISO-8601", "time zero of the recording"),
    "protocol": ("", "session protocol name"),
    "site": ("", "trigger point label: the protocol's point name and side (L/R)"),
    "first_trial": ("", "keep: every ramp counts; drop: the site's first ramp in the session "
                        "(lowest repetition, a familiarisation trial) is left out"),
    "series_n": ("N", "the thresholds used, in order of repetition, separated by ';'"),
    "n_used": ("", "ramps in the mean"),
    "n_dropped": ("", "first ramps left out by the first-trial rule (0 or 1)"),
    "n_incomplete": ("", "ramps left out: cut off by the end, a disconnect or a gap"),
    "n_no_press": ("", "complete ramps left out: the button was not pressed during them"),
    "mean_n": ("N", "mean threshold of the series (empty: no ramp used)"),
    "sd_n": ("N", "sample SD of the series (empty: fewer than two ramps used)"),
    "mean_kpa": ("kPa", "mean of the series' threshold_kpa (empty without a contact area)"),
    "lr_diff_pct": ("%", "paired sites (same point name, sides L and R, in the same session): "
                         "(mean L - mean R) / ((mean L + mean R) / 2) x 100, on both rows"),
    "previous_session": ("", "the session label (else start) of the same subject's and rater's "
                             "previous session with a mean at the site; empty: none, or no "
                             "subject code (sessions of unnamed subjects are not compared)"),
    "change_n": ("N", "mean_n minus the previous session's mean_n at the site"),
    "mdc_n": ("N", "minimal detectable change (95 %): 1.96 x sqrt(2) x SEM, SEM = SD_pooled x "
                   "sqrt(1 - ICC(2,1)) over every pair of consecutive sessions (site means, all "
                   "subjects, raters and sites pooled), or the value given; empty: unknown"),
    "mdc_from": ("", "where mdc_n comes from: 'given', 'data (ICC(2,1) = ..., N pairs)', or "
                     "why it is unknown"),
    "change_beyond_mdc": ("", "True only when |change_n| > mdc_n; False when within it or "
                              "either is unknown"),
}


# ---------------------------------------------------------------------------- per hold
def contact_area(rec) -> float:
    """The session's contact area in cm² (the file's ``contact_area_cm2``, else its
    protocol's); NaN when neither is known."""
    area = (rec.session or {}).get("contact_area_cm2")
    try:
        area = float(area) if area is not None else _NAN
    except (TypeError, ValueError):
        area = _NAN
    if not (math.isfinite(area) and area > 0):
        proto = protocol_of(rec)
        area = float(proto.contact_area_cm2) if proto and proto.contact_area_cm2 else _NAN
    return area


def first_press(flags: np.ndarray, a: int, b: int) -> int | None:
    """Index of the first sample in ``[a, b)`` on which the button goes down (bit 0 set and
    not on the sample before); a button already down before ``a`` is no press there."""
    lo = max(a - 1, 0)
    down = (np.asarray(flags[lo:b]) & BUTTON_BIT) != 0
    edges = np.flatnonzero(down[1:] & ~down[:-1])
    return int(edges[0]) + lo + 1 if edges.size else None


def ppt_columns(rec, metrics: list[HoldMetrics]) -> list[dict]:
    """One dict of ``PPT_COLUMNS`` per hold of ``metrics`` (the recording ``rec``'s, in
    order): the force at the subject's first button press within the hold, in N and kPa."""
    t = np.asarray(rec.timestamps, dtype=np.float64)
    flags = np.asarray(rec.flags)
    area = contact_area(rec)
    out = []
    for m in metrics:
        a, b = (int(v) for v in np.searchsorted(t, (m.start_s, m.end_s), side="left"))
        i = first_press(flags, a, b) if flags.size == t.size else None
        force = float(rec.force[i]) if i is not None else _NAN
        try:
            kpa = float(from_newtons(force, "kPa", area))
        except ValueError:  # no contact area
            kpa = _NAN
        out.append({"threshold_n": force, "threshold_kpa": kpa})
    return out


def ppt_hold_rows(rec, metrics: list[HoldMetrics], file: str) -> list[dict]:
    """The hold-table rows ``ppt_summary_rows`` reads, for one recording (the report builds
    them; ``palpation analyze`` has its full table)."""
    s = rec.session or {}
    head = {"file": file, "trainee": s.get("trainee", ""), "subject": s.get("subject", ""),
            "session": s.get("session_label", ""),
            "session_start": rec.session_start.isoformat(), "protocol": s.get("protocol", "")}
    return [{**head, "trigger_point": m.trigger_point, "repetition": m.repetition,
             "complete": m.complete, "max_hold_s": m.max_hold_s, **cols}
            for m, cols in zip(metrics, ppt_columns(rec, metrics), strict=True)]


# ---------------------------------------------------------------------------- per site
def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return _NAN


def _is_ramp(row: dict) -> bool:
    """A threshold ramp has no hold to make (``Dose.is_threshold_ramp``: max_hold_s 0); rows
    without the column are taken as ramps (the caller chose them)."""
    return not _num(row.get("max_hold_s", 0.0)) > 0


def _side(label: str) -> tuple[str, str] | None:
    """(point name, "L" or "R") of a trigger point label (``TriggerPoint.label``: name, then
    the side's initial); None for a midline point."""
    name, _, side = label.rpartition(" ")
    return (name, side) if name and side in ("L", "R") else None


def _site_row(head: dict, site: str, ramps: list[dict], first_trial: str) -> dict:
    """One session's summary of one site from its ramps (hold-table rows)."""
    ramps = sorted(ramps, key=lambda r: int(r["repetition"]))
    dropped = ramps[:1] if first_trial == "drop" else []
    rest = ramps[len(dropped):]
    complete = [r for r in rest if r["complete"] in (True, "True", 1)]
    used = [r for r in complete if math.isfinite(_num(r.get("threshold_n")))]
    n = np.array([_num(r["threshold_n"]) for r in used])
    kpa = np.array([_num(r.get("threshold_kpa")) for r in used])
    return {**head, "site": site, "first_trial": first_trial,
            "series_n": ";".join(f"{v:.2f}" for v in n), "n_used": len(used),
            "n_dropped": len(dropped), "n_incomplete": len(rest) - len(complete),
            "n_no_press": len(complete) - len(used),
            "mean_n": float(n.mean()) if n.size else _NAN,
            "sd_n": float(n.std(ddof=1)) if n.size > 1 else _NAN,
            "mean_kpa": float(kpa.mean()) if kpa.size else _NAN,
            "lr_diff_pct": _NAN, "previous_session": "", "change_n": _NAN, "mdc_n": _NAN,
            "mdc_from": "", "change_beyond_mdc": False}


def _left_right(rows: list[dict]) -> None:
    """Fill ``lr_diff_pct`` on the rows (one session's sites) of paired sites."""
    by_side = {_side(r["site"]): r for r in rows if _side(r["site"])}
    for (name, side), left in by_side.items():
        right = by_side.get((name, "R"))
        if side != "L" or right is None:
            continue
        a, b = left["mean_n"], right["mean_n"]
        if math.isfinite(a) and math.isfinite(b) and a + b > 0:
            left["lr_diff_pct"] = right["lr_diff_pct"] = (a - b) / ((a + b) / 2.0) * 100.0


def _changes(rows: list[dict]) -> list[tuple[dict, dict]]:
    """(previous, later) site rows of consecutive sessions of the same subject (named), rater
    and site, both with a mean; fills each later row's ``previous_session`` and ``change_n``."""
    series: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["subject"] and math.isfinite(r["mean_n"]):
            series.setdefault((r["subject"], r["trainee"], r["site"]), []).append(r)
    pairs = []
    for chain in series.values():
        chain.sort(key=lambda r: (r["session_start"], r["file"]))
        for prev, later in zip(chain, chain[1:], strict=False):
            later["previous_session"] = prev["session"] or prev["session_start"]
            later["change_n"] = later["mean_n"] - prev["mean_n"]
            pairs.append((prev, later))
    return pairs


def _data_mdc(pairs: list[tuple[dict, dict]]) -> tuple[float, str]:
    """MDC95 (N) from the data's own SEM over the consecutive-session pairs, and where it
    comes from (or why it is unknown)."""
    if len(pairs) < MIN_MDC_PAIRS:
        return _NAN, (f"unknown: {len(pairs)} pair(s) of sessions, an ICC needs at least "
                      f"{MIN_MDC_PAIRS}")
    from analysis.reliability import icc, mdc95, sem  # scipy.stats: only when needed (1 s)

    scores = np.array([[p["mean_n"], q["mean_n"]] for p, q in pairs])
    try:
        value = icc(scores, "ICC(2,1)").value
        return mdc95(sem(scores, value)), f"data (ICC(2,1) = {value:.2f}, {len(pairs)} pairs)"
    except ValueError as exc:
        return _NAN, f"unknown: {exc}"


def ppt_summary_rows(rows: Iterable[dict], *, first_trial: str = "keep",
                     mdc_n: float | None = None) -> list[dict]:
    """Per session (``file``) and site, in the sessions' order: the rows of
    ``PPT_SUMMARY_COLUMNS`` from hold-table ``rows`` (of threshold ramps; rows of holds with a
    hold window, ``max_hold_s`` > 0, are passed over). ``first_trial`` "keep" or "drop" (the
    site's first ramp of each session); ``mdc_n`` the MDC95 in N, None: from the data's own
    SEM (``analysis.reliability``). ValueError for an unknown rule or a negative MDC."""
    if first_trial not in FIRST_TRIAL_RULES:
        raise ValueError(f"first_trial must be one of {', '.join(FIRST_TRIAL_RULES)}, "
                         f"not {first_trial!r}")
    if mdc_n is not None and not mdc_n >= 0:
        raise ValueError(f"the MDC must be a number >= 0, not {mdc_n}")
    sessions: dict[str, dict[str, list[dict]]] = {}
    heads: dict[str, dict] = {}
    for r in rows:
        if _is_ramp(r):
            heads.setdefault(r["file"], {k: r.get(k, "") for k in (
                "file", "trainee", "subject", "session", "session_start", "protocol")})
            sessions.setdefault(r["file"], {}).setdefault(r["trigger_point"], []).append(r)
    out = []
    for file in sorted(sessions, key=lambda f: (heads[f]["session_start"], f)):
        site_rows = [_site_row(heads[file], site, ramps, first_trial)
                     for site, ramps in sessions[file].items()]
        _left_right(site_rows)
        out += site_rows
    pairs = _changes(out)
    mdc, source = (float(mdc_n), "given") if mdc_n is not None else _data_mdc(pairs)
    for r in out:
        r["mdc_n"], r["mdc_from"] = mdc, source
    for _, later in pairs:
        later["change_beyond_mdc"] = bool(abs(later["change_n"]) > mdc)
    return out


# ---------------------------------------------------------------------------- in the report
def _site_cells(r: dict, tag: str, convert: Callable[[float], float]) -> str:
    series = ", ".join(num(float(convert(float(v)))) for v in r["series_n"].split(";") if v)
    left = [f"{r[k]} {what}" for k, what in (("n_dropped", "first trial dropped"),
                                             ("n_incomplete", "incomplete"),
                                             ("n_no_press", "no press")) if r[k]]
    change = DASH
    if math.isfinite(r["change_n"]):
        judged = (" (beyond the MDC)" if r["change_beyond_mdc"] else " (within the MDC)"
                  if math.isfinite(r["mdc_n"]) else " (MDC unknown)")
        change = f"{float(convert(r['change_n'])):+.1f} vs session {r['previous_session']}{judged}"
    return (f'<tr><td class="l">{esc(tag)}</td><td class="l">{esc(r["site"])}</td>'
            f'<td class="l">{esc(series or DASH)}</td><td>{r["n_used"]}</td>'
            f'<td class="l">{esc(", ".join(left))}</td>'
            f'<td>{num(float(convert(r["mean_n"])))}</td>'
            f'<td>{num(r["lr_diff_pct"])}</td><td class="l">{esc(change)}</td></tr>')


def ppt_section(summary: list[dict], tag: Callable[[str], str],
                convert: Callable[[float], float], unit: str) -> str:
    """The report's "Pressure-pain thresholds" section: one table row per row of
    ``ppt_summary_rows`` (its series, mean, L-R % and change against the MDC), the session
    named by ``tag(file)``, forces shown through ``convert`` (N to the report's ``unit``)."""
    body = "".join(_site_cells(r, tag(r["file"]), convert) for r in summary)
    mdc = summary[0]["mdc_n"] if summary else _NAN
    source = summary[0]["mdc_from"] if summary else ""
    mdc_txt = f"{num(float(convert(mdc)))} {unit} ({source})" if math.isfinite(mdc) else source
    rule = ("every trial kept" if not summary or summary[0]["first_trial"] == "keep"
            else "the first trial of each series dropped")
    return ('<section class="ppt" id="ppt"><h2>Pressure-pain thresholds</h2>'
            '<p class="note">Threshold: the pressure when the subject pressed the button. '
            f"A site's threshold is the mean of its series ({rule}); incomplete ramps and "
            "ramps without a press are left out. L−R: (left − right) / their mean. A change "
            "since the same subject's previous session with the same trainee counts only "
            f"beyond the minimal detectable change (MDC95: {esc(mdc_txt)}).</p>"
            '<table class="ppt"><thead><tr><th class="l">session</th><th class="l">site</th>'
            f'<th class="l">series ({esc(unit)})</th><th>used</th><th class="l">left out</th>'
            f'<th>mean ({esc(unit)})</th><th>L−R (%)</th><th class="l">change ({esc(unit)})'
            f"</th></tr></thead><tbody>{body}</tbody></table></section>")
