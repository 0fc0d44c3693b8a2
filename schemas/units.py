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
# a calibration's reference loads: masses (weighed under standard gravity) or forces
MASS_UNITS = ("g", "kg", "lb", "oz")  # spellings of FORCE_ALIASES
LOAD_UNITS = (*MASS_UNITS, *FORCE_UNITS)


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


def unit_text(unit: str) -> str:
    """A unit as people read it, for every label and value on screen and in reports: a force or
    pressure unit in its canonical spelling with cm² ("n/cm2" -> "N/cm²"), the same per second
    ("kPa/s"); any other unit ("s") as given."""
    base, per_s = (unit[:-2], "/s") if unit.endswith("/s") else (unit, "")
    spellings = (*NEWTONS_PER_FORCE_UNIT, *FORCE_ALIASES, *NEWTONS_PER_CM2, *PRESSURE_ALIASES)
    if base.strip().lower() in {name.lower() for name in spellings}:
        base = canonical_unit(base)
    return base.replace("cm2", "cm²") + per_s


def quantity_name(unit: str) -> str:
    """"pressure" for a pressure unit, "force" for a force unit."""
    return "pressure" if is_pressure(unit) else "force"


def axis_label(unit: str, quantity: str | None = None) -> str:
    """The whole text of an axis title, e.g. "pressure (kPa)" or, with ``quantity``,
    "time since the ramp began (s)". Plots take it as their label text and never as
    pyqtgraph's ``units=``, which adds an SI prefix to the unit (kPa above 1000 became
    "kkPa")."""
    return f"{quantity or quantity_name(unit)} ({unit_text(unit)})"


def value_text(value: float, unit: str, decimals: int = 1) -> str:
    """A value and its unit, e.g. "412 kPa" (``decimals`` 0) or "41.2 N"; "— N" for NaN."""
    if not math.isfinite(value):
        return f"— {unit_text(unit)}"
    return f"{value:.{decimals}f} {unit_text(unit)}"
