"""Plausible ranges for a session protocol's numbers: a value outside them is a typing or
unit mistake (``target_high = 4500`` meant for N, a hold of 6000 s), not a dose anyone gives.

The bounds are wide on purpose: each is several times the largest figure in use for manual
pressure on trigger points, so that no real protocol is refused, and each is justified in
schemas/PROTOCOL.md ("Plausible ranges"). Forces and rates are judged in newtons, whatever
the protocol's unit, because the bound is about what a hand can press; pressures are turned
into newtons over the protocol's contact area.

``session_protocol`` calls these after its type and order checks and reports what they
return as its one-line ``FILE:LINE: what is wrong``.
"""

from __future__ import annotations

import math
from typing import Any

from schemas.units import is_pressure, to_newtons, unit_text

FORCE_MAX_N = 200.0
"""target_high (and so target_low): 200 N. Ischemic compression goes up to 20-30 lb
(90-130 N, Travell/Simons), the highest manual pressure in use; 200 N is about 20 kgf."""
RAMP_MAX_N_PER_S = 100.0
"""ramp_min, ramp_max: 100 N/s, i.e. 1000 kPa/s on the 1 cm² algometer tip: twenty times the
DFNS ramp (50 kPa/s = 5 N/s on 1 cm²), ten times the 1 kgf/cm²/s of hand-held practice."""
HOLD_MAX_S = 600.0
"""max_hold_s (and so min_hold_s): 10 minutes. The longest holds in use are about 60 s
(Travell/Simons, Nimmo, Hodgson & Fryer), 1-2 min in first sessions."""
REST_MAX_S = 600.0
"""rest_s: 10 minutes between repetitions at one point; DFNS rests 30 s."""
REPETITIONS_MAX = 50
"""repetitions at one point: 50. DFNS takes 3 series; a ramp drill of 36 trials (Emerson
Kavchak 2016) fits."""
AREA_MIN_CM2, AREA_MAX_CM2 = 0.1, 20.0
"""contact_area_cm2: 0.1-20 cm². A thumb is about 2 cm², an algometer tip 1 cm²; below
0.1 cm² (a 3.6 mm tip) is a needle, above 20 cm² (a palm heel) is no longer point work."""

PAIN_MAX = 10.0
"""target_pain: a 0-10 rating (NRS); 0 is no pain, so no target. NMT titrates to about 6/10,
ischemic compression to 7-8/10."""
ANCHOR_BAND_PCT_MAX = 50.0
"""anchor_band_pct: ±50 % of the anchored target. The fixed presets' 30-50 N band is ±25 %
around 40 N; wider than ±50 % is no band."""
REACTION_MAX_S = 2.0
"""reaction_time_s: 2 s. A simple reaction is 0.2-0.3 s; a rating given by button or key
after a judgement takes longer, but not seconds."""
HOLDS_PER_BLOCK_MAX = 500
"""holds in a [[training.block]]: 500, over an hour of 8-20 s holds; practice studies give
tens of trials per block."""
BANDWIDTH_PCT_MAX = 50.0
"""bandwidth_pct: ±50 %. The bandwidth studied is 15 % (Cruz 2018); beyond ±50 % nearly every
hold would count as on target."""


def area_problem(area_cm2: float) -> str | None:
    """What is implausible about a contact area (cm², already checked positive), or None."""
    if area_cm2 < AREA_MIN_CM2:
        return (f"contact_area_cm2 {area_cm2:g} is below {AREA_MIN_CM2:g} cm² (a 3.6 mm tip); "
                "a thumb is about 2 cm², an algometer tip 1 cm²")
    if area_cm2 > AREA_MAX_CM2:
        return (f"contact_area_cm2 {area_cm2:g} is above {AREA_MAX_CM2:g} cm² (a palm heel); "
                "a thumb is about 2 cm², an algometer tip 1 cm²")
    return None


