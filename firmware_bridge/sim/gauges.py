"""Emulators of commercial force gauges, written from their documented serial protocols.

Each emulator is a state machine that :class:`~firmware_bridge.sim.server.PtyServer` serves
on a pseudo-terminal: ``receive(data, t)`` takes host bytes (commands end in CR; LF is
accepted too) and returns the reply bytes; ``output(t, room)`` returns the readings the gauge
sends on its own; ``power_on(t)`` puts it back to its power-on state. The force is
``force(t)`` in newtons (compression positive), ``t`` seconds on the server's clock (world
time, unaffected by power cycles). Every value sent is logged in ``sent`` as
``(t, newtons_sampled, line)`` so tests can compare what arrived with what was meant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from schemas.units import from_newtons

Force = Callable[[float], float]


class GaugeEmulator:
    name = "gauge"
    tick_s = 0.002

    def __init__(self, force: Force, *, compression_sign: int = 1) -> None:
        self.force = force
        self.compression_sign = compression_sign  # +1: compression sent as positive
        self.sent: list[tuple[float, float, bytes]] = []
        self.commands: list[str] = []
        self._cmd = b""
        self._power_on()

    def _power_on(self) -> None:
        self._cmd = b""

    def power_on(self, t: float) -> bytes:
        """Back to the power-on state; a gauge says nothing when it powers up."""
        self._power_on()
        return b""

    def receive(self, data: bytes, t: float) -> bytes:
        out = b""
        buf = self._cmd + data
        while True:
            cut = min((i for i in (buf.find(b"\r"), buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                break
            cmd, buf = buf[:cut], buf[cut + 1:]
            text = cmd.decode("ascii", "replace").strip()
            if text:
                self.commands.append(text)
                out += self.command(text, t)
        self._cmd = buf[-64:]
        return out

    def command(self, text: str, t: float) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def stream(self, t: float) -> bytes:
        return b""

    def output(self, t: float, room: int) -> bytes:
        """The readings streamed up to ``t``; whole lines that do not fit in ``room`` are
        lost, as from a UART whose host is not reading."""
        data = self.stream(t)
        if len(data) <= room:
            return data
        return data[:data.rfind(b"\n", 0, room) + 1]

    def _sample(self, t: float) -> float:
        return self.compression_sign * float(self.force(t))

    def _log(self, t: float, newtons: float, line: bytes) -> bytes:
        self.sent.append((t, newtons, line))
        return line


class _Streamer:
    """Emits readings at ``rate_hz`` on a fixed grid from ``t0``; never bursts more than 1 s."""

    def __init__(self, rate_hz: float, t0: float) -> None:
        self.period = 1.0 / rate_hz
        self.next_t = t0

    def due(self, t: float) -> list[float]:
        times = []
        if t - self.next_t > 1.0:
            self.next_t = t - 1.0
        while self.next_t <= t:
            times.append(self.next_t)
            self.next_t += self.period
        return times


# Mark-10 unit commands and how each unit is written on the wire.
MARK10_UNITS = {"N": "N", "LB": "lbF", "KG": "kgF", "G": "gF", "OZ": "ozF", "KN": "kN",
                "MN": "mN"}
MARK10_DECIMALS = {"N": 3, "lbF": 2, "kgF": 3, "gF": 0, "ozF": 1, "kN": 4, "mN": 0}


class Mark10Emulator(GaugeEmulator):
    """Mark-10 Series 4/5: ``?``/``?C`` current, ``?PT``/``?PC`` tension/compression peaks,
    unit commands (``N``, ``LB``, ``KG``...; no reply), ``*10`` for unknown commands.
    ``auto_output_hz`` models the menu setting that makes the gauge send readings by itself
    (stored in the gauge, so it survives a power cycle); a power cycle brings the gauge back
    idle in its menu unit with peaks cleared."""

    name = "mark10"

    def __init__(self, force: Force, *, unit: str = "lbF", compression_sign: int = 1,
                 auto_output_hz: float | None = None) -> None:
        self.menu_unit = unit
        self.auto_output_hz = auto_output_hz
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.unit = self.menu_unit
        self.peak_t = 0.0  # signed newtons as the gauge measures them
        self.peak_c = 0.0
        self._streamer = None
        if self.auto_output_hz:
            self._streamer = _Streamer(self.auto_output_hz, float("-inf"))

    def _measure(self, t: float) -> float:
        newtons = self._sample(t)
        self.peak_c = max(self.peak_c, newtons * self.compression_sign)
        self.peak_t = max(self.peak_t, -newtons * self.compression_sign)
        return newtons

    def _line(self, t: float, newtons: float | None = None) -> bytes:
        if newtons is None:
            newtons = self._measure(t)
        value = from_newtons(newtons, self.unit.lower())
        text = f"{value:.{MARK10_DECIMALS[self.unit]}f} {self.unit}\r\n".encode()
        return self._log(t, newtons, text)

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if cmd in ("?", "?C"):
            return self._line(t)
        if cmd in ("?PT", "?PC"):
            self._measure(t)  # peaks include the present value
            peak = self.peak_c if cmd == "?PC" else -self.peak_t
            return self._line(t, self.compression_sign * peak)
        if cmd in MARK10_UNITS:
            self.unit = MARK10_UNITS[cmd]
            return b""
        return b"*10\r\n"

    def stream(self, t: float) -> bytes:
        if self._streamer is None:
            return b""
        if self._streamer.next_t == float("-inf"):
            self._streamer.next_t = t
        return b"".join(self._line(ts) for ts in self._streamer.due(t))


IMADA_LETTERS = {"lbf": "O", "kgf": "K", "N": "N"}


class ImadaEmulator(GaugeEmulator):
    """Imada DS2/DST/ZTA: ``D`` -> ``+12.34KT0`` CR; ``Z`` zeroes (no reply); ``E`` CR for an
    unknown command (an assumption: our documentation does not give that reply).
    ``mode`` T (real time) or P (peak); judgement from ``low``/``high`` limits in newtons
    (L below, O inside, H above), ``0`` when no limits are set."""

    name = "imada"

    def __init__(self, force: Force, *, unit: str = "kgf", mode: str = "T",
                 compression_sign: int = 1, decimals: int = 2,
                 low: float | None = None, high: float | None = None) -> None:
        self.unit = unit
        self.mode = mode
        self.decimals = decimals
        self.low, self.high = low, high
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.tare = 0.0
        self.peak = 0.0

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if cmd == "D":
            now = self._sample(t) - self.tare
            if abs(now) > abs(self.peak):
                self.peak = now
            newtons = self.peak if self.mode == "P" else now
            value = from_newtons(newtons, self.unit)
            judge = "0"
            if self.low is not None and self.high is not None:
                judge = "L" if newtons < self.low else "H" if newtons > self.high else "O"
            sign = "-" if value < 0 else "+"
            line = (f"{sign}{abs(value):.{self.decimals}f}{IMADA_LETTERS[self.unit]}"
                    f"{self.mode}{judge}\r").encode()
            return self._log(t, newtons, line)
        if cmd == "Z":
            self.tare = self._sample(t)
            self.peak = 0.0
            return b""
        return b"E\r"


class WagnerEmulator(GaugeEmulator):
    """Wagner FDIX (``model="fdix"``): ``C<rate>`` sets 0.5-100 readings/s, ``CB`` begins
    continuous output, ``CE`` ends it; a power cycle loses streaming (rate back to default).
    FPX (``model="fpx"``): ``?`` -> ``12.34 lbf``. Lines end CR LF. Unknown commands are
    ignored (no documented reply)."""

    name = "wagner"

    def __init__(self, force: Force, *, model: str = "fdix", unit: str = "lbf",
                 compression_sign: int = 1, decimals: int = 2) -> None:
        self.model = model
        self.unit = unit
        self.decimals = decimals
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.rate_hz = 10.0
        self.streaming: _Streamer | None = None

    def _line(self, t: float) -> bytes:
        newtons = self._sample(t)
        value = from_newtons(newtons, self.unit)
        return self._log(t, newtons, f"{value:.{self.decimals}f} {self.unit}\r\n".encode())

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if self.model == "fpx":
            return self._line(t) if cmd == "?" else b""
        if cmd == "CB":
            self.streaming = _Streamer(self.rate_hz, t)
        elif cmd == "CE":
            self.streaming = None
        elif cmd.startswith("C"):
            with contextlib.suppress(ValueError):
                rate = float(cmd[1:])
                if 0.5 <= rate <= 100:
                    self.rate_hz = rate
        return b""

    def stream(self, t: float) -> bytes:
        if self.streaming is None:
            return b""
        return b"".join(self._line(ts) for ts in self.streaming.due(t))
