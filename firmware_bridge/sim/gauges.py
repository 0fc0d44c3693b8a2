"""Emulators of commercial force gauges, written from their documented serial protocols.

Each emulator is a state machine that :class:`~firmware_bridge.sim.server.PtyServer` serves
on a pseudo-terminal: ``receive(data, t)`` takes host bytes (commands end in CR; LF is
accepted too) and returns the reply bytes; ``output(t, room)`` returns the readings the gauge
sends on its own; ``power_on(t)`` puts it back to its power-on state. The force is
``force(t)`` in newtons (compression positive), ``t`` seconds on the server's clock (world
time, unaffected by power cycles). Every value sent is logged in ``sent`` as
``(t, newtons, line)``, the newtons *as printed* (the printed value times its unit), so
tests can compare what a recorder parsed exactly.
"""

from __future__ import annotations

from collections.abc import Callable

from schemas.units import from_newtons, to_newtons

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

    def _log(self, t: float, printed: str, unit: str, line: bytes) -> bytes:
        """Log ``line``, whose value is ``printed`` (signed text) in ``unit``."""
        self.sent.append((t, to_newtons(float(printed), unit), line))
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
MARK10_MODES = ("CUR", "PT", "PC")
SERIES4_COMMANDS = ("?", "MEM", "STA", "CLRMEM")


class Mark10Emulator(GaugeEmulator):
    """Mark-10 Series 4/5 (user's guides). ``?`` answers the *displayed* reading: the live
    one in ``CUR`` mode, the tension or compression peak in ``PT``/``PC`` mode. Series 5
    also has ``?C`` (live), ``?PT``/``?PC`` (peaks), the mode commands, the unit commands
    (``LB OZ KG G N MN KN``) and ``Z`` (zero, peaks cleared); none of these is answered. A
    Series 4 knows only ``?``, ``MEM``, ``STA``, ``CLRMEM``. Anything else: ``*10``.
    Replies end CR LF. ``numeric_only``: no unit on the wire (a menu setting);
    ``compression_sign=-1``: polarity inverted. ``auto_output_hz`` models the menu setting
    that makes the gauge send readings by itself. Menu settings survive a power cycle; the
    mode, the zero and the peaks do not."""

    name = "mark10"

    def __init__(self, force: Force, *, unit: str = "lbF", compression_sign: int = 1,
                 auto_output_hz: float | None = None, series: int = 5,
                 numeric_only: bool = False, mode: str = "CUR") -> None:
        self.menu_unit = unit
        self.auto_output_hz = auto_output_hz
        self.series = series
        self.numeric_only = numeric_only
        self.menu_mode = mode
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.unit = self.menu_unit
        self.mode = self.menu_mode
        self.zero = 0.0
        self.peak_t = 0.0  # signed newtons as the gauge measures them
        self.peak_c = 0.0
        self._streamer = None
        if self.auto_output_hz:
            self._streamer = _Streamer(self.auto_output_hz, float("-inf"))

    def _measure(self, t: float) -> float:
        newtons = self._sample(t) - self.zero
        self.peak_c = max(self.peak_c, newtons * self.compression_sign)
        self.peak_t = max(self.peak_t, -newtons * self.compression_sign)
        return newtons

    def _line(self, t: float, newtons: float) -> bytes:
        value = f"{from_newtons(newtons, self.unit.lower()):.{MARK10_DECIMALS[self.unit]}f}"
        text = value if self.numeric_only else f"{value} {self.unit}"
        return self._log(t, value, self.unit, text.encode() + b"\r\n")

    def _shown(self, t: float, mode: str) -> bytes:
        """The reading of ``mode``: live, or a peak (its sign as the gauge measures)."""
        live = self._measure(t)
        if mode == "CUR":
            return self._line(t, live)
        peak = self.peak_c if mode == "PC" else -self.peak_t
        return self._line(t, self.compression_sign * peak)

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if self.series == 4 and cmd not in SERIES4_COMMANDS:
            return b"*10\r\n"
        if cmd == "?":
            return self._shown(t, self.mode)
        if cmd in ("?C", "?PT", "?PC"):
            return self._shown(t, {"?C": "CUR", "?PT": "PT", "?PC": "PC"}[cmd])
        if cmd in MARK10_MODES:
            self.mode = cmd
        elif cmd in MARK10_UNITS:
            self.unit = MARK10_UNITS[cmd]
        elif cmd == "Z":
            self.zero += self._measure(t)
            self.peak_t = self.peak_c = 0.0
        elif cmd not in SERIES4_COMMANDS:
            return b"*10\r\n"
        return b""

    def stream(self, t: float) -> bytes:
        if self._streamer is None:
            return b""
        if self._streamer.next_t == float("-inf"):
            self._streamer.next_t = t
        return b"".join(self._shown(ts, self.mode) for ts in self._streamer.due(t))


