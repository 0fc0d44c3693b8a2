"""A training plan: a no-feedback pre-test, practice (faded by default), an immediate
no-feedback post-test and no-feedback retention tests days and weeks later, for one trainee on
one protocol.

Why a plan: how well a trainee still presses with no screen, days later, is what training is
judged by (live feedback that is then removed decays fast), so the retention tests must
happen on their days and be run without feedback. Each step of a plan is a session protocol:
the base protocol's trigger points and dose plus a ``[training]`` section made for the step
(``schemas.training``), so ``record --plan`` runs exactly what the step prescribes.

The practice is three blocks: faded (live feedback on 100, then 50, then 20 % of the holds:
less feedback retains better) or, so that an instructor or a study can run a control group,
three blocks of one other mode (``PRACTICE_MODES``: concurrent, bandwidth, terminal, summary).
The mode is in the practice step's blocks, so plans made before there was a choice read back
as they were.

Pure: building a plan and saying what is due touch no file; the plan travels as JSON (in the
catalog and in every recording made under it, so the recordings can rebuild the catalog).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from schemas.session_protocol import SessionProtocol, load_protocol
from schemas.training import Training, TrainingBlock

FADED_SHARES = (1.0, 0.5, 0.2)  # live feedback on 100 %, then 50 %, then 20 % of the holds
PRACTICE_MODES = ("faded", "concurrent", "bandwidth", "terminal", "summary")
PRACTICE_BLOCKS = 3
DEFAULT_RETENTION_DAYS = (1, 7, 56)
STATES = ("done", "due", "overdue", "upcoming")


class PlanError(ValueError):
    """A plan that cannot be built or read, in one line."""


@dataclass(frozen=True)
class PlanStep:
    """One session of a plan. ``day``: days after the plan's start (pre-test, practice and
    post-test: 0) or, for a retention test, days after the post-test was done."""

    name: str                           # "pre-test", "practice", "post-test", "retention +7 d"
    kind: str                           # pre-test | practice | post-test | retention
    day: int
    blocks: tuple[TrainingBlock, ...]

    @property
    def holds(self) -> int:
        return sum(block.holds for block in self.blocks)


@dataclass(frozen=True)
class Plan:
    """A trainee's plan on a protocol (``protocol``: the preset id or file it was made from;
    ``protocol_toml``: that protocol then, so the plan does not change if the file does)."""

    plan_id: str
    trainee: str
    protocol: str
    protocol_toml: str
    created: str                        # ISO-8601 with offset
    start: date
    seed: int
    steps: tuple[PlanStep, ...]

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON values."""
        return {**asdict(self), "start": self.start.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """The plan ``to_dict`` made; PlanError when ``data`` is not one."""
        try:
            fields = dict(data)
            steps = tuple(PlanStep(name=s["name"], kind=s["kind"], day=int(s["day"]),
                                   blocks=tuple(TrainingBlock(**b) for b in s["blocks"]))
                          for s in fields.pop("steps"))
            return cls(**{**fields, "start": date.fromisoformat(fields["start"]),
                          "steps": steps})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PlanError(f"not a training plan ({type(exc).__name__}: {exc})") from None

    def to_json(self) -> str:
        """The whole plan as one JSON object (what every recording made under it keeps)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """The plan ``to_json`` wrote; PlanError when it is not one."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PlanError(f"not a training plan (not JSON: {exc})") from None
        if not isinstance(data, dict):
            raise PlanError("not a training plan (not a JSON object)")
        return cls.from_dict(data)

    def step_protocol(self, index: int) -> SessionProtocol:
        """Step ``index``'s session protocol: the base protocol with the step's ``[training]``
        section (keeping the base's self-estimate and mastery rule); each point is repeated
        so that the protocol's holds cover the step's (the protocol is complete once the
        step's holds are done)."""
        step = self.steps[index]
        base = load_protocol(self.protocol_toml, source=f"plan {self.plan_id}")
        points = base.points
        if sum(p.dose.repetitions for p in points) < step.holds:
            reps = math.ceil(step.holds / len(points))
            points = tuple(replace(p, dose=replace(p.dose, repetitions=reps)) for p in points)
        kept = {} if base.training is None else {  # the base's self-estimate and mastery
            key: getattr(base.training, key)
            for key in ("self_estimate", "mastery_count", "mastery_window", "mastery_score")}
        training = Training(blocks=step.blocks, seed=self.seed + index, **kept)
        return replace(base, points=points, training=training)


@dataclass(frozen=True)
class StepStatus:
    """Where one step stands on a given day."""

    index: int
    step: PlanStep
    state: str                          # one of STATES
    due: date
    done_on: date | None


def new_plan(trainee: str, protocol: str, base: SessionProtocol, *, start: date,
             created: datetime, retention_days: Sequence[int] = DEFAULT_RETENTION_DAYS,
             pre_holds: int | None = None, practice_holds: int | None = None,
             test_holds: int | None = None, seed: int | None = None,
             practice: str = "faded") -> Plan:
    """A plan for ``trainee`` on ``base`` (named ``protocol``). Hold counts default to one
    pass through the protocol (its points times their repetitions); ``practice_holds`` is per
    practice block (``practice_blocks``: three blocks of the ``practice`` mode). PlanError for
    counts below 1, retention days that are not positive and increasing, or a practice mode
    not in ``PRACTICE_MODES``."""
    one_pass = sum(p.dose.repetitions for p in base.points)
    pre, practice_holds, test = (one_pass if n is None else n
                                 for n in (pre_holds, practice_holds, test_holds))
    for label, n in (("pre-test holds", pre), ("practice holds", practice_holds),
                     ("test holds", test)):
        if n < 1:
            raise PlanError(f"{label} must be at least 1, got {n}")
    if not trainee.strip():
        raise PlanError("a plan needs a trainee name")
    days = list(retention_days)
    if any(d < 1 for d in days) or days != sorted(set(days)):
        raise PlanError(f"retention days must be increasing whole days >= 1, got {days}")
    steps = [_test_step("pre-test", "pre-test", 0, pre),
             PlanStep("practice", "practice", 0, practice_blocks(practice, practice_holds)),
             _test_step("post-test", "post-test", 0, test)]
    steps += [_test_step(f"retention +{d} d", "retention", d, test) for d in days]
    slug = "".join(c if c.isalnum() else "-" for c in trainee.strip().lower()).strip("-")
    return Plan(plan_id=f"{slug or 'plan'}-{start:%Y%m%d}-{secrets.token_hex(3)}",
                trainee=trainee.strip(), protocol=protocol, protocol_toml=base.to_toml(),
                created=created.isoformat(timespec="seconds"), start=start,
                seed=secrets.randbelow(2**31) if seed is None else seed, steps=tuple(steps))


def practice_blocks(mode: str, holds: int) -> tuple[TrainingBlock, ...]:
    """The practice step's three blocks of ``holds`` holds each: faded at 100, 50 and 20 %
    live feedback, or three blocks of ``mode`` (summary: a summary after every 5 holds, or
    after the block when it is shorter). PlanError for a mode not in ``PRACTICE_MODES``."""
    if mode not in PRACTICE_MODES:
        raise PlanError(f"unknown practice {mode!r} (use one of {', '.join(PRACTICE_MODES)})")
    if mode == "faded":
        return tuple(TrainingBlock(name=f"faded {share:.0%} live", holds=holds,
                                   feedback="faded", live_share=share)
                     for share in FADED_SHARES)
    summary = {"summary_every": min(TrainingBlock.summary_every, holds)}
    return tuple(TrainingBlock(name=f"{mode} practice {k} of {PRACTICE_BLOCKS}", holds=holds,
                               feedback=mode, **(summary if mode == "summary" else {}))
                 for k in range(1, PRACTICE_BLOCKS + 1))


def _test_step(name: str, kind: str, day: int, holds: int) -> PlanStep:
    return PlanStep(name, kind, day, (TrainingBlock(name=name, holds=holds, feedback="none"),))


def status(plan: Plan, done: Mapping[int, date], today: date) -> list[StepStatus]:
    """Each step on ``today``, given the day each step was done (``done``: step index ->
    date). The pre-test, practice and post-test fall on the start day, the retention tests
    that many days after the post-test was done (before it is: after today or the start,
    whichever is later). A step not done is overdue once its day has passed, due on its day
    when every earlier step is done (steps of one day run in order), else upcoming."""
    anchor = _post_test_day(plan, done) or max(plan.start, today)
    out: list[StepStatus] = []
    earlier_done = True
    for index, step in enumerate(plan.steps):
        due = (anchor if step.kind == "retention" else plan.start) + timedelta(days=step.day)
        if index in done:
            state = "done"
        elif due < today:
            state = "overdue"
        elif due == today and earlier_done:
            state = "due"
        else:
            state = "upcoming"
        earlier_done = earlier_done and index in done
        out.append(StepStatus(index, step, state, due, done.get(index)))
    return out


def _post_test_day(plan: Plan, done: Mapping[int, date]) -> date | None:
    posts = [done[i] for i, s in enumerate(plan.steps) if s.kind == "post-test" and i in done]
    return posts[0] if posts else None


def next_step(plan: Plan, done: Mapping[int, date], today: date) -> StepStatus | None:
    """The first step not done (steps run in order, an overdue one first): what ``record
    --plan`` runs once its day has come (``due <= today``); None once the plan is finished."""
    return next((s for s in status(plan, done, today) if s.state != "done"), None)


def plan_attrs(plan: Plan, index: int) -> dict[str, Any]:
    """The /session attributes a recording of step ``index`` carries."""
    return {"trainee": plan.trainee, "plan_id": plan.plan_id, "plan_step": index,
            "plan": plan.to_json()}
