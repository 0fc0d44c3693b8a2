"""The simulated sensor on a pseudo-terminal, built from plain options.

This is what ``palpation simulate`` and ``palpation record --simulate`` serve: a
:class:`~firmware_bridge.sim.device.SimulatedSensor` (its therapist working through a session
protocol's dose when one is given, with its imperfections) behind a
:class:`~firmware_bridge.sim.server.PtyServer` with its faults and its bursty delivery. The
command line only parses options and calls :func:`build_simulator`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.imperfect import Imperfections
from firmware_bridge.sim.learner import Learner, LearnerAims
from firmware_bridge.sim.server import Faults, PtyServer
from firmware_bridge.sim.therapist import Therapist
from schemas.session_protocol import SessionProtocol


@dataclass(frozen=True)
class LearnerFile:
    """A simulated learner kept in a JSON file across sessions (``--learner``): created
    with ``baseline_error_pct`` and ``seed`` when the file does not exist yet."""

    path: Path
    baseline_error_pct: float = 35.0
    seed: int = 1

    def load(self) -> Learner:
        """The learner in the file, or a new one; ValueError naming the file otherwise."""
        if not self.path.exists():
            return Learner(self.seed, self.baseline_error_pct)
        try:
            return Learner.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path}: {exc}") from None

    def save(self, learner: Learner) -> None:
        """Replace the file with ``learner``'s state."""
        write_json(self.path, learner.to_dict())


def today_day() -> float:
    """Today as a learner's day: days since 1970-01-01 UTC (the live simulator's clock)."""
    return time.time() / 86400.0


@dataclass
class Simulation:
    """A simulated sensor and the server that serves it."""

    sensor: SimulatedSensor
    server: PtyServer
    profile: str
    learner: LearnerFile | None = None
    aims: LearnerAims | None = None

    def report(self) -> dict:
        """What the simulator did, for tests and benchmarks to compare against."""
        return {**self.sensor.totals(), "corrupted_bytes": self.server.corrupted_bytes,
                "power_cycles": self.server.power_cycles, "bursts": self.server.bursts,
                "hiccups": self.server.hiccups}

    def truth(self) -> dict:
        """The ground truth (see :mod:`firmware_bridge.sim.truth`), power-ups on the host's
        ``time.monotonic()`` clock."""
        truth = self.sensor.truth(self.server.t0)
        if self.aims is not None:
            truth["learner"] = self.aims.truth(self.holds_made())
        return truth

    def holds_made(self) -> int:
        """Holds the therapist has finished by now (0 before the host started streaming):
        her clock is the present device's, from the host's ``start`` on."""
        devices = self.sensor.devices
        if not devices or devices[-1].therapist_offset is None:
            return 0
        device_t = ((self.server.now() - self.sensor.powered_at[-1])
                    * (1.0 + self.sensor.imperfections.clock_ppm * 1e-6))
        now = float(devices[-1].therapist_time(np.asarray(device_t)))
        return sum(h.end_s <= now for h in self.sensor.therapist.holds_between(0.0, now))

    def save_learner(self) -> None:
        """Keep the learner (``--learner``) as it is after the holds made, for its next
        session; nothing without one."""
        if self.learner is not None and self.aims is not None:
            self.learner.save(self.aims.after(self.holds_made()))

    def settings(self) -> dict:
        """What a recording of this simulator keeps about it (the ``simulator`` attribute):
        seed, profile, rate and imperfections."""
        return {"seed": self.sensor.seed, "profile": self.profile,
                "rate_hz": self.sensor.rate_hz, **self.sensor.imperfections.as_dict()}


def protocol_dose(protocol: SessionProtocol) -> dict:
    """What the simulated therapist works through: the protocol's first point's dose (with
    rests of at least 4 s) over the protocol's trigger points, as SimulatedSensor options."""
    dose = protocol.points[0].dose
    return {"dose": replace(dose, rest_s=max(dose.rest_s, 4.0)),
            "trigger_points": [p.label for p in protocol.points],
            "contact_area_cm2": protocol.contact_area_cm2}


def build_simulator(*, rate_hz: float, seed: int, profile: str,
                    protocol: SessionProtocol | None = None, ascii: bool = False,
                    drop: float = 0.0, corrupt: float = 0.0,
                    disconnect_after: float | None = None, reappear_after: float | None = None,
                    link: Path | None = None, tx_buffer: int = 65536,
                    on_path: Callable[[str], None] | None = None,
                    imperfections: Imperfections | None = None,
                    learner: LearnerFile | None = None) -> Simulation:
    """The simulated sensor at ``rate_hz`` (``ascii``: printing ``<value> N`` lines like a
    sketch; ``drop``: the probability that a frame is lost; ``imperfections``: its zero,
    creep, clock and delivery, ideal when None) on a pty server (``corrupt``: the
    probability that a byte is damaged; unplugged ``disconnect_after`` seconds, plugged
    back ``reappear_after`` seconds later; see :class:`PtyServer` for the rest;
    ``learner``: the holds' aims follow that learner through the protocol's ``[training]``,
    today, ValueError when the protocol has none)."""
    imperfections = imperfections or Imperfections()
    aims = None
    if learner is not None:
        if protocol is None or protocol.training is None:
            raise ValueError("a learner needs a protocol with a [training] section "
                             "(e.g. --protocol nmt-training)")
        aims = LearnerAims(learner.load(), protocol.training, today_day())
    therapist = None if aims is None else Therapist(profile, seed=seed, aim_source=aims,
                                                    **protocol_dose(protocol))
    sensor = SimulatedSensor(profile=profile, rate_hz=rate_hz, seed=seed,
                             **(protocol_dose(protocol) if protocol else {}), load=therapist,
                             drop=drop, ascii=ascii, imperfections=imperfections)
    faults = Faults(corrupt=corrupt, disconnect_after=disconnect_after,
                    reappear_after=reappear_after, burst_ms=imperfections.burst_ms,
                    hiccups_per_s=imperfections.hiccups_per_s)
    server = PtyServer(sensor, on_path=on_path, link=link, faults=faults, tx_buffer=tx_buffer,
                       seed=seed)
    return Simulation(sensor, server, profile, learner, aims)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON, replacing ``path`` in one step."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
