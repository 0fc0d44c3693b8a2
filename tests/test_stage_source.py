"""The source stage: the one protocol-v1 handshake against the simulated sensor on a real pty,
and a gauge driver's readings as millinewton counts."""

from __future__ import annotations

import os
import time
import tty

import numpy as np
import pytest

from firmware_bridge.frames import DeviceInfo, encode_device_info
from firmware_bridge.gauges import GaugeError
from firmware_bridge.link import SerialLink
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from recorder.source import DeviceSource, NoAnswer, RateRefused, make_source


class Collect:
    """A link listener that feeds a source and keeps what it returns."""

    def __init__(self, source) -> None:
        self.source = source
        self.readings = []

    def connection_made(self, link, reconnect):
        if reconnect:
            self.source.restart(link)

    def connection_lost(self, reason, host_time):
        pass

    def data_received(self, data, host_time, reads):
        self.readings.append(self.source.feed(data))


def test_handshake_sets_the_rate_tares_and_then_streams(tmp_path):
    sensor = SimulatedSensor(rate_hz=1000.0, seed=3)
    with PtyServer(sensor) as server:
        source = DeviceSource()
        listener = Collect(source)
        link = SerialLink(server.path, listener)
        link.start()
        try:
            zero = source.handshake(link, 3.0, rate_hz=200.0, tare=True)
            assert source.info.device_id == "SIM-0001" and source.info.nominal_rate_hz == 200.0
            # the therapist is at rest: the device's zero is its ADC offset, within 0.5 N
            assert abs(zero - sensor.adc.offset_counts) < 0.5 * sensor.adc.counts_per_newton
            assert not any(len(r.raw) for r in listener.readings)  # nothing streams yet
            source.start(link)
            time.sleep(0.5)
            source.tare(link)
            time.sleep(0.2)
            source.stop(link)
        finally:
            link.stop()
    seq = np.concatenate([r.seq for r in listener.readings if r.seq is not None])
    assert 60 <= len(seq) <= 160 and (np.diff(seq.astype(int)) == 1).all()
    messages = [m for r in listener.readings for m in r.messages]
    assert any(getattr(m, "command", None) == 0x14 and m.ok for m in messages)  # the tare
    with (pytest.raises(RateRefused, match="refused rate"),
          PtyServer(SimulatedSensor(rate_hz=1000.0)) as server):
        source = DeviceSource()
        link = SerialLink(server.path, Collect(source))
        link.start()
        try:
            source.handshake(link, 3.0, rate_hz=500_000.0)
        finally:
            link.stop()


def test_a_silent_port_does_not_answer():
    master, slave = os.openpty()
    tty.setraw(slave)
    source = DeviceSource()
    link = SerialLink(os.ttyname(slave), Collect(source))
    link.start()
    try:
        started = time.monotonic()
        with pytest.raises(NoAnswer):
            source.handshake(link, 0.3)
        assert 0.3 <= time.monotonic() - started < 1.0 and source.info is None
    finally:
        link.stop()
        os.close(master)
        os.close(slave)


def test_device_messages_outside_a_handshake_come_with_the_readings():
    source = DeviceSource()
    readings = source.feed(encode_device_info(DeviceInfo("D-1")))
    assert [m.device_id for m in readings.messages] == ["D-1"] and len(readings.raw) == 0


def test_gauge_readings_are_millinewton_counts_and_errors_are_messages():
    source = make_source("mark10")
    readings = source.feed(b"4.2856 N\r\n*10\r\n-1.5 N\r\n")
    assert readings.raw.tolist() == [4286, -1500] and readings.seq is None
    assert readings.flags.tolist() == [0, 0]
    assert [type(m) for m in readings.messages] == [GaugeError]
    assert source.device_attrs() == {"counts_per_newton": 1000.0, "link": "mark10"}
    assert make_source("ascii", "kgf").feed(b"1\n").raw.tolist() == [9807]
