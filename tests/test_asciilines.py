"""The one ASCII line parser: units, split lines, malformed lines counted and skipped; as an
ASCII device reads it (the generic driver) and line by line."""

import pytest

from firmware_bridge.asciilines import ColumnFormat, LineReader, parse_value_unit
from firmware_bridge.gauges import GenericAscii


def test_values_with_and_without_units():
    d = GenericAscii(unit="kgf")
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
        GenericAscii(unit="stone")
    with pytest.raises(ValueError, match="unknown force unit 'kPa'"):
        GenericAscii(unit="kPa")


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


LBF = 4.4482216152605


@pytest.mark.parametrize("line, newtons, unit", [
    ("Reading: 8.5 lbs", 8.5 * LBF, "lbs"),  # SparkFun HX711 example
    ("Reading: 12.3 g", 12.3 * 0.00980665, "g"),
    ("Reading: 0.0 lbs calibration_factor: -7050", 0.0, "lbs"),  # its calibration sketch
    ("one reading:\t12.3\t| average:\t12.1", 12.3, ""),  # bogde's HX711 example
    ("12.3 grams", 12.3 * 0.00980665, "grams"),
    ("2 kg", 2 * 9.80665, "kg"),
    ("2 kgf", 2 * 9.80665, "kgf"),
    ("3 oz", 3 * LBF / 16, "oz"),
    ("force = 4 N", 4.0, "N"),
])
def test_labels_and_unit_words_of_hobby_sketches(line, newtons, unit):
    assert parse_value_unit(line, 1.0) == (pytest.approx(newtons, rel=1e-15), unit)


@pytest.mark.parametrize("banner", ["HX711 scale demo", "Readings:", "Calibrating...",
                                    "12.3 furlongs", "1.2.3", "12 3", "12345,8.51",
                                    "12345\t8.51", "5e9 N"])
def test_banner_and_foreign_lines_are_not_readings(banner):
    assert parse_value_unit(banner, 1.0) is None


def test_banner_lines_are_skipped_and_readings_follow():
    d = GenericAscii(unit="N")
    out = d.feed(b"HX711 scale demo\r\nReadings:\r\nReading: 1.5 lbs\r\nReading: -2.0 lbs\r\n")
    assert out.force_n.tolist() == [1.5 * LBF, -2.0 * LBF]
    assert d.bad_lines == 2 and d.last_bad_line == "Readings:"


def test_csv_value_column_and_millis_device_clock():
    columns = ColumnFormat.from_options(2, "1")
    d = GenericAscii(columns=columns, unit="kgf")
    out = d.feed(b"millis,kg\r\n12345,8.51\r\n12357,-0.25\r\n")
    assert out.force_n.tolist() == [8.51 * 9.80665, -0.25 * 9.80665]
    assert out.device_us.tolist() == [12_345_000.0, 12_357_000.0]
    assert d.bad_lines == 1  # the header


def test_tsv_micros_column_and_unit_in_the_cell():
    d = GenericAscii(columns=ColumnFormat.from_options(3, "1:us"), unit=None)
    out = d.feed(b"1000\t7\t2.5 N\n2000\t8\t3 lbs\n")
    assert out.force_n.tolist() == [2.5, 3 * LBF]
    assert out.device_us.tolist() == [1000.0, 2000.0]


def test_csv_without_device_clock_has_no_device_times():
    d = GenericAscii(columns=ColumnFormat.from_options(2, None), unit="N")
    out = d.feed(b"a,1.25\n")
    assert out.force_n.tolist() == [1.25] and out.device_us is None


@pytest.mark.parametrize("column, time, message", [
    (None, "1", "needs --ascii-column"), (0, None, "numbered from 1"),
    (2, "x", "a column number"), (2, "1:s", "ms or us")])
def test_column_options_are_checked(column, time, message):
    with pytest.raises(ValueError, match=message):
        ColumnFormat.from_options(column, time)


def test_unitless_lines_without_a_unit_are_not_guessed():
    d = GenericAscii(unit=None)
    out = d.feed(b"12.5\n3 N\n")
    assert out.force_n.tolist() == [3.0] and d.unitless_lines == 1
