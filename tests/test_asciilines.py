"""The one ASCII line parser: units, split lines, malformed lines counted and skipped; as an
ASCII device reads it (the generic driver) and line by line."""

import pytest

from firmware_bridge.asciilines import LineReader, parse_value_unit
from firmware_bridge.gauges import GenericAscii


def test_values_with_and_without_units():
    d = GenericAscii(default_unit="kgf")
    out = d.feed(b"1.5\r\n-18.78 lbF\r\n4.285 N\n+2e1 gf\r")
    assert out.force_n.tolist() == pytest.approx(
        [1.5 * 9.80665, -18.78 * 4.4482216152605, 4.285, 20 * 0.00980665])
    assert out.units == ["", "lbF", "N", "gf"]


def test_line_split_across_reads():
    d = GenericAscii()
    assert len(d.feed(b"12.").force_n) == 0
    assert d.feed(b"5 N\n3").force_n.tolist() == [12.5]
    assert d.feed(b"\n").force_n.tolist() == [3.0]


def test_malformed_lines_are_counted_not_fatal():
    d = GenericAscii()
    out = d.feed(b"hello\n12 furlongs\n\xff\xfe\n7\n")
    assert out.force_n.tolist() == [7.0]
    assert d.bad_lines == 3 and d.lines == 4
    assert d.garbage_bytes == len(b"hello") + len(b"12 furlongs") + 2


def test_runaway_line_without_newline_is_dropped():
    d = GenericAscii()
    d.feed(b"1" * 500)
    assert d.bad_lines == 1 and d.garbage_bytes == 500
    assert d.feed(b"\n2\n").force_n.tolist() == [2.0]


def test_unknown_default_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown force unit 'stone'"):
        GenericAscii(default_unit="stone")
    with pytest.raises(ValueError, match="unknown force unit 'kPa'"):
        GenericAscii(default_unit="kPa")


def test_one_line_to_value_and_unit():
    newtons, unit = parse_value_unit(" -18.78 lbF ", 1.0)
    assert newtons == pytest.approx(-18.78 * 4.4482216152605) and unit == "lbF"
    assert parse_value_unit(".5", 2.0) == (1.0, "")
    assert parse_value_unit("12 furlongs", 1.0) is None
    assert parse_value_unit("12 kPa", 1.0) is None  # a pressure is not a reading of force
    assert parse_value_unit("1.2.3", 1.0) is None


def test_reader_hands_each_line_to_its_parser_and_counts_the_rest():
    seen = []

    def parse(text):
        seen.append(text)
        return text.upper() if text.startswith("ok") else None

    reader = LineReader(parse)
    assert reader.feed(b"ok 1\r\n\r\n  \nbad\rok") == ["OK 1"]
    assert seen == ["ok 1", "bad"]  # blank lines are not lines; the tail waits for its end
    assert (reader.lines, reader.bad_lines, reader.garbage_bytes) == (2, 1, 3)
    reader.reset()  # a reconnect forgets the half line "ok"
    assert reader.feed(b" 2\n") == [] and seen[-1] == "2"
