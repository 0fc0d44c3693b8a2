"""The one formatter of units for people (schemas/units.py): every label and value on screen
and in reports is written by it, so a unit reads the same everywhere and never gains an SI
prefix (pyqtgraph's units= turned kPa into "kkPa" above 1000)."""

from __future__ import annotations

import math

import pytest

from schemas.units import DISPLAY_UNITS, axis_label, quantity_name, unit_text, value_text


@pytest.mark.parametrize(("unit", "text"), [
    ("kPa", "kPa"), ("kpa", "kPa"), ("N/cm2", "N/cm²"), ("n/cm²", "N/cm²"),
    ("kgf/cm2", "kgf/cm²"), ("lbs", "lbf"), ("N", "N"), ("kPa/s", "kPa/s"),
    ("N/cm2/s", "N/cm²/s"), ("s", "s"),
])
def test_unit_text(unit, text):
    assert unit_text(unit) == text


def test_axis_labels_name_the_quantity_and_never_prefix():
    assert axis_label("kPa") == "pressure (kPa)"
    assert axis_label("kgf/cm2") == "pressure (kgf/cm²)"
    assert axis_label("N") == "force (N)"
    assert axis_label("s", "time since the ramp began") == "time since the ramp began (s)"
    for unit in DISPLAY_UNITS:
        assert axis_label(unit).startswith(quantity_name(unit) + " (")
        assert "kk" not in axis_label(unit)


def test_value_text():
    assert value_text(412.4, "kPa", 0) == "412 kPa"
    assert value_text(41.25, "N") == "41.2 N"
    assert value_text(48.0, "kPa/s", 0) == "48 kPa/s"
    assert value_text(math.nan, "N/cm2") == "— N/cm²"
