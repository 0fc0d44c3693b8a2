"""Signal model of a simulated therapist pressing trigger points with a hand-held force sensor.

Why this exists: trainees demo the recorder without hardware, and tests and analysis code need a
force signal whose ground truth (when each hold starts, settles, is released, at what level) is
known exactly. The model follows neuromuscular-therapy static compression (8-20 s of pressure per
trigger point, a few repetitions with rests) and the ways real hands deviate from the dose: uneven
ramps, overshoot, level error, physiological tremor, fatigue drift and brief re-presses.

Everything is a pure function of time. ``Therapist.force(t)`` evaluates the force at arbitrary
float64 times (seconds from stream start); a given ``t`` always yields the same value however the
stream is chunked, because every random quantity is drawn per hold from
``np.random.default_rng([seed, 1, cycle])`` and the noise-like parts (tremor, wander) are
deterministic functions of the time since the hold's onset. Compute stream times as
``sample_index / fs`` so chunks reproduce the same float64 ``t`` values. (Tremor and wander use
NumPy's float32 SIMD sine for speed: values are bit-identical on one machine and NumPy build, and
may differ in the last float32 bit, ~1e-8 N, on another CPU.)

Timeline of one hold (hold-local time ``u`` from its onset; ``c`` = contact force)::

    approach  0 -> c          (c = 2 % of target, below the 5 % detection threshold)
    ramp      c -> peak       (min-jerk shape, warped in time for ramp-rate jitter)
    settle    peak -> level   (overshoot decays; ends at plateau_start_s)
    plateau   level + drift   (fatigue drift, linear in time; ends at release_s)
    release   -> 0            (min-jerk)
    rest      0               (then the next hold's approach)

Force = base(u) * (1 + wander(u)) * (1 + tremor(u)) * (1 - dip(u)), clipped at >= 0. Wander and
tremor scale with the force (signal-dependent noise), so the signal is exactly zero at rest.

Ground-truth definitions (``HoldTruth``), all in seconds of simulated time from stream start:

* ``start_s``: first time the simulated force (tremor included) reaches ``THRESHOLD_FRAC`` (5 %)
  of the dose target on the ramp, resolved to 1 microsecond.
* ``end_s``: first time after the last such crossing on the release that the force is below it.
* ``plateau_start_s``: end of the overshoot settle; ``release_s``: start of the release ramp.
  The planned hold duration ``release_s - plateau_start_s`` scatters around
  ``Therapist.hold_s``.
* ``plateau_level_n``: mean over ``[plateau_start_s, release_s]`` of the *smooth* force
  (base x wander: drift included, tremor and re-press dips excluded).
* ``peak_n``: maximum of the smooth force over the hold (the overshoot peak in practice).
* ``reprs``: times of the bottom of each re-press dip (novice only): a 0.2-0.5 s partial
  unloading that must not split the hold. Dips never take the smooth force below 60 % of target.
* ``button_s``: ``[press, release]`` of the subject's button during this hold, or ``[]``.

After the last hold of the dose the schedule starts again from the first trigger point (one
"cycle"), so the stream is endless; cycles are generated lazily and deterministically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from schemas.session_protocol import Dose

__all__ = [
    "CONTACT_FRAC",
    "DEFAULT_DOSE",
    "DEFAULT_TRIGGER_POINTS",
    "PROFILES",
    "THRESHOLD_FRAC",
    "HoldTruth",
    "Profile",
    "Therapist",
]

#: Hold detection threshold, as a fraction of the dose target (defines start_s / end_s).
THRESHOLD_FRAC = 0.05
#: Light contact force during the approach, as a fraction of target (kept below the threshold).
CONTACT_FRAC = 0.02
#: Re-press dips are capped so the smooth force stays at or above this fraction of target.
DIP_FLOOR_FRAC = 0.60

DEFAULT_TRIGGER_POINTS = (
    "upper trapezius L",
    "upper trapezius R",
    "levator scapulae L",
    "levator scapulae R",
)

_TWO_PI = 2.0 * math.pi
_F32 = np.float32
_TRUTH_GRID_S = 1e-3  # coarse grid for ground-truth searches
_TRUTH_FINE_POINTS = 1001  # refinement of one coarse step -> 1 us resolution


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


@dataclass
class HoldTruth:
    """Ground truth of one hold; see the module docstring for the exact definitions."""

    trigger_point: str
    repetition: int  # 1-based repetition on this trigger point
    start_s: float
    plateau_start_s: float
    release_s: float
    end_s: float
    target_n: float
    plateau_level_n: float
    peak_n: float
    reprs: list[float]  # times of re-press dip bottoms
    cycle: int = 0  # pass over the dose (0 = first)
    index: int = 0  # hold number from stream start
    intended_level_n: float = 0.0  # level aimed at when the plateau starts (target + error)
    drift_n_per_s: float = 0.0  # slope of the plateau (fatigue drift)
    tremor_rms_frac: float = 0.0  # RMS tremor as a fraction of the force
    button_s: list[float] = field(default_factory=list)  # [press, release] or []

    @property
    def hold_duration_s(self) -> float:
        """Planned hold duration: plateau start to release."""
        return self.release_s - self.plateau_start_s


@dataclass(slots=True)
class _Hold:
    """Internal per-hold parameters; times in ``s*`` fields are hold-local (from onset)."""

    index: int
    cycle: int
    trigger_point: str
    repetition: int
    target_n: float
    onset: float
    edges: np.ndarray  # absolute [onset, ramp start, settle start, plateau, release, zero]
    s1: float
    s2: float
    s3: float
    s4: float
    contact_n: float
    peak_env_n: float
    level_n: float
    slope_n_per_s: float
    release_level_n: float
    inv_a: float
    inv_tr: float
    inv_ts: float
    inv_td: float
    k1: np.float32
    k2: np.float32
    wander: tuple[np.float32, ...]  # (amp, omega, phase) x 2
    tremor: tuple[np.float32, ...]  # (amp, omega, phase) x 3
    am: tuple[np.float32, ...]  # (depth, omega, phase)
    tremor_rms_frac: float
    dips: list[tuple[float, float, float]]  # (local start, duration, depth)
    button: tuple[float, float] | None  # absolute (press, release)
    truth: HoldTruth | None = None


def _mj(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk transition 0 -> 1 on x in [0, 1] (zero slope and curvature at both ends)."""
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def _add_sin(acc: np.ndarray, u32: np.ndarray, tmp: np.ndarray,
             amp: np.float32, omega: np.float32, phase: np.float32) -> None:
    """acc += amp * sin(omega * u + phase), in float32 (fast SIMD sin), in place."""
    np.multiply(u32, omega, out=tmp)
    tmp += phase
    np.sin(tmp, out=tmp)
    tmp *= amp
    acc += tmp