IMADA_LETTERS = {"lbf": "O", "kgf": "K", "N": "N"}
IMADA_UNIT_COMMANDS = {"N": "N", "K": "kgf"}  # an "O" (lbf) command is not in the drivers


class ImadaEmulator(GaugeEmulator):
    """Imada DS2/DST/DSV as three open drivers describe it: ``D`` CR -> ``+012.34NTO`` CR
    (sign, value, unit letter, mode T real time / P peak, judgement L/O/H from ``low`` and
    ``high`` limits in newtons, E over ``capacity``); ``Z``, ``T``, ``P``, ``N``, ``K``
    answered ``R``; anything else ``E``. ``banner`` sends ``Gauge Started.`` at power-on
    (the USB port opening)."""

    name = "imada"

    def __init__(self, force: Force, *, unit: str = "kgf", mode: str = "T",
                 compression_sign: int = 1, decimals: int = 2,
                 low: float | None = None, high: float | None = None,
                 capacity: float = 500.0, banner: bool = False) -> None:
        self.unit = unit
        self.menu_mode = mode
        self.decimals = decimals
        self.low, self.high = low, high
        self.capacity = capacity
        self.banner = banner
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.mode = self.menu_mode
        self.tare = 0.0
        self.peak = 0.0

    def power_on(self, t: float) -> bytes:
        self._power_on()
        return b"Gauge Started.\r" if self.banner else b""

    def _judge(self, newtons: float) -> str:
        if abs(newtons) > self.capacity:
            return "E"
        if self.low is None or self.high is None:
            return "O"
        return "L" if newtons < self.low else "H" if newtons > self.high else "O"

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if cmd == "D":
            now = self._sample(t) - self.tare
            if abs(now) > abs(self.peak):
                self.peak = now
            newtons = self.peak if self.mode == "P" else now
            value = from_newtons(newtons, self.unit)
            sign = "-" if value < 0 else "+"
            digits = f"{abs(value):0{self.decimals + 4}.{self.decimals}f}"
            line = (f"{sign}{digits}{IMADA_LETTERS[self.unit]}{self.mode}"
                    f"{self._judge(now)}\r").encode()
            return self._log(t, sign + digits, self.unit, line)
        if cmd == "Z":
            self.tare = self._sample(t)
            self.peak = 0.0
        elif cmd in ("T", "P"):
            self.mode = cmd
        elif cmd in IMADA_UNIT_COMMANDS:
            self.unit = IMADA_UNIT_COMMANDS[cmd]
        else:
            return b"E\r"
        return b"R\r"


WAGNER_RATE_COMMANDS = {"C.5": 0.5, "C1": 1.0, "C2": 2.0, "C5": 5.0, "C10": 10.0,
                        "C20": 20.0, "C50": 50.0, "C100": 100.0}


