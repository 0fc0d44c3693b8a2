"""A small reliability study, simulated without real time: several subjects, each seen by
several raters (trainees) in several sessions, one recording per visit.

Why this exists: reliability figures (test-retest and inter-rater ICC, SEM, MDC) only mean
something when the targets differ. With one simulated therapist pressing every point to the
same band the ICC comes out near 0; here every subject has their own level at every trigger
point, and the raters measure it with their own bias and noise, so the ICC says how well the
raters tell subjects and points apart.

The model (multiplicative; ``z`` are standard normal draws clipped at +-2.5 sd):

* **The subject's true level** at point p, ``L = M * u * v_p``: the force that gives 6/10
  discomfort under static compression (``nmt-static``, ``nmt-anchored``: what the therapist
  titrates to), or the pressure-pain threshold under a threshold ramp (``ppt-ramp``, in N on
  the protocol's contact area). ``M`` is the simulated therapist's own target for the dose
  (the band's midpoint; 40 % of the cut-off for a ramp: 400 kPa on 1 cm^2, a typical
  trapezius PPT); ``u = exp(SUBJECT_SD z)`` is the subject's tissue and sensitivity as a
  whole; ``v_p`` the point's tenderness (``threshold_ramp.point_thresholds``: 0.75-1.25,
  tender and less tender points). A ramp's levels stay under ``RAMP_CAP`` of the cut-off.
* **The subject that day** (session k): ``D = L * (1 + DAY_SD z_k)``, one factor per subject
  and session, shared by the raters who see the subject that day.
* **What rater r aims at**: ``A = D * (1 + b_r + d_rk)``, the rater's constant bias ``b_r``
  (``RATER_BIAS_SD``) and their day-to-day drift ``d_rk`` (``RATER_DAY_SD``). Under static
  compression every hold at the point then lands at ``A * (1 + n_r z)``: the rater's
  trial-to-trial noise ``n_r`` (``RATER_NOISE``) is the level scatter of their skill profile
  (``profiles``, ``intermediate`` and ``novice`` alternating, for tremor, overshoot and
  ramps). Under a threshold ramp the rater's noise acts per visit to a point (where the probe
  lands: ``A * (1 + n_r z)`` is the point's threshold that visit) and each trial scatters
  around it by the subject's ``threshold_ramp.THRESHOLD_CV`` (10 %); the subject presses the
  button at the threshold, so the force at the button carries the rater's error too.
  Under ``nmt-anchored`` the subject signals 6/10 at ``D`` on the first approach and the
  rater holds at ``D * (1 + b_r + d_rk + n_r z)``.

The sizes, chosen so the ICCs land in the published range (PPT test-retest and inter-rater
ICC about 0.7-0.94):

* ``SUBJECT_SD`` 0.30 (with the points' spread, about 33 % between targets): trapezius PPT
  ranged 5-fold (88-574 kPa) over 24 healthy women, test-retest ICC 0.70-0.94 (Persson,
  Brogardh & Sjolund 2004, J Rehabil Med 36:17).
* ``DAY_SD`` 0.10, ``RATER_DAY_SD`` 0.05, ``RATER_NOISE`` 0.04-0.08: with the 10 % trial CV
  a within-examiner CV of about 14 % (Antonaci 1998: about 15 %).
* ``RATER_BIAS_SD`` 0.10: between examiners about 17 % (Antonaci 1998: about 19 %);
  inter-rater ICC(2,1) 0.91 (Chesterton 2007), 0.68-0.79 (Takala 1990).

With these, test-retest ICC comes out near 0.85-0.9 and inter-rater near 0.8-0.9 (the
expected values; a study of 8 subjects scatters around them).

Each recording is rendered as ``offline`` renders a training session (an ideal sensor, the
protocol's points once through, ``record_start``, ``trigger_point``, ``protocol_complete``,
``record_stop``), plus the subject's button as ``button_down``/``button_up`` events and, under
a subject-anchored dose, each point's ``target_anchor``, as the recorder writes them. Its
``/session`` has ``trainee`` (the rater), ``subject`` and ``session_label``. The ground truth
of the whole study is ``study.truth.json`` (``Study.truth``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from firmware_bridge.sim.hold_model import clipped_normal
from firmware_bridge.sim.offline import LEAD_S, point_events, render_holds, write_recording
from firmware_bridge.sim.profiles import PROFILES, Profile
from firmware_bridge.sim.simulator import protocol_dose, write_json
from firmware_bridge.sim.therapist import Therapist
from firmware_bridge.sim.threshold_ramp import THRESHOLD_CV, point_thresholds
from schemas.events import Event
from schemas.session_protocol import SessionProtocol

SUBJECT_SD = 0.30  # log sd of a subject's overall level (tissue, sensitivity)
DAY_SD = 0.10  # a subject's day-to-day variation, fraction
RATER_BIAS_SD = 0.10  # a rater's constant bias, fraction
RATER_DAY_SD = 0.05  # a rater's day-to-day drift, fraction
RATER_NOISE = (0.04, 0.08)  # a rater's trial-to-trial noise (sd, fraction), drawn uniformly
RAMP_CAP = 0.8  # a ramp's true levels stay under this fraction of the cut-off
SKILLS = ("intermediate", "novice")  # the raters' skill profiles, alternating
STUDY_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # the first visit; sessions a week apart
TRUTH_NAME = "study.truth.json"


@dataclass
class Subject:
    """A subject: their overall factor ``u`` and true level (N) per point, and their factor
    ``1 + DAY_SD z`` on each session (keyed by session label)."""

    name: str
    tissue_factor: float
    levels_n: dict[str, float]
    session_factors: dict[str, float]


@dataclass
class Rater:
    """A rater (trainee): skill profile, constant bias, trial-to-trial noise (fractions of
    the level) and day-to-day drift per session label."""

    name: str
    skill: str
    bias_frac: float
    noise_frac: float
    session_drift_frac: dict[str, float]

    def profile(self) -> Profile:
        """The rater's hands: the skill profile with the rater's own noise as its
        hold-to-hold level scatter, no bias of its own (the study sets it), and a clip wide
        enough for bias, drift and noise together."""
        return replace(PROFILES[self.skill], level_bias_sd=0.0, level_sd=self.noise_frac,
                       level_error_max=0.6)


@dataclass
class Study:
    """Who saw whom, and the truth behind every recording (see the module docstring)."""

    protocol: SessionProtocol
    subjects: list[Subject]
    raters: list[Rater]
    sessions: list[str]
    seed: int
    median_n: float

    @property
    def points(self) -> list[str]:
        return [p.label for p in self.protocol.points]

    @property
    def is_ramp(self) -> bool:
        return self.protocol.points[0].dose.is_threshold_ramp

    def day_levels_n(self, subject: Subject, session: str) -> list[float]:
        """The subject's level at each point on that session's day (``D``)."""
        return [subject.levels_n[p] * subject.session_factors[session] for p in self.points]

    def aimed_n(self, rater: Rater, subject: Subject, session: str) -> list[float]:
        """What the rater aims at, point by point, on that visit (``A``)."""
        factor = 1.0 + rater.bias_frac + rater.session_drift_frac[session]
        return [level * factor for level in self.day_levels_n(subject, session)]

    def file_name(self, rater: int, subject: int, session: int) -> str:
        """Where a visit's recording goes in the study's folder (indexes)."""
        return (f"{self.raters[rater].name}/{self.subjects[subject].name}"
                f"-s{self.sessions[session]}.h5")

    def visits(self) -> list[tuple[int, int, int]]:
        """Every visit as (rater, subject, session) indexes, in the order they are written:
        session by session, subject by subject, each seen by every rater."""
        return [(r, s, k) for k in range(len(self.sessions))
                for s in range(len(self.subjects)) for r in range(len(self.raters))]

    def file_names(self) -> list[str]:
        """Every visit's ``file_name``, in the order they are written."""
        return [self.file_name(*visit) for visit in self.visits()]

    def visit_seed(self, rater: int, subject: int, session: int) -> int:
        """The simulated therapist's seed for one visit."""
        return int(np.random.SeedSequence([self.seed, rater, subject, session])
                   .generate_state(1)[0])

    def truth(self, files: list[dict]) -> dict:
        """The ground truth as JSON: the model's sizes, every subject and rater, and per file
        the levels aimed at."""
        return {
            "generator": "firmware_bridge.sim.study", "format_version": 1, "seed": self.seed,
            "protocol": self.protocol.name, "points": self.points,
            "contact_area_cm2": self.protocol.contact_area_cm2,
            "level": ("pressure-pain threshold, N on the contact area" if self.is_ramp
                      else "force that gives 6/10 discomfort, N"),
            "population_median_n": self.median_n,
            "model": {"subject_sd": SUBJECT_SD, "day_sd": DAY_SD,
                      "rater_bias_sd": RATER_BIAS_SD, "rater_day_sd": RATER_DAY_SD,
                      "rater_noise": list(RATER_NOISE), "ramp_cap": RAMP_CAP,
                      "trial_cv_ramp": THRESHOLD_CV},
            "definitions": {
                "levels_n": "the subject's true level per point (L)",
                "session_factors": "the subject's factor on that session's day (D = L x it)",
                "bias_frac": "the rater's constant error: aims at D x (1 + bias + drift)",
                "session_drift_frac": "the rater's error on that session's day",
                "noise_frac": "the rater's trial-to-trial sd (per visit to a point for "
                              "threshold ramps)",
                "aimed_n": "per file and point, what the rater aimed at (A)"},
            "sessions": self.sessions,
            "subjects": {s.name: asdict(s) for s in self.subjects},
            "raters": {r.name: asdict(r) for r in self.raters},
            "files": files,
        }


