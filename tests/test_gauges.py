"""Commercial gauge drivers against their emulators on real ptys, plus pure parser tests."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from firmware_bridge.gauges import (
    GaugeReadings,
    GenericAscii,
    Imada,
    Mark10,
    Wagner,
    make_driver,
)
from firmware_bridge.sim.gauges import ImadaEmulator, Mark10Emulator, WagnerEmulator
from firmware_bridge.sim.server import PtyServer
from schemas.units import GRAVITY, NEWTONS_PER_FORCE_UNIT

LBF = NEWTONS_PER_FORCE_UNIT["lbf"]


def ramp(t: float) -> float:
    """A press: 0 -> ~80 N and back over 2 s, compression positive."""
    return 80.0 * math.sin(math.pi * (t % 2.0) / 2.0) ** 2


def merge(parts: list[GaugeReadings]) -> GaugeReadings:
    return GaugeReadings(
        np.concatenate([p.force_n for p in parts]) if parts else np.zeros(0),
        [u for p in parts for u in p.units], [m for p in parts for m in p.modes],
        [j for p in parts for j in p.judgements], [e for p in parts for e in p.errors],
        overload=np.concatenate([p.overload for p in parts]) if parts else np.zeros(0, bool),
        notices=[n for p in parts for n in p.notices])


def exchange(port: serial.Serial, driver, *, n: int = 0, seconds: float = 0.0,
             timeout: float = 3.0) -> GaugeReadings:
    """Talk to an emulator through a driver alone: poll on the driver's cadence (one query in
    flight), feed whatever arrives. Stops after ``n`` readings+errors or ``seconds``. This
    checks the driver's side of the protocol; the recorder's own poller is tested in
    test_record_gauges.py."""
    parts: list[GaugeReadings] = []
    got = 0
    end = time.monotonic() + (seconds or timeout)
    next_poll = time.monotonic()
    while time.monotonic() < end and (seconds or got < n):
        now = time.monotonic()
        if (driver.poll_interval_s is not None and now >= next_poll
                and driver.pending_replies < driver.max_pending):
            port.write(driver.poll())
            next_poll = now + driver.poll_interval_s
        data = port.read(port.in_waiting or 1)
        if data:
            out = driver.feed(data)
            got += len(out) + len(out.errors)
            parts.append(out)
    return merge(parts)


@pytest.fixture
def served(tmp_path):
    servers = []

    def make(emulator, **kw):
        server = PtyServer(emulator, link=tmp_path / emulator.name, **kw)
        server.start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.close()


def open_port(server, driver) -> serial.Serial:
    port = serial.Serial(str(server.link), driver.baudrate, timeout=0.005)
    port.write(driver.start())
    return port


def expected(emulator, count: int) -> np.ndarray:
    return np.array([n * emulator.compression_sign for _, n, _ in emulator.sent[-count:]])


def contiguous_match(emulator, force_n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A streaming gauge's readings are a contiguous run of what it sent (bytes sent before
    the port opened are flushed, the last ones may still be in flight): find that run.
    Returns (sent newtons in compression-positive terms, their times)."""
    sent = np.array([n * emulator.compression_sign for _, n, _ in emulator.sent])
    times = np.array([t for t, _, _ in emulator.sent])
    n = len(force_n)
    best = min(range(len(sent) - n + 1),
               key=lambda k: np.abs(sent[k:k + n] - force_n).max())
    return sent[best:best + n], times[best:best + n]


# --- pure parsers on documented example strings ------------------------------------------

def test_mark10_documented_examples():
    d = Mark10()
    out = d.feed(b"-18.78 lbF\r\n4.285 N\r\n")
    assert out.force_n.tolist() == pytest.approx([-18.78 * LBF, 4.285])
    assert out.units == ["lbF", "N"] and d.bad_lines == 0
    flipped = Mark10(invert=True).feed(b"-18.78 lbF\r\n")
    assert flipped.force_n.tolist() == pytest.approx([18.78 * LBF])