def _eval_hold(h: _Hold, ts: np.ndarray, *, tremor: bool = True, dips: bool = True) -> np.ndarray:
    """Force of hold ``h`` at sorted absolute times ``ts`` (all in ``[onset, zero end)``).

    Purely elementwise in ``ts``: a sample's value does not depend on its neighbours, which is
    what makes the stream independent of chunking.
    """
    u = ts - h.onset
    base = np.empty_like(u)
    j1, j2, j3, j4 = (int(v) for v in np.searchsorted(ts, h.edges[1:5]))
    n = ts.size
    if j1 > 0:  # approach
        base[:j1] = h.contact_n * _mj(u[:j1] * h.inv_a)
    if j2 > j1:  # ramp with in-ramp rate wobble (monotone time warp)
        x = (u[j1:j2] - h.s1) * h.inv_tr
        x32 = (x * _TWO_PI).astype(_F32)
        wob = h.k1 * np.sin(x32)
        x32 += x32
        wob += h.k2 * np.sin(x32)
        base[j1:j2] = h.contact_n + (h.peak_env_n - h.contact_n) * _mj(x + wob)
    if j3 > j2:  # overshoot settles onto the plateau
        x = (u[j2:j3] - h.s2) * h.inv_ts
        base[j2:j3] = h.peak_env_n + (h.level_n - h.peak_env_n) * _mj(x)
    if j4 > j3:  # plateau with linear fatigue drift
        base[j3:j4] = h.level_n + h.slope_n_per_s * (u[j3:j4] - h.s3)
    if n > j4:  # release
        base[j4:] = h.release_level_n * (1.0 - _mj((u[j4:] - h.s4) * h.inv_td))

    u32 = u.astype(_F32)
    tmp = np.empty_like(u32)
    mod = np.ones_like(u32)
    w = h.wander
    _add_sin(mod, u32, tmp, w[0], w[1], w[2])
    _add_sin(mod, u32, tmp, w[3], w[4], w[5])
    if tremor:
        tr = np.zeros_like(u32)
        p = h.tremor
        for i in range(0, 9, 3):
            _add_sin(tr, u32, tmp, p[i], p[i + 1], p[i + 2])
        am = np.ones_like(u32)
        _add_sin(am, u32, tmp, h.am[0], h.am[1], h.am[2])
        tr *= am
        tr += _F32(1.0)
        mod *= tr
    out = base * mod
    if dips:
        for d0, dur, depth in h.dips:
            a, b = (int(v) for v in np.searchsorted(ts, (h.onset + d0, h.onset + d0 + dur)))
            if b > a:
                x = (u[a:b] - d0) / dur
                out[a:b] *= 1.0 - depth * 0.5 * (1.0 - np.cos(_TWO_PI * x))
    return out


