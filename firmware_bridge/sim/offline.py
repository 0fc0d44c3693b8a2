"""Whole recordings of a simulated trainee, written without real time: a training plan's days
in seconds.

Why this exists: learning curves need sessions days and weeks apart (retention tests at +1,
+7 and +56 days). The live simulator runs in real time; this renders the simulated
therapist's force at a fixed rate for each step of a plan (``schemas.plan``), her holds aimed
by a :class:`~firmware_bridge.sim.learner.Learner` under each hold's feedback condition
(``Training.condition``), and writes each session as a valid recording (``schemas.writer``)
with the events the recorder would write for it: ``record_start``, ``training_block``,
``feedback`` (at the start and after each hold's end), ``self_estimate`` (a moment after the
hold, when the condition asks for one), ``trigger_point`` (the next point, after a point's
last repetition), ``protocol_complete`` and ``record_stop``. Holds themselves are not written
(no ``hold_start``/``hold_end``, no ``/holds`` rows): the analysis detects them from the force,
as it does for every file. The sensor is ideal (force in newtons, raw counts in millinewtons)
and its clock exact: this is about the trainee, not the instrument.

Each recording gets a ground-truth JSON beside it (``NAME.truth.json``): the therapist's holds
(``firmware_bridge.sim.hold_model``), and the learner's per-hold condition, aim, produced
level and self-estimate (``firmware_bridge.sim.learner.HoldRecord``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np

from firmware_bridge.sim.learner import Learner, LearnerAims
from firmware_bridge.sim.simulator import LearnerFile, protocol_dose, write_json
from firmware_bridge.sim.therapist import HoldTruth, Therapist
from schemas.events import Event
from schemas.plan import Plan, plan_attrs
from schemas.session_protocol import SessionProtocol
from schemas.writer import RecordingWriter

COUNTS_PER_NEWTON = 1000.0  # raw counts are millinewtons
LEAD_S = 3.0  # silence before the first hold's approach and after the last hold's end
ESTIMATE_DELAY_S = 1.0  # the self-estimate key, after the hold's end
SESSION_GAP = timedelta(minutes=10)  # between sessions on one day


@dataclass
class Rendered:
    """One rendered session: the force at ``rate_hz``, its holds' truth and the learner's."""

    t: np.ndarray
    force_n: np.ndarray
    holds: list[HoldTruth]
    aims: LearnerAims
    therapist: Therapist


def render_session(protocol: SessionProtocol, learner: Learner, *, day: float, seed: int,
                   profile: str, rate_hz: float) -> Rendered:
    """The session ``protocol``'s ``[training]`` prescribes (its ``total_holds`` holds), made
    by ``learner`` on ``day``: the force sampled at ``rate_hz`` from 0 to ``LEAD_S`` after
    the last hold's end. The learner learns from exactly those holds."""
    if protocol.training is None:
        raise ValueError(f"protocol {protocol.name!r} has no [training] section")
    n = protocol.training.total_holds
    aims = LearnerAims(learner, protocol.training, day, holds=n)
    therapist = Therapist(profile, seed=seed, start_delay_s=LEAD_S, aim_source=aims,
                          **protocol_dose(protocol))
    t, holds = render_holds(therapist, n, rate_hz)
    return Rendered(t, therapist.force(t), holds, aims, therapist)


def render_holds(therapist: Therapist, n: int, rate_hz: float) -> tuple[np.ndarray,
                                                                          list[HoldTruth]]:
    """The sample times at ``rate_hz`` from 0 to ``LEAD_S`` after the end of ``therapist``'s
    first ``n`` holds, and those holds' truths."""
    holds: list[HoldTruth] = []
    cycle = 0
    while len(holds) < n:
        holds += therapist.cycle_holds(cycle)
        cycle += 1
    holds = holds[:n]
    return np.arange(int(math.ceil((holds[-1].end_s + LEAD_S) * rate_hz))) / rate_hz, holds


def session_events(protocol: SessionProtocol, r: Rendered) -> list[Event]:
    """The events the recorder writes for this session (see the module docstring)."""
    training = protocol.training
    evs = [Event(0.0, "record_start", text="offline simulation"),
           *point_events(protocol, r.holds)]
    for k, hold in enumerate(r.holds):
        c = training.condition(k)
        at = 0.0 if k == 0 else r.holds[k - 1].end_s
        if k == 0 or c.block != training.condition(k - 1).block:
            block = training.blocks[c.block]
            evs.append(Event(at, "training_block", c.block, f"{block.name}: {block.feedback}"))
        evs.append(Event(at, "feedback", float(c.live), c.feedback))
        record = r.aims.records[k]
        if record.self_estimate is not None:
            evs.append(Event(hold.end_s + ESTIMATE_DELAY_S, "self_estimate",
                             record.self_estimate,
                             ("light", "right", "firm")[record.self_estimate + 1]))
    evs.append(Event(float(r.t[-1]), "record_stop"))
    return sorted(evs, key=lambda e: e.time)


