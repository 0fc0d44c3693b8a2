"""The first approach to a point under a subject-anchored dose (``Dose.target_pain``): a slow
ramp until the subject signals the target discomfort, then the hold at that force.

Why a module of its own: the anchored dose has its own subject (a force per point at which the
discomfort reaches target_pain, and a reaction time) and its own first approach, apart from the
holds of ``hold_draw`` and the pressure-pain ramps of ``threshold_ramp``, whose per-point
sensitivities it shares (``point_thresholds``: a subject's tender and less tender points).

The first approach to each point (first pass over the dose only) ramps linearly at
``ANCHOR_RAMP_N_PER_S`` (the profile's rate error and in-ramp wobble) from the light contact.
The smooth ramp reaches the point's force at ``reached_s``; the subject presses the button a
seeded reaction time later (``SUBJECT_REACTION_S``), while the force still rises; the therapist
reacts to the button (``threshold_ramp.REACTION_S``), settles back onto the point's force (the
profile's level error) and holds it as any hold, then releases. The later repetitions are
ordinary holds (``hold_draw``) aimed at the point's force. The truth (``AnchorTruth``) gives
each point's force and the instants; all times are therapist seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from firmware_bridge.sim.hold_draw import draw_oscillations
from firmware_bridge.sim.hold_model import CONTACT_FRAC, TWO_PI, HoldPlan, clipped_normal, span
from firmware_bridge.sim.profiles import Profile
from firmware_bridge.sim.threshold_ramp import REACTION_S, _unwarp

#: The slow first approach, N/s: slow enough that a 0.1 s error in the assumed reaction time
#: costs 0.5 N (under 3 % of a 20 N target).
ANCHOR_RAMP_N_PER_S = 5.0
#: The subject's reaction from the discomfort reaching the target to the button going down: a
#: recognition decision on a slowly rising stimulus, around the recorder's 0.3 s default
#: (docs/SOURCES.md, "Reaction time").
SUBJECT_REACTION_S = (0.2, 0.4)


@dataclass(frozen=True)
class AnchorTruth:
    """One first approach: the point's true target force and when it was reached and
    signalled (therapist seconds)."""

    trigger_point: str
    pain_n: float  # the force at which the discomfort reaches target_pain (smooth ramp)
    reached_s: float  # the smooth ramp reached pain_n
    signal_s: float  # the subject's button went down
    reaction_s: float  # signal_s - reached_s


def draw_anchor_approach(pr: Profile, rng: np.random.Generator, *, index: int, cycle: int,
                         tp: str, rep: int, onset: float, pain_n: float, level_bias: float,
                         planned_hold_s: float,
                         ramp_n_per_s: float) -> tuple[HoldPlan, AnchorTruth]:
    """Draw the first approach to point ``tp`` whose target discomfort is at ``pain_n``: the
    slow ramp, the subject's press, the therapist's reaction, the hold at ``pain_n`` (with the
    profile's level error and drift) and the release at the therapist's usual pace (that of
    a ramp at ``ramp_n_per_s``). The number of draws is fixed."""
    z_level, z_rate, z_hold, z_drift = (clipped_normal(rng) for _ in range(4))
    uni = rng.random(8)
    tremor, wander, am = draw_oscillations(pr, rng)
    rate = ANCHOR_RAMP_N_PER_S * math.exp(pr.ramp_rate_sd * z_rate)
    reaction = span(SUBJECT_REACTION_S, uni[0])
    contact = CONTACT_FRAC * pain_n
    peak = pain_n + rate * (reaction + span(REACTION_S, uni[1]))
    err = float(np.clip(level_bias + pr.level_sd * z_level,
                        -pr.level_error_max, pr.level_error_max))
    level = pain_n * (1.0 + err)
    hold_s = max(2.0, planned_hold_s * (1.0 + pr.hold_cv * z_hold))
    drift = max((pr.drift_per_min + pr.drift_sd_per_min * z_drift) / 60.0, -0.5 / hold_s)
    release_level = level * (1.0 + drift * hold_s)
    t_ramp = (peak - contact) / rate
    t_rel = release_level / (ramp_n_per_s * span(pr.release_rate_factor, uni[2]))
    s1 = span(pr.approach_s, uni[3])
    s2 = s1 + t_ramp
    s3 = s2 + span(pr.settle_s, uni[4])
    s4 = s3 + hold_s
    k1 = pr.ramp_wobble * (2.0 * uni[5] - 1.0) * 0.65
    k2 = pr.ramp_wobble * (2.0 * uni[6] - 1.0) * 0.35
    reached = onset + s1 + t_ramp * _unwarp((pain_n - contact) / (peak - contact), k1, k2)
    press = reached + reaction
    plan = HoldPlan(
        index=index, cycle=cycle, trigger_point=tp, repetition=rep, target_n=pain_n,
        onset=onset, edges=onset + np.array([0.0, s1, s2, s3, s4, s4 + t_rel]),
        s1=s1, s2=s2, s3=s3, s4=s4, contact_n=contact, peak_env_n=peak, level_n=level,
        slope_n_per_s=level * drift, release_level_n=release_level,
        inv_a=1.0 / s1, inv_tr=1.0 / t_ramp, inv_ts=1.0 / (s3 - s2), inv_td=1.0 / t_rel,
        k1=np.float32(k1 / TWO_PI), k2=np.float32(k2 / (2 * TWO_PI)), wander=wander,
        tremor=tremor, am=am, tremor_rms_frac=pr.tremor_frac, dips=[],
        button=(press, press + span(pr.button_duration_s, uni[7])), ramp_n_per_s=rate,
        linear=True)
    return plan, AnchorTruth(tp, pain_n, float(reached), float(press), float(reaction))