def _clipped_normal(rng: np.random.Generator) -> float:
    """Standard normal draw clipped to +-2.5 so every scatter has a hard bound."""
    return float(np.clip(rng.standard_normal(), -2.5, 2.5))


def _aim(dose: Dose, area_cm2: float) -> tuple[float, float, float, float, float]:
    """What the simulated hands aim at for ``dose``: (target N, band low N, band high N,
    planned plateau s, ramp N/s).

    The target is the band's midpoint. A band from 0 (a pressure-pain ramp, whose upper limit
    is the cut-off) is pressed to a plausible threshold instead: 30-50 % of the cut-off. The
    plateau is planned in the middle of the hold window, at least 2 s; the ramp in the middle
    of the coached corridor, or at half the target per second when it is not coached or has
    no upper limit.
    """
    low, high = dose.band_n(area_cm2)
    if low <= 0:
        low, high = 0.3 * high, 0.5 * high
    target = (low + high) / 2
    if not (math.isfinite(target) and target > 0):
        raise ValueError("the dose's target band must be positive and finite")
    ramp = dose.ramp_n_per_s(area_cm2)
    rate = sum(ramp) / 2 if ramp and math.isfinite(ramp[1]) else 0.5 * target
    if not rate > 0:
        raise ValueError("the dose's ramp corridor must allow a positive rate")
    return target, low, high, max(2.0, (dose.min_hold_s + dose.max_hold_s) / 2), rate


