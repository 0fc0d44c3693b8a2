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
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.imperfect import Imperfections
from firmware_bridge.sim.server import Faults, PtyServer
from schemas.session_protocol import SessionProtocol


@dataclass
class Simulation:
    """A simulated sensor and the server that serves it."""

    sensor: SimulatedSensor
    server: PtyServer
    profile: str

    def report(self) -> dict:
        """What the simulator did, for tests and benchmarks to compare against."""
        return {**self.sensor.totals(), "corrupted_bytes": self.server.corrupted_bytes,
                "power_cycles": self.server.power_cycles, "bursts": self.server.bursts,
                "hiccups": self.server.hiccups}

    def truth(self) -> dict:
        """The ground truth (see :mod:`firmware_bridge.sim.truth`), power-ups on the host's
        ``time.monotonic()`` clock."""
        return self.sensor.truth(self.server.t0)

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
                    imperfections: Imperfections | None = None) -> Simulation:
    """The simulated sensor at ``rate_hz`` (``ascii``: printing ``<value> N`` lines like a
    sketch; ``drop``: the probability that a frame is lost; ``imperfections``: its zero,
    creep, clock and delivery, ideal when None) on a pty server (``corrupt``: the
    probability that a byte is damaged; unplugged ``disconnect_after`` seconds, plugged
    back ``reappear_after`` seconds later; see :class:`PtyServer` for the rest)."""
    imperfections = imperfections or Imperfections()
    sensor = SimulatedSensor(profile=profile, rate_hz=rate_hz, seed=seed,
                             **(protocol_dose(protocol) if protocol else {}),
                             drop=drop, ascii=ascii, imperfections=imperfections)
    faults = Faults(corrupt=corrupt, disconnect_after=disconnect_after,
                    reappear_after=reappear_after, burst_ms=imperfections.burst_ms,
                    hiccups_per_s=imperfections.hiccups_per_s)
    server = PtyServer(sensor, on_path=on_path, link=link, faults=faults, tx_buffer=tx_buffer,
                       seed=seed)
    return Simulation(sensor, server, profile)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as JSON, replacing ``path`` in one step."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
