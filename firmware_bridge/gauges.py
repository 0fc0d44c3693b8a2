"""Drivers for commercial force gauges: pure protocol logic, no threads, no I/O.

The recorder's session owns the port. What it does with a driver ``d``:

1. open the port at ``d.baudrate`` and write ``d.start()`` (may be empty);
2. if ``d.poll_interval_s`` is not None (a polled gauge), write ``d.poll()`` every
   ``d.poll_interval_s`` seconds; ``d.pending_replies`` says how many queries are still
   unanswered (skip a poll while it is >= ``d.max_pending`` so queries do not pile up);
   if it is None the gauge streams by itself and the session only reads;
3. pass every chunk read, however split, to ``d.feed(chunk)``; it returns the complete
   readings in newtons, each with the gauge's own unit, mode and judgement, and the error
   replies (never mixed into the readings);
4. after a reconnect or a gauge power cycle, write ``d.start()`` again (a Wagner FDIX stops
   streaming when it loses power) and call ``d.reset()`` to drop any half line;
5. on the way out write ``d.stop()`` (may be empty) before closing.

Lines are cut and counted by the one line parser, :mod:`firmware_bridge.asciilines`; a
driver only says what one line means.

Sign convention: **the recorder stores compression as positive force.** Each driver takes
``compression_positive`` (default True): True means the gauge already reports compression
as positive and values pass through; False means the gauge reports compression as
negative (e.g. a gauge whose polarity is set that way) and the driver negates every value.
Units are converted only through :mod:`schemas.units`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.asciilines import LineReader, default_force_factor, parse_value_unit
from schemas.units import newtons_per_unit


@dataclass
class GaugeError:
    code: str  # the reply as the gauge sent it, e.g. "*10"
    message: str  # its meaning where documented, else "error 15"


@dataclass
class GaugeReadings:
    force_n: np.ndarray  # float64 newtons, compression positive
    units: list[str]  # the gauge's own unit per reading as sent ("lbF", "K", "" = default)
    modes: list[str]  # per reading: "T" real time / "P" peak (Imada), "" if not reported
    judgements: list[str]  # per reading: Imada judgement ("0", "L", "O", "H", "E"), else ""
    errors: list[GaugeError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.force_n)


Reading = tuple[float, str, str, str]  # newtons as sent, unit, mode, judgement


class GaugeDriver:
    """Base class: feeds the line parser and sorts its lines into readings and errors.

    Subclasses implement ``_parse_line(text) -> (newtons_as_sent, unit, mode, judgement)``
    or a :class:`GaugeError`, or None for a malformed line (counted as garbage).
    """

    name = "gauge"
    baudrate = 9600
    poll_interval_s: float | None = None
    max_pending = 1

    def __init__(self, *, compression_positive: bool = True) -> None:
        self.compression_positive = compression_positive
        self._sign = 1.0 if compression_positive else -1.0
        self._reader: LineReader[Reading | GaugeError] = LineReader(self._parse_line)
        self.error_count = 0
        self.pending_replies = 0

    @property
    def lines(self) -> int:
        return self._reader.lines

    @property
    def bad_lines(self) -> int:
        return self._reader.bad_lines

    @property
    def garbage_bytes(self) -> int:
        return self._reader.garbage_bytes

    # --- commands -------------------------------------------------------------------
    def start(self) -> bytes:
        return b""

    def poll(self) -> bytes:
        return b""

    def stop(self) -> bytes:
        return b""

    def reset(self) -> None:
        """Forget a half-received line and unanswered queries (after a reconnect)."""
        self._reader.reset()
        self.pending_replies = 0

    def _queried(self, query: bytes) -> bytes:
        self.pending_replies += 1
        return query

    # --- parsing --------------------------------------------------------------------
    def _parse_line(self, text: str) -> Reading | GaugeError | None:  # pragma: no cover
        raise NotImplementedError

    def feed(self, data: bytes) -> GaugeReadings:
        values: list[float] = []
        units: list[str] = []
        modes: list[str] = []
        judgements: list[str] = []
        errors: list[GaugeError] = []
        for parsed in self._reader.feed(data):
            self.pending_replies = max(0, self.pending_replies - 1)
            if isinstance(parsed, GaugeError):
                self.error_count += 1
                errors.append(parsed)
                continue
            newtons, unit, mode, judgement = parsed
            values.append(self._sign * newtons)
            units.append(unit)
            modes.append(mode)
            judgements.append(judgement)
        return GaugeReadings(np.asarray(values, dtype=np.float64), units, modes, judgements,
                             errors)


def _value_unit(text: str, default_factor: float) -> Reading | None:
    """A ``<value>[ <unit>]`` line as a reading with no mode or judgement."""
    parsed = parse_value_unit(text, default_factor)
    return None if parsed is None else (*parsed, "", "")


# Mark-10 error replies. Only *10 (an unknown/illegal command) is described in what we have
# of the documentation; the others are reported by number rather than guessed at.
MARK10_ERRORS = {"10": "illegal command"}


class Mark10(GaugeDriver):
    """Mark-10 Series 4/5. Polled: ``?`` CR -> ``-18.78 lbF`` CR LF (or ``4.285 N``).

    ``streaming=True`` if the gauge is set (in its menu) to send readings on its own: then
    nothing is polled. ``select_newtons=True`` sends ``N`` on start so the gauge reports in
    newtons; by default the gauge's unit is kept and recorded per reading.
    ``query`` may be ``b"?"`` / ``b"?C"`` (current), ``b"?PT"`` / ``b"?PC"`` (peaks).
    """

    name = "mark10"
    baudrate = 9600

    def __init__(self, *, compression_positive: bool = True, streaming: bool = False,
                 select_newtons: bool = False, poll_interval_s: float = 0.02,
                 query: bytes = b"?", default_unit: str = "N") -> None:
        super().__init__(compression_positive=compression_positive)
        self.streaming = streaming
        self.select_newtons = select_newtons
        self.poll_interval_s = None if streaming else poll_interval_s
        self.query = query
        self._default_factor = default_force_factor(default_unit)

    def start(self) -> bytes:
        return b"N\r" if self.select_newtons else b""

    def poll(self) -> bytes:
        return self._queried(self.query + b"\r")

    def _parse_line(self, text: str):
        if text.startswith("*"):
            code = text[1:].strip()
            if not code.isdigit():
                return None
            return GaugeError(text, MARK10_ERRORS.get(code, f"error {code}"))
        return _value_unit(text, self._default_factor)


IMADA_UNITS = {"O": "lbf", "K": "kgf", "N": "N"}
_IMADA = re.compile(r"^([+-])(\d+\.?\d*|\.\d+)([OKN])([TP])([0-9A-Z])$")


class Imada(GaugeDriver):
    """Imada DS2/DST/ZTA, 19200 baud. ``D`` CR -> ``+12.34KT0`` CR: sign, value, unit letter
    (O lbf, K kgf, N newton), mode (T real time, P peak), judgement (digit, or L/O/H/E).
    ``zero()`` gives the ``Z`` CR command. A bare ``E`` line is taken as a command error
    (an assumption: the reply to a bad command is not in our documentation)."""

    name = "imada"
    baudrate = 19200

    def __init__(self, *, compression_positive: bool = True,
                 poll_interval_s: float = 0.02) -> None:
        super().__init__(compression_positive=compression_positive)
        self.poll_interval_s = poll_interval_s

    def poll(self) -> bytes:
        return self._queried(b"D\r")

    @staticmethod
    def zero() -> bytes:
        return b"Z\r"

    def _parse_line(self, text: str):
        if text == "E":
            return GaugeError("E", "command error")
        m = _IMADA.match(text)
        if not m:
            return None
        sign, value, letter, mode, judgement = m.groups()
        newtons = float(value) * newtons_per_unit(IMADA_UNITS[letter])
        return (-newtons if sign == "-" else newtons), letter, mode, judgement


class Wagner(GaugeDriver):
    """Wagner algometers. ``model="fdix"``: continuous output, ``C<rate>`` CR sets the rate
    (0.5-100 readings/s), ``CB`` CR begins, ``CE`` CR ends; streaming is lost when the gauge
    loses power, so ``start()`` must be re-sent after a power cycle. ``model="fpx"``:
    polled, ``?`` -> ``12.34 lbf``."""

    name = "wagner"
    baudrate = 9600

    def __init__(self, *, model: str = "fdix", rate_hz: float = 100.0,
                 compression_positive: bool = True, poll_interval_s: float = 0.05,
                 default_unit: str = "lbf") -> None:
        super().__init__(compression_positive=compression_positive)
        model = model.lower()
        if model not in ("fdix", "fpx"):
            raise ValueError(f"unknown Wagner model {model!r} (fdix or fpx)")
        if model == "fdix" and not 0.5 <= rate_hz <= 100:
            raise ValueError(f"FDIX rate {rate_hz} outside 0.5-100 readings/s")
        self.model = model
        self.rate_hz = rate_hz
        self.poll_interval_s = poll_interval_s if model == "fpx" else None
        self._default_factor = default_force_factor(default_unit)

    def start(self) -> bytes:
        if self.model == "fdix":
            return f"C{self.rate_hz:g}\r".encode() + b"CB\r"
        return b""

    def poll(self) -> bytes:
        return self._queried(b"?\r") if self.model == "fpx" else b""

    def stop(self) -> bytes:
        return b"CE\r" if self.model == "fdix" else b""

    def _parse_line(self, text: str):
        return _value_unit(text, self._default_factor)


class GenericAscii(GaugeDriver):
    """Any device streaming ``<value>[ <unit>]`` lines (a hobby sketch, a gauge's plain
    output); ``default_unit`` is the unit of lines that give none."""

    name = "ascii"
    baudrate = 115200

    def __init__(self, *, default_unit: str = "N", compression_positive: bool = True,
                 baudrate: int = 115200) -> None:
        super().__init__(compression_positive=compression_positive)
        self.baudrate = baudrate
        self._default_factor = default_force_factor(default_unit)

    def _parse_line(self, text: str) -> Reading | None:
        return _value_unit(text, self._default_factor)


DRIVERS: dict[str, type[GaugeDriver]] = {
    "mark10": Mark10, "imada": Imada, "wagner": Wagner, "ascii": GenericAscii}


def make_driver(name: str, **options) -> GaugeDriver:
    try:
        cls = DRIVERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown gauge {name!r} (known: {', '.join(DRIVERS)})") from None
    return cls(**options)
