"""A simulated trainee who learns: where each hold is aimed, under each feedback condition.

Why this exists: the recorder's training mode (``schemas.training``) schedules feedback so
that what a trainee learns lasts without a screen. To show learning curves, retention and the
dependency gap in the report, and to test them, the simulated therapist needs a trainee whose
force calibration improves with practice, depends on the feedback, and fades between days.

What the model reproduces (the literature survey in issue 13 and /work/shared/ANCHORS.md):

- live force feedback lowers the error while it is on, and a skill learned that way is lost
  within about a week once it is removed (spinal-mobilisation force error 17.5 -> 7.7 N with
  live feedback, back at baseline a week later: Snodgrass & Odelli 2012);
- less feedback retains better: faded knowledge of results kept its gain at one week where
  100 % feedback did not (Aoyagi 2019); bandwidth feedback (only outside +-15 %) lowered the
  error at 10 min, 24 h and 1 week (Cruz 2018); no-feedback retests at 1, 4 and 8 weeks keep
  much of a gain learned from feedback after each trial (J Chiropr Educ 34(2):107).

The model (every constant in :class:`LearnerParams` is a modelling choice that reproduces
those directions, not a value fitted to any study):

- The trainee has a calibration error ``e`` (signed, a fraction of the target: +0.35 presses
  35 % too firm): ``e = baseline - learned_kr - learned_guided``.
- A hold with live feedback (``condition.live``) is guided toward the band whatever ``e`` is:
  its error is ``live_residual * e`` plus a small noise. Bandwidth feedback guides only when
  the unguided error is outside the bandwidth, back inside it. Learning from guidance is weak
  (the guidance hypothesis): ``learned_guided`` moves ``guidance_rate`` of the way to ``e``,
  and each live hold builds ``dependency`` (0..1).
  Guidance holds up at most what long-term memory has not learned yet (``learned_guided``
  stays between 0 and ``baseline - learned_kr``), so it never pushes ``e`` past zero.
- A hold without live feedback is made on ``e`` alone: its error is ``e`` plus a noise whose
  SD grows with the dependency (a dependent trainee is lost without the screen).
- Knowledge of results after a hold without live feedback (terminal; a summary of the holds
  since the last one, their mean) moves ``learned_kr`` by ``kr_rate`` (``summary_rate``) of
  the error long-term memory made (the hold's error plus what guidance still holds up),
  slowed by dependency (x ``1 - dependency / 2``). A faded block's hold without live
  feedback is followed by no results view, but it makes the trainee rely on their own sense
  of force, and the next live hold shows where the band lies against that sense: it teaches
  the same way at ``faded_rate``, a little less. A bandwidth cue teaches ``bandwidth_rate``
  of the remaining long-term error.
  A hold without live feedback relieves dependency a little; a ``none`` hold teaches nothing.
- Between sessions (``day`` in days) each learned part decays toward the baseline:
  ``learned_guided`` with a time constant of ``guided_tau_days`` (1.5: gone after a week),
  ``learned_kr`` with ``kr_tau_days`` (120: most of it kept at 8 weeks), the dependency with
  ``dependency_tau_days``.
- Self-estimate (-1 too light, 0 right, +1 too firm): the trainee's sense of the hold's error
  with a noise that shrinks with each knowledge-of-results hold practised after an estimate.

Pure: no I/O, no clock. Every draw comes from ``np.random.default_rng([seed, hold, k])``, so
the same seed and the same calls give the same holds, and a learner saved with
:meth:`Learner.to_dict` and restored with :meth:`Learner.from_dict` carries on exactly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from schemas.training import HoldCondition, Training

STATE_FORMAT = "palpation-learner"
STATE_VERSION = 1


@dataclass(frozen=True)
class LearnerParams:
    """The learner's constants: modelling choices (see the module docstring), not values
    fitted to a study."""

    kr_rate: float = 0.15           # share of a knowledge-of-results hold's error corrected
    faded_rate: float = 0.10        # the same for a faded block's hold without live feedback
    summary_rate: float = 0.15      # share of the summarised holds' mean error corrected
    bandwidth_rate: float = 0.08    # share of the long-term error a bandwidth cue teaches
    guidance_rate: float = 0.03     # share of the remaining error learned from a guided hold
    live_residual: float = 0.10     # a guided hold keeps this share of the error e
    noise_pct: float = 5.0          # SD of an unguided hold's error, % of target
    live_noise_pct: float = 2.0     # SD of a guided hold's error, % of target
    dependency_gain: float = 0.08   # each live hold moves dependency this share toward 1
    dependency_relief: float = 0.10  # each hold without live feedback moves it toward 0
    dependency_noise: float = 1.0   # unguided noise SD x (1 + dependency_noise * dependency)
    kr_tau_days: float = 120.0      # decay time constant of what knowledge of results taught
    guided_tau_days: float = 1.5    # decay time constant of what guidance taught
    dependency_tau_days: float = 3.0
    estimate_noise_pct: float = 15.0  # SD of the self-estimate's sense of error, untrained
    estimate_practice: float = 10.0   # that SD halves after this many estimate+KR holds
    right_pct: float = 10.0         # an error sensed within +-right_pct % is answered "right"

    def __post_init__(self) -> None:
        """Reject constants that would make the model diverge or go negative."""
        for name in ("kr_rate", "faded_rate", "summary_rate", "bandwidth_rate", "guidance_rate",
                     "live_residual", "dependency_gain", "dependency_relief"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{f.name} must be finite and >= 0")
        for name in ("kr_tau_days", "guided_tau_days", "dependency_tau_days",
                     "estimate_practice", "right_pct"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be above 0")


@dataclass
class LearnerState:
    """What the learner carries from hold to hold and from day to day (JSON-serialisable)."""

    baseline: float                 # signed calibration error before any training (fraction)
    learned_kr: float = 0.0         # error removed by knowledge of results (durable)
    learned_guided: float = 0.0     # error removed by guidance (fades within days)
    dependency: float = 0.0         # 0..1, reliance on live feedback
    estimate_practice: int = 0      # holds with a self-estimate followed by results
    holds: int = 0                  # holds made, over all sessions (the draws' counter)
    day: float | None = None        # the day of the last hold (None before the first)
    unsummarised: list[float] = field(default_factory=list)  # errors since the last summary


class Learner:
    """A simulated trainee (see the module docstring): ``hold_aim`` before each hold,
    ``after_hold`` after it."""

    def __init__(self, seed: int = 0, baseline_error_pct: float = 35.0,
                 params: LearnerParams | None = None) -> None:
        if int(seed) != seed or seed < 0:
            raise ValueError("seed must be a non-negative integer")
        if not (math.isfinite(baseline_error_pct) and -90 < baseline_error_pct < 300):
            raise ValueError("baseline_error_pct must be between -90 and 300")
        self.seed = int(seed)
        self.params = params or LearnerParams()
        self.state = LearnerState(baseline=baseline_error_pct / 100.0)

    @property
    def error_pct(self) -> float:
        """The calibration error ``e`` now, % of target (signed)."""
        s = self.state
        return 100.0 * (s.baseline - s.learned_kr - s.learned_guided)

    def advance_to(self, day: float) -> None:
        """Let the days since the last hold pass: each learned part decays toward the
        baseline with its own time constant. A day before the last hold is an error."""
        s, p = self.state, self.params
        if not math.isfinite(day):
            raise ValueError("day must be finite")
        if s.day is not None:
            gap = day - s.day
            if gap < 0:
                raise ValueError(f"day {day:g} is before the learner's last hold ({s.day:g})")
            s.learned_kr *= math.exp(-gap / p.kr_tau_days)
            s.learned_guided *= math.exp(-gap / p.guided_tau_days)
            s.dependency *= math.exp(-gap / p.dependency_tau_days)
        s.day = float(day)

    def produced_error(self, condition: HoldCondition) -> float:
        """The signed error (fraction of target) of the next hold under ``condition``."""
        s, p = self.state, self.params
        z = np.random.default_rng([self.seed, s.holds, 0]).standard_normal(2)
        e = self.error_pct / 100.0
        unguided = e + p.noise_pct / 100.0 * (1.0 + p.dependency_noise * s.dependency) * z[0]
        if not condition.live:
            return unguided
        guided = p.live_residual * e + p.live_noise_pct / 100.0 * z[1]
        if condition.feedback == "bandwidth":
            width = condition.bandwidth_pct / 100.0
            return unguided if abs(unguided) <= width else math.copysign(
                min(width, abs(guided) + 0.5 * width), unguided)
        return guided

    def hold_aim(self, target_n: float, condition: HoldCondition, day: float) -> float:
        """The force (N) this trainee aims at for a hold at ``target_n`` under ``condition``
        on ``day`` (days, any origin; later than or equal to the last hold's)."""
        if not (math.isfinite(target_n) and target_n > 0):
            raise ValueError("target_n must be positive and finite")
        self.advance_to(day)
        return target_n * max(0.05, 1.0 + self.produced_error(condition))

    def after_hold(self, produced_n: float, target_n: float,
                   condition: HoldCondition) -> int | None:
        """Learn from a hold that reached ``produced_n`` against ``target_n`` under
        ``condition``; returns the self-estimate (-1 too light, 0 right, +1 too firm) when
        the condition asks for one (made before any knowledge of results), else None."""
        if not (math.isfinite(produced_n) and math.isfinite(target_n) and target_n > 0):
            raise ValueError("produced_n and target_n must be finite, target_n positive")
        s, p = self.state, self.params
        err = produced_n / target_n - 1.0
        estimate = self._estimate(err) if condition.self_estimate else None
        e = self.error_pct / 100.0
        durable = err + s.learned_guided  # the error as long-term memory alone made it
        slowed = 1.0 - 0.5 * s.dependency
        rate = p.kr_rate if condition.results_after else (
            p.faded_rate if condition.feedback == "faded" and not condition.live else 0.0)
        if condition.live:
            bandwidth = condition.feedback == "bandwidth"
            cued = not bandwidth or abs(e) > condition.bandwidth_pct / 100.0
            if cued:
                s.learned_guided += p.guidance_rate * e
                s.dependency += p.dependency_gain * (1.0 - s.dependency)
            if bandwidth and cued:
                s.learned_kr += p.bandwidth_rate * slowed * (s.baseline - s.learned_kr)
        else:
            s.dependency *= 1.0 - p.dependency_relief
        s.learned_kr += rate * slowed * durable
        if condition.feedback == "summary":
            s.unsummarised.append(durable)
            if condition.summary_after:
                s.learned_kr += p.summary_rate * slowed * float(np.mean(s.unsummarised))
                s.unsummarised = []
        s.learned_guided = _within(s.learned_guided, s.baseline - s.learned_kr)
        if condition.self_estimate and (rate > 0 or condition.summary_after):
            s.estimate_practice += 1
        s.holds += 1
        return estimate

    def _estimate(self, err: float) -> int:
        """The trainee's answer for a hold with signed error ``err``: the error sensed
        through a noise that shrinks with practice, against +-right_pct %."""
        s, p = self.state, self.params
        sd = p.estimate_noise_pct / 100.0 / (1.0 + s.estimate_practice / p.estimate_practice)
        sensed = err + sd * np.random.default_rng([self.seed, s.holds, 1]).standard_normal()
        right = p.right_pct / 100.0
        return 0 if abs(sensed) <= right else (1 if sensed > 0 else -1)

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        """The learner as a small JSON-serialisable dict (``from_dict`` reads it back)."""
        return {"format": STATE_FORMAT, "version": STATE_VERSION, "seed": self.seed,
                "params": asdict(self.params), "state": asdict(self.state),
                "error_pct": self.error_pct}

    @classmethod
    def from_dict(cls, data: dict) -> Learner:
        """A learner from ``to_dict``'s dict; ValueError naming what is wrong otherwise."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"not a learner state (format is not {STATE_FORMAT!r})")
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"learner state version {data.get('version')!r} is not "
                             f"{STATE_VERSION}")
        try:
            learner = cls(seed=data["seed"], params=LearnerParams(**data["params"]))
            learner.state = LearnerState(**data["state"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"learner state: {exc}") from None
        return learner


def _within(part: float, whole: float) -> float:
    """``part`` limited to lie between 0 and ``whole`` (either sign)."""
    return min(max(part, min(0.0, whole)), max(0.0, whole))


@dataclass
class HoldRecord:
    """What the learner did on one hold: the ground truth of a training session."""

    hold_number: int
    block: int
    block_name: str
    feedback: str
    live: bool
    day: float
    target_n: float
    aim_n: float
    produced_n: float = math.nan
    self_estimate: int | None = None
    error_pct_before: float = math.nan  # the learner's calibration error e before the hold


class LearnerAims:
    """The simulated therapist's aim source (``Therapist(aim_source=...)``): hold ``index``
    of the session gets ``training.condition(index)``, the learner aims it on ``day``, and
    learns from the level the hands produced. ``records`` is the per-hold ground truth.
    The therapist draws a whole pass over the points ahead of time, so a session may end
    before holds the learner has already aimed and learned from: :meth:`after` gives the
    learner as it was after the holds actually made. With ``holds`` set, holds from that
    index on are not the session's: aimed at the target, and the learner is not involved."""

    def __init__(self, learner: Learner, training: Training, day: float,
                 holds: int | None = None) -> None:
        self.learner = learner
        self.training = training
        self.day = float(day)
        self.holds = holds
        self.records: list[HoldRecord] = []
        self._states = [learner.to_dict()]  # the learner after 0, 1, 2 ... holds

    def aim(self, index: int, target_n: float) -> float:
        """The aimed force of hold ``index`` (called once per hold, in order)."""
        if self.holds is not None and index >= self.holds:
            return target_n
        if index != len(self.records):
            raise ValueError(f"hold {index} aimed out of order (expected {len(self.records)})")
        c = self.training.condition(index)
        before = self.learner.error_pct
        aim = self.learner.hold_aim(target_n, c, self.day)
        self.records.append(HoldRecord(index, c.block, c.block_name, c.feedback, c.live,
                                       self.day, target_n, aim, error_pct_before=before))
        return aim

    def produced(self, index: int, level_n: float) -> None:
        """The hold ``index`` reached ``level_n``: the learner learns from it."""
        if self.holds is not None and index >= self.holds:
            return
        r = self.records[index]
        r.produced_n = float(level_n)
        r.self_estimate = self.learner.after_hold(level_n, r.target_n,
                                                  self.training.condition(index))
        self._states.append(self.learner.to_dict())

    def after(self, holds_made: int | None = None) -> Learner:
        """The learner after the first ``holds_made`` holds (None: every hold aimed)."""
        n = len(self.records) if holds_made is None else min(holds_made, len(self.records))
        return Learner.from_dict(self._states[n])

    def truth(self, holds_made: int | None = None) -> dict:
        """The learner's part of the ground truth: each hold's condition and aim (every hold
        aimed), how many were made, and the learner after those."""
        n = len(self.records) if holds_made is None else min(holds_made, len(self.records))
        return {"holds": [asdict(r) for r in self.records], "holds_made": n,
                "after": self._states[n]}
