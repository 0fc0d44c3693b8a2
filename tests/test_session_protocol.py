"""Session protocols: presets, unit conversion of doses, round trip, and errors that point
at the line to fix."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from schemas.session_protocol import (
    Dose,
    ProtocolError,
    SessionProtocol,
    TriggerPoint,
    list_presets,
    load_preset,
    load_protocol,
    resolve_protocol,
)
from schemas.units import GRAVITY
from tests.conftest import run_palpation

ROOT = Path(__file__).parents[1]
PRESETS = ("ischemic", "nmt-anchored", "nmt-static", "nmt-training", "ppt-ramp")
MUSCLES = ("upper trapezius", "levator scapulae", "infraspinatus", "quadratus lumborum",
           "gluteus medius", "piriformis")

# A small protocol; the line numbers in the comments are the ones the error tests rely on.
BASE = """\
name = "Neck drill"
kind = "static"
unit = "N"

[dose]
target_low = 10
target_high = 20
min_hold_s = 8
max_hold_s = 20

[[point]]
muscle = "upper trapezius"
side = "left"

[[point]]
muscle = "upper trapezius"
side = "right"
target_high = 25

[[point]]
muscle = "levator scapulae"
side = "left"
target_low = 12
"""
# lines: 1 name, 3 unit, 5 [dose], 6 target_low, 7 target_high, 8 min_hold_s, 11 [[point]] 1,
# 15 [[point]] 2, 16 muscle, 17 side, 18 target_high, 20 [[point]] 3, 23 target_low


def edit(old: str, new: str, count: int = 1) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, count)


# ------------------------------------------------------------------------------- presets

def test_presets_are_listed_with_one_line_descriptions():
    listed = list_presets()
    assert [pid for pid, _ in listed] == sorted(PRESETS)
    for _, description in listed:
        assert description and "\n" not in description


@pytest.mark.parametrize("preset_id", PRESETS)
def test_each_preset_has_the_twelve_points(preset_id):
    protocol = load_preset(preset_id)
    assert len(protocol.points) == 12
    expected = [f"{m} {s}" for m in MUSCLES for s in ("L", "R")]
    assert [p.label for p in protocol.points] == expected
    assert [p.side for p in protocol.points] == ["left", "right"] * 6
    for point in protocol.points:
        assert point.muscle and point.note
        assert point.dose.unit == protocol.unit
        assert point.dose.stop_on_button  # the client/subject can always end it
    assert protocol.points[0].muscle == "trapezius (upper fibres)"


@pytest.mark.parametrize("preset_id, sources", [
    ("nmt-static", ["6 on a 1-10", "8-20 s", "Travell/Simons", "STAND-IN"]),
    ("ischemic", ["Travell/Simons", "Hodgson & Fryer 2006", "Hou et al. 2002", "STAND-IN"]),
    ("ppt-ramp", ["DFNS", "Rolke 2006", "50 kPa/s"]),
    ("nmt-training", ["Aoyagi et al. 2019", "J Phys Ther Sci", "nmt-static", "pre-test"]),
])
def test_presets_cite_their_sources_at_the_top(preset_id, sources):
    text = (resources.files("schemas") / "protocols" / f"{preset_id}.toml").read_text()
    head = text.split("name =")[0]
    assert head.startswith("#")
    for source in sources:
        assert source in head


def test_nmt_static_dose():
    protocol = load_preset("nmt-static")
    assert (protocol.kind, protocol.unit, protocol.contact_area_cm2) == ("static", "N", 2.0)
    dose = protocol.points[0].dose
    assert (dose.min_hold_s, dose.max_hold_s) == (8.0, 20.0)
    assert protocol.band_n(0) == (30.0, 50.0)
    assert protocol.band_n(0)[1] < 90.0  # under the ischemic ceiling (90-130 N at 7-8/10)


def test_ischemic_dose():
    protocol = load_preset("ischemic")
    assert protocol.kind == "ischemic"
    dose = protocol.points[5].dose
    assert dose.max_hold_s == 60.0 and dose.min_hold_s <= dose.max_hold_s
    low, high = protocol.band_n(5)
    assert 0 < low < high <= 130.0
    assert high > load_preset("nmt-static").band_n(5)[1]  # 7-8/10 is more than 6/10


def test_ppt_ramp_dose_in_newtons():
    protocol = load_preset("ppt-ramp")
    assert (protocol.kind, protocol.unit, protocol.contact_area_cm2) == ("ppt_ramp", "kPa", 1.0)
    dose = protocol.points[0].dose
    assert (dose.repetitions, dose.rest_s) == (3, 30.0)
    assert dose.stop_on_button
    # 40-60 kPa/s on 1 cm² = 4-6 N/s, around DFNS's 50 kPa/s = 5 N/s
    assert protocol.ramp_n_per_s(0) == pytest.approx((4.0, 6.0))
    assert protocol.band_n(0) == pytest.approx((0.0, 100.0))  # 1000 kPa cut-off on 1 cm²


def test_dose_conversions():
    dfns = Dose(unit="kPa", target_low=50, target_high=50, ramp_min=50, ramp_max=50)
    assert dfns.ramp_n_per_s(1.0) == pytest.approx((5.0, 5.0))
    assert dfns.band_n(2.0) == pytest.approx((10.0, 10.0))
    kgf_cm2 = Dose(unit="kgf/cm2", target_low=1.0, target_high=2.3)
    assert kgf_cm2.band_n(2.0) == pytest.approx((2 * GRAVITY, 4.6 * GRAVITY))
    lbf = Dose(unit="lbf", target_low=20, target_high=30)
    assert lbf.band_n() == pytest.approx((88.96, 133.45), abs=0.01)  # Travell/Simons 90-130 N
    assert lbf.ramp_n_per_s() is None
    only_max = Dose(unit="N", target_low=1, target_high=2, ramp_max=10)
    assert only_max.ramp_n_per_s() == (0.0, 10.0)
    with pytest.raises(ValueError):
        kgf_cm2.band_n()  # a pressure without an area is not a force


def test_pressure_protocol_uses_its_area():
    text = edit('unit = "N"', 'unit = "N/cm²"\ncontact_area_cm2 = 1.5')
    protocol = load_protocol(text)
    assert protocol.unit == "N/cm2"
    assert protocol.band_n(0) == pytest.approx((15.0, 30.0))


# ---------------------------------------------------------------------------- round trip

@pytest.mark.parametrize("preset_id", PRESETS)
def test_preset_round_trip(preset_id):
    protocol = load_preset(preset_id)
    again = load_protocol(protocol.to_toml())
    assert again == protocol
    assert again.source_path is None and protocol.source_path


def test_round_trip_keeps_overrides_and_odd_text():
    dose = Dose(unit="kgf", target_low=1.5, target_high=3.0, min_hold_s=8, max_hold_s=20)
    points = (
        TriggerPoint("UT \"1\"", "upper trapezius", "left", "line one\nline two ✓", dose),
        TriggerPoint("QL", "quadratus lumborum", "", "", Dose(
            unit="kgf", target_low=1.5, target_high=4.0, min_hold_s=8, max_hold_s=20,
            ramp_min=0.5, ramp_max=1.0, repetitions=2, rest_s=10, stop_on_button=False)),
        TriggerPoint("QL", "quadratus lumborum", "right", "", dose),
    )
    protocol = SessionProtocol("Drill \\ 2", "two\nlines", "kgf", None, "ischemic", points)
    text = protocol.to_toml()
    assert load_protocol(text) == protocol
    assert tomllib.loads(text)["dose"]["target_high"] == 3.0  # the common value is the default


@pytest.mark.parametrize("preset_id", PRESETS)
def test_protocols_command_prints_toml_that_loads_back_equal(preset_id):
    shown = run_palpation("protocols", preset_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == load_preset(preset_id).to_toml()
    assert load_protocol(shown.stdout) == load_preset(preset_id)


def test_file_round_trip(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(load_preset("ischemic").to_toml(), encoding="utf-8")
    protocol = load_protocol(path)
    assert protocol == load_preset("ischemic")
    assert protocol.source_path == str(path)
    assert load_protocol(str(path)) == protocol


# ------------------------------------------------------------------------------- format

def test_defaults_and_per_point_overrides():
    protocol = load_protocol(BASE)
    assert protocol.description == ""
    assert protocol.contact_area_cm2 is None
    assert [p.label for p in protocol.points] == [
        "upper trapezius L", "upper trapezius R", "levator scapulae L"]
    assert [protocol.band_n(i) for i in range(3)] == [(10, 20), (10, 25), (12, 20)]
    first = protocol.points[0].dose
    assert (first.repetitions, first.rest_s, first.ramp_min, first.stop_on_button) == (
        1, 0.0, None, True)
    assert protocol.points[0].name == protocol.points[0].muscle == "upper trapezius"


def test_sides_accept_short_forms_and_can_be_empty():
    text = edit('side = "left"', 'side = "L"').replace('side = "right"', "")
    protocol = load_protocol(text)
    assert [p.side for p in protocol.points] == ["left", "", "left"]
    assert protocol.points[1].label == "upper trapezius"


# ------------------------------------------------------------------------------- errors

MALFORMED = [
    # (what, text, line, words in the message)
    ("syntax error", edit('unit = "N"', "unit = N"), 3, "TOML syntax error"),
    ("unclosed table header", edit("[dose]", "[dose"), 5, "TOML syntax error"),
    ("duplicate key", edit("max_hold_s = 20", "max_hold_s = 20\nmax_hold_s = 30"), 10,
     "TOML syntax error"),
    ("typo key in [dose]", edit("min_hold_s = 8", "min_hold = 8"), 8, "'min_hold_s'"),
    ("typo key in a point", edit('side = "right"', 'sdie = "right"'), 17, "[[point]] 2"),
    ("typo table", edit("[[point]]", "[[points]]"), 11, "'point'"),
    ("dose key at the top", edit('kind = "static"', 'kind = "static"\nrest_s = 5'), 3,
     "[dose]"),
    ("low > high in point 3", edit("target_low = 12", "target_low = 22"), 23,
     "[[point]] 3"),
    ("high < low in point 2", edit("target_high = 25", "target_high = 5"), 18,
     "[[point]] 2"),
    ("low > high in [dose]", edit("target_low = 10", "target_low = 21"), 6, "target_low"),
    ("min_hold > max_hold", edit("min_hold_s = 8", "min_hold_s = 30"), 8, "hold range"),
    ("negative value", edit("target_low = 10", "target_low = -1"), 6, "negative"),
    ("wrong type", edit("target_high = 20", 'target_high = "20"'), 7, "number"),
    ("bool as number", edit("target_high = 20", "target_high = true"), 7, "number"),
    ("repetitions not whole", edit("min_hold_s = 8", "min_hold_s = 8\nrepetitions = 2.5"),
     9, "repetitions"),
    ("unknown unit", edit('unit = "N"', 'unit = "psi"'), 3, "unknown unit 'psi'"),
    ("pressure without area", edit('unit = "N"', 'unit = "kPa"'), 3, "contact_area_cm2"),
    ("zero area", edit('unit = "N"', 'unit = "N"\ncontact_area_cm2 = 0'), 4, "above 0"),
    ("missing name", edit('name = "Neck drill"\n', ""), 1, "'name'"),
    ("missing kind", edit('kind = "static"\n', ""), 1, "'kind'"),
    ("unknown kind", edit('kind = "static"', 'kind = "statik"'), 2, "'static'"),
    ("no points", BASE.split("[[point]]")[0], 1, "no trigger points"),
    ("unknown side", edit('side = "right"', 'side = "middle"'), 17, "unknown side"),
    ("missing target", edit("target_high = 20\n", ""), 10, "no target_high"),
]


@pytest.mark.parametrize("what, text, line, words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_protocol_names_the_line(what, text, line, words):
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"<text>:{line}: "), message
    assert caught.value.line == line
    assert words in message



def edits(*pairs: tuple[str, str]) -> str:
    text = BASE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


KPA = ('unit = "N"', 'unit = "kPa"\ncontact_area_cm2 = 1')  # one line more from line 4 on
IMPLAUSIBLE = [
    # (what, text, line, words in the message): schemas/PROTOCOL.md, "Plausible ranges"
    ("band top 4500 N in [dose]", edit("target_high = 20", "target_high = 4500"), 7,
     "[[point]] 1 (upper trapezius): target_high 4500 N is above 200 N"),
    ("band top 25 kgf in point 2", edits(('unit = "N"', 'unit = "kgf"')), 18,
     "[[point]] 2 (upper trapezius): target_high 25 kgf (245.2 N) is above 200 N"),
    ("band top 2500 kPa on 1 cm2", edits(KPA, ("target_high = 20", "target_high = 2500")), 8,
     "target_high 2500 kPa (250 N on 1 cm²) is above 200 N"),
    ("ramp over 1000 kPa/s", edits(KPA, ("max_hold_s = 20", "max_hold_s = 20\nramp_max = 1001")),
     11, "ramp_max 1001 kPa/s (100.1 N/s on 1 cm²) is above 100 N/s"),
    ("ramp_min over 100 N/s, no ramp_max", edit("target_low = 12", "target_low = 12\n"
                                                "ramp_min = 150"), 24,
     "[[point]] 3 (levator scapulae): ramp_min 150 N/s is above 100 N/s"),
    ("hold over 600 s", edit("max_hold_s = 20", "max_hold_s = 601"), 9,
     "max_hold_s 601 s is above 600 s"),
    ("rest over 600 s", edit("max_hold_s = 20", "max_hold_s = 20\nrest_s = 900"), 10,
     "rest_s 900 s is above 600 s"),
    ("repetitions over 50", edit('side = "right"', 'side = "right"\nrepetitions = 51'), 18,
     "[[point]] 2 (upper trapezius): repetitions 51 is above 50"),
    ("repetitions 0", edit("max_hold_s = 20", "max_hold_s = 20\nrepetitions = 0"), 10,
     "repetitions must be a whole number of at least 1, not 0"),
    ("contact area below 0.1 cm2", edit('unit = "N"', 'unit = "N"\ncontact_area_cm2 = 0.05'),
     4, "contact_area_cm2 0.05 is below 0.1 cm²"),
    ("contact area above 20 cm2", edit('unit = "N"', 'unit = "N"\ncontact_area_cm2 = 25'), 4,
     "contact_area_cm2 25 is above 20 cm²"),
    ("negative contact area", edit('unit = "N"', 'unit = "N"\ncontact_area_cm2 = -2'), 4,
     "contact_area_cm2 must not be negative"),
]


@pytest.mark.parametrize("what, text, line, words", IMPLAUSIBLE,
                         ids=[m[0] for m in IMPLAUSIBLE])
def test_implausible_values_name_the_line(what, text, line, words):
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"<text>:{line}: "), message
    assert words in message


def test_values_at_the_plausible_bounds_load():
    """Each bound of schemas/PROTOCOL.md is itself allowed: 200 N (as 2000 kPa on 1 cm²),
    100 N/s, 600 s hold and rest, 50 repetitions, 0.1 and 20 cm²."""
    text = edits(KPA, ("target_high = 20", "target_high = 2000"),
                 ("max_hold_s = 20", "max_hold_s = 600\nrest_s = 600\nrepetitions = 50\n"
                                     "ramp_min = 1000\nramp_max = 1000"))
    dose = load_protocol(text).points[0].dose
    assert dose.band_n(1.0)[1] == pytest.approx(200.0)
    assert dose.ramp_n_per_s(1.0) == pytest.approx((100.0, 100.0))
    assert (dose.max_hold_s, dose.rest_s, dose.repetitions) == (600.0, 600.0, 50)
    for area in (0.1, 20):
        protocol = load_protocol(edit('unit = "N"', f'unit = "N"\ncontact_area_cm2 = {area}'))
        assert protocol.contact_area_cm2 == area


def test_protocol_doc_lists_every_key_and_bound():
    """schemas/PROTOCOL.md documents every key the parser accepts, and each bound it checks."""
    from schemas import protocol_limits as limits
    from schemas.session_protocol import _DOSE_KEYS, _POINT_KEYS, _TOP_KEYS
    from schemas.training import _BLOCK_KEYS, _TRAINING_KEYS

    doc = (ROOT / "schemas" / "PROTOCOL.md").read_text(encoding="utf-8")
    keys = {*_TOP_KEYS, *_DOSE_KEYS, *_POINT_KEYS, *_TRAINING_KEYS, *_BLOCK_KEYS}
    for key in keys - {"dose", "point", "block"}:
        assert f"| `{key}` |" in doc, key
    assert "| `[[training.block]]` |" in doc
    for bound in (limits.FORCE_MAX_N, limits.RAMP_MAX_N_PER_S, limits.HOLD_MAX_S,
                  limits.REST_MAX_S, limits.REPETITIONS_MAX, limits.AREA_MIN_CM2,
                  limits.AREA_MAX_CM2, limits.PAIN_MAX, limits.ANCHOR_BAND_PCT_MAX,
                  limits.REACTION_MAX_S, limits.HOLDS_PER_BLOCK_MAX, limits.BANDWIDTH_PCT_MAX):
        assert f"{bound:g}" in doc, bound
    example = doc.split("```toml\n")[1].split("```")[0]
    assert load_protocol(example, source="PROTOCOL.md").points


def test_lines_are_counted_past_multi_line_strings_and_quoted_keys():
    # The note spans lines 14-17 and holds text that looks like a table and a key; the typo
    # on line 21 ("sdie", quoted) must still be found on its own line.
    text = edit('side = "left"', 'side = "left"\nnote = """first\n[[point]]\nside = "x"\n"""')
    text = text.replace('side = "right"', '"sdie" = "right"')
    with pytest.raises(ProtocolError) as caught:
        load_protocol(text)
    assert caught.value.line == 21 and "'sdie'" in caught.value.message


def test_error_names_the_file(tmp_path):
    path = tmp_path / "neck.toml"
    path.write_text(edit("target_low = 12", "target_low = 22"), encoding="utf-8")
    with pytest.raises(ProtocolError, match=rf"^{path}:23: \[\[point\]\] 3 \(levator "):
        load_protocol(path)


def test_syntax_error_at_end_of_file():
    with pytest.raises(ProtocolError, match=r"^<text>:24: TOML syntax error: unterminated"):
        load_protocol(BASE + 'note = "open')


def test_unreadable_file_is_one_line(tmp_path):
    with pytest.raises(ProtocolError, match=r"cannot read") as caught:
        load_protocol(tmp_path / "missing.toml")
    assert "\n" not in str(caught.value)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(BASE.encode() + b'note = "caf\xe9"\n')
    with pytest.raises(ProtocolError, match=r"latin1.toml:24: not UTF-8"):
        load_protocol(bad)


# ------------------------------------------------------------------------------ resolve

def test_resolve_preset_or_path(tmp_path):
    assert resolve_protocol("ppt-ramp") == load_preset("ppt-ramp")
    path = tmp_path / "drill.toml"
    path.write_text(BASE, encoding="utf-8")
    assert resolve_protocol(str(path)) == load_protocol(BASE)
    assert resolve_protocol(path).source_path == str(path)


def test_resolve_unknown_name_says_what_exists():
    with pytest.raises(ProtocolError) as caught:
        resolve_protocol("nmt-statik")
    message = str(caught.value)
    assert message.startswith("nmt-statik: neither a preset nor a protocol file")
    assert all(pid in message for pid in PRESETS)
    with pytest.raises(ProtocolError, match=r"^nowhere/x.toml: cannot read"):
        resolve_protocol("nowhere/x.toml")
    with pytest.raises(ProtocolError, match="no such preset"):
        load_preset("nope")


def test_presets_are_package_data():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "protocols/*.toml" in pyproject["tool"]["setuptools"]["package-data"]["schemas"]
