"""The threshold-ramp behaviour of the simulated therapist (pressure-pain threshold algometry).

Why a module of its own: a ramp has its own constants, per-point thresholds and draws, apart
from the static-compression holds of ``hold_draw``.

Threshold ramps (a dose with ``Dose.is_threshold_ramp``: pressure-pain threshold algometry) are
pressed differently: no plateau, but a linear ramp at the protocol's rate (the profile's rate
error and in-ramp wobble) until the subject feels pain and presses the button. Each trigger point
has its own threshold (seeded: ``THRESHOLD_SPREAD`` of the target, a subject's tender and less
tender points), and each trial scatters around it (``THRESHOLD_CV``, clipped at +-2.5 sd). The
therapist reacts to the button after ``REACTION_S`` (still ramping), stops and lifts the probe
within ``LIFT_S``; the subject lets go of the button ``button_duration_s`` after the lift began.
The ground truth of a ramp is defined in ``hold_model``.
"""

from __future__ import annotations

import math

import numpy as np

from firmware_bridge.sim.hold_draw import draw_oscillations
from firmware_bridge.sim.hold_model import CONTACT_FRAC, TWO_PI, HoldPlan, clipped_normal, span
from firmware_bridge.sim.profiles import Profile

#: Threshold ramps: each trigger point's mean threshold, a fraction of the target drawn once per
#: seed (target 40 % of the cut-off: thresholds 30-50 % of it), and the trial-to-trial CV
#: (within-session repeatability of PPT is of this order: Chesterton 2007, Antonaci 1998).
THRESHOLD_SPREAD = (0.75, 1.25)
THRESHOLD_CV = 0.10
#: Threshold ramps: the therapist's reaction time to the button (still ramping), the pause at
#: the peak and the lift of the probe, in seconds.
REACTION_S = (0.15, 0.35)
PEAK_PAUSE_S = 0.05
LIFT_S = (0.3, 0.6)


def point_thresholds(seed: int, n_points: int, target_n: float) -> list[float]:
    """Each trigger point's mean threshold (N), drawn once per seed from ``default_rng([seed,
    2])`` within ``THRESHOLD_SPREAD`` of the target."""
    spread = np.random.default_rng([seed, 2]).uniform(*THRESHOLD_SPREAD, n_points)
    return [float(f) * target_n for f in spread]


def draw_ramp(pr: Profile, rng: np.random.Generator, *, index: int, cycle: int, tp: str,
              rep: int, onset: float, target: float, point_threshold_n: float,
              ramp_n_per_s: float) -> HoldPlan:
    """Draw one threshold ramp at trigger point ``tp`` (mean threshold ``point_threshold_n``): a
    linear ramp at ``ramp_n_per_s`` (with the profile's rate error and wobble) until the button
    at this trial's threshold, the therapist's reaction, a pause at the peak and a quick lift."""
    z_thr, z_rate = clipped_normal(rng), clipped_normal(rng)
    uni = rng.random(6)
    tremor, wander, am = draw_oscillations(pr, rng)
    threshold = point_threshold_n * (1.0 + THRESHOLD_CV * z_thr)
    contact = CONTACT_FRAC * target
    rate = ramp_n_per_s * math.exp(pr.ramp_rate_sd * z_rate)
    peak = threshold + rate * span(REACTION_S, uni[0])
    t_app, t_ramp = span(pr.approach_s, uni[1]), (peak - contact) / rate
    t_lift = span(LIFT_S, uni[2])
    s1, s2 = t_app, t_app + t_ramp
    s3 = s4 = s2 + PEAK_PAUSE_S
    k1 = pr.ramp_wobble * (2.0 * uni[3] - 1.0) * 0.65
    k2 = pr.ramp_wobble * (2.0 * uni[4] - 1.0) * 0.35
    press = onset + s1 + t_ramp * _unwarp((threshold - contact) / (peak - contact), k1, k2)
    return HoldPlan(
        index=index, cycle=cycle, trigger_point=tp, repetition=rep,
        target_n=target, onset=onset,
        edges=onset + np.array([0.0, s1, s2, s3, s4, s4 + t_lift]),
        s1=s1, s2=s2, s3=s3, s4=s4, contact_n=contact, peak_env_n=peak, level_n=peak,
        slope_n_per_s=0.0, release_level_n=peak, inv_a=1.0 / t_app, inv_tr=1.0 / t_ramp,
        inv_ts=1.0 / PEAK_PAUSE_S, inv_td=1.0 / t_lift, k1=np.float32(k1 / TWO_PI),
        k2=np.float32(k2 / (2 * TWO_PI)), wander=wander, tremor=tremor, am=am,
        tremor_rms_frac=pr.tremor_frac, dips=[],
        button=(press, onset + s4 + span(pr.button_duration_s, uni[5])), ramp_n_per_s=rate,
        linear=True,
    )


def _unwarp(p: float, k1: float, k2: float) -> float:
    """The x in [0, 1] where the ramp's time warp ``x + k1 sin(2 pi x) / (2 pi) + k2 sin(4 pi
    x) / (4 pi)`` reaches ``p`` (it is monotone: |k1| + |k2| < 1), by bisection."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        w = mid + k1 * math.sin(TWO_PI * mid) / TWO_PI + k2 * math.sin(2 * TWO_PI * mid) / (
            2 * TWO_PI)
        lo, hi = (mid, hi) if w < p else (lo, mid)
    return 0.5 * (lo + hi)
