"""ASCII line mode: units, split lines, malformed lines counted and skipped."""

import pytest

from firmware_bridge.asciilines import AsciiLineDecoder


def test_values_with_and_without_units():
    d = AsciiLineDecoder("kgf")
    out = d.feed(b"1.5\r\n-18.78 lbF\r\n4.285 N\n+2e1 gf\r")
    assert out.force_n.tolist() == pytest.approx(
        [1.5 * 9.80665, -18.78 * 4.4482216152605, 4.285, 20 * 0.00980665])
    assert out.units == ["", "lbF", "N", "gf"]


def test_line_split_across_reads():
    d = AsciiLineDecoder()
    assert len(d.feed(b"12.").force_n) == 0
    assert d.feed(b"5 N\n3").force_n.tolist() == [12.5]
    assert d.feed(b"\n").force_n.tolist() == [3.0]


def test_malformed_lines_are_counted_not_fatal():
    d = AsciiLineDecoder()
    out = d.feed(b"hello\n12 furlongs\n\xff\xfe\n7\n")
    assert out.force_n.tolist() == [7.0]
    assert d.bad_lines == 3 and d.lines == 4


def test_runaway_line_without_newline_is_dropped():
    d = AsciiLineDecoder()
    d.feed(b"1" * 500)
    assert d.bad_lines == 1
    assert d.feed(b"\n2\n").force_n.tolist() == [2.0]


def test_unknown_default_unit_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown force unit 'stone'"):
        AsciiLineDecoder("stone")
    with pytest.raises(ValueError, match="unknown force unit 'kPa'"):
        AsciiLineDecoder("kPa")