def test_mark10_errors_are_errors_not_readings():
    d = Mark10()
    d.feed(b"1.00 N\r\n")
    out = d.feed(b"*10\r\n1.00 N\r\n*11\r\n*12\r\n*22\r\n*15\r\n*abc\r\n")
    assert out.force_n.tolist() == [1.0]
    assert [(e.code, e.message) for e in out.errors] == [
        ("*10", "illegal command"), ("*11", "not applicable"), ("*12", "invalid specifier"),
        ("*22", "value too large"), ("*15", "error 15")]
    assert d.error_count == 5 and d.bad_lines == 1


def test_mark10_asks_for_the_live_reading_and_falls_back_on_a_series_4():
    d = Mark10()
    assert d.start() == b"CUR\r" and d.poll() == b"?C\r"
    out = d.feed(b"*10\r\n")  # CUR refused before any reading: a Series 4
    assert d.poll() == b"?\r" and "displayed reading" in out.notices[0].text
    assert Mark10(series=4).poll() == b"?\r" and Mark10(series=4).start() == b""
    assert Mark10(select_unit="lb").start() == b"LB\rCUR\r"
    with pytest.raises(ValueError, match="unit command"):
        Mark10(select_unit="stone")


def test_mark10_numeric_only_needs_the_unit_never_guesses_newtons():
    d = Mark10()
    assert len(d.feed(b"12.34\r\n")) == 0 and d.unitless_lines == 1
    out = Mark10(unit="lbf").feed(b"12.34\r\n")
    assert out.force_n.tolist() == [12.34 * LBF] and out.units == [""]


def test_imada_documented_example_and_letters():
    d = Imada()
    out = d.feed(b"Gauge Started.\r+012.34NTO\r+12.34KTL\rR\r-1.50OTH\r+9.99NTE\r"
                 b"+1.0XT0\r12.34KT0\rE\r")
    assert out.force_n.tolist() == pytest.approx([12.34, 12.34 * GRAVITY, -1.5 * LBF, 9.99])
    assert out.units == ["N", "K", "O", "N"] and out.modes == ["T"] * 4
    assert out.judgements == ["O", "L", "H", "E"]
    assert out.overload.tolist() == [False, False, False, True]
    assert [n.text for n in out.notices] == [
        "Imada judgement O: within the limits", "Imada judgement L: below the lower limit",
        "Imada judgement H: above the upper limit", "Imada judgement E: overload"]
    assert [e.code for e in out.errors] == ["E"]
    assert d.bad_lines == 2  # unknown unit letter X; missing sign


def test_imada_peak_reading_is_dropped_and_real_time_asked():
    d = Imada()
    assert d.start() == b"T\r"
    out = d.feed(b"+5.00NPO\r+6.00NPO\r")
    assert len(out) == 0 and d.take_commands() == b"T\r" and d.take_commands() == b""
    assert [n.text for n in out.notices][-1].startswith("Imada in peak mode")
    assert d.feed(b"+1.00NTO\r").force_n.tolist() == [1.0]


def test_wagner_documented_example_and_commands():
    d = Wagner(model="fpx")
    assert d.feed(b"12.34 lbf\r\n").force_n.tolist() == pytest.approx([12.34 * LBF])
    assert d.poll() == b"?\r" and d.poll_interval_s is not None
    fdix = Wagner(rate_hz=0.5)
    assert fdix.start() == b"CA\rC.5\rCB\r" and fdix.stop() == b"CE\r"
    assert fdix.poll_interval_s is None and fdix.rate_hz == 0.5
    assert Wagner().start() == b"CA\rC100\rCB\r"
    for rate in (200, 3, 0.25):
        with pytest.raises(ValueError, match="one of 0.5, 1, 2, 5, 10, 20, 50, 100"):
            Wagner(rate_hz=rate)


