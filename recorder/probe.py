"""Read raw counts from a sensor without recording (what calibration needs), and say what is
on a port (what ``palpation probe`` prints).

``SensorProbe`` connects like a session (the same handshake,
``recorder.source.DeviceSource``, without the tare; or a gauge's set-up through its
``GaugeSource``), keeps the raw counts of the last readings, and averages a window of them on
request. No file, no ring buffer, no window.

``identify_port`` opens a port at each documented baud rate in turn, listens for a sketch
or a streaming gauge, then asks each gauge its documented query, and returns what answered
with the ``palpation record`` options that read it.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import serial

from firmware_bridge.asciilines import COLUMNS, parse_value_unit
from firmware_bridge.frames import (
    CMD_IDENTIFY,
    CMD_STOP,
    FLAG_SATURATED,
    DeviceInfo,
    FrameDecoder,
    encode_command,
)
from firmware_bridge.gauges import IMADA_REPLY, WAGNER_LINE
from firmware_bridge.link import Read, SerialLink
from recorder.source import DeviceSource, GaugeSource, NoAnswer, NoReadings

HANDSHAKE_S = 3.0


class ProbeError(Exception):
    """One line for the user."""


class SensorProbe:
    """A sensor streaming raw counts into memory: a protocol-v1 device (``source`` None), or
    a gauge or sketch through its ``GaugeSource`` (its raw counts are millinewtons)."""

    def __init__(self, port: str, baudrate: int | None = None,
                 source: DeviceSource | GaugeSource | None = None, flow: str = "none") -> None:
        self.port = port
        self.source = source if source is not None else DeviceSource()
        self._lock = threading.Lock()
        self._raw: list[np.ndarray] = []
        self._saturated = 0
        self._collecting = False
        self.link = SerialLink(port, self, baudrate=baudrate or self.source.baudrate,
                               batch_s=0.0 if self.source.prompt_reads else 0.01, flow=flow)

    @property
    def info(self) -> DeviceInfo | None:
        """What a protocol-v1 device said in the handshake; None for a gauge."""
        return self.source.info

    def __enter__(self) -> SensorProbe:
        self.link.start()
        try:
            if isinstance(self.source, DeviceSource):
                self.source.handshake(self.link, HANDSHAKE_S)
            else:
                self.source.connect(self.link, HANDSHAKE_S, None)
        except NoAnswer:
            self.link.stop()
            raise ProbeError(
                f"no answer from {self.port}: is it a palpation-v1 device (for a gauge or a "
                "sketch give --device)?") from None
        except NoReadings as exc:
            self.link.stop()
            raise ProbeError(str(exc)) from None
        self.source.start(self.link)
        return self

    def __exit__(self, *exc) -> None:
        self.source.stop(self.link)
        self.link.stop()

    def connection_made(self, link: SerialLink, reconnect: bool) -> None:
        if reconnect:
            self.source.restart(link)

    def connection_lost(self, reason: str, host_time: float) -> None:
        pass

    def data_received(self, data: bytes, host_time: float, reads: tuple[Read, ...]) -> None:
        readings = self.source.feed(data)
        if self._collecting and len(readings.raw):
            with self._lock:
                self._raw.append(readings.raw.copy())
                self._saturated += int((readings.flags & FLAG_SATURATED).astype(bool).sum())

    def collect(self, seconds: float, settle_s: float = 0.3) -> np.ndarray:
        """Raw counts over ``seconds``, after letting the load settle for ``settle_s``;
        ProbeError if the sensor is saturated or sends nothing."""
        time.sleep(settle_s)
        with self._lock:
            self._raw, self._saturated = [], 0
            self._collecting = True
        time.sleep(seconds)
        with self._lock:
            self._collecting = False
            raw = np.concatenate(self._raw) if self._raw else np.empty(0, np.int32)
            saturated = self._saturated
        if not len(raw):
            raise ProbeError(f"{self.port}: no readings in {seconds:g} s")
        if saturated:
            raise ProbeError(f"{self.port}: sensor saturated at this load ({saturated} readings)"
                             "; use a smaller load")
        return raw


# --- what is on a port (``palpation probe``) -------------------------------------------------

LISTEN_S = 2.5  # an Arduino resets when the port opens and boots within about 2 s
ANSWER_S = 0.4  # a gauge answers a query within this
# the baud rates tried, in order, and what is tried at each (docs/SOURCES.md, "Gauges")
# each device is tried first at its default rate (DEFAULT_BAUDS)
PROBE_BAUDS = [(921600, ("palpation",)), (115200, ("listen",)),
               (9600, ("listen", "mark10", "wagner-fpx", "wagner-fdix")),
               (19200, ("listen", "imada")), (115200, ("mark10",)), (57600, ("listen",)),
               (256000, ("imada",))]
DEFAULT_BAUDS = {"palpation": 921600, "ascii": 115200, "mark10": 9600, "imada": 19200,
                 "wagner": 9600}


@dataclass
class PortFinding:
    device: str  # the --device to record it with
    description: str  # what answered, one line
    options: list[str]  # the extra options of the record command

    def command(self, port: str, baud: int) -> str:
        """The exact ``palpation record`` command for this port."""
        extra = [] if DEFAULT_BAUDS[self.device] == baud else ["--baud", str(baud)]
        words = ["palpation", "record", "--port", port, "--device", self.device, *extra,
                 *self.options, "--out", "session.h5"]
        return " ".join(shlex.quote(w) for w in words)


def identify_port(port: str, bauds: list[int] | None = None) -> tuple[PortFinding, int] | None:
    """What answers on ``port`` and at which baud rate, or None. Listens first (a sketch or a
    streaming gauge talks by itself), then asks each gauge its documented query."""
    first = True
    for baud, tries in PROBE_BAUDS:
        if bauds is not None and baud not in bauds:
            continue
        with serial.Serial(port, baud, timeout=0.05) as ser:
            for kind in tries:
                found = _TRIES[kind](ser, LISTEN_S if first else ANSWER_S)
                first = first and kind != "listen"
                if found is not None:
                    return found, baud
    return None


def _exchange(ser: serial.Serial, query: bytes, seconds: float) -> list[str]:
    """Send ``query`` (after a CR that ends whatever an earlier try left in the device's
    command buffer), collect the lines (CR, LF or CR LF) that arrive within ``seconds``."""
    ser.reset_input_buffer()
    if query:
        ser.write(b"\r" + query)
    data, end = b"", time.monotonic() + seconds
    while time.monotonic() < end:
        data += ser.read(ser.in_waiting or 1)
    text = data.decode("ascii", "replace").replace("\r\n", "\n").replace("\r", "\n")
    return [line.strip() for line in text.split("\n")[:-1] if line.strip()]


def _try_palpation(ser: serial.Serial, seconds: float) -> PortFinding | None:
    ser.reset_input_buffer()
    ser.write(encode_command(CMD_IDENTIFY))
    decoder, end = FrameDecoder(), time.monotonic() + ANSWER_S * 2
    while time.monotonic() < end:
        for _, msg in decoder.feed(ser.read(ser.in_waiting or 1)).messages:
            if isinstance(msg, DeviceInfo):
                ser.write(encode_command(CMD_STOP))
                return PortFinding("palpation", f"a palpation protocol-v1 device "
                                   f"({msg.device_id}, firmware {msg.firmware_version})", [])
    return None


def _try_listen(ser: serial.Serial, seconds: float) -> PortFinding | None:
    """Lines the device prints by itself: a sketch, in one of the formats we read."""
    lines = _exchange(ser, b"", seconds)
    return describe_sketch(lines, seconds) if len(lines) >= 2 else None


def describe_sketch(lines: list[str], seconds: float) -> PortFinding | None:
    """The format of a sketch's lines and the options that read it; None if none fits."""
    readings = [(line, parse_value_unit(line, 1.0)) for line in lines]
    readings = [(line, r) for line, r in readings if r is not None]
    if readings:
        line, (_, unit) = readings[-1]
        options = [] if unit else ["--ascii-unit", "UNIT"]
        what = f"unit {unit!r}" if unit else "no unit: replace UNIT with the sketch's unit"
        return PortFinding("ascii", f"an ASCII sketch printing lines like {line!r} ({what})",
                           options)
    rows = [COLUMNS.split(line) for line in lines]
    rows = [r for r in rows if len(r) >= 2 and all(_is_number(f) for f in r)]
    if len(rows) < 2:
        return None
    first = [float(r[0]) for r in rows]
    options = ["--ascii-column", "2", "--ascii-unit", "UNIT"]
    if all(b > a for a, b in pairwise(first)) and all(f.is_integer() for f in first):
        per_second = (first[-1] - first[0]) / max(seconds, 1e-3)
        options[2:2] = ["--ascii-time", "1:us" if per_second > 1e4 else "1:ms"]
    return PortFinding("ascii", f"an ASCII sketch printing CSV/TSV lines like "
                       f"{lines[-1]!r} (no unit: replace UNIT with the sketch's unit)", options)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _try_imada(ser: serial.Serial, seconds: float) -> PortFinding | None:
    reply = _exchange(ser, b"D\r", seconds)
    if any(IMADA_REPLY.match(line) for line in reply):
        return PortFinding("imada", f"an Imada gauge (D answered {reply[-1]!r})", [])
    return None


