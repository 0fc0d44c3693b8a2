"""The serial link over real pseudo-terminals: reading, unplug detection, reconnect."""

import time

import numpy as np
import pytest

from firmware_bridge.frames import CMD_IDENTIFY, CMD_START, FrameDecoder, encode_command
from firmware_bridge.link import BATCH_S, LinkError, SerialLink
from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.server import Faults, PtyServer
from schemas.reader import open_recording
from tests.conftest import run_palpation


class Collector:
    def __init__(self):
        self.decoder = FrameDecoder()
        self.seq = []
        self.events = []
        self.reads = 0
        self.ticks = []  # per read: (host time, device seconds of its oldest, of its newest)

    def connection_made(self, link, reconnect):
        self.events.append(("made", reconnect))
        if reconnect:
            link.write(encode_command(CMD_IDENTIFY) + encode_command(CMD_START))

    def data_received(self, data, host_time, reads):
        self.reads += len(reads)
        samples = self.decoder.feed(data).samples
        self.seq += samples.seq.tolist()
        if len(samples.tick):
            self.ticks.append((host_time, samples.tick[0] / 1e6, samples.tick[-1] / 1e6))

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


def waits(batch_s, tmp_path):
    """How long the oldest sample of each read waited for it, in seconds, over about 1.5 s
    of a 1 kHz stream read with ``batch_s``, each read handed over alone: arrival minus the
    device's clock, less the least of those for the newest sample of a read (which had just
    been sent; the simulated clock does not drift)."""
    tmp_path.mkdir()
    server, _ = serve(tmp_path)
    c = Collector()
    link = SerialLink(str(tmp_path / "sensor"), c, batch_s=batch_s, hand_over_s=batch_s)
    link.start()
    link.write(encode_command(CMD_START))
    assert wait_for(lambda: len(c.seq) >= 1500)
    link.stop()
    server.close()
    host, oldest, newest = np.array(c.ticks[1:]).T  # the first read: the backlog
    return host - oldest - (host - newest).min()


def test_the_batch_setting_decides_how_long_samples_wait_for_a_read(tmp_path):
    """Headless batching lets 1 kHz data gather for batch_s; with 0 (a window open) each
    sample is read within a few milliseconds of being sent (the simulator sends every 2 ms)."""
    prompt = waits(0.0, tmp_path / "prompt")
    batched = waits(0.1, tmp_path / "batched")
    assert np.median(prompt) < 0.010
    assert 0.08 < np.median(batched) < 0.2
    assert len(prompt) > 5 * len(batched)  # many small reads against few large ones


def reads_per_second(path):
    """Reads that delivered the samples of a recording, per second of it (a read stamps
    all its samples with one host time)."""
    host = open_recording(path).host_time
    return len(np.unique(host)) / (host[-1] - host[0])


def test_record_reads_as_bytes_arrive_with_a_window_and_batches_headless(tmp_path):
    """`record` with its window (offscreen here) takes the simulator's bytes as they come
    (it sends every 2 ms at 1 kHz); headless it lets them gather (BATCH_S) to spare CPU."""
    rates = {}
    for mode in ("window", "headless"):
        out = tmp_path / f"{mode}.h5"
        r = run_palpation("record", "--simulate", "--duration", "3", "--out", str(out),
                          *(["--headless"] if mode == "headless" else []))
        assert r.returncode == 0, r.stderr
        rates[mode] = reads_per_second(out)
    assert rates["window"] > 150
    assert rates["headless"] < 1.5 / BATCH_S


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


@pytest.mark.parametrize("flow", ["rtscts", "xonxoff"])
def test_flow_control_is_set_on_the_port_and_kept_across_a_replug(tmp_path, flow):
    """The terminal's flow-control flags are what was asked for, on the first open and on the
    reopen after an unplug. (XON/XOFF swallows the bytes 0x11 and 0x13, so it is for gauges
    that print text: binary frames get through whole with RTS/CTS only.)"""
    import termios

    server, _ = serve(tmp_path, Faults(disconnect_after=1.0, reappear_after=0.5))
    c = Collector()
    link = SerialLink(str(tmp_path / "sensor"), c, flow=flow, retry_s=0.05)
    try:
        link.start()
        link.write(encode_command(CMD_START))
        assert wait_for(lambda: len(c.seq) >= 200)
        flags = [termios.tcgetattr(link._port.fd)]
        assert wait_for(lambda: ("made", True) in c.events)
        flags.append(termios.tcgetattr(link._port.fd))
    finally:
        link.stop()
        server.close()
    for iflag, _, cflag, *_ in flags:
        assert bool(cflag & termios.CRTSCTS) == (flow == "rtscts")
        assert bool(iflag & termios.IXON) == (flow == "xonxoff")
    if flow == "rtscts":
        assert c.seq[:200] == list(range(200))


def test_an_unknown_flow_control_is_refused(tmp_path):
    with pytest.raises(ValueError, match="flow control must be one of none, rtscts, xonxoff"):
        SerialLink(str(tmp_path / "sensor"), Collector(), flow="dtr").start()
