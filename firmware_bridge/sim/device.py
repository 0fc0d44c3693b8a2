"""The simulated sensor: a protocol-v1 device, as firmware would behave, without the pty.

``SimulatedDevice`` is a pure state machine driven by a device clock: it answers host
commands and produces the sample frames due up to a given device time.
``SimulatedSensor`` is the sensor across power cycles, as :mod:`firmware_bridge.sim.server`
serves it on a pseudo-terminal (with faults).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from firmware_bridge.frames import (
    ACK_BAD_ARGUMENT,
    ACK_OK,
    CMD_IDENTIFY,
    CMD_SET_RATE,
    CMD_START,
    CMD_STOP,
    CMD_TARE,
    FLAG_BUTTON,
    FLAG_SATURATED,
    SAMPLE_FRAME_LEN,
    Ack,
    Command,
    DeviceInfo,
    FrameDecoder,
    encode_ack,
    encode_device_info,
    encode_samples,
)
from firmware_bridge.sim.adc import AdcModel
from firmware_bridge.sim.imperfect import Imperfections, SensorModel, zero_shift_counts
from firmware_bridge.sim.therapist import DEFAULT_TRIGGER_POINTS, Therapist
from schemas.session_protocol import Dose

MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 200_000.0
FIRMWARE_VERSION = "1.0.0"
SENSOR_SIMULATED = 4


@dataclass
class DeviceCounters:
    generated: int = 0  # frames given a sequence number
    sent: int = 0
    dropped_fault: int = 0  # --drop
    dropped_tx_full: int = 0  # the transmit buffer was full


@dataclass
class Grid:
    """A run of the sample grid: sample ``first_sequence + i`` is taken at device time
    ``origin_s + i / rate_hz`` (it restarts at ``start`` and at a rate change)."""

    origin_s: float
    rate_hz: float
    first_sequence: int


class SimulatedDevice:
    """A sensor that streams after ``start`` and answers commands like firmware.

    Times are device seconds since power-up, on the device's own clock, which runs
    ``clock_ppm`` fast against true time (the host's). The therapist's clock (true seconds)
    starts at the first ``start`` (so the first hold is never lost before the host is
    listening) and keeps running across stop/start; it is passed in so that it survives a
    simulated power cycle. The applied force goes through ``sensor`` (creep, hysteresis) and
    the ADC, whose zero is ``zero_counts`` at power-up, drifting ``zero_drift_counts_per_s``.
    """

    def __init__(self, therapist: Therapist, adc: AdcModel, *, rate_hz: float = 1000.0,
                 device_id: str = "SIM-0001", drop: float = 0.0, seed: int = 0,
                 sensor: SensorModel | None = None, zero_counts: float | None = None,
                 zero_drift_counts_per_s: float = 0.0, clock_ppm: float = 0.0) -> None:
        self.therapist = therapist
        self.adc = adc
        self.sensor = sensor if sensor is not None else SensorModel()
        self.zero_counts = adc.offset_counts if zero_counts is None else zero_counts
        self.zero_drift_counts_per_s = zero_drift_counts_per_s
        self.clock_ppm = clock_ppm
        self.grids: list[Grid] = []
        self.rate_hz = float(rate_hz)
        self.device_id = device_id
        self.drop = drop
        self._rng = np.random.default_rng([seed, 7])
        self._decoder = FrameDecoder()
        self.streaming = False
        self.seq = 0
        self._grid_origin = 0.0  # device time of grid index 0
        self._next_index = 0
        self.therapist_offset: float | None = None  # therapist seconds minus device seconds
        self.counters = DeviceCounters()

    def info(self) -> DeviceInfo:
        return DeviceInfo(
            device_id=self.device_id, model="palpation simulator",
            firmware_version=FIRMWARE_VERSION, sensor_kind=SENSOR_SIMULATED,
            adc_bits=self.adc.bits, nominal_rate_hz=self.rate_hz,
            counts_per_newton=self.adc.nominal_counts_per_newton,
        )

    def power_up_message(self) -> bytes:
        return encode_device_info(self.info())

    def receive(self, data: bytes, now: float) -> bytes:
        """Bytes from the host at device time ``now``; returns the replies."""
        out = b""
        for _, msg in self._decoder.feed(data).messages:
            if isinstance(msg, Command):
                out += self._command(msg, now)
        return out

    def _command(self, cmd: Command, now: float) -> bytes:
        if cmd.command == CMD_IDENTIFY:
            return encode_device_info(self.info())
        if cmd.command == CMD_START:
            if not self.streaming:
                self.streaming = True
                self._restart_grid(now)
                if self.therapist_offset is None:
                    self.therapist_offset = -self.true_time(now)
            return encode_ack(Ack(CMD_START, ACK_OK, 0))
        if cmd.command == CMD_STOP:
            self.streaming = False
            return encode_ack(Ack(CMD_STOP, ACK_OK, 0))
        if cmd.command == CMD_SET_RATE:
            if cmd.rate_hz is None or not MIN_RATE_HZ <= cmd.rate_hz <= MAX_RATE_HZ:
                return encode_ack(Ack(CMD_SET_RATE, ACK_BAD_ARGUMENT, 0))
            self.rate_hz = cmd.rate_hz
            self._restart_grid(now)
            return encode_ack(Ack(CMD_SET_RATE, ACK_OK, round(self.rate_hz * 1000)))
        if cmd.command == CMD_TARE:
            return encode_ack(Ack(CMD_TARE, ACK_OK, self._zero_counts(now)))
        return b""

    def _restart_grid(self, now: float) -> None:
        self._grid_origin = now
        self._next_index = 0
        self.sensor.set_rate(self.rate_hz)
        self.grids.append(Grid(now, self.rate_hz, self.seq))

    def true_time(self, device_t: np.ndarray | float) -> np.ndarray | float:
        """True seconds since power-up at device time ``device_t`` (the clock's error out)."""
        return device_t / (1.0 + self.clock_ppm * 1e-6)

    def therapist_time(self, device_t: np.ndarray) -> np.ndarray:
        return self.true_time(device_t) + (self.therapist_offset or 0.0)

    def zero_at(self, device_t: np.ndarray) -> np.ndarray | None:
        """The ADC's zero (counts) at device times ``device_t``; None when it never moves."""
        if self.zero_drift_counts_per_s == 0 and self.zero_counts == self.adc.offset_counts:
            return None
        return self.zero_counts + self.zero_drift_counts_per_s * self.true_time(device_t)

    def _zero_counts(self, now: float) -> int:
        """What the sensor reads right now, averaged: the device's answer to ``tare``."""
        t = now - np.arange(16) / max(self.rate_hz, 1.0)
        force = self.therapist.force(self.therapist_time(t)) if self.streaming else np.zeros(16)
        raw, _ = self.adc.counts(self.sensor.peek(force), np.arange(16) + self.seq,
                                 self.zero_at(t))
        return int(round(float(raw.mean())))

    def _due(self, now: float) -> np.ndarray:
        """Grid indices of the samples taken since the last call, up to device time ``now``."""
        last = math.floor((now - self._grid_origin) * self.rate_hz)
        index = np.arange(self._next_index, max(self._next_index, last + 1), dtype=np.int64)
        self._next_index = max(self._next_index, last + 1)
        return index

    def frames_until(self, now: float, room_bytes: int | None = None) -> bytes:
        """Sample frames due up to device time ``now``. Frames that would overflow
        ``room_bytes`` (the free transmit buffer) are dropped but keep their sequence
        number, as firmware with a full transmit buffer does."""
        if not self.streaming:
            return b""
        index = self._due(now)
        if not len(index):
            return b""
        n = len(index)
        seq = self.seq + np.arange(n, dtype=np.int64)
        self.seq += n
        self.counters.generated += n
        t = self._grid_origin + index / self.rate_hz
        force = self.sensor.reading(self.therapist.force(self.therapist_time(t)))
        raw, saturated = self.adc.counts(force, seq, self.zero_at(t))
        flags = np.where(self.therapist.button(self.therapist_time(t)), FLAG_BUTTON, 0)
        flags = (flags | np.where(saturated, FLAG_SATURATED, 0)).astype(np.uint8)
        keep = np.ones(n, dtype=bool)
        if self.drop > 0:
            keep &= self._rng.random(n) >= self.drop
            self.counters.dropped_fault += int((~keep).sum())
        if room_bytes is not None:
            fit = max(0, room_bytes // SAMPLE_FRAME_LEN)
            over = np.flatnonzero(keep)[fit:]
            keep[over] = False
            self.counters.dropped_tx_full += len(over)
        self.counters.sent += int(keep.sum())
        tick = np.round(t * 1e6).astype(np.int64)
        return encode_samples(seq[keep], tick[keep], raw[keep], flags[keep])


class AsciiDevice(SimulatedDevice):
    """The same sensor as a hobby sketch would print it: ``<newtons> N`` lines from power-up,
    scaled with the factory calibration, no sequence numbers, no commands."""

    def __init__(self, therapist: Therapist, adc: AdcModel, **kw) -> None:
        super().__init__(therapist, adc, **kw)
        self.streaming = True
        self.therapist_offset = 0.0
        self._restart_grid(0.0)

    def power_up_message(self) -> bytes:
        return b""

    def receive(self, data: bytes, now: float) -> bytes:
        return b""

    def frames_until(self, now: float, room_bytes: int | None = None) -> bytes:
        index = self._due(now)
        if not len(index):
            return b""
        self.counters.generated += len(index)
        t = self._grid_origin + index / self.rate_hz
        force = self.sensor.reading(self.therapist.force(self.therapist_time(t)))
        raw, _ = self.adc.counts(force, index, self.zero_at(t))
        newtons = (raw - self.adc.nominal_offset_counts) / self.adc.nominal_counts_per_newton
        lines = [f"{v:.3f} N\r\n".encode() for v in newtons.tolist()]
        if room_bytes is not None:
            sizes = np.cumsum([len(line) for line in lines])
            fit = int(np.searchsorted(sizes, room_bytes, side="right"))
            self.counters.dropped_tx_full += len(lines) - fit
            lines = lines[:fit]
        self.counters.sent += len(lines)
        return b"".join(lines)


class SimulatedSensor:
    """One simulated sensor across power cycles: the same therapist, the same ADC (so the
    same unknown scale) and the same sensing element (its creep), a fresh device state
    machine at each power-up, whose zero has shifted (``imperfections``).

    It is what :class:`~firmware_bridge.sim.server.PtyServer` serves: times given to it are
    seconds on the server's clock, each device counts its own from its power-up on its own
    clock. The therapist's clock runs on across power cycles (she does not stop when the
    cable does).
    """

    name = "simulator"

    def __init__(self, *, profile: str = "expert", rate_hz: float = 1000.0, seed: int = 0,
                 drop: float = 0.0, device_id: str = "SIM-0001", ascii: bool = False,
                 dose: Dose | None = None, trigger_points=DEFAULT_TRIGGER_POINTS,
                 contact_area_cm2: float | None = None, load: AppliedLoad | None = None,
                 imperfections: Imperfections | None = None) -> None:
        self.therapist = load if load is not None else Therapist(
            profile, dose=dose, seed=seed, trigger_points=trigger_points,
            contact_area_cm2=contact_area_cm2)
        self.adc = AdcModel(seed=seed)
        self.imperfections = imperfections or Imperfections()
        self.sensor = SensorModel(self.imperfections.sensor, self.imperfections.creep, rate_hz)
        self.rate_hz = rate_hz
        self.seed = seed
        self.drop = drop
        self.device_id = device_id
        self.device_class = AsciiDevice if ascii else SimulatedDevice
        self.devices: list[SimulatedDevice] = []
        self.powered_at: list[float] = []  # server time of each device's power-up
        self._powered_at = 0.0  # server time of the present device's power-up

    def make_device(self) -> SimulatedDevice:
        imp, cpn, epoch = self.imperfections, self.adc.counts_per_newton, len(self.devices)
        device = self.device_class(
            self.therapist, self.adc, rate_hz=self.rate_hz, device_id=self.device_id,
            drop=self.drop, seed=self.seed + epoch, sensor=self.sensor,
            zero_counts=self.adc.offset_counts + zero_shift_counts(self.seed, epoch,
                                                                   imp.zero_shift_n, cpn),
            zero_drift_counts_per_s=imp.thermal_drift_n_per_min * cpn / 60.0,
            clock_ppm=imp.clock_ppm)
        self.devices.append(device)
        return device

    def _device_time(self, now: float) -> float:
        """The present device's clock at server time ``now``."""
        return (now - self._powered_at) * (1.0 + self.imperfections.clock_ppm * 1e-6)

    @property
    def tick_s(self) -> float:
        return min(0.05, max(0.002, 1.0 / self.devices[-1].rate_hz))

    def power_on(self, now: float) -> bytes:
        """A fresh device, its therapist carrying on where the last one's was."""
        last = self.devices[-1] if self.devices else None
        device = self.make_device()
        if last is not None and last.therapist_offset is not None:
            therapist_origin = self._powered_at - last.therapist_offset
            device.therapist_offset = now - therapist_origin
        self._powered_at = now
        self.powered_at.append(now)
        return device.power_up_message()

    def receive(self, data: bytes, now: float) -> bytes:
        return self.devices[-1].receive(data, self._device_time(now))

    def output(self, now: float, room: int) -> bytes:
        return self.devices[-1].frames_until(self._device_time(now), room)

    def totals(self) -> dict[str, int]:
        """The devices' counters summed over power cycles (empty before the first)."""
        totals: dict[str, int] = {}
        for device in self.devices:
            for key, value in asdict(device.counters).items():
                totals[key] = totals.get(key, 0) + value
        return totals

    def truth(self, server_t0: float = 0.0) -> dict:
        """The therapist's ground truth (none under a fixed load) plus how to line it up with
        a recording: therapist time t is device tick ``therapist_origin_tick_us`` + t·10⁶ of
        the first power-up (with an exact device clock), and ``epochs``, one per power-up
        (see :mod:`firmware_bridge.sim.truth`; ``server_t0`` is the server's clock origin
        on ``time.monotonic()``)."""
        offset = self.devices[0].therapist_offset if self.devices else None
        return {
            **(self.therapist.truth_dict() if isinstance(self.therapist, Therapist) else {}),
            "rate_hz": self.rate_hz,
            "adc": {"offset_counts": self.adc.offset_counts,
                    "counts_per_newton": self.adc.counts_per_newton,
                    "nominal_counts_per_newton": self.adc.nominal_counts_per_newton,
                    "noise_counts": self.adc.noise_counts, "bits": self.adc.bits},
            "therapist_origin_tick_us": None if offset is None else round(-offset * 1e6),
            "imperfections": self.imperfections.as_dict(),
            "epochs": [_epoch_truth(d, server_t0 + at)
                       for d, at in zip(self.devices, self.powered_at, strict=True)],
        }


def _epoch_truth(device: SimulatedDevice, power_up_monotonic: float) -> dict:
    """One power-up's truth: its clock, its sample grids, its zero, its therapist offset."""
    return {"power_up_monotonic": power_up_monotonic, "clock_ppm": device.clock_ppm,
            "grids": [asdict(g) for g in device.grids],
            "zero_counts": device.zero_counts,
            "zero_drift_counts_per_s": device.zero_drift_counts_per_s,
            "therapist_offset_s": device.therapist_offset}


class AppliedLoad:
    """A known, steady load on the simulated sensor instead of a therapist: what a person
    calibrating puts on it (masses, a reference gauge). Set ``force_n`` between readings."""

    def __init__(self, force_n: float = 0.0) -> None:
        self.force_n = force_n

    def force(self, t) -> np.ndarray:
        return np.full(np.shape(t), self.force_n, dtype=np.float64)

    def button(self, t) -> np.ndarray:
        return np.zeros(np.shape(t), dtype=bool)