def draw_study(protocol: SessionProtocol, *, subjects: int, raters: int, sessions: int,
               seed: int) -> Study:
    """Draw the subjects and raters of a study of ``protocol`` (deterministic in ``seed``):
    subjects ``S01``..., raters ``R1``..., sessions ``1``..."""
    if min(subjects, raters, sessions) < 1:
        raise ValueError("a study needs at least one subject, one rater and one session")
    if int(seed) != seed or seed < 0:
        raise ValueError("seed must be a non-negative integer")
    labels = [str(k) for k in range(1, sessions + 1)]
    points = [p.label for p in protocol.points]
    median = Therapist(**protocol_dose(protocol)).target_n
    ramp = protocol.points[0].dose.is_threshold_ramp
    cap = RAMP_CAP * protocol.band_n(0)[1] if ramp else math.inf  # band_n: 0 to the cut-off
    width = max(2, len(str(subjects)))
    people = []
    for i in range(subjects):
        rng = np.random.default_rng([seed, 1, i])
        factor = math.exp(SUBJECT_SD * clipped_normal(rng))
        levels = point_thresholds(int(rng.integers(2**31)), len(points), median * factor)
        people.append(Subject(
            f"S{i + 1:0{width}d}", factor,
            {p: min(level, cap) for p, level in zip(points, levels, strict=True)},
            {k: 1.0 + DAY_SD * clipped_normal(rng) for k in labels}))
    team = []
    for j in range(raters):
        rng = np.random.default_rng([seed, 2, j])
        team.append(Rater(f"R{j + 1}", SKILLS[j % len(SKILLS)],
                          RATER_BIAS_SD * clipped_normal(rng), float(rng.uniform(*RATER_NOISE)),
                          {k: RATER_DAY_SD * clipped_normal(rng) for k in labels}))
    return Study(protocol, people, team, labels, int(seed), median)


