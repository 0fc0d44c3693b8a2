"""The one ASCII line parser, shared by ASCII devices and force-gauge drivers.

Most hobby sketches print one reading per line and force gauges answer or stream the same
way (``-18.78 lbF``, ``4.285 N``, ``+12.34KT0``). Lines end in CR, LF or CR LF and may arrive
split anywhere. Lines carry no sequence counter or device clock, so gaps cannot be detected
on such a link: the recording says so (link = "ascii" or the gauge's name).

Two parts, each in one place:

- :class:`LineReader` cuts the byte stream into lines and hands each one, decoded and
  stripped, to a parse function; a line it returns None for (or that is not ASCII, or runs
  past ``MAX_LINE`` without an end) is counted as garbage, never fatal.
- :func:`parse_value_unit` turns ``<value>[ <unit>]`` into newtons and the unit as sent. A new
  line format (issue 11: other hobby sketches) is another such function.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Generic, TypeVar

from schemas.units import NEWTONS_PER_FORCE_UNIT, canonical_unit, newtons_per_unit

MAX_LINE = 128
_LINE_END = re.compile(rb"\r\n|\r|\n")
# "<value>[ <unit>]", e.g. "-18.78 lbF", "4.285 N", "12.34 lbf", "+2e1 gf"
_VALUE_UNIT = re.compile(
    r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")

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
    """``<value>[ <unit>]`` as (newtons, the unit as sent, "" if none); None if the line is
    not that or its unit is not a force unit."""
    m = _VALUE_UNIT.match(text)
    if not m:
        return None
    unit = m.group(2)
    factor = default_factor if not unit else force_factor(unit)
    if factor is None:
        return None
    return float(m.group(1)) * factor, unit


class LineReader(Generic[Parsed]):
    """Incremental line splitter: ``feed(chunk)`` returns what ``parse`` made of each
    complete non-blank line and counts ``lines``, ``bad_lines`` and ``garbage_bytes``."""

    def __init__(self, parse: Callable[[str], Parsed | None]) -> None:
        self.parse = parse
        self._partial = b""
        self.lines = 0
        self.bad_lines = 0
        self.garbage_bytes = 0

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
        self.bad_lines += 1
        self.garbage_bytes += len(raw)