def test_wagner_documented_line_formats():
    d = Wagner()
    out = d.feed(b"- 23.02 lbf\r\n  23.02 lbf\r\n-000123 N\r\nHELP\r\n  5.0 N\r\n")
    assert out.force_n.tolist() == pytest.approx([-23.02 * LBF, 23.02 * LBF, -123.0, 5.0])
    assert [n.text for n in out.notices] == [
        "Wagner overload (HELP): no readings until the load is lower", "Wagner overload ended"]
    peak = d.feed(b"  000123 N Peak\r\n")
    assert len(peak) == 0 and "peak" in peak.notices[0].text
    assert len(d.feed(b"12.5\r\n")) == 0 and d.unitless_lines == 1  # no unit: never guessed
    assert Wagner(unit="kgf").feed(b"12.5\r\n").force_n.tolist() == [12.5 * GRAVITY]


def test_generic_ascii_reads_value_unit_lines():
    d = make_driver("ascii", unit="kgf", invert=True)
    out = d.feed(b"1.5\r\n-2 N\r\njunk\r\n")
    assert out.force_n.tolist() == pytest.approx([-1.5 * GRAVITY, 2.0])
    assert d.bad_lines == 1 and d.poll_interval_s is None


def test_make_driver():
    assert isinstance(make_driver("mark10", streaming=True), Mark10)
    assert make_driver("mark10", streaming=True).poll_interval_s is None
    assert isinstance(make_driver("IMADA"), Imada) and make_driver("imada").baudrate == 19200
    assert isinstance(make_driver("wagner"), Wagner)
    assert isinstance(make_driver("ascii"), GenericAscii)
    with pytest.raises(ValueError, match="known"):
        make_driver("dynamometer")


@pytest.mark.parametrize("name, stream", [
    ("mark10", b"-18.78 lbF\r\n4.285 N\r\n*10\r\n*15\r\n0.50 kgF\r\n"),
    ("imada", b"+12.34KT0\r-1.50OTL\r\n+3.2NTH\rE\r"),
    ("wagner", b"12.34 lbf\r\n- 0.5 kgf\nHELP\r\n7 N\r"),
    ("ascii", b"1.5\r\n-18.78 lbF\r\n4.285 N\rjunk\n"),
])
def test_split_at_every_byte_boundary_parses_the_same(name, stream):
    whole = make_driver(name).feed(stream)
    for i in range(len(stream) + 1):
        for j in range(i, len(stream) + 1):
            d = make_driver(name)
            out = merge([d.feed(stream[:i]), d.feed(stream[i:j]), d.feed(stream[j:])])
            assert out.force_n.tolist() == whole.force_n.tolist(), (i, j)
            assert out.units == whole.units and out.modes == whole.modes
            assert out.judgements == whole.judgements and out.errors == whole.errors
            assert out.notices == whole.notices


def test_streamed_lines_that_do_not_fit_are_lost_whole():
    emu = WagnerEmulator(lambda t: 1.0, model="fdix", unit="N")
    emu.receive(b"CA\rC100\rCB\r", 0.0)
    assert emu.output(0.1, room=24) == b"  1.00 N\r\n" * 2  # 11 lines were due
    assert emu.output(0.1, room=24) == b""
    assert emu.output(0.125, room=100) == b"  1.00 N\r\n" * 2


# --- drivers against emulators on real ptys ---------------------------------------------

@pytest.mark.parametrize("unit, resolution_n", [
    ("lbF", 0.005 * LBF), ("N", 0.0005), ("kgF", 0.0005 * GRAVITY)])
def test_mark10_polled_over_pty(served, unit, resolution_n):
    emu = Mark10Emulator(ramp, unit=unit)
    server = served(emu)
    driver = Mark10()
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=20)
    assert len(out) == 20 and not out.errors
    assert set(out.units) == {unit}
    np.testing.assert_allclose(out.force_n, expected(emu, 20), atol=resolution_n * 1.0001)
    times = np.array([t for t, _, _ in emu.sent[-20:]])
    np.testing.assert_allclose(out.force_n, [ramp(t) for t in times],
                               atol=resolution_n * 1.0001)
    assert out.force_n.max() > 0  # compression arrives positive