class WagnerEmulator(GaugeEmulator):
    """Wagner FDIX (``model="fdix"``, continuous-output addendum): ``C.5`` ... ``C100`` set
    the rate (no other value), ``CA`` sends every reading, ``CX`` drops those under 2 % of
    ``capacity``, ``CB`` begins and ``CE`` ends; a power cycle loses ``CB`` (and the rate).
    Lines as documented for Force Ten gauges: the sign, or a space for compression, then
    the value and unit (``- 23.02 lbf``), `` Peak`` appended in peak mode (``peak=True``),
    ``HELP`` over ``capacity``. FPX (``model="fpx"``): ``?`` -> ``-d.dd unit``; with
    ``compression_sign=-1`` compression arrives negative. Lines end CR LF; unknown commands
    get no reply (none is documented)."""

    name = "wagner"

    def __init__(self, force: Force, *, model: str = "fdix", unit: str = "lbf",
                 compression_sign: int = 1, decimals: int = 2, capacity: float = 500.0,
                 peak: bool = False) -> None:
        self.model = model
        self.unit = unit
        self.decimals = decimals
        self.capacity = capacity
        self.peak = peak
        super().__init__(force, compression_sign=compression_sign)

    def _power_on(self) -> None:
        super()._power_on()
        self.rate_hz = 10.0
        self.all_readings = False
        self.streaming: _Streamer | None = None
        self.peak_n = 0.0

    def _line(self, t: float) -> bytes:
        newtons = self._sample(t)
        if abs(newtons) > self.capacity:
            return b"HELP\r\n"
        self.peak_n = max(self.peak_n, newtons, key=abs)
        shown = self.peak_n if self.peak else newtons
        value = from_newtons(shown, self.unit)
        sign, digits = "-" if value < 0 else "", f"{abs(value):.{self.decimals}f}"
        if self.model == "fpx":
            text = f"{sign}{digits} {self.unit}"
        else:
            if not self.all_readings and abs(shown) < 0.02 * self.capacity:
                return b""
            text = f"{sign or ' '} {digits} {self.unit}" + (" Peak" if self.peak else "")
        return self._log(t, sign + digits, self.unit, text.encode() + b"\r\n")

    def command(self, text: str, t: float) -> bytes:
        cmd = text.upper()
        if self.model == "fpx":
            return self._line(t) if cmd == "?" else b""
        if cmd == "CB":
            self.streaming = _Streamer(self.rate_hz, t)
        elif cmd == "CE":
            self.streaming = None
        elif cmd in ("CA", "CX"):
            self.all_readings = cmd == "CA"
        elif cmd in WAGNER_RATE_COMMANDS:
            self.rate_hz = WAGNER_RATE_COMMANDS[cmd]
        return b""

    def stream(self, t: float) -> bytes:
        if self.streaming is None:
            return b""
        return b"".join(self._line(ts) for ts in self.streaming.due(t))


# How hobby sketches print a reading: (banner lines, line template, unit the value is in).
# {v} is the value, {ms}/{us} the board's millis()/micros().
SKETCH_FORMATS = {
    "plain": ((), "{v:.3f} N", "N"),
    "sparkfun": (("HX711 scale demo", "Readings:"), "Reading: {v:.1f} lbs", "lbf"),
    "bogde": (("HX711 Demo", "Initializing the scale", "Readings:"),
              "one reading:\t{v:.1f}\t| average:\t{v:.1f}", "gf"),
    "csv": (("millis,kg",), "{ms},{v:.2f}", "kgf"),
    "tsv-micros": ((), "{us}\t{v:.3f}", "N"),
}


class SketchEmulator(GaugeEmulator):
    """An Arduino running a hobby sketch (``SKETCH_FORMATS``): it resets when the port
    opens (here: at power-on), is silent for ``boot_s``, prints its banner, then a reading
    every ``1/rate_hz`` s in its format. Commands are ignored, as a sketch reads none.
    ``sent`` logs the newtons of each value *as printed*, so what a recorder parses can be
    compared exactly."""

    name = "sketch"

    def __init__(self, force: Force, *, fmt: str = "sparkfun", rate_hz: float = 10.0,
                 boot_s: float = 0.5) -> None:
        if fmt not in SKETCH_FORMATS:
            raise ValueError(f"sketch format {fmt!r}: one of {', '.join(SKETCH_FORMATS)}")
        self.fmt = fmt
        self.rate_hz = rate_hz
        self.boot_s = boot_s
        super().__init__(force)

    def _power_on(self) -> None:
        super()._power_on()
        self._booted_at: float | None = None
        self._streamer: _Streamer | None = None

    def power_on(self, t: float) -> bytes:
        self._power_on()
        self._booted_at = t + self.boot_s
        return b""

    def command(self, text: str, t: float) -> bytes:
        return b""

    def stream(self, t: float) -> bytes:
        banner, template, unit = SKETCH_FORMATS[self.fmt]
        if self._booted_at is None or t < self._booted_at:
            return b""
        out = b""
        if self._streamer is None:
            self._streamer = _Streamer(self.rate_hz, self._booted_at)
            out = b"".join(line.encode() + b"\r\n" for line in banner)
        decimals = int(template.split("{v:.", 1)[1].split("f", 1)[0])
        for ts in self._streamer.due(t):
            value = from_newtons(self._sample(ts), unit)
            ms = round((ts - self._booted_at) * 1e3)
            line = template.format(v=value, ms=ms, us=ms * 1000)
            out += self._log(ts, f"{value:.{decimals}f}", unit, line.encode() + b"\r\n")
        return out