def point_events(protocol: SessionProtocol, holds: list[HoldTruth]) -> list[Event]:
    """What the recorder writes as ``holds`` go through ``protocol``'s points in order: a
    ``trigger_point`` event (the next point) at the end of a point's last repetition, and
    ``protocol_complete`` at the end of the last point's (then point 0 again)."""
    labels = [p.label for p in protocol.points]
    per_point = [p.dose.repetitions for p in protocol.points]
    evs: list[Event] = []
    point, reps = 0, 0
    for k, hold in enumerate(holds):
        reps += 1
        if reps == per_point[point]:
            point, reps = point + 1, 0
            if point == len(labels):
                evs.append(Event(hold.end_s, "protocol_complete", text=protocol.name))
                point = 0
            if k + 1 < len(holds):
                evs.append(Event(hold.end_s, "trigger_point", point, labels[point]))
    return evs


def write_session(path: Path, protocol: SessionProtocol, r: Rendered, *, session: dict,
                  start: datetime, settings: dict) -> None:
    """Write the rendered session to ``path`` (a new file) with ``session`` attributes
    (trainee, plan ...) on top of the protocol's, starting at ``start``."""
    write_recording(path, protocol, r.t, r.force_n, button=r.therapist.button(r.t),
                    events=session_events(protocol, r), session=session, start=start,
                    settings=settings)


def write_recording(path: Path, protocol: SessionProtocol, t: np.ndarray, force_n: np.ndarray,
                    *, button: np.ndarray, events: list[Event], session: dict,
                    start: datetime, settings: dict) -> None:
    """Write force ``force_n`` at times ``t`` (the subject's ``button`` in each sample's
    flags) and ``events`` to ``path`` (a new file) from an ideal sensor, with ``session``
    attributes on top of the protocol's and the simulator's ``settings``."""
    rate = settings["rate_hz"]
    counts = np.round(force_n * COUNTS_PER_NEWTON).astype(np.int64)
    w = RecordingWriter(
        path, session={"protocol": protocol.name, "protocol_toml": protocol.to_toml(),
                       "contact_area_cm2": protocol.contact_area_cm2,
                       "simulator": json.dumps(settings, sort_keys=True), **session},
        device={"link": "palpation-v1", "port": "offline", "device_id": "SIM-OFFLINE",
                "model": "simulator", "sensor_kind": "loadcell", "nominal_rate_hz": rate,
                "adc_bits": 24, "counts_per_newton": COUNTS_PER_NEWTON},
        calibration={"source": "factory", "model": "polynomial",
                     "coefficients": [0.0, 1.0 / COUNTS_PER_NEWTON]},
        session_start=start, software_version="palpation offline simulator")
    try:
        w.append_samples(data=counts / COUNTS_PER_NEWTON, timestamps=t, raw_counts=counts,
                         device_tick_us=np.round(t * 1e6).astype(np.int64),
                         sequence=np.arange(t.size), host_time=t,
                         flags=np.where(button, 1, 0).astype(np.uint8))
        w.append_events(events)
    finally:
        w.close()


@dataclass
class WrittenSession:
    """One file of a plan's run: where, which step, on which day."""

    path: Path
    step: int
    name: str
    day: int
    holds: int


def run_plan(plan: Plan, out_dir: Path, learner_file: LearnerFile, *, seed: int,
             profile: str, rate_hz: float, start: datetime) -> list[WrittenSession]:
    """Every step of ``plan``, in order, as recordings in ``out_dir`` (one per step, named
    ``TRAINEE-NN-STEP.h5``, with its truth beside it), by the learner in ``learner_file``
    (created if absent, saved after the last step). A step on day d of the plan starts at
    ``start`` + d days (+10 min for each earlier step that day); retention days count from
    the post-test, done on the plan's first day. The learner's days are days since
    1970-01-01 (as the live simulator's), so one learner can go on from plan to plan. Each
    step draws with seed ``seed + step``."""
    learner = learner_file.load()
    first_day = (start.date() - date(1970, 1, 1)).days
    out: list[WrittenSession] = []
    same_day = 0
    for index, step in enumerate(plan.steps):
        same_day = same_day + 1 if index and step.day == plan.steps[index - 1].day else 0
        protocol = plan.step_protocol(index)
        settings = {"seed": seed + index, "profile": profile, "rate_hz": rate_hz,
                    "offline": True, "day": step.day, "step": step.name}
        r = render_session(protocol, learner, day=float(first_day + step.day), seed=seed + index,
                           profile=profile, rate_hz=rate_hz)
        slug = "-".join("".join(c if c.isalnum() else " " for c in
                                f"{plan.trainee} {index:02d} {step.name}").lower().split())
        path = out_dir / f"{slug}.h5"
        write_session(path, protocol, r, session=plan_attrs(plan, index),
                      start=start + timedelta(days=step.day) + same_day * SESSION_GAP,
                      settings=settings)
        write_json(path.with_suffix(".truth.json"),
                   {**r.therapist.truth_dict(until_s=float(r.t[-1])),
                    "holds": [asdict(h) for h in r.holds], "learner": r.aims.truth()})
        out.append(WrittenSession(path, index, step.name, step.day, len(r.holds)))
    learner_file.save(learner)
    return out