def test_mark10_select_newtons_and_compression_negative_gauge(served):
    emu = Mark10Emulator(lambda t: 50.0, unit="lbF", compression_sign=-1)
    server = served(emu)
    driver = Mark10(select_unit="N", invert=True)
    assert driver.start() == b"N\rCUR\r"
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=5)
    assert out.units == ["N"] * 5
    np.testing.assert_allclose(out.force_n, 50.0, atol=0.0005)


def test_mark10_in_peak_mode_is_read_live_over_pty(served):
    """``?`` answers the displayed reading (the peak in PC mode); the driver's ``CUR`` and
    ``?C`` read the live force."""
    emu = Mark10Emulator(ramp, unit="N", mode="PC")
    server = served(emu)
    with serial.Serial(str(server.link), 9600, timeout=0.3) as port:
        port.write(b"?\r")
        shown = float(port.read_until(b"\r\n").split()[0])
        port.write(b"XYZ\r")
        assert port.read_until(b"\r\n") == b"*10\r\n"
        exchange(port, Mark10(series=4), seconds=0.6)  # "?" in PC mode: the peak so far
        peaks = [n for _, n, _ in emu.sent]
        assert peaks == sorted(peaks) and shown <= peaks[-1]
        driver = Mark10()
        port.write(driver.start())
        out = exchange(port, driver, n=10)
    assert emu.mode == "CUR" and emu.commands[-10:] == ["?C"] * 10
    np.testing.assert_allclose(out.force_n, [ramp(t) for t, _, _ in emu.sent[-10:]],
                               atol=0.0005 * 1.0001)


def test_mark10_series_4_numeric_only_over_pty(served):
    emu = Mark10Emulator(ramp, unit="lbF", series=4, numeric_only=True)
    server = served(emu)
    driver = Mark10(unit="lbf")
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=12)
    assert out.errors[0].code == "*10" and driver.poll() == b"?\r"
    assert out.notices and out.units[-5:] == [""] * 5
    np.testing.assert_allclose(out.force_n[-5:], expected(emu, 5), atol=0.005 * LBF * 1.0001)


def test_mark10_streaming_mode_over_pty(served):
    emu = Mark10Emulator(ramp, unit="lbF", auto_output_hz=50)
    server = served(emu)
    driver = make_driver("mark10", streaming=True)
    with open_port(server, driver) as port:
        port.reset_input_buffer()
        out = exchange(port, driver, seconds=0.5)
    assert 10 <= len(out) <= 40
    sent, times = contiguous_match(emu, out.force_n)
    np.testing.assert_allclose(out.force_n, sent, atol=0.005 * LBF * 1.0001)
    np.testing.assert_allclose(out.force_n, [ramp(t) for t in times], atol=0.005 * LBF * 1.0001)
    np.testing.assert_allclose(np.diff(times), 1 / 50)  # no reading lost in between


@pytest.mark.parametrize("unit, letter, resolution_n", [
    ("kgf", "K", 0.005 * GRAVITY), ("lbf", "O", 0.005 * LBF), ("N", "N", 0.005)])
def test_imada_over_pty(served, unit, letter, resolution_n):
    emu = ImadaEmulator(ramp, unit=unit)
    server = served(emu)
    driver = Imada()
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=20)
    assert out.units == [letter] * 20 and out.modes == ["T"] * 20
    np.testing.assert_allclose(out.force_n, expected(emu, 20), atol=resolution_n * 1.0001)
    np.testing.assert_allclose(out.force_n, [ramp(t) for t, _, _ in emu.sent[-20:]],
                               atol=resolution_n * 1.0001)


