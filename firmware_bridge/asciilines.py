"""The one ASCII line parser, shared by ASCII devices and force-gauge drivers.

Most hobby sketches print one reading per line and force gauges answer or stream the same
way (``-18.78 lbF``, ``4.285 N``, ``+12.34KT0``). Lines end in CR, LF or CR LF and may arrive
split anywhere. Lines carry no sequence counter or device clock, so gaps cannot be detected
on such a link: the recording says so (link = "ascii" or the gauge's name).

Two parts, each in one place:

- :class:`LineReader` cuts the byte stream into lines and hands each one, decoded and
  stripped, to a parse function; a line it returns None for (or that is not ASCII, or runs
  past ``MAX_LINE`` without an end) is counted as garbage, never fatal.
- :func:`parse_value_unit` turns ``[label:] <value>[ <unit>][ rest]`` into newtons and the
  unit as sent: ``Reading: 8.5 lbs`` (SparkFun's HX711 example), ``one reading:\t12.3\t|
  average:\t12.1`` (bogde's HX711 example), ``12.3 grams``. A line without a number (a boot
  banner such as ``HX711 scale demo``) is not a reading: it is counted and skipped.
- :class:`ColumnFormat` reads CSV/TSV lines (``12345,8.51``): the value from a chosen column
  and, optionally, the device's clock (``millis()`` or ``micros()``) from another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Generic, TypeVar

from schemas.units import NEWTONS_PER_FORCE_UNIT, canonical_unit, newtons_per_unit

MAX_LINE = 128
_LINE_END = re.compile(rb"\r\n|\r|\n")
_NUMBER = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_LABEL = re.compile(r"^[^:=]*[:=]")  # "Reading:", "one reading:", "force ="
_UNIT = re.compile(r"\s*([A-Za-z]+)")
_REST = re.compile(r"\s*(?:$|\|)")  # what may follow a unitless value ("12.3\t| average")
MAX_NEWTONS = 1e6  # larger is not a hand-held force (a millis() count read as a value)
COLUMNS = re.compile(r"\s*[,;\t]\s*")
TIME_UNITS_US = {"ms": 1000.0, "us": 1.0}

ACCEPTED_FORMATS = (
    "accepted lines: '<value>[ <unit>]' (8.51, -18.78 lbF, 12.3 grams), a label first "
    "('Reading: 8.5 lbs', 'one reading:\t12.3\t| average:\t12.1'), or CSV/TSV with "
    "--ascii-column N (and --ascii-time N[:ms|us] for a millis()/micros() column); units: "
    "N, kN, mN, kgf/kg, gf/g/grams, lbf/lb/lbs, ozf/oz; lines without a unit are in "
    "--ascii-unit")

Parsed = TypeVar("Parsed")


def force_factor(unit: str) -> float | None:
    """Newtons per ``unit``, None if it is not a force unit :mod:`schemas.units` knows."""
    try:
        return newtons_per_unit(canonical_unit(unit))
    except ValueError:
        return None


def default_force_factor(unit: str) -> float:
    """Newtons per ``unit``, the unit of readings sent without one; ValueError if unknown."""
    factor = force_factor(unit)
    if factor is None:
        raise ValueError(f"unknown force unit {unit!r} "
                         f"(known: {', '.join(NEWTONS_PER_FORCE_UNIT)})")
    return factor


def parse_value_unit(text: str, default_factor: float) -> tuple[float, str] | None:
    """``[label:|=] <value>[ <unit>][ rest]`` as (newtons, the unit as sent, "" if none);
    None if the line holds no such reading or its unit is not a force unit. After a unit
    anything may follow (``Reading: 0.0 lbs calibration_factor: -7050``); after a bare
    value only ``|``, so neither ``1.2.3`` nor a CSV line (``12345,8.51``: use
    :class:`ColumnFormat`) is read as one value. Beyond ``MAX_NEWTONS`` is not a reading."""
    m = _NUMBER.match(text)
    if m is None:
        label = _LABEL.match(text)
        m = _NUMBER.match(text, label.end()) if label else None
        if m is None:
            return None
    u = _UNIT.match(text, m.end())
    unit = u.group(1) if u else ""
    if unit:
        factor = force_factor(unit)
        rest_ok = u.end() == len(text) or not text[u.end()].isalnum()
    else:
        factor = default_factor
        rest_ok = _REST.match(text, m.end()) is not None
    if factor is None or not rest_ok:
        return None
    newtons = float(m.group(1)) * factor
    return (newtons, unit) if abs(newtons) < MAX_NEWTONS else None


class ColumnFormat:
    """CSV/TSV lines (comma, semicolon or tab): the value in column ``column`` (1-based,
    with or without a unit) and, if ``time_column`` is given, the device's clock there in
    ``time_unit`` ("ms" for ``millis()``, "us" for ``micros()``)."""

    def __init__(self, column: int, time_column: int | None = None,
                 time_unit: str = "ms") -> None:
        if column < 1 or (time_column is not None and time_column < 1):
            raise ValueError("columns are numbered from 1")
        if time_unit not in TIME_UNITS_US:
            raise ValueError(f"device time unit {time_unit!r}: ms or us")
        self.column = column
        self.time_column = time_column
        self.us_per_tick = TIME_UNITS_US[time_unit]

    @classmethod
    def from_options(cls, column: int | None, time: str | None) -> ColumnFormat | None:
        """From ``--ascii-column N`` and ``--ascii-time N[:ms|us]``; None without them."""
        if column is None and time is None:
            return None
        if column is None:
            raise ValueError("--ascii-time needs --ascii-column (the value's column)")
        time_column, unit = None, "ms"
        if time is not None:
            col, _, unit = time.partition(":")
            if not col.isdigit():
                raise ValueError(f"--ascii-time {time!r}: a column number, e.g. 1 or 1:us")
            time_column, unit = int(col), unit or "ms"
        return cls(column, time_column, unit)

    def parse(self, text: str, default_factor: float) -> tuple[float, str, float | None] | None:
        """(newtons, unit as sent, device time in µs or None); None if the line has too
        few columns or they do not hold a reading (a header line)."""
        fields = COLUMNS.split(text.strip())
        needed = max(self.column, self.time_column or 0)
        if len(fields) < needed:
            return None
        value = parse_value_unit(fields[self.column - 1], default_factor)
        if value is None:
            return None
        if self.time_column is None:
            return (*value, None)
        try:
            device_us = float(fields[self.time_column - 1]) * self.us_per_tick
        except ValueError:
            return None
        return (*value, device_us)


class LineReader(Generic[Parsed]):
    """Incremental line splitter: ``feed(chunk)`` returns what ``parse`` made of each
    complete non-blank line and counts ``lines``, ``bad_lines`` and ``garbage_bytes``."""

    def __init__(self, parse: Callable[[str], Parsed | None]) -> None:
        self.parse = parse
        self._partial = b""
        self.lines = 0
        self.bad_lines = 0
        self.garbage_bytes = 0
        self.last_bad = ""  # the latest line counted as garbage, as text (for a message)

    def reset(self) -> None:
        """Forget a half-received line (after a reconnect)."""
        self._partial = b""

    def feed(self, data: bytes) -> list[Parsed]:
        lines = _LINE_END.split(self._partial + data)
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            self._garbage(self._partial)
            self._partial = b""
        parsed: list[Parsed] = []
        for raw in lines:
            if not raw.strip():
                continue
            self.lines += 1
            try:
                item = self.parse(raw.decode("ascii").strip())
            except UnicodeDecodeError:
                item = None
            if item is None:
                self._garbage(raw)
            else:
                parsed.append(item)
        return parsed

    def _garbage(self, raw: bytes) -> None:
        self.last_bad = raw[:MAX_LINE].decode("ascii", "backslashreplace")
        self.bad_lines += 1
        self.garbage_bytes += len(raw)
