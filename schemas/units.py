"""The one place that converts force and pressure units.

Everything is stored in newtons; pressure is force over the session's contact area (a 1 cm²
algometer tip, or a measured thumb). Displays, files and reports convert through here and
say which unit they show.
"""

from __future__ import annotations

import math

GRAVITY = 9.80665  # m/s², standard gravity (kgf definition)

NEWTONS_PER_FORCE_UNIT = {
    "N": 1.0,
    "kN": 1000.0,
    "mN": 0.001,
    "kgf": GRAVITY,
    "gf": GRAVITY / 1000.0,
    "lbf": 4.4482216152605,
    "ozf": 4.4482216152605 / 16.0,
}
# the spellings gauges and sketches print: "lbs" and "grams" (HX711 examples), "lbF" (Mark-10)
FORCE_ALIASES = {"kg": "kgf", "kgs": "kgf", "g": "gf", "gram": "gf", "grams": "gf",
                 "lb": "lbf", "lbs": "lbf", "oz": "ozf"}

# pressure unit -> newtons per cm² of one unit
NEWTONS_PER_CM2 = {
    "kPa": 0.1,
    "N/cm2": 1.0,
    "kgf/cm2": GRAVITY,
}
PRESSURE_ALIASES = {"n/cm²": "N/cm2", "kgf/cm²": "kgf/cm2"}

FORCE_UNITS = tuple(NEWTONS_PER_FORCE_UNIT)
PRESSURE_UNITS = tuple(NEWTONS_PER_CM2)
DISPLAY_UNITS = ("N", "kgf", "lbf", *PRESSURE_UNITS)


def canonical_unit(unit: str) -> str:
    """The canonical spelling of a force or pressure unit (case-insensitive input);
    ValueError naming the unit and the known ones otherwise."""
    key = unit.strip()
    for table, aliases in ((NEWTONS_PER_FORCE_UNIT, FORCE_ALIASES),
                           (NEWTONS_PER_CM2, PRESSURE_ALIASES)):
        for name in (*table, *aliases):
            if name.lower() == key.lower():
                return aliases.get(name, name)
    known = ", ".join((*FORCE_UNITS, *PRESSURE_UNITS))
    raise ValueError(f"unknown unit {unit!r} (known: {known})")


def is_pressure(unit: str) -> bool:
    return canonical_unit(unit) in NEWTONS_PER_CM2


def newtons_per_unit(unit: str, area_cm2: float = math.nan) -> float:
    """Newtons that one ``unit`` stands for; a pressure unit needs the contact area."""
    unit = canonical_unit(unit)
    if unit in NEWTONS_PER_FORCE_UNIT:
        return NEWTONS_PER_FORCE_UNIT[unit]
    if not area_cm2 > 0:
        raise ValueError(f"{unit} is a pressure: it needs the contact area (cm²)")
    return NEWTONS_PER_CM2[unit] * area_cm2


def from_newtons(force_n, unit: str, area_cm2: float = math.nan):
    """Force in newtons expressed in ``unit`` (scalars or arrays)."""
    return force_n / newtons_per_unit(unit, area_cm2)


def to_newtons(value, unit: str, area_cm2: float = math.nan):
    """A value in ``unit`` as newtons (scalars or arrays)."""
    return value * newtons_per_unit(unit, area_cm2)
