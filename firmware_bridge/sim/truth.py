"""Reading the simulator's ground truth (``--truth FILE``, JSON): when each sample was really
taken, what the zero really was, what force was really applied.

Why: timestamps, zeros and forces in a recording can only be checked against what the
simulator knows. ``truth["epochs"]`` has one entry per power-up of the simulated device:

- ``power_up_monotonic``: the power-up instant on the host's ``time.monotonic()`` clock (the
  clock the recorder stamps arrivals with), in seconds;
- ``clock_ppm``: how fast the device clock runs against the host's (device seconds are
  ``(1 + clock_ppm·1e-6)`` host seconds' worth);
- ``grids``: the runs of the sample grid (``origin_s`` device seconds since power-up,
  ``rate_hz``, ``first_sequence``; a new run at each start and rate change);
- ``zero_counts``, ``zero_drift_counts_per_s``: the ADC's zero at power-up and its drift per
  true second;
- ``therapist_offset_s``: therapist time minus true seconds since power-up (None before the
  first start).

Under a threshold-ramp dose (``ppt-ramp``) each hold of ``truth["holds"]`` also has
``threshold_n``, the applied force when the subject's button went down, and ``button_s``, when
it did (therapist seconds); ``ramp_thresholds`` lists them, for tests to hold a recorded
threshold against. ``truth["point_thresholds_n"]`` is each point's mean threshold.

Sequence numbers are the device's own, counted from 0 at each power-up (not wrapped to 16
bits as the frames carry them). The functions here take an ``epoch`` (0 = the first power-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RampThreshold", "device_times", "ramp_thresholds", "sample_instants",
           "therapist_times", "zero_counts_at"]


@dataclass(frozen=True)
class RampThreshold:
    """One threshold ramp's truth; times are therapist seconds (``therapist_times``)."""

    trigger_point: str
    repetition: int
    start_s: float  # the force first reached the therapist's hold threshold
    press_s: float  # the subject's button went down
    threshold_n: float  # the applied force then


def ramp_thresholds(truth: dict) -> list[RampThreshold]:
    """The threshold ramps of the truth's holds, in time order (holds have none)."""
    return [RampThreshold(h["trigger_point"], h["repetition"], h["start_s"], h["button_s"][0],
                          h["threshold_n"])
            for h in truth.get("holds", []) if h.get("threshold_n") is not None]


def device_times(truth: dict, sequence: np.ndarray, epoch: int = 0) -> np.ndarray:
    """Device seconds since power-up at which samples ``sequence`` were taken (the device's
    tick is this times 10⁶, rounded). Sequences before the first grid raise ValueError."""
    seq = np.asarray(sequence, dtype=np.int64)
    grids = truth["epochs"][epoch]["grids"]
    firsts = np.array([g["first_sequence"] for g in grids], dtype=np.int64)
    if not grids or (seq.size and seq.min() < firsts[0]):
        raise ValueError("sequence before the device started streaming")
    # a grid restarted at the same sequence supersedes the one before it
    which = np.searchsorted(firsts, seq, side="right") - 1
    origin = np.array([g["origin_s"] for g in grids])[which]
    rate = np.array([g["rate_hz"] for g in grids])[which]
    return origin + (seq - firsts[which]) / rate


def sample_instants(truth: dict, sequence: np.ndarray, epoch: int = 0) -> np.ndarray:
    """The true host instants (``time.monotonic()`` seconds) of samples ``sequence``."""
    e = truth["epochs"][epoch]
    return e["power_up_monotonic"] + _true_since_power_up(truth, sequence, epoch)


def therapist_times(truth: dict, sequence: np.ndarray, epoch: int = 0) -> np.ndarray:
    """The therapist's times of samples ``sequence``: the applied (true) force of each is
    ``Therapist(...).force`` of these, the therapist rebuilt from the truth's seed, profile
    and dose."""
    offset = truth["epochs"][epoch]["therapist_offset_s"]
    if offset is None:
        raise ValueError("the device never started streaming in this epoch")
    return _true_since_power_up(truth, sequence, epoch) + offset


def zero_counts_at(truth: dict, sequence: np.ndarray, epoch: int = 0) -> np.ndarray:
    """The ADC's true zero (counts at no load) when samples ``sequence`` were taken."""
    e = truth["epochs"][epoch]
    true_s = _true_since_power_up(truth, sequence, epoch)
    return e["zero_counts"] + e["zero_drift_counts_per_s"] * true_s


def _true_since_power_up(truth: dict, sequence: np.ndarray, epoch: int) -> np.ndarray:
    ppm = truth["epochs"][epoch]["clock_ppm"]
    return device_times(truth, sequence, epoch) / (1.0 + ppm * 1e-6)