class _VisitAims:
    """Static compression: every hold at a point aims at the rater's aim there
    (``therapist.AimSource``; the rater's profile adds the trial noise)."""

    def __init__(self, aims_n: list[float], repetitions: int) -> None:
        self._aims, self._reps = aims_n, repetitions

    def aim(self, index: int, target_n: float) -> float:
        return self._aims[(index // self._reps) % len(self._aims)]

    def produced(self, index: int, level_n: float) -> None:
        """The study keeps no record of what was produced: the file and the truth say it."""


def visit_therapist(study: Study, rater: Rater, subject: Subject, session: str,
                    seed: int) -> Therapist:
    """The simulated rater for one visit, pressing the subject's levels (module docstring):
    an aim source under static compression; under a threshold ramp the points' thresholds,
    and under a subject-anchored dose the points' 6/10 forces and the rater's bias, set
    before any hold is drawn (the therapist draws its holds lazily)."""
    dose = protocol_dose(study.protocol)
    reps = dose["dose"].repetitions
    aimed = study.aimed_n(rater, subject, session)
    anchored = math.isfinite(dose["dose"].target_pain)
    static = not (study.is_ramp or anchored)
    therapist = Therapist(rater.profile(), seed=seed, start_delay_s=LEAD_S,
                          aim_source=_VisitAims(aimed, reps) if static else None, **dose)
    if study.is_ramp:
        rng = np.random.default_rng([seed, 15])
        therapist.point_thresholds_n = [a * (1.0 + rater.noise_frac * clipped_normal(rng))
                                        for a in aimed]
    elif anchored:
        therapist.point_pain_n = study.day_levels_n(subject, session)
        therapist.level_bias = rater.bias_frac + rater.session_drift_frac[session]
    return therapist


def visit_events(study: Study, therapist: Therapist, t: np.ndarray, holds: list,
                 pressed: np.ndarray) -> list[Event]:
    """The events the recorder writes for one visit (module docstring)."""
    evs = [Event(0.0, "record_start", text="offline simulation"),
           *point_events(study.protocol, holds)]
    edges = np.flatnonzero(np.diff(pressed.astype(np.int8), prepend=0))
    evs += [Event(float(t[i]), "button_down" if pressed[i] else "button_up", sample_index=int(i))
            for i in edges.tolist()]
    reaction = study.protocol.points[0].dose.reaction_time_s
    for anchor in therapist.anchors:
        force = float(therapist.force(np.array([anchor.signal_s - reaction]))[0])
        evs.append(Event(anchor.signal_s, "target_anchor", value=force,
                         text=anchor.trigger_point))
    evs.append(Event(float(t[-1]), "record_stop"))
    return sorted(evs, key=lambda e: e.time)


def write_visit(study: Study, out_dir: Path, r: int, s: int, k: int, *,
                rate_hz: float) -> dict:
    """Render and write rater ``r``'s visit to subject ``s`` in session ``k`` (indexes) as
    ``out_dir/<rater>/<subject>-s<session>.h5``; its entry in the truth's file list."""
    rater, subject, session = study.raters[r], study.subjects[s], study.sessions[k]
    seed = study.visit_seed(r, s, k)
    therapist = visit_therapist(study, rater, subject, session, seed)
    n = len(study.points) * therapist.dose.repetitions
    t, holds = render_holds(therapist, n, rate_hz)
    pressed = therapist.button(t)
    name = study.file_name(r, s, k)
    path = out_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    settings = {"seed": seed, "profile": rater.skill, "rate_hz": rate_hz, "offline": True,
                "study_seed": study.seed}
    write_recording(
        path, study.protocol, t, therapist.force(t), button=pressed,
        events=visit_events(study, therapist, t, holds, pressed),
        session={"trainee": rater.name, "subject": subject.name, "session_label": session},
        start=STUDY_START + timedelta(days=7 * k + s, hours=r), settings=settings)
    return {"path": name, "trainee": rater.name,
            "subject": subject.name, "session_label": session, "seed": seed,
            "aimed_n": dict(zip(study.points, study.aimed_n(rater, subject, session),
                                strict=True))}


def write_study(study: Study, out_dir: Path, *, rate_hz: float) -> list[Path]:
    """Every visit of ``study`` as a recording under ``out_dir`` (rater folders), then
    ``out_dir/study.truth.json``; the paths written, truth last. Session k (from 0)
    starts 7 k days after ``STUDY_START``; subject s is seen s days later, by rater r at
    09:00 + r hours."""
    files = [write_visit(study, out_dir, *visit, rate_hz=rate_hz) for visit in study.visits()]
    write_json(out_dir / TRUTH_NAME, study.truth(files))
    return [out_dir / f["path"] for f in files] + [out_dir / TRUTH_NAME]