def dose_problem(values: dict[str, Any], unit: str,
                 area_cm2: float | None) -> tuple[str, str] | None:
    """The first implausible value of a point's dose (``values``: every dose key, in
    ``unit``; low <= high already checked) as (key, what is wrong), or None."""
    area = math.nan if area_cm2 is None else area_cm2
    high_n = float(to_newtons(values["target_high"], unit, area))
    if high_n > FORCE_MAX_N:
        return "target_high", (
            f"target_high {_in_unit(values['target_high'], unit, high_n, area)} is above "
            f"{FORCE_MAX_N:g} N, more than manual pressure reaches (ischemic compression "
            "goes up to 90-130 N); check the value and the unit")
    for key in ("ramp_max", "ramp_min"):
        if values[key] is None:
            continue
        rate_n = float(to_newtons(values[key], unit, area))
        if rate_n > RAMP_MAX_N_PER_S:
            return key, (
                f"{key} {_in_unit(values[key], unit + '/s', rate_n, area, '/s')} is above "
                f"{RAMP_MAX_N_PER_S:g} N/s (1000 kPa/s on 1 cm²), twenty times the standard "
                "5 N/s ramp")
    if values["max_hold_s"] > HOLD_MAX_S:
        return "max_hold_s", (f"max_hold_s {values['max_hold_s']:g} s is above "
                              f"{HOLD_MAX_S:g} s (10 min); the longest holds in use are "
                              "about 60 s, 1-2 min at most")
    if values["rest_s"] > REST_MAX_S:
        return "rest_s", (f"rest_s {values['rest_s']:g} s is above {REST_MAX_S:g} s "
                          "(10 min) between repetitions at one point")
    if values["repetitions"] > REPETITIONS_MAX:
        return "repetitions", (f"repetitions {values['repetitions']} is above "
                               f"{REPETITIONS_MAX} at one point")
    return _anchor_problem(values)


def _anchor_problem(values: dict[str, Any]) -> tuple[str, str] | None:
    """The subject-anchored dose keys: target_pain (NaN: not anchored), anchor_band_pct,
    reaction_time_s."""
    pain = values["target_pain"]
    if not math.isnan(pain) and not 0 < pain <= PAIN_MAX:
        return "target_pain", (f"target_pain {pain:g} is not a rating from 0 to 10 (above 0: "
                               "the discomfort the subject signals, e.g. 6)")
    if not 0 < values["anchor_band_pct"] <= ANCHOR_BAND_PCT_MAX:
        return "anchor_band_pct", (f"anchor_band_pct {values['anchor_band_pct']:g} % must be "
                                   f"above 0 and at most {ANCHOR_BAND_PCT_MAX:g} % (the band "
                                   "is the anchored target ± this share)")
    if values["reaction_time_s"] > REACTION_MAX_S:
        return "reaction_time_s", (f"reaction_time_s {values['reaction_time_s']:g} s is above "
                                   f"{REACTION_MAX_S:g} s; a reaction takes 0.2-0.3 s, a "
                                   "rating under a second")
    return None


def block_problem(holds: int, bandwidth_pct: float) -> tuple[str, str] | None:
    """The first implausible value of a [[training.block]] as (key, what is wrong), or None."""
    if holds > HOLDS_PER_BLOCK_MAX:
        return "holds", (f"holds {holds} is above {HOLDS_PER_BLOCK_MAX} in one block (over an "
                         "hour of holds)")
    if bandwidth_pct > BANDWIDTH_PCT_MAX:
        return "bandwidth_pct", (f"bandwidth_pct {bandwidth_pct:g} % is above "
                                 f"{BANDWIDTH_PCT_MAX:g} %; the bandwidth studied is 15 %")
    return None


def _in_unit(value: float, unit: str, newtons: float, area_cm2: float, per: str = "") -> str:
    """"4500 N", or with the newtons it stands for: "30 kgf (294 N)", "3000 kPa (300 N on
    1 cm²)"."""
    text = f"{value:g} {unit_text(unit)}"
    if unit_text(unit) == f"N{per}":
        return text
    where = f" on {area_cm2:g} cm²" if is_pressure(unit.removesuffix("/s")) else ""
    return f"{text} ({newtons:.4g} N{per}{where})"