class Therapist:
    """A simulated therapist delivering ``dose`` (a session protocol's, ``DEFAULT_DOSE`` when
    None; ``contact_area_cm2`` converts a pressure dose) with the skill of ``profile``.

    The stream is silent for ``start_delay_s`` seconds, then works through
    ``trigger_points`` x ``dose.repetitions`` holds, then repeats (cycles) forever.
    """

    def __init__(self, profile: str | Profile = "expert", dose: Dose | None = None,
                 seed: int = 0, start_delay_s: float = 2.0, *,
                 trigger_points: Sequence[str] = DEFAULT_TRIGGER_POINTS,
                 contact_area_cm2: float | None = None) -> None:
        """Create the therapist; holds are generated lazily as times are requested."""
        if isinstance(profile, str):
            if profile not in PROFILES:
                raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
            profile = PROFILES[profile]
        if int(seed) != seed or seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if not (math.isfinite(start_delay_s) and start_delay_s >= 0):
            raise ValueError("start_delay_s must be finite and >= 0")
        self.dose: Dose = dose if dose is not None else DEFAULT_DOSE
        area = math.nan if contact_area_cm2 is None else contact_area_cm2
        self.target_n, self.band_low_n, self.band_high_n, self.hold_s, self.ramp_n_per_s = \
            _aim(self.dose, area)
        self.trigger_points: list[str] = [str(tp) for tp in trigger_points]
        if not self.trigger_points:
            raise ValueError("trigger_points must not be empty")
        if self.dose.repetitions < 1 or not self.dose.rest_s >= 0:
            raise ValueError("the dose needs at least one repetition and a rest >= 0 s")
        self.profile: Profile = profile
        self.seed: int = int(seed)
        self.start_delay_s: float = float(start_delay_s)
        bias_rng = np.random.default_rng([self.seed, 0])
        #: Constant level error of this therapist (fraction of target), drawn once per seed.
        self.level_bias: float = profile.level_bias_sd * _clipped_normal(bias_rng)
        self._holds: list[_Hold] = []
        self._cycle_starts: list[float] = []
        self._next_cycle_start: float = self.start_delay_s
        self._onsets = np.empty(0)
        self._zero_ends = np.empty(0)
        self._btn_on = np.empty(0)
        self._btn_off = np.empty(0)
        self._indexed = 0  # number of holds in the search arrays

    # ------------------------------------------------------------------ generation
    @property
    def threshold_n(self) -> float:
        """Force defining hold start/end (``THRESHOLD_FRAC`` of target)."""
        return THRESHOLD_FRAC * self.target_n

    @property
    def holds_per_cycle(self) -> int:
        """Number of holds in one pass over the dose."""
        return len(self.trigger_points) * self.dose.repetitions

    def _generate_cycle(self) -> None:
        """Append one cycle of holds, drawn from ``default_rng([seed, 1, cycle])``."""
        k = len(self._cycle_starts)
        rng = np.random.default_rng([self.seed, 1, k])
        pr, dose = self.profile, self.dose
        target = self.target_n
        t = self._next_cycle_start
        self._cycle_starts.append(t)
        for tp in self.trigger_points:
            for rep in range(1, dose.repetitions + 1):
                hold = self._draw_hold(rng, len(self._holds), k, tp, rep, t, target)
                self._holds.append(hold)
                rest = dose.rest_s * max(0.0, 1.0 + pr.rest_cv * _clipped_normal(rng))
                move = float(rng.uniform(*pr.move_s))
                if rep == dose.repetitions:  # moving the hand to the next point
                    rest += move
                t = float(hold.edges[5]) + rest
        self._next_cycle_start = t

    def _draw_hold(self, rng: np.random.Generator, index: int, cycle: int, tp: str, rep: int,
                   onset: float, target: float) -> _Hold:
        """Draw one hold's parameters. The number of draws is fixed, whatever the branches."""
        pr = self.profile
        z_level, z_rate, z_hold, z_drift = (_clipped_normal(rng) for _ in range(4))
        uni = rng.random(17)
        tr_f = rng.uniform(8.0, 12.0, 3)
        tr_a = rng.uniform(0.5, 1.0, 3)
        tr_p = rng.uniform(0.0, _TWO_PI, 3)
        wd_f = rng.uniform(0.05, 0.4, 2)
        wd_a = rng.uniform(0.5, 1.0, 2)
        wd_p = rng.uniform(0.0, _TWO_PI, 2)
        am_f, am_p = rng.uniform(0.1, 0.5), rng.uniform(0.0, _TWO_PI)

        err = float(np.clip(self.level_bias + pr.level_sd * z_level,
                            -pr.level_error_max, pr.level_error_max))
        level = target * (1.0 + err)
        peak = level * (1.0 + _span(pr.overshoot_frac, uni[0]))
        contact = CONTACT_FRAC * target
        rate = self.ramp_n_per_s * math.exp(pr.ramp_rate_sd * z_rate)
        t_app = _span(pr.approach_s, uni[1])
        t_ramp = (peak - contact) / rate
        t_settle = _span(pr.settle_s, uni[2])
        hold_s = max(2.0, self.hold_s * (1.0 + pr.hold_cv * z_hold))
        drift = (pr.drift_per_min + pr.drift_sd_per_min * z_drift) / 60.0
        drift = max(drift, -0.5 / hold_s)  # never lose more than half the level on one hold
        release_level = level * (1.0 + drift * hold_s)
        t_rel = release_level / (rate * _span(pr.release_rate_factor, uni[3]))
        s1 = t_app
        s2 = s1 + t_ramp
        s3 = s2 + t_settle
        s4 = s3 + hold_s
        s5 = s4 + t_rel
        # ramp wobble: warp p = x + k1 sin(2 pi x)/(2 pi) + k2 sin(4 pi x)/(4 pi), |k1|+|k2| < 1
        k1 = pr.ramp_wobble * (2.0 * uni[4] - 1.0) * 0.65
        k2 = pr.ramp_wobble * (2.0 * uni[5] - 1.0) * 0.35

        tremor, wander, am = _oscillations(pr, (tr_f, tr_a, tr_p), (wd_f, wd_a, wd_p),
                                           (am_f, am_p))
        dips = _dips(pr, uni, min(level, release_level), target, s3, s4)
        button = None
        if uni[14] < pr.button_prob:
            press = onset + s4 - 0.5 - 2.5 * uni[15]
            button = (press, press + _span(pr.button_duration_s, uni[16]))
        return _Hold(
            index=index, cycle=cycle, trigger_point=tp, repetition=rep, target_n=target,
            onset=onset, edges=onset + np.array([0.0, s1, s2, s3, s4, s5]),
            s1=s1, s2=s2, s3=s3, s4=s4, contact_n=contact, peak_env_n=peak, level_n=level,
            slope_n_per_s=level * drift, release_level_n=release_level,
            inv_a=1.0 / t_app, inv_tr=1.0 / t_ramp, inv_ts=1.0 / t_settle, inv_td=1.0 / t_rel,
            k1=_F32(k1 / _TWO_PI), k2=_F32(k2 / (2 * _TWO_PI)), wander=wander, tremor=tremor,
            am=am, tremor_rms_frac=pr.tremor_frac, dips=dips, button=button,
        )

    def _ensure(self, t: float) -> None:
        """Generate cycles until every hold with onset <= t exists; refresh search arrays."""
        if not math.isfinite(t):
            raise ValueError("times must be finite")
        while self._next_cycle_start <= t:
            self._generate_cycle()
        if self._indexed != len(self._holds):
            self._onsets = np.array([h.onset for h in self._holds])
            self._zero_ends = np.array([h.edges[5] for h in self._holds])
            btn = [h.button for h in self._holds if h.button is not None]
            self._btn_on = np.array([b[0] for b in btn], dtype=np.float64)
            self._btn_off = np.array([b[1] for b in btn], dtype=np.float64)
            self._indexed = len(self._holds)

    # ------------------------------------------------------------------ signal
    @staticmethod
    def _sorted(t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Flatten ``t`` to float64 and sort it if needed; returns (t array, sorted, order)."""
        arr = np.asarray(t, dtype=np.float64)
        flat = arr.reshape(-1)
        if flat.size > 1 and not bool(np.all(flat[1:] >= flat[:-1])):
            order = np.argsort(flat, kind="stable")
            return arr, flat[order], order
        return arr, flat, None

    def force(self, t: np.ndarray | float) -> np.ndarray:
        """Force in newtons at times ``t`` (float64 s from stream start), same shape as ``t``.

        Deterministic and chunking-independent; vectorised per hold and per segment, so blocks
        of sorted times are cheapest (unsorted input is sorted internally).
        """
        arr, ts, order = self._sorted(t)
        res = np.zeros(ts.size)
        if ts.size:
            if not (math.isfinite(ts[0]) and math.isfinite(ts[-1])):
                raise ValueError("times must be finite")
            self._ensure(float(ts[-1]))
            lo = int(np.searchsorted(self._zero_ends, ts[0], "right"))
            hi = int(np.searchsorted(self._onsets, ts[-1], "right"))
            for h in self._holds[lo:hi]:
                a, b = (int(v) for v in np.searchsorted(ts, (h.onset, h.edges[5])))
                if b > a:
                    res[a:b] = _eval_hold(h, ts[a:b])
            np.maximum(res, 0.0, out=res)
        if order is not None:
            out = np.empty_like(res)
            out[order] = res
            res = out
        return res.reshape(arr.shape)

    def button(self, t: np.ndarray | float) -> np.ndarray:
        """Subject's hand-held button (True = pressed) at times ``t``; deterministic."""
        arr = np.asarray(t, dtype=np.float64)
        if arr.size == 0:
            return np.zeros(arr.shape, dtype=bool)
        tmax = float(np.max(arr))
        self._ensure(tmax)
        i = np.searchsorted(self._btn_on, arr, "right") - 1
        ok = i >= 0
        pressed = np.zeros(arr.shape, dtype=bool)
        pressed[ok] = arr[ok] < self._btn_off[i[ok]]
        return pressed

    # ------------------------------------------------------------------ ground truth
    def cycle_holds(self, cycle: int) -> list[HoldTruth]:
        """Ground truth of every hold in pass ``cycle`` (0-based) over the dose."""
        if cycle < 0:
            raise ValueError("cycle must be >= 0")
        while len(self._cycle_starts) <= cycle:
            self._generate_cycle()
        n = self.holds_per_cycle
        return [_hold_truth(h) for h in self._holds[cycle * n:(cycle + 1) * n]]

    def cycle_start_s(self, cycle: int) -> float:
        """Onset time of the first approach of pass ``cycle``."""
        self.cycle_holds(cycle)
        return self._cycle_starts[cycle]

    @property
    def schedule(self) -> list[HoldTruth]:
        """Ground truth of the first cycle (one pass over all trigger points x repetitions)."""
        return self.cycle_holds(0)

    def holds_between(self, t0: float, t1: float) -> list[HoldTruth]:
        """Truths of holds whose ``[start_s, end_s]`` overlaps ``[t0, t1)``, in time order."""
        if t1 < t0:
            raise ValueError("t1 must be >= t0")
        self._ensure(float(t1))
        lo = int(np.searchsorted(self._zero_ends, t0, "right"))
        hi = int(np.searchsorted(self._onsets, t1, "left"))
        out = []
        for h in self._holds[lo:hi]:
            tr = _hold_truth(h)
            if tr.start_s < t1 and tr.end_s > t0:
                out.append(tr)
        return out

    def truth_dict(self, until_s: float | None = None) -> dict:
        """JSON-serialisable ground truth: profile, dose, seed, definitions and holds.

        ``until_s=None`` exports the first cycle (``schedule``); otherwise every hold
        overlapping ``[0, until_s)``.
        """
        holds = self.schedule if until_s is None else self.holds_between(0.0, until_s)
        return {
            "generator": "firmware_bridge.sim.therapist",
            "format_version": 1,
            "profile": asdict(self.profile),
            "dose": {"target_n": self.target_n, "band_low_n": self.band_low_n,
                     "band_high_n": self.band_high_n, "hold_s": self.hold_s,
                     "repetitions": self.dose.repetitions, "rest_s": self.dose.rest_s,
                     "ramp_n_per_s": self.ramp_n_per_s, "trigger_points": self.trigger_points},
            "seed": self.seed,
            "start_delay_s": self.start_delay_s,
            "level_bias_frac": self.level_bias,
            "threshold_frac": THRESHOLD_FRAC,
            "threshold_n": self.threshold_n,
            "contact_frac": CONTACT_FRAC,
            "definitions": {
                "start_s": "force first >= threshold_n on the ramp",
                "end_s": "force back below threshold_n after the last crossing on the release",
                "plateau_start_s": "end of the overshoot settle",
                "release_s": "start of the release ramp",
                "plateau_level_n": "mean smooth force (no tremor, no dips) over the plateau",
                "peak_n": "maximum of the smooth force over the hold",
                "reprs": "times of re-press dip bottoms",
                "button_s": "[press, release] of the subject's button, or []",
            },
            "holds": [asdict(h) for h in holds],
        }

    def write_truth(self, path: str | os.PathLike[str], until_s: float | None = None) -> None:
        """Write ``truth_dict(until_s)`` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.truth_dict(until_s), fh, indent=2)
            fh.write("\n")


def _span(r: tuple[float, float], x: float) -> float:
    """The point a fraction ``x`` of the way through the range ``r``."""
    return r[0] + (r[1] - r[0]) * x


def _oscillations(pr: Profile, tremor_draws, wander_draws, am_draws) -> tuple:
    """Tremor, slow wander and tremor amplitude modulation as float32 (gain, omega, phase)
    triples, scaled to the profile's RMS fractions. The RMS of (1 + m sin)(sum b_i sin) is
    sqrt(sum b_i^2 / 2) * sqrt(1 + m^2 / 2)."""
    (tr_f, tr_a, tr_p), (wd_f, wd_a, wd_p), (am_f, am_p) = tremor_draws, wander_draws, am_draws
    m = pr.tremor_am_depth
    norm = math.sqrt(float(np.sum(tr_a**2)) / 2.0 * (1.0 + m * m / 2.0))
    tr_b = tr_a * (pr.tremor_frac / norm)
    wd_b = wd_a * (pr.wander_frac / math.sqrt(float(np.sum(wd_a**2)) / 2.0))
    tremor = tuple(_F32(v) for i in range(3) for v in (tr_b[i], _TWO_PI * tr_f[i], tr_p[i]))
    wander = tuple(_F32(v) for i in range(2) for v in (wd_b[i], _TWO_PI * wd_f[i], wd_p[i]))
    return tremor, wander, (_F32(m), _F32(_TWO_PI * am_f), _F32(am_p))


def _dips(pr: Profile, uni: np.ndarray, lowest_level: float, target: float, s3: float,
          s4: float) -> list[tuple[float, float, float]]:
    """Momentary losses of pressure on the plateau: (start, duration, depth fraction)."""
    dips: list[tuple[float, float, float]] = []
    if uni[6] >= pr.dip_prob:
        return dips
    n_dips = 2 if uni[7] < 0.25 else 1
    floor = DIP_FLOOR_FRAC * target / (lowest_level * (1.0 - 3.0 * pr.wander_frac))
    for i in range(n_dips):
        dur = _span(pr.dip_duration_s, uni[8 + i])
        lo, hi = s3 + 1.0, s4 - 1.0 - dur  # keep clear of settle and release
        seg = (hi - lo) / n_dips
        if seg <= 0:
            break
        d0 = lo + seg * (i + uni[10 + i])
        depth = min(_span(pr.dip_depth_frac, uni[12 + i]), max(0.0, 1.0 - floor))
        if depth > 0:
            dips.append((d0, dur, depth))
    return dips


def _hold_truth(h: _Hold) -> HoldTruth:
    """Compute (once) the ground truth of hold ``h`` from the model itself."""
    if h.truth is not None:
        return h.truth
    thr = THRESHOLD_FRAC * h.target_n
    e = h.edges

    def grid(t0: float, t1: float) -> np.ndarray:
        return np.linspace(t0, t1, max(2, int(math.ceil((t1 - t0) / _TRUTH_GRID_S))) + 1)

    # start: first crossing on approach+ramp+settle
    g = grid(e[0], e[3])
    i = int(np.flatnonzero(_eval_hold(h, g) >= thr)[0])
    fine = np.linspace(g[i - 1], g[i], _TRUTH_FINE_POINTS)
    start = float(fine[np.flatnonzero(_eval_hold(h, fine) >= thr)[0]])
    # end: after the last crossing on the release
    g = grid(e[4], e[5])[:-1]
    i = int(np.flatnonzero(_eval_hold(h, g) >= thr)[-1])
    fine = np.linspace(g[i], g[i + 1], _TRUTH_FINE_POINTS)
    k = int(np.flatnonzero(_eval_hold(h, fine) >= thr)[-1])
    end = float(fine[min(k + 1, fine.size - 1)])
    # plateau level: mean of smooth force (drift + wander, no tremor, no dips)
    g = grid(e[3], e[4])
    smooth = _eval_hold(h, g, tremor=False, dips=False)
    level = float(np.trapezoid(smooth, g) / (g[-1] - g[0]))
    # peak of the smooth force
    g = grid(e[0], e[5])[:-1]
    smooth = _eval_hold(h, g, tremor=False, dips=False)
    i = int(np.argmax(smooth))
    fine = np.linspace(g[max(i - 1, 0)], g[min(i + 1, g.size - 1)], 201)
    peak = float(np.max(_eval_hold(h, fine, tremor=False, dips=False)))
    h.truth = HoldTruth(
        trigger_point=h.trigger_point,
        repetition=h.repetition,
        start_s=start,
        plateau_start_s=float(e[3]),
        release_s=float(e[4]),
        end_s=end,
        target_n=float(h.target_n),
        plateau_level_n=level,
        peak_n=peak,
        reprs=[float(h.onset + d0 + 0.5 * dur) for d0, dur, _ in h.dips],
        cycle=h.cycle,
        index=h.index,
        intended_level_n=float(h.level_n),
        drift_n_per_s=float(h.slope_n_per_s),
        tremor_rms_frac=float(h.tremor_rms_frac),
        button_s=[float(v) for v in h.button] if h.button is not None else [],
    )
    return h.truth
