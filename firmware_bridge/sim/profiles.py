"""Skill profiles of the simulated therapist and the default dose and trigger points.

Why a module of its own: these are long parameter tables (how a novice's, an intermediate's
and an expert's hands deviate from a prescribed dose) that readers tune and tests refer to,
while the signal model (``hold_model``) and the schedule (``therapist``) only consume them.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.session_protocol import Dose

DEFAULT_TRIGGER_POINTS = (
    "upper trapezius L",
    "upper trapezius R",
    "levator scapulae L",
    "levator scapulae R",
)

@dataclass(frozen=True)
class Profile:
    """Skill profile: how a therapist's hands deviate from the prescribed dose.

    Ranges given as ``(low, high)`` are sampled uniformly per hold; ``*_sd`` and ``*_cv`` are
    standard deviations of normal draws clipped at +-2.5 sd, so scatter is bounded and tests can
    rely on the bounds.
    """

    name: str
    ramp_rate_sd: float  # log-normal sigma of the per-hold ramp-rate factor
    ramp_wobble: float  # 0..0.95: rate variation *within* a ramp (time-warp amplitude)
    overshoot_frac: tuple[float, float]  # peak above plateau level, fraction of level
    settle_s: tuple[float, float]  # time for the overshoot to settle onto the plateau
    level_bias_sd: float  # constant error of this therapist (drawn once per seed)
    level_sd: float  # hold-to-hold level error
    level_error_max: float  # total level error is clipped to +- this fraction of target
    tremor_frac: float  # RMS of 8-12 Hz tremor, fraction of the force
    tremor_am_depth: float  # 0..1 depth of the slow tremor amplitude modulation
    wander_frac: float  # RMS of 0.05-0.4 Hz wander, fraction of the force
    drift_per_min: float  # mean fatigue drift on the plateau, fraction of level per minute
    drift_sd_per_min: float  # hold-to-hold sd of the drift
    hold_cv: float  # coefficient of variation of the plateau duration
    rest_cv: float  # coefficient of variation of the rest duration
    release_rate_factor: tuple[float, float]  # release speed relative to the ramp speed
    approach_s: tuple[float, float]  # duration of the light-contact approach
    move_s: tuple[float, float]  # extra pause when moving to the next trigger point
    dip_prob: float  # probability that a hold contains a re-press dip
    dip_depth_frac: tuple[float, float]  # depth of a dip, fraction of the current force
    dip_duration_s: tuple[float, float]  # duration of a dip
    button_prob: float  # probability the subject presses the button near the end of a hold
    button_duration_s: tuple[float, float]  # how long the button is held

    def __post_init__(self) -> None:
        """Reject parameters that would break the model's invariants (monotone ramps, >= 0)."""
        if not 0.0 <= self.ramp_wobble < 0.95:
            raise ValueError("ramp_wobble must be in [0, 0.95) to keep ramps monotone")
        if not 0.0 <= self.tremor_am_depth <= 1.0:
            raise ValueError("tremor_am_depth must be in [0, 1]")
        if not 0.0 <= self.level_error_max < 0.9:
            raise ValueError("level_error_max must be in [0, 0.9)")
        if not (0.0 <= self.dip_depth_frac[0] <= self.dip_depth_frac[1] < 1.0):
            raise ValueError("dip_depth_frac must be an ordered range inside [0, 1)")
        if min(self.tremor_frac, self.wander_frac) < 0 or self.tremor_frac > 0.2:
            raise ValueError("tremor_frac must be in [0, 0.2] and wander_frac >= 0")
        for name in ("overshoot_frac", "settle_s", "release_rate_factor", "approach_s",
                     "move_s", "dip_duration_s", "button_duration_s"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi:
                raise ValueError(f"{name} must be an ordered non-negative range")
        if min(self.settle_s[0], self.approach_s[0], self.release_rate_factor[0]) <= 0.0:
            raise ValueError("settle_s, approach_s and release_rate_factor must be > 0")


PROFILES: dict[str, Profile] = {
    "novice": Profile(
        name="novice",
        ramp_rate_sd=0.35,
        ramp_wobble=0.6,
        overshoot_frac=(0.15, 0.30),
        settle_s=(0.8, 1.6),
        level_bias_sd=0.06,
        level_sd=0.06,
        level_error_max=0.15,
        tremor_frac=0.04,
        tremor_am_depth=0.5,
        wander_frac=0.015,
        drift_per_min=-0.10,
        drift_sd_per_min=0.03,
        hold_cv=0.20,
        rest_cv=0.30,
        release_rate_factor=(1.0, 3.0),
        approach_s=(0.6, 1.6),
        move_s=(2.0, 5.0),
        dip_prob=0.4,
        dip_depth_frac=(0.15, 0.35),
        dip_duration_s=(0.2, 0.5),
        button_prob=0.3,
        button_duration_s=(0.4, 0.7),
    ),
    "intermediate": Profile(
        name="intermediate",
        ramp_rate_sd=0.18,
        ramp_wobble=0.35,
        overshoot_frac=(0.06, 0.12),
        settle_s=(0.6, 1.2),
        level_bias_sd=0.03,
        level_sd=0.03,
        level_error_max=0.08,
        tremor_frac=0.02,
        tremor_am_depth=0.4,
        wander_frac=0.008,
        drift_per_min=-0.05,
        drift_sd_per_min=0.02,
        hold_cv=0.10,
        rest_cv=0.15,
        release_rate_factor=(1.0, 2.0),
        approach_s=(0.5, 1.2),
        move_s=(1.5, 3.5),
        dip_prob=0.1,
        dip_depth_frac=(0.10, 0.25),
        dip_duration_s=(0.2, 0.4),
        button_prob=0.2,
        button_duration_s=(0.4, 0.7),
    ),
    "expert": Profile(
        name="expert",
        ramp_rate_sd=0.08,
        ramp_wobble=0.15,
        overshoot_frac=(0.02, 0.04),
        settle_s=(0.4, 0.8),
        level_bias_sd=0.01,
        level_sd=0.012,
        level_error_max=0.03,
        tremor_frac=0.01,
        tremor_am_depth=0.3,
        wander_frac=0.004,
        drift_per_min=-0.02,
        drift_sd_per_min=0.01,
        hold_cv=0.04,
        rest_cv=0.08,
        release_rate_factor=(1.2, 1.6),
        approach_s=(0.5, 0.9),
        move_s=(1.5, 2.5),
        dip_prob=0.0,
        dip_depth_frac=(0.10, 0.20),
        dip_duration_s=(0.2, 0.4),
        button_prob=0.1,
        button_duration_s=(0.4, 0.7),
    ),
}


DEFAULT_DOSE = Dose(unit="N", target_low=25.5, target_high=34.5, min_hold_s=8.0,
                   max_hold_s=16.0, repetitions=3, rest_s=6.0)
"""The dose simulated when none is given: 30 N +- 15 %, 8-16 s holds (12 s planned), three
repetitions with 6 s rests."""
