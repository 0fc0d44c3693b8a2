"""The serial link over real pseudo-terminals: reading, unplug detection, reconnect."""

import time

import pytest

from firmware_bridge.frames import CMD_IDENTIFY, CMD_START, FrameDecoder, encode_command
from firmware_bridge.link import LinkError, SerialLink
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import Faults, PtyServer


class Collector:
    def __init__(self):
        self.decoder = FrameDecoder()
        self.seq = []
        self.events = []
        self.reads = 0

    def connection_made(self, link, reconnect):
        self.events.append(("made", reconnect))
        if reconnect:
            link.write(encode_command(CMD_IDENTIFY) + encode_command(CMD_START))

    def data_received(self, data, host_time):
        self.reads += 1
        self.seq += self.decoder.feed(data).samples.seq.tolist()

    def connection_lost(self, reason, host_time):
        self.events.append(("lost", reason))


def serve(tmp_path, faults=None):
    """The simulated sensor served behind the link ``tmp_path/sensor``; every device path
    it gets is appended to the list returned with the server."""
    paths = []
    server = PtyServer(SimulatedSensor(rate_hz=1000.0, seed=3), on_path=paths.append,
                       link=tmp_path / "sensor", faults=faults)
    server.start()
    return server, paths


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_reads_are_batched_and_complete(tmp_path):
    server, _ = serve(tmp_path)
    c = Collector()
    link = SerialLink(str(tmp_path / "sensor"), c)
    link.start()
    link.write(encode_command(CMD_START))
    assert wait_for(lambda: len(c.seq) >= 1500)
    link.stop()
    server.close()
    assert not (tmp_path / "sensor").is_symlink()  # the device node goes with the server
    assert c.seq == list(range(len(c.seq)))
    assert c.reads < len(c.seq) / 3  # several frames per read, not one read per frame


def test_unplug_is_detected_and_the_link_reconnects_by_path(tmp_path):
    server, paths = serve(tmp_path, Faults(disconnect_after=1.0, reappear_after=0.7))
    c = Collector()
    link = SerialLink(str(tmp_path / "sensor"), c, retry_s=0.1)
    link.start()
    link.write(encode_command(CMD_START))
    assert wait_for(lambda: ("made", True) in c.events)
    n_before = len(c.seq)
    assert wait_for(lambda: len(c.seq) > n_before + 300)
    link.stop()
    server.close()
    kinds = [e[0] for e in c.events]
    assert kinds == ["made", "lost", "made"]
    assert len(paths) == 2  # a new pty, as a replugged USB device gets a new name
    # the device powered up again: its counter restarted from 0
    restart = next(i for i in range(1, len(c.seq)) if c.seq[i] < c.seq[i - 1])
    assert c.seq[restart] == 0


def test_missing_port_is_a_one_line_error(tmp_path):
    with pytest.raises(LinkError, match=r"cannot open serial port .*nope") as e:
        SerialLink(str(tmp_path / "nope"), Collector()).start()
    assert "\n" not in str(e.value)
