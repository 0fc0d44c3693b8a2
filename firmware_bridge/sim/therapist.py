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

This module schedules the holds and answers for the stream. The parts: ``profiles`` (skill
profiles, the default dose), ``hold_model`` (the force of one hold, its timeline and the
ground-truth definitions of ``HoldTruth``), ``hold_draw`` (the draws of a static-compression
hold) and ``threshold_ramp`` (the pressure-pain threshold ramp to the subject's button).

After the last hold of the dose the schedule starts again from the first trigger point (one
"cycle"), so the stream is endless; cycles are generated lazily and deterministically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Protocol

import numpy as np

from firmware_bridge.sim.anchor_approach import AnchorTruth, draw_anchor_approach
from firmware_bridge.sim.hold_draw import draw_hold
from firmware_bridge.sim.hold_model import (
    CONTACT_FRAC,
    THRESHOLD_FRAC,
    HoldPlan,
    HoldTruth,
    clipped_normal,
    eval_hold,
    hold_truth,
)
from firmware_bridge.sim.profiles import DEFAULT_DOSE, DEFAULT_TRIGGER_POINTS, PROFILES, Profile
from firmware_bridge.sim.threshold_ramp import THRESHOLD_CV, draw_ramp, point_thresholds
from schemas.session_protocol import Dose

__all__ = [
    "CONTACT_FRAC",
    "DEFAULT_DOSE",
    "DEFAULT_TRIGGER_POINTS",
    "PROFILES",
    "THRESHOLD_CV",
    "THRESHOLD_FRAC",
    "HoldTruth",
    "Profile",
    "Therapist",
]


#: What each field of the ground truth (``Therapist.truth_dict``) means, as the JSON states it.
TRUTH_DEFINITIONS = {
    "start_s": "force first >= threshold_n on the ramp",
    "end_s": "force back below threshold_n after the last crossing on the release",
    "plateau_start_s": "end of the overshoot settle",
    "release_s": "start of the release ramp",
    "plateau_level_n": "mean smooth force (no tremor, no dips) over the plateau",
    "peak_n": "maximum of the smooth force over the hold",
    "reprs": "times of re-press dip bottoms",
    "button_s": "[press, release] of the subject's button, or []",
    "ramp_n_per_s": "planned mean rate of the ramp, contact force to peak",
    "threshold_n": "threshold ramps: applied force when the button went down",
    "anchors": "target_pain doses: each point's first approach (anchor_approach; its "
               "hold's threshold_n is the applied force at the press)",
}


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


def _profile(profile: str | Profile) -> Profile:
    """``profile``, or the skill profile of that name (ValueError for an unknown name)."""
    if not isinstance(profile, str):
        return profile
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose from {sorted(PROFILES)}")
    return PROFILES[profile]


def _sorted_times(t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Flatten ``t`` to float64 and sort it if needed; returns (t array, sorted, order)."""
    arr = np.asarray(t, dtype=np.float64)
    flat = arr.reshape(-1)
    if flat.size > 1 and not bool(np.all(flat[1:] >= flat[:-1])):
        order = np.argsort(flat, kind="stable")
        return arr, flat[order], order
    return arr, flat, None


class AimSource(Protocol):
    """Sets each hold's aim (a simulated learner, ``sim.learner.LearnerAims``): ``aim`` is
    asked once per hold in order, ``produced`` told the level the hands then reached."""

    def aim(self, index: int, target_n: float) -> float: ...
    def produced(self, index: int, level_n: float) -> None: ...


class Therapist:
    """A simulated therapist delivering ``dose`` (a session protocol's, ``DEFAULT_DOSE`` when
    None; ``contact_area_cm2`` converts a pressure dose) with the skill of ``profile``.

    The stream is silent for ``start_delay_s`` seconds, then works through
    ``trigger_points`` x ``dose.repetitions`` holds, then repeats (cycles) forever.
    """

    def __init__(self, profile: str | Profile = "expert", dose: Dose | None = None,
                 seed: int = 0, start_delay_s: float = 2.0, *,
                 trigger_points: Sequence[str] = DEFAULT_TRIGGER_POINTS,
                 contact_area_cm2: float | None = None,
                 aim_source: AimSource | None = None) -> None:
        """Create the therapist; holds are generated lazily as times are requested.
        ``aim_source`` (holds only) sets each hold's aim instead of the profile's constant
        level error; the profile's hold-to-hold scatter still applies around it."""
        profile = _profile(profile)
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
        if aim_source is not None and self.dose.is_threshold_ramp:
            raise ValueError("an aim source sets holds' levels; a threshold ramp has none")
        self.aim_source = aim_source
        self.start_delay_s: float = float(start_delay_s)
        bias_rng = np.random.default_rng([self.seed, 0])
        #: Constant level error of this therapist (fraction of target), drawn once per seed.
        self.level_bias: float = profile.level_bias_sd * clipped_normal(bias_rng)
        #: Threshold ramps: each trigger point's mean threshold (N), drawn once per seed; empty
        #: for a dose with holds.
        self.point_thresholds_n: list[float] = []
        if self.dose.is_threshold_ramp:
            self.point_thresholds_n = point_thresholds(self.seed, len(self.trigger_points),
                                                       self.target_n)
        #: Subject-anchored dose (``dose.target_pain``): each point's force at the target
        #: discomfort (N, the ppt draw's per-point spread); the first approaches' truths.
        self.point_pain_n: list[float] = []
        self.anchors: list[AnchorTruth] = []
        if math.isfinite(self.dose.target_pain) and not self.point_thresholds_n:
            self.point_pain_n = point_thresholds(self.seed, len(self.trigger_points),
                                                 self.target_n)
        self._holds: list[HoldPlan] = []
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
        for i, tp in enumerate(self.trigger_points):
            for rep in range(1, dose.repetitions + 1):
                slot = dict(index=len(self._holds), cycle=k, tp=tp, rep=rep, onset=t,
                            target=target, ramp_n_per_s=self.ramp_n_per_s)
                if self.point_thresholds_n:
                    hold = draw_ramp(pr, rng, point_threshold_n=self.point_thresholds_n[i],
                                     **slot)
                elif self.point_pain_n:
                    hold = self._anchored_hold(rng, slot, self.point_pain_n[i])
                elif self.aim_source is not None:  # the hold's level follows the learner
                    slot["target"] = self.aim_source.aim(slot["index"], target)
                    hold = draw_hold(pr, rng, level_bias=0.0, planned_hold_s=self.hold_s,
                                     **slot)
                    hold.target_n = target
                    self.aim_source.produced(hold.index, hold.level_n)
                else:
                    hold = draw_hold(pr, rng, level_bias=self.level_bias,
                                     planned_hold_s=self.hold_s, **slot)
                self._holds.append(hold)
                rest = dose.rest_s * max(0.0, 1.0 + pr.rest_cv * clipped_normal(rng))
                move = float(rng.uniform(*pr.move_s))
                if rep == dose.repetitions:  # moving the hand to the next point
                    rest += move
                t = float(hold.edges[5]) + rest
        self._next_cycle_start = t

    def _anchored_hold(self, rng: np.random.Generator, slot: dict, pain_n: float) -> HoldPlan:
        """Subject-anchored dose: the first approach to a point (first pass) ramps slowly to
        the subject's signal (``anchor_approach``); every later hold aims at the point's
        force ``pain_n``."""
        if slot["cycle"] == 0 and slot["rep"] == 1:
            del slot["target"]  # the approach aims at pain_n
            plan, truth = draw_anchor_approach(self.profile, rng, pain_n=pain_n,
                                               level_bias=self.level_bias,
                                               planned_hold_s=self.hold_s, **slot)
            self.anchors.append(truth)
            return plan
        return draw_hold(self.profile, rng, level_bias=self.level_bias,
                         planned_hold_s=self.hold_s, **{**slot, "target": pain_n})

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
    def force(self, t: np.ndarray | float) -> np.ndarray:
        """Force in newtons at times ``t`` (float64 s from stream start), same shape as ``t``.

        Deterministic and chunking-independent; vectorised per hold and per segment, so blocks
        of sorted times are cheapest (unsorted input is sorted internally).
        """
        arr, ts, order = _sorted_times(t)
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
                    res[a:b] = eval_hold(h, ts[a:b])
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
        return [hold_truth(h) for h in self._holds[cycle * n:(cycle + 1) * n]]

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
            tr = hold_truth(h)
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
            "definitions": dict(TRUTH_DEFINITIONS),
            "point_thresholds_n": dict(zip(self.trigger_points, self.point_thresholds_n,
                                           strict=False)),
            "point_pain_n": dict(zip(self.trigger_points, self.point_pain_n, strict=False)),
            "anchors": [asdict(a) for a in self.anchors],
            "holds": [asdict(h) for h in holds],
        }

    def write_truth(self, path: str | os.PathLike[str], until_s: float | None = None) -> None:
        """Write ``truth_dict(until_s)`` as JSON to ``path``."""
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.truth_dict(until_s), fh, indent=2)
            fh.write("\n")
