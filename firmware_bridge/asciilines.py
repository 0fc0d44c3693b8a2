"""Plain ASCII line mode: one reading per line, ``<value>[ <unit>]``.

This is what most hobby sketches print and what force gauges send in streaming mode
(``-18.78 lbF``, ``4.285 N``). Lines carry no sequence counter or device clock, so gaps
cannot be detected on this link: the recording says so (link = "ascii").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from schemas.units import NEWTONS_PER_FORCE_UNIT, canonical_unit

MAX_LINE = 128
_LINE = re.compile(rb"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def _force_factor(unit: str) -> float | None:
    try:
        return NEWTONS_PER_FORCE_UNIT[canonical_unit(unit)]
    except (ValueError, KeyError):
        return None


@dataclass
class AsciiReadings:
    force_n: np.ndarray
    units: list[str]  # the unit each reading arrived in ("" = default unit)


class AsciiLineDecoder:
    """Incremental line parser; malformed lines are counted, never fatal."""

    def __init__(self, default_unit: str = "N") -> None:
        factor = _force_factor(default_unit)
        if factor is None:
            raise ValueError(f"unknown force unit {default_unit!r} "
                             f"(known: {', '.join(NEWTONS_PER_FORCE_UNIT)})")
        self.default_factor = factor
        self._partial = b""
        self.lines = 0
        self.bad_lines = 0
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> AsciiReadings:
        text = self._partial + data
        lines = re.split(rb"\r\n|\r|\n", text)
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE:
            self.bad_lines += 1
            self.garbage_bytes += len(self._partial)
            self._partial = b""
        values, units = [], []
        for line in lines:
            if not line.strip():
                continue
            self.lines += 1
            m = _LINE.match(line)
            factor = None
            if m:
                unit = m.group(2).decode()
                factor = self.default_factor if not unit else _force_factor(unit)
            if factor is None:
                self.bad_lines += 1
                self.garbage_bytes += len(line)
                continue
            values.append(float(m.group(1)) * factor)
            units.append(unit)
        return AsciiReadings(np.asarray(values, dtype=np.float64), units)
