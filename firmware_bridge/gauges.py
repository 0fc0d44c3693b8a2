"""Drivers for commercial force gauges and hobby sketches: pure protocol logic, no threads,
no I/O. What each driver does rests on the sources in docs/SOURCES.md ("Gauges and sketches").

The recorder's gauge source (``recorder.source.GaugeSource``) owns the port. What it does
with a driver ``d``:

1. open the port at ``d.baudrate`` and write ``d.start()`` (the gauge's set-up; may be empty);
2. if ``d.poll_interval_s`` is not None (a polled gauge), write ``d.poll()`` every
   ``d.poll_interval_s`` seconds; ``d.pending_replies`` says how many queries are still
   unanswered (skip a poll while it is >= ``d.max_pending`` so queries do not pile up);
   if it is None the gauge streams by itself and the session only reads;
3. pass every chunk read, however split, to ``d.feed(chunk)``; it returns the complete
   readings in newtons, each with the gauge's own unit, mode, judgement and overload, the
   error replies and the notices (never mixed into the readings); then write
   ``d.take_commands()`` (what the driver must answer, e.g. back to live mode);
4. after a reconnect, a gauge power cycle or ``SILENCE_S`` without a reading, write
   ``d.start()`` again (a Wagner FDIX forgets ``CB`` when it loses power) and call
   ``d.reset()`` to drop any half line;
5. on the way out write ``d.stop()`` (may be empty) before closing.

A peak reading is never a live force: a driver that sees one drops it, says so in a notice
and, where the gauge has a command for it, asks for live mode again.

Sign convention: **the recorder stores compression as positive force.** ``invert=True``
negates every value, for a gauge whose polarity is set so that compression is negative (a
Mark-10 with inverted polarity, a Wagner FPX read by a driver that negates). Units come from
the reply or, for replies that carry none, from ``unit`` (required then: a driver never
guesses newtons). Units are converted only through :mod:`schemas.units`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from firmware_bridge.asciilines import (
    ColumnFormat,
    LineReader,
    default_force_factor,
    force_factor,
    parse_value_unit,
)
from schemas.units import newtons_per_unit

SILENCE_S = 2.0  # no reading this long with the port open: the set-up is sent again


@dataclass
class GaugeError:
    code: str  # the reply as the gauge sent it, e.g. "*10"
    message: str  # its meaning where documented, else "error 15"


@dataclass
class GaugeNotice:
    """Something about the gauge the recording should keep: a mode, judgement or overload
    change, a fallback; one line of text."""

    text: str


@dataclass
class Reading:
    newtons: float  # as sent, before ``invert``
    unit: str = ""  # as sent ("lbF", "K", "" = none given)
    mode: str = ""  # "T" real time / "P" peak (Imada), "" if not reported
    judgement: str = ""  # Imada judgement ("L", "O", "H", "E"), else ""
    overload: bool = False
    device_us: float | None = None  # the device's clock, if the line carries it


@dataclass
class GaugeReadings:
    force_n: np.ndarray  # float64 newtons, compression positive
    units: list[str]
    modes: list[str]
    judgements: list[str]
    errors: list[GaugeError] = field(default_factory=list)
    overload: np.ndarray | None = None  # bool per reading; None: all False
    device_us: np.ndarray | None = None  # float64 per reading, None if no line carries it
    notices: list[GaugeNotice] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.force_n)


class _Skip:
    """A line that is a reply or a banner, neither a reading nor garbage."""


SKIP = _Skip()


class GaugeDriver:
    """Base class: feeds the line parser and sorts its lines into readings and errors.

    Subclasses implement ``_parse_line(text)`` returning a :class:`Reading`, a
    :class:`GaugeError`, ``SKIP`` or None for a malformed line (counted as garbage).
    """

    name = "gauge"
    baudrate = 9600
    poll_interval_s: float | None = None
    rate_hz: float | None = None  # a streaming gauge's reading rate, if known
    max_pending = 1

    def __init__(self, *, invert: bool = False, unit: str | None = None,
                 baudrate: int | None = None) -> None:
        self.invert = invert
        self._sign = -1.0 if invert else 1.0
        self.unit = unit
        self._unit_factor = default_force_factor(unit) if unit is not None else None
        if baudrate:
            self.baudrate = baudrate
        self._reader: LineReader[Reading | GaugeError | _Skip] = LineReader(self._parse_line)
        self.error_count = 0
        self.pending_replies = 0
        self.unitless_lines = 0  # replies without a unit while none was given
        self._notices: list[GaugeNotice] = []
        self._in_peak = False  # peak readings arriving: noticed once until a live one
        self._commands = b""

    @property
    def lines(self) -> int:
        return self._reader.lines

    @property
    def bad_lines(self) -> int:
        return self._reader.bad_lines

    @property
    def garbage_bytes(self) -> int:
        return self._reader.garbage_bytes

    @property
    def last_bad_line(self) -> str:
        """The latest line that was not a reading (for a message to the user)."""
        return self._reader.last_bad

    # --- commands -------------------------------------------------------------------
    def start(self) -> bytes:
        return b""

    def poll(self) -> bytes:
        return b""

    def stop(self) -> bytes:
        return b""

    def take_commands(self) -> bytes:
        """What the driver must send in answer to what it read (e.g. back to live mode)."""
        out, self._commands = self._commands, b""
        return out

    def reset(self) -> None:
        """Forget a half-received line and unanswered queries (after a reconnect)."""
        self._reader.reset()
        self.pending_replies = 0

    def _queried(self, query: bytes) -> bytes:
        self.pending_replies += 1
        return query

    def _notice(self, text: str) -> None:
        self._notices.append(GaugeNotice(text))

    # --- parsing --------------------------------------------------------------------
    def _parse_line(self, text: str) -> Reading | GaugeError | _Skip | None:  # pragma: no cover
        raise NotImplementedError

    def _value_unit(self, text: str) -> Reading | None:
        """A ``[label:] <value>[ <unit>]`` line; a unitless one needs ``unit``."""
        parsed = parse_value_unit(text, self._unit_factor or 0.0)
        if parsed is None:
            return None
        if not parsed[1] and self._unit_factor is None:
            self.unitless_lines += 1
            return None
        return Reading(*parsed)

    def feed(self, data: bytes) -> GaugeReadings:
        readings: list[Reading] = []
        errors: list[GaugeError] = []
        for parsed in self._reader.feed(data):
            if isinstance(parsed, _Skip):
                continue
            self.pending_replies = max(0, self.pending_replies - 1)
            if isinstance(parsed, GaugeError):
                self.error_count += 1
                errors.append(parsed)
            elif parsed.mode == "P":
                if not self._in_peak:
                    self._peak_reading()
                self._in_peak = True
            else:
                self._in_peak = False
                readings.append(parsed)
        notices, self._notices = self._notices, []
        return self._readings(readings, errors, notices)

    def _peak_reading(self) -> None:
        """Peak readings began to arrive (they are dropped): subclasses say so, and ask for
        live mode where the gauge has a command for it."""

    def _readings(self, readings: list[Reading], errors: list[GaugeError],
                  notices: list[GaugeNotice]) -> GaugeReadings:
        times = [r.device_us for r in readings]
        return GaugeReadings(
            np.array([self._sign * r.newtons for r in readings], dtype=np.float64),
            [r.unit for r in readings], [r.mode for r in readings],
            [r.judgement for r in readings], errors,
            overload=np.array([r.overload for r in readings], dtype=bool),
            device_us=(np.array(times, dtype=np.float64)
                       if readings and times[0] is not None else None),
            notices=notices)


# Mark-10 error replies (Series 4/5 user's guides)
MARK10_ERRORS = {"10": "illegal command", "11": "not applicable",
                 "12": "invalid specifier", "22": "value too large"}
# unit commands and how the gauge writes each unit
MARK10_UNIT_COMMANDS = {"LB": "lbF", "OZ": "ozF", "KG": "kgF", "G": "gF", "N": "N",
                        "MN": "mN", "KN": "kN"}


class Mark10(GaugeDriver):
    """Mark-10 Series 4/5, polled; commands end in CR, replies in CR LF.

    ``?`` returns the *displayed* reading (the peak when the gauge shows a peak), so on a
    Series 5 the driver asks ``?C`` (the live reading) after ``CUR`` (live mode). A Series 4
    documents only ``?``: when ``?C`` is refused (``*10``) before any reading, the driver
    falls back to ``?`` and notes that the gauge must show the live reading.
    ``streaming=True`` if the gauge is set (in its menu) to send readings on its own.
    ``select_unit`` (``N``, ``LB``...) sends that unit command on start. With the output
    set to "numeric only" the replies carry no unit: ``unit`` must say which.
    """

    name = "mark10"
    baudrate = 9600  # not stated in the guides; open drivers use 9600 or 115200

    def __init__(self, *, streaming: bool = False, select_unit: str | None = None,
                 poll_interval_s: float = 0.02, series: int = 5, **options) -> None:
        super().__init__(**options)
        if select_unit is not None and select_unit.upper() not in MARK10_UNIT_COMMANDS:
            raise ValueError(f"Mark-10 unit command {select_unit!r}: "
                             f"one of {', '.join(MARK10_UNIT_COMMANDS)}")
        if series not in (4, 5):
            raise ValueError(f"Mark-10 series {series}: 4 or 5")
        self.streaming = streaming
        self.select_unit = select_unit
        self.poll_interval_s = None if streaming else poll_interval_s
        self.query = b"?C" if series == 5 else b"?"
        self._answered = False

    def start(self) -> bytes:
        unit = f"{self.select_unit.upper()}\r".encode() if self.select_unit else b""
        return unit + (b"CUR\r" if self.query == b"?C" else b"")

    def poll(self) -> bytes:
        return self._queried(self.query + b"\r")

    def _parse_line(self, text: str):
        if text.startswith("*"):
            code = text[1:].strip()
            if not code.isdigit():
                return None
            if code == "10" and self.query == b"?C" and not self._answered:
                self.query = b"?"
                self._notice("Mark-10 refused ?C and CUR (a Series 4): polling ?, which "
                             "returns the displayed reading: keep the gauge showing the live "
                             "reading, not a peak")
            return GaugeError(text, MARK10_ERRORS.get(code, f"error {code}"))
        reading = self._value_unit(text)
        self._answered |= reading is not None
        return reading


IMADA_UNITS = {"O": "lbf", "K": "kgf", "N": "N"}
IMADA_JUDGEMENTS = {"L": "below the lower limit", "O": "within the limits",
                    "H": "above the upper limit", "E": "overload"}
IMADA_REPLY = re.compile(r"^([+-])(\d+\.?\d*|\.\d+)([OKN])([TP])([0-9LOHE])$")
IMADA_BANNER = "Gauge Started."


class Imada(GaugeDriver):
    """Imada DS2/DST/DSV, polled: ``D`` CR -> ``+012.34NTO`` CR: sign, value, unit letter
    (O lbf, K kgf, N newton), mode (T real time, P peak), judgement (L low, O ok, H high,
    E overload). ``Z``, ``T``, ``P``, ``N``, ``K`` are answered ``R``, a bad command ``E``.
    RS-232C at 19200 baud; the USB port at 256000 with RTS/CTS. ``Gauge Started.`` may
    arrive when the USB port opens. A peak reading makes the driver send ``T``."""

    name = "imada"
    baudrate = 19200

    def __init__(self, *, poll_interval_s: float = 0.02, **options) -> None:
        super().__init__(**options)
        self.poll_interval_s = poll_interval_s
        self._judgement = ""

    def start(self) -> bytes:
        return b"T\r"  # real-time mode: a peak is never recorded as a live force

    def poll(self) -> bytes:
        return self._queried(b"D\r")

    @staticmethod
    def zero() -> bytes:
        return b"Z\r"

    def _peak_reading(self) -> None:
        self._notice("Imada in peak mode: peak readings dropped, real-time mode (T) asked")
        self._commands += b"T\r"

    def _parse_line(self, text: str):
        if text in ("R", IMADA_BANNER):
            return SKIP
        if text == "E":
            return GaugeError("E", "command error")
        m = IMADA_REPLY.match(text)
        if not m:
            return None
        sign, value, letter, mode, judgement = m.groups()
        if judgement != self._judgement and judgement in IMADA_JUDGEMENTS:
            self._notice(f"Imada judgement {judgement}: {IMADA_JUDGEMENTS[judgement]}")
        self._judgement = judgement
        newtons = float(value) * newtons_per_unit(IMADA_UNITS[letter])
        return Reading(-newtons if sign == "-" else newtons, letter, mode, judgement,
                       overload=judgement == "E")


WAGNER_RATES = {0.5: "C.5", 1: "C1", 2: "C2", 5: "C5", 10: "C10", 20: "C20", 50: "C50",
                100: "C100"}
# "-XXXXXX YY Peak" (a space where the sign would be for compression), "- 23.02 lbf"
WAGNER_LINE = re.compile(r"^(-?)\s*(\d+\.?\d*|\.\d+)\s*([A-Za-z]*)\s*(Peak)?$", re.IGNORECASE)


class Wagner(GaugeDriver):
    """Wagner gauges. ``model="fdix"``: continuous output; ``CA`` (every reading, zeros
    included), then the rate (``C.5``, ``C1``, ``C2``, ``C5``, ``C10``, ``C20``, ``C50`` or
    ``C100`` readings/s), then ``CB`` begins and ``CE`` ends. A power cycle loses ``CB``
    while an RS-232 adapter keeps the port open: the source's silence watchdog sends
    ``start()`` again. Lines: ``-XXXXXX YY Peak``, ``- 23.02 lbf``; ``HELP`` on overload.
    ``model="fpx"``: polled at 9600 baud, ``?`` -> ``-d.dd unit``."""

    name = "wagner"
    baudrate = 9600

    def __init__(self, *, model: str = "fdix", rate_hz: float = 100.0,
                 poll_interval_s: float = 0.05, **options) -> None:
        super().__init__(**options)
        model = model.lower()
        if model not in ("fdix", "fpx"):
            raise ValueError(f"unknown Wagner model {model!r} (fdix or fpx)")
        if model == "fdix" and rate_hz not in WAGNER_RATES:
            raise ValueError(f"FDIX rate {rate_hz:g}: one of "
                             f"{', '.join(f'{r:g}' for r in WAGNER_RATES)} readings/s")
        self.model = model
        self.rate_hz = rate_hz if model == "fdix" else None
        self._overloaded = False
        self.poll_interval_s = poll_interval_s if model == "fpx" else None

    def start(self) -> bytes:
        if self.model == "fdix":
            return b"CA\r" + WAGNER_RATES[self.rate_hz].encode() + b"\rCB\r"
        return b""

    def poll(self) -> bytes:
        return self._queried(b"?\r") if self.model == "fpx" else b""

    def stop(self) -> bytes:
        return b"CE\r" if self.model == "fdix" else b""

    def _peak_reading(self) -> None:
        self._notice("Wagner sends peak readings: dropped; set the gauge to live (normal) "
                     "mode")

    def _parse_line(self, text: str):
        if text.upper() == "HELP":
            if not self._overloaded:
                self._notice("Wagner overload (HELP): no readings until the load is lower")
            self._overloaded = True
            return SKIP
        m = WAGNER_LINE.match(text)
        if not m:
            return None
        if self._overloaded:
            self._notice("Wagner overload ended")
        self._overloaded = False
        sign, value, unit, peak = m.groups()
        if unit.lower() == "peak":
            unit, peak = "", unit
        factor = force_factor(unit) if unit else self._unit_factor
        if factor is None:
            self.unitless_lines += not unit
            return None
        newtons = float(value) * factor
        return Reading(-newtons if sign else newtons, unit, "P" if peak else "")


class GenericAscii(GaugeDriver):
    """A hobby sketch or any device streaming one reading per line: ``[label:] <value>[
    <unit>]`` or, with ``columns``, CSV/TSV (the value's column and optionally the device
    clock's). ``unit`` is the unit of lines that give none (``--ascii-unit``)."""

    name = "ascii"
    baudrate = 115200

    def __init__(self, *, columns: ColumnFormat | None = None, unit: str | None = "N",
                 **options) -> None:
        super().__init__(unit=unit, **options)
        self.columns = columns

    def _parse_line(self, text: str) -> Reading | None:
        if self.columns is None:
            return self._value_unit(text)
        parsed = self.columns.parse(text, self._unit_factor or 0.0)
        if parsed is None:
            return None
        newtons, unit, device_us = parsed
        if not unit and self._unit_factor is None:
            return None
        return Reading(newtons, unit, device_us=device_us)


DRIVERS: dict[str, type[GaugeDriver]] = {
    "mark10": Mark10, "imada": Imada, "wagner": Wagner, "ascii": GenericAscii}


def make_driver(name: str, **options) -> GaugeDriver:
    try:
        cls = DRIVERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown gauge {name!r} (known: {', '.join(DRIVERS)})") from None
    return cls(**options)