def test_imada_peak_mode_judgement_zero_and_errors(served):
    emu = ImadaEmulator(lambda t: 40.0, unit="N", mode="P", low=10.0, high=30.0,
                        banner=True)
    server = served(emu)
    driver = Imada()
    with serial.Serial(str(server.link), 19200, timeout=0.005) as port:  # no start(): P mode
        out = exchange(port, driver, seconds=0.3)
        assert len(out) == 0 and any("peak mode" in n.text for n in out.notices)
        port.write(driver.take_commands())  # what the source does after each feed: T
        out = exchange(port, driver, n=3)
        assert out.modes == ["T"] * 3 and out.judgements == ["H"] * 3
        np.testing.assert_allclose(out.force_n, 40.0, atol=0.005)
        port.write(Imada.zero() + b"Q\r")
        out = exchange(port, driver, n=2)
    assert [e.code for e in out.errors] == ["E"]
    np.testing.assert_allclose(out.force_n, 0.0, atol=0.005)
    assert out.judgements == ["L"]


def test_imada_overload_is_flagged(served):
    emu = ImadaEmulator(lambda t: 600.0, unit="N", capacity=500.0)
    server = served(emu)
    driver = Imada()
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=3)
    assert out.judgements == ["E"] * 3 and out.overload.all()


def test_wagner_fdix_streams_and_power_cycle_rearms(served):
    emu = WagnerEmulator(ramp, model="fdix", unit="lbf")
    server = served(emu)
    driver = Wagner(rate_hz=50, unit=None)
    with open_port(server, driver) as port:
        out = exchange(port, driver, seconds=0.5)
        assert 10 <= len(out) <= 40 and set(out.units) == {"lbf"}
        sent = emu.sent[:len(out)]  # streaming began at CB, after the port opened
        np.testing.assert_allclose(out.force_n, [n for _, n, _ in sent],
                                   atol=0.005 * LBF * 1.0001)
        np.testing.assert_allclose(out.force_n, [ramp(t) for t, _, _ in sent],
                                   atol=0.005 * LBF * 1.0001)
        np.testing.assert_allclose(np.diff([t for t, _, _ in sent]), 1 / 50)

        server.power_cycle()  # RS-232 gauge: the adapter (port) stays, streaming is lost
        time.sleep(0.05)
        port.reset_input_buffer()
        driver.reset()
        assert len(exchange(port, driver, seconds=0.3)) == 0

        port.write(driver.start())  # the session re-arms it
        assert len(exchange(port, driver, seconds=0.3)) >= 5

        port.write(driver.stop())
        time.sleep(0.05)
        port.reset_input_buffer()
        assert len(exchange(port, driver, seconds=0.2)) == 0


def test_wagner_usb_replug_follows_the_link(served):
    emu = WagnerEmulator(lambda t: 10.0 * GRAVITY, model="fdix", unit="kgf")
    server = served(emu)
    driver = Wagner(rate_hz=100)
    first = server.path
    with open_port(server, driver) as port:
        assert len(exchange(port, driver, seconds=0.2)) >= 5
        server.power_cycle(replug=True)
    assert server.path != first and server.link.resolve() == Path(server.path).resolve()
    driver.reset()
    with open_port(server, driver) as port:  # reopen by the link, re-send start()
        out = exchange(port, driver, seconds=0.3)
    assert len(out) >= 5
    np.testing.assert_allclose(out.force_n, 10.0 * GRAVITY, atol=0.005 * GRAVITY)


def test_wagner_fpx_polled_over_pty(served):
    emu = WagnerEmulator(ramp, model="fpx", unit="N", compression_sign=-1)
    server = served(emu)
    driver = make_driver("wagner", model="fpx", poll_interval_s=0.01, invert=True)
    with open_port(server, driver) as port:
        out = exchange(port, driver, n=10)
    assert out.units == ["N"] * 10 and out.force_n.max() > 0  # compression positive again
    np.testing.assert_allclose(out.force_n, expected(emu, 10), atol=0.005)
