"""What makes the simulated sensor as imperfect as hardware: its zero, creep, hysteresis,
nonlinearity and clock, and how its bytes reach the host.

Why: a recorder tested only against a perfect sensor (a zero that never moves, a clock that is
the host's) gets those numbers wrong on real hardware. Every imperfection here is off by
default (the ideal sensor of earlier versions), seeded, and recorded in the ground truth
(see :mod:`firmware_bridge.sim.truth`). ``Imperfections.realistic()`` is the mix
``--imperfect`` turns on; firmware_bridge/sim/README.md documents the models and numbers.

The sensor model sits between the true (applied) force and the ADC: ``SensorModel.reading``
turns the applied force into the force the sensing element reports. It is stateful and
continuous across read blocks (and across power cycles: creep lives in the material).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.signal import lfilter

__all__ = ["SENSOR_KINDS", "Imperfections", "SensorModel", "zero_shift_counts"]

SENSOR_KINDS = ("loadcell", "fsr")

#: Load cell creep: 0.03 % of the load after 30 min, first order with a 10 min time constant.
LOADCELL_CREEP_TAU_S = 600.0
LOADCELL_CREEP_FRAC = 0.0003 / (1.0 - math.exp(-1800.0 / LOADCELL_CREEP_TAU_S))
#: FSR creep: the reading rises 6 % of the load (relative), time constant 10 s (5.7 % at 30 s).
FSR_CREEP_TAU_S = 10.0
FSR_CREEP_FRAC = 0.06
#: FSR rate-independent hysteresis: the unloading curve reads 2 x 4 % above the loading one,
#: after a reversal the reading moves to the new branch over about FSR_HYSTERESIS_WIDTH_N.
FSR_HYSTERESIS_FRAC = 0.04
FSR_HYSTERESIS_WIDTH_N = 2.0
#: FSR nonlinearity (a conductance in a voltage divider): reading = F / (1 + F / F_HALF).
FSR_HALF_N = 150.0


@dataclass(frozen=True)
class Imperfections:
    """The simulated sensor's departures from an ideal one (all off by default).

    ``zero_shift_n``: SD of the zero's shift at each power-up (N, drawn per power-up).
    ``thermal_drift_n_per_min``: the zero's drift within a power-up (N per minute, linear).
    ``sensor``: ``loadcell`` or ``fsr`` (an FSR always creeps, shows hysteresis and is
    nonlinear). ``creep``: a load cell's creep under load (0.03 % in 30 min).
    ``clock_ppm``: the device clock runs this many ppm fast against the host's.
    ``burst_ms``: bytes reach the host in bursts at random intervals in this range (ms).
    ``hiccups_per_s``: host scheduling hiccups per second, each delivery 20-200 ms late.
    """

    zero_shift_n: float = 0.0
    thermal_drift_n_per_min: float = 0.0
    sensor: str = "loadcell"
    creep: bool = False
    clock_ppm: float = 0.0
    burst_ms: tuple[float, float] | None = None
    hiccups_per_s: float = 0.0

    def __post_init__(self) -> None:
        """Refuse values no sensor or link has."""
        if self.sensor not in SENSOR_KINDS:
            raise ValueError(f"sensor must be one of {', '.join(SENSOR_KINDS)}")
        if not (self.zero_shift_n >= 0 and math.isfinite(self.zero_shift_n)):
            raise ValueError("zero shift must be a finite SD >= 0")
        if not math.isfinite(self.thermal_drift_n_per_min):
            raise ValueError("thermal drift must be finite")
        if not abs(self.clock_ppm) <= 100_000:
            raise ValueError("clock error must be within +-100000 ppm")
        if self.burst_ms is not None:
            lo, hi = self.burst_ms
            if not 0 < lo <= hi <= 1000:
                raise ValueError("burst interval must satisfy 0 < LO <= HI <= 1000 ms")
        if not 0 <= self.hiccups_per_s <= 100:
            raise ValueError("hiccups must be 0 to 100 per second")

    @classmethod
    def realistic(cls, sensor: str = "loadcell") -> Imperfections:
        """The ``--imperfect`` mix: a crystal 40 ppm fast, the zero shifting 0.5 N SD between
        power-ups and drifting 0.05 N/min, creep, USB bursts every 1-16 ms, a hiccup every
        5 s on average."""
        return cls(zero_shift_n=0.5, thermal_drift_n_per_min=0.05, sensor=sensor, creep=True,
                   clock_ppm=40.0, burst_ms=(1.0, 16.0), hiccups_per_s=0.2)

    def as_dict(self) -> dict:
        """Plain JSON-able values (``burst_ms`` a list or None)."""
        out = asdict(self)
        out["burst_ms"] = list(self.burst_ms) if self.burst_ms else None
        return out


def zero_shift_counts(seed: int, epoch: int, sd_n: float, counts_per_newton: float) -> float:
    """The zero's shift (counts) at power-up ``epoch`` (0 = the first): normal, SD ``sd_n``
    newtons, drawn from ``default_rng([seed, 13, epoch])``; exactly 0 when ``sd_n`` is 0."""
    if sd_n == 0:
        return 0.0
    return float(np.random.default_rng([seed, 13, epoch]).normal(0.0, sd_n) * counts_per_newton)


class SensorModel:
    """The sensing element between the applied force and the ADC, with its state.

    Load cell: linear; with ``creep``, the reading gains a first-order lag of the load
    (``LOADCELL_CREEP_FRAC`` of it, time constant ``LOADCELL_CREEP_TAU_S``), which also
    relaxes back after unloading. FSR: nonlinear (``F / (1 + F / FSR_HALF_N)``), then
    multiplied by ``1 + creep + hysteresis``: creep rises toward ``FSR_CREEP_FRAC`` under
    load with time constant ``FSR_CREEP_TAU_S`` and falls back unloaded; hysteresis is
    ``-FSR_HYSTERESIS_FRAC`` while loading and ``+FSR_HYSTERESIS_FRAC`` while unloading,
    moving between them exponentially in the force travelled since the last reversal. An
    FSR reads 0 at no load. Feed samples in time order at a fixed rate ``rate_hz``.
    """

    def __init__(self, sensor: str = "loadcell", creep: bool = False,
                 rate_hz: float = 1000.0) -> None:
        if sensor not in SENSOR_KINDS:
            raise ValueError(f"sensor must be one of {', '.join(SENSOR_KINDS)}")
        self.sensor = sensor
        self.fsr = sensor == "fsr"
        self.ideal = not (self.fsr or creep)
        self._creep = 0.0  # the creep filter's state (N for a load cell, relative for an FSR)
        self._hyst = FSR_HYSTERESIS_FRAC  # start as after an unloading
        self._last_f = 0.0
        self._direction = 0  # +1 loading, -1 unloading, 0 unknown
        self._rev_f = 0.0  # force at the last reversal
        self._rev_h = self._hyst
        self.set_rate(rate_hz)

    def set_rate(self, rate_hz: float) -> None:
        """The sample rate from now on (the creep filter's step)."""
        tau = FSR_CREEP_TAU_S if self.fsr else LOADCELL_CREEP_TAU_S
        self._alpha = math.exp(-1.0 / (tau * rate_hz))

    def reading(self, force_n: np.ndarray) -> np.ndarray:
        """The force the element reports for consecutive samples of applied force."""
        f = np.asarray(force_n, dtype=np.float64)
        if self.ideal or f.size == 0:
            return f
        if not self.fsr:
            return f + self._filter(LOADCELL_CREEP_FRAC * f)
        creep = self._filter(FSR_CREEP_FRAC * (f > 0))
        shaped = f / (1.0 + f / FSR_HALF_N)
        return shaped * (1.0 + creep + self._hysteresis(f))

    def peek(self, force_n: np.ndarray) -> np.ndarray:
        """What ``reading`` would give with the present state, without changing it."""
        f = np.asarray(force_n, dtype=np.float64)
        if self.ideal:
            return f
        if not self.fsr:
            return f + self._creep
        return f / (1.0 + f / FSR_HALF_N) * (1.0 + self._creep + self._hyst)

    def _filter(self, target: np.ndarray) -> np.ndarray:
        """First-order lag of ``target`` at one step per sample, continuing the state."""
        a = self._alpha
        out, _ = lfilter([1.0 - a], [1.0, -a], target, zi=[a * self._creep])
        self._creep = float(out[-1])
        return out

    def _hysteresis(self, f: np.ndarray) -> np.ndarray:
        """The hysteresis term for consecutive forces, one monotonic stretch at a time (a
        sample at rest keeps the direction it had)."""
        prev = np.concatenate(([self._last_f], f[:-1]))
        step = np.sign(f - prev)
        last_move = np.maximum.accumulate(np.where(step != 0, np.arange(f.size), -1))
        direction = np.where(last_move >= 0, step[np.maximum(last_move, 0)], self._direction)
        starts = np.flatnonzero(np.diff(direction, prepend=self._direction)).tolist()
        bounds = sorted({0, *starts, f.size})
        h = np.empty_like(f)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            d = int(direction[lo])
            if d != self._direction:  # a reversal (or the first movement)
                self._direction, self._rev_f, self._rev_h = d, float(prev[lo]), self._hyst
            target = -d * FSR_HYSTERESIS_FRAC
            travel = np.abs(f[lo:hi] - self._rev_f) / FSR_HYSTERESIS_WIDTH_N
            h[lo:hi] = target + (self._rev_h - target) * np.exp(-travel)
            self._hyst = float(h[hi - 1])
        self._last_f = float(f[-1])
        return h