def _try_mark10(ser: serial.Serial, seconds: float) -> PortFinding | None:
    reply = _exchange(ser, b"?C\r", seconds)
    if reply and reply[-1] == "*10":
        reply = _exchange(ser, b"?\r", seconds)
        series = "Series 4 (?C refused)"
    else:
        series = "Series 5"
    parsed = [parse_value_unit(line, 1.0) for line in reply]
    if not parsed or parsed[-1] is None:
        return None
    options = [] if parsed[-1][1] else ["--gauge-unit", "UNIT"]
    return PortFinding("mark10", f"a Mark-10 gauge, {series} (answered {reply[-1]!r})", options)


def _try_wagner_fpx(ser: serial.Serial, seconds: float) -> PortFinding | None:
    reply = _exchange(ser, b"?\r", seconds)
    if reply and parse_value_unit(reply[-1], 1.0) is not None:
        return PortFinding("wagner", f"a Wagner FPX gauge (? answered {reply[-1]!r})",
                           ["--wagner-model", "fpx"])
    return None


def _try_wagner_fdix(ser: serial.Serial, seconds: float) -> PortFinding | None:
    lines = _exchange(ser, b"CA\rC10\rCB\r", max(seconds, 0.5))
    ser.write(b"CE\r")
    if len(lines) >= 2 and all(WAGNER_LINE.match(line) or line == "HELP" for line in lines):
        return PortFinding("wagner", f"a Wagner FDIX gauge (CB streamed {lines[-1]!r})", [])
    return None


_TRIES = {"palpation": _try_palpation, "listen": _try_listen, "imada": _try_imada,
          "mark10": _try_mark10, "wagner-fpx": _try_wagner_fpx,
          "wagner-fdix": _try_wagner_fdix}
