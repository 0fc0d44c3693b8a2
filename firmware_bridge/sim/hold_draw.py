"""Drawing the parameters of one static-compression hold (ramp, overshoot, plateau, release).

Why a module of its own: the per-hold random draws (level error, rate, duration, drift,
tremor, re-press dips, the subject's button) are the profile-specific part of the simulator;
``hold_model`` evaluates the drawn ``HoldPlan`` and ``therapist`` schedules the holds. The
number and order of draws is fixed, so a seed always yields the same stream.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.sim.hold_model import CONTACT_FRAC, TWO_PI, HoldPlan, clipped_normal, span
from firmware_bridge.sim.profiles import Profile

#: Re-press dips are capped so the smooth force stays at or above this fraction of target.
DIP_FLOOR_FRAC = 0.60


def draw_hold(pr: Profile, rng: np.random.Generator, *, index: int, cycle: int, tp: str,
              rep: int, onset: float, target: float, level_bias: float, ramp_n_per_s: float,
              planned_hold_s: float) -> HoldPlan:
    """Draw one hold's parameters for a therapist of profile ``pr`` with constant level error
    ``level_bias``, aiming at ``target`` N for ``planned_hold_s`` s after a ramp at
    ``ramp_n_per_s``. The number of draws is fixed, whatever the branches."""
    z_level, z_rate, z_hold, z_drift = (clipped_normal(rng) for _ in range(4))
    uni = rng.random(17)
    tremor, wander, am = draw_oscillations(pr, rng)

    err = float(np.clip(level_bias + pr.level_sd * z_level,
                        -pr.level_error_max, pr.level_error_max))
    level = target * (1.0 + err)
    peak = level * (1.0 + span(pr.overshoot_frac, uni[0]))
    contact = CONTACT_FRAC * target
    rate = ramp_n_per_s * math.exp(pr.ramp_rate_sd * z_rate)
    t_app = span(pr.approach_s, uni[1])
    t_ramp = (peak - contact) / rate
    t_settle = span(pr.settle_s, uni[2])
    hold_s = max(2.0, planned_hold_s * (1.0 + pr.hold_cv * z_hold))
    drift = (pr.drift_per_min + pr.drift_sd_per_min * z_drift) / 60.0
    drift = max(drift, -0.5 / hold_s)  # never lose more than half the level on one hold
    release_level = level * (1.0 + drift * hold_s)
    t_rel = release_level / (rate * span(pr.release_rate_factor, uni[3]))
    s1 = t_app
    s2 = s1 + t_ramp
    s3 = s2 + t_settle
    s4 = s3 + hold_s
    s5 = s4 + t_rel
    # ramp wobble: warp p = x + k1 sin(2 pi x)/(2 pi) + k2 sin(4 pi x)/(4 pi), |k1|+|k2| < 1
    k1 = pr.ramp_wobble * (2.0 * uni[4] - 1.0) * 0.65
    k2 = pr.ramp_wobble * (2.0 * uni[5] - 1.0) * 0.35
    dips = _dips(pr, uni, min(level, release_level), target, s3, s4)
    button = None
    if uni[14] < pr.button_prob:
        press = onset + s4 - 0.5 - 2.5 * uni[15]
        button = (press, press + span(pr.button_duration_s, uni[16]))
    return HoldPlan(
        index=index, cycle=cycle, trigger_point=tp, repetition=rep, target_n=target,
        onset=onset, edges=onset + np.array([0.0, s1, s2, s3, s4, s5]),
        s1=s1, s2=s2, s3=s3, s4=s4, contact_n=contact, peak_env_n=peak, level_n=level,
        slope_n_per_s=level * drift, release_level_n=release_level,
        inv_a=1.0 / t_app, inv_tr=1.0 / t_ramp, inv_ts=1.0 / t_settle, inv_td=1.0 / t_rel,
        k1=np.float32(k1 / TWO_PI), k2=np.float32(k2 / (2 * TWO_PI)), wander=wander,
        tremor=tremor, am=am, tremor_rms_frac=pr.tremor_frac, dips=dips, button=button,
        ramp_n_per_s=rate,
    )


def draw_oscillations(pr: Profile, rng: np.random.Generator) -> tuple:
    """Draw one hold's tremor, wander and tremor modulation (see ``_oscillations``)."""
    tr_f = rng.uniform(8.0, 12.0, 3)
    tr_a = rng.uniform(0.5, 1.0, 3)
    tr_p = rng.uniform(0.0, TWO_PI, 3)
    wd_f = rng.uniform(0.05, 0.4, 2)
    wd_a = rng.uniform(0.5, 1.0, 2)
    wd_p = rng.uniform(0.0, TWO_PI, 2)
    am_f, am_p = rng.uniform(0.1, 0.5), rng.uniform(0.0, TWO_PI)
    return _oscillations(pr, (tr_f, tr_a, tr_p), (wd_f, wd_a, wd_p), (am_f, am_p))


def _oscillations(pr: Profile, tremor_draws, wander_draws, am_draws) -> tuple:
    """Tremor, slow wander and tremor amplitude modulation as float32 (gain, omega, phase)
    triples, scaled to the profile's RMS fractions. The RMS of (1 + m sin)(sum b_i sin) is
    sqrt(sum b_i^2 / 2) * sqrt(1 + m^2 / 2)."""
    (tr_f, tr_a, tr_p), (wd_f, wd_a, wd_p), (am_f, am_p) = tremor_draws, wander_draws, am_draws
    m = pr.tremor_am_depth
    norm = math.sqrt(float(np.sum(tr_a**2)) / 2.0 * (1.0 + m * m / 2.0))
    tr_b = tr_a * (pr.tremor_frac / norm)
    wd_b = wd_a * (pr.wander_frac / math.sqrt(float(np.sum(wd_a**2)) / 2.0))
    f32 = np.float32
    tremor = tuple(f32(v) for i in range(3) for v in (tr_b[i], TWO_PI * tr_f[i], tr_p[i]))
    wander = tuple(f32(v) for i in range(2) for v in (wd_b[i], TWO_PI * wd_f[i], wd_p[i]))
    return tremor, wander, (f32(m), f32(TWO_PI * am_f), f32(am_p))


def _dips(pr: Profile, uni: np.ndarray, lowest_level: float, target: float, s3: float,
          s4: float) -> list[tuple[float, float, float]]:
    """Momentary losses of pressure on the plateau: (start, duration, depth fraction)."""
    dips: list[tuple[float, float, float]] = []
    if uni[6] >= pr.dip_prob:
        return dips
    n_dips = 2 if uni[7] < 0.25 else 1
    floor = DIP_FLOOR_FRAC * target / (lowest_level * (1.0 - 3.0 * pr.wander_frac))
    for i in range(n_dips):
        dur = span(pr.dip_duration_s, uni[8 + i])
        lo, hi = s3 + 1.0, s4 - 1.0 - dur  # keep clear of settle and release
        seg = (hi - lo) / n_dips
        if seg <= 0:
            break
        d0 = lo + seg * (i + uni[10 + i])
        depth = min(span(pr.dip_depth_frac, uni[12 + i]), max(0.0, 1.0 - floor))
        if depth > 0:
            dips.append((d0, dur, depth))
    return dips
