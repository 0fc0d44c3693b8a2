"""Wire protocol v1: frame encoding and an incremental, vectorised decoder.

The byte layout is specified in ``PROTOCOL.md`` next to this file; this module is the
reference implementation of it. Decoding works on whole chunks with numpy so that a Python
host keeps up with 100 k frames/s, while giving exactly the result of the textbook parser
that resynchronises one byte at a time (see ``FrameDecoder.feed``).
"""

from __future__ import annotations

import binascii
import math
import struct
from dataclasses import dataclass, field

import numpy as np

SYNC = b"\xa5\x5a"
VERSION = 1
HEADER_LEN = 5  # sync0 sync1 version type length
CRC_LEN = 2
MAX_PAYLOAD = 240

TYPE_SAMPLE = 0x01
TYPE_DEVICE_INFO = 0x02
TYPE_ACK = 0x03
CMD_IDENTIFY = 0x10
CMD_START = 0x11
CMD_STOP = 0x12
CMD_SET_RATE = 0x13
CMD_TARE = 0x14
COMMANDS = (CMD_IDENTIFY, CMD_START, CMD_STOP, CMD_SET_RATE, CMD_TARE)
COMMAND_NAMES = {
    CMD_IDENTIFY: "identify",
    CMD_START: "start",
    CMD_STOP: "stop",
    CMD_SET_RATE: "set_rate",
    CMD_TARE: "tare",
}

FLAG_BUTTON = 0x01
FLAG_SATURATED = 0x02
FLAG_FAULT = 0x04

ACK_OK = 0
ACK_UNSUPPORTED = 1
ACK_BAD_ARGUMENT = 2
ACK_BUSY = 3

SAMPLE_PAYLOAD_LEN = 11
SAMPLE_FRAME_LEN = HEADER_LEN + SAMPLE_PAYLOAD_LEN + CRC_LEN
INFO_FIXED_LEN = 14  # fields before the two length-prefixed strings
MAX_TEXT = 32

SENSOR_KINDS = {0: "unknown", 1: "load cell (HX711)", 2: "FSR / analog", 3: "strain gauge",
                4: "simulated", 5: "force gauge"}

# Allowed payload length per frame type: (min, max). Anything else is not a frame header.
_LEN_RANGE = {
    TYPE_SAMPLE: (SAMPLE_PAYLOAD_LEN, SAMPLE_PAYLOAD_LEN),
    TYPE_DEVICE_INFO: (INFO_FIXED_LEN + 2, INFO_FIXED_LEN + 2 + 2 * MAX_TEXT),
    TYPE_ACK: (6, 6),
    CMD_IDENTIFY: (0, 0),
    CMD_START: (0, 0),
    CMD_STOP: (0, 0),
    CMD_SET_RATE: (4, 4),
    CMD_TARE: (0, 0),
}
_MIN_LEN = np.full(256, 1, dtype=np.int16)
_MAX_LEN = np.full(256, -1, dtype=np.int16)
for _t, (_lo, _hi) in _LEN_RANGE.items():
    _MIN_LEN[_t], _MAX_LEN[_t] = _lo, _hi
MAX_FRAME_LEN = HEADER_LEN + int(_MAX_LEN.max()) + CRC_LEN


def _crc_tables() -> tuple[np.ndarray, np.ndarray]:
    """Byte-wise table, and a 16-bit table that takes two message bytes per step: for a
    16-bit CRC, feeding 16 bits leaves T16[register ^ word]."""
    table = np.zeros(256, dtype=np.uint16)
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table[byte] = crc & 0xFFFF
    reg = np.arange(1 << 16, dtype=np.uint16)
    for _ in range(2):
        reg = (reg << 8) ^ table[reg >> 8]
    return table, reg


CRC_TABLE, CRC_TABLE16 = _crc_tables()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor); the
    standard library's ``binascii.crc_hqx`` computes exactly this."""
    return binascii.crc_hqx(data, crc)


def crc16_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-16/CCITT-FALSE of every row of a 2-D uint8 array, two columns per step."""
    crc = np.full(rows.shape[0], 0xFFFF, dtype=np.uint16)
    cols = rows.shape[1]
    for col in range(0, cols - 1, 2):
        word = (rows[:, col].astype(np.uint16) << 8) | rows[:, col + 1]
        crc = CRC_TABLE16[crc ^ word]
    if cols % 2:
        crc = (crc << 8) ^ CRC_TABLE[(crc >> 8) ^ rows[:, -1]]
    return crc


def encode_frame(frame_type: int, payload: bytes = b"") -> bytes:
    """One frame: sync, version, type, length, payload, CRC over version..payload (LE)."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = bytes((VERSION, frame_type, len(payload))) + payload
    return SYNC + body + struct.pack("<H", crc16(body))


SAMPLE_DTYPE = np.dtype(
    {
        "names": ["sync", "version", "type", "length", "seq", "tick", "raw", "flags", "crc"],
        "formats": ["<u2", "u1", "u1", "u1", "<u2", "<u4", "<i4", "u1", "<u2"],
        "offsets": [0, 2, 3, 4, 5, 7, 11, 15, 16],
        "itemsize": SAMPLE_FRAME_LEN,
    }
)


def encode_samples(seq: np.ndarray, tick: np.ndarray, raw: np.ndarray,
                   flags: np.ndarray) -> bytes:
    """Encode many sample frames at once (the simulator's and benchmarks' fast path)."""
    n = len(seq)
    rec = np.zeros(n, dtype=SAMPLE_DTYPE)
    rec["sync"] = 0x5AA5
    rec["version"] = VERSION
    rec["type"] = TYPE_SAMPLE
    rec["length"] = SAMPLE_PAYLOAD_LEN
    rec["seq"] = np.asarray(seq) & 0xFFFF
    rec["tick"] = np.asarray(tick) & 0xFFFFFFFF
    rec["raw"] = raw
    rec["flags"] = flags
    rows = rec.view(np.uint8).reshape(n, SAMPLE_FRAME_LEN)
    rec["crc"] = crc16_rows(rows[:, 2:SAMPLE_FRAME_LEN - CRC_LEN])
    return rec.tobytes()


def encode_sample(seq: int, tick: int, raw: int, flags: int = 0) -> bytes:
    """Encode one sample frame."""
    payload = struct.pack("<HIiB", seq & 0xFFFF, tick & 0xFFFFFFFF, raw, flags)
    return encode_frame(TYPE_SAMPLE, payload)


@dataclass(frozen=True)
class DeviceInfo:
    """What a device says about itself, at power-up and in answer to ``identify``."""

    device_id: str
    model: str = ""
    firmware_version: str = "0.0.0"
    sensor_kind: int = 0
    adc_bits: int = 24
    nominal_rate_hz: float = 0.0
    counts_per_newton: float = math.nan
    protocol: int = VERSION

    @property
    def sensor_kind_name(self) -> str:
        return SENSOR_KINDS.get(self.sensor_kind, f"kind {self.sensor_kind}")

    def as_attrs(self) -> dict:
        """The device group attributes of a recording file."""
        return {
            "device_id": self.device_id,
            "model": self.model,
            "firmware_version": self.firmware_version,
            "sensor_kind": self.sensor_kind_name,
            "nominal_rate_hz": float(self.nominal_rate_hz) if self.nominal_rate_hz else math.nan,
            "adc_bits": int(self.adc_bits),
            "counts_per_newton": float(self.counts_per_newton),
        }


def encode_device_info(info: DeviceInfo) -> bytes:
    major, minor, patch = (int(p) for p in (info.firmware_version.split(".") + ["0", "0"])[:3])
    text = [s.encode("ascii", "replace")[:MAX_TEXT] for s in (info.device_id, info.model)]
    payload = struct.pack(
        "<BBBBBBIf",
        info.protocol, major, minor, patch, info.sensor_kind, info.adc_bits,
        round(info.nominal_rate_hz * 1000), info.counts_per_newton,
    )
    for s in text:
        payload += bytes((len(s),)) + s
    return encode_frame(TYPE_DEVICE_INFO, payload)


def decode_device_info(payload: bytes) -> DeviceInfo:
    protocol, major, minor, patch, kind, bits, rate_mhz, cpn = struct.unpack_from(
        "<BBBBBBIf", payload)
    pos = INFO_FIXED_LEN
    text = []
    for _ in range(2):
        n = payload[pos] if pos < len(payload) else 0
        text.append(payload[pos + 1:pos + 1 + n].decode("ascii", "replace"))
        pos += 1 + n
    return DeviceInfo(
        device_id=text[0], model=text[1], firmware_version=f"{major}.{minor}.{patch}",
        sensor_kind=kind, adc_bits=bits, nominal_rate_hz=rate_mhz / 1000.0,
        counts_per_newton=float(cpn), protocol=protocol,
    )


@dataclass(frozen=True)
class Ack:
    """A device's answer to a host command; ``value`` is command-specific (see PROTOCOL.md)."""

    command: int
    status: int
    value: int = 0

    @property
    def ok(self) -> bool:
        return self.status == ACK_OK


def encode_ack(ack: Ack) -> bytes:
    return encode_frame(TYPE_ACK, struct.pack("<BBi", ack.command, ack.status, ack.value))


def encode_command(command: int, rate_hz: float | None = None) -> bytes:
    """A host command frame; ``rate_hz`` only for set_rate."""
    if command == CMD_SET_RATE:
        if rate_hz is None or rate_hz <= 0:
            raise ValueError("set_rate needs a positive rate")
        return encode_frame(command, struct.pack("<I", round(rate_hz * 1000)))
    return encode_frame(command)


@dataclass(frozen=True)
class Command:
    """A host command as the device receives it."""

    command: int
    rate_hz: float | None = None


@dataclass
class SampleBlock:
    """Sample frames decoded from one chunk, as parallel arrays (wire values)."""

    seq: np.ndarray
    tick: np.ndarray
    raw: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return len(self.seq)

    @classmethod
    def empty(cls) -> SampleBlock:
        return cls(np.empty(0, np.uint16), np.empty(0, np.uint32), np.empty(0, np.int32),
                   np.empty(0, np.uint8))


@dataclass
class DecodeResult:
    """Output of one ``feed``: samples plus other messages, each tagged with the number of
    samples of this chunk that preceded it, so order is kept."""

    samples: SampleBlock
    messages: list[tuple[int, DeviceInfo | Ack | Command]] = field(default_factory=list)


@dataclass
class DecoderStats:
    frames: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0


class FrameDecoder:
    """Incremental protocol-v1 parser.

    Semantics are those of the byte-at-a-time parser: at the current position, if a complete
    frame with a valid header and CRC starts here, take it and jump past it; if the bytes here
    could still be the start of a frame that has not fully arrived, wait; otherwise discard one
    byte and try again. ``feed`` computes the same thing for a whole chunk at once.
    """

    def __init__(self) -> None:
        self._pending = b""
        self.stats = DecoderStats()

    @property
    def pending_bytes(self) -> int:
        return len(self._pending)

    def discard_pending(self) -> None:
        """Drop a partial frame (after a reconnect its rest will never come)."""
        self.stats.garbage_bytes += len(self._pending)
        self._pending = b""

    def feed(self, data: bytes) -> DecodeResult:
        data = self._pending + data if self._pending else bytes(data)
        whole = _whole_sample_frames(data)
        if whole is not None:
            self._pending = data[whole:]
            rec = np.frombuffer(data, dtype=SAMPLE_DTYPE, count=whole // SAMPLE_FRAME_LEN)
            self.stats.frames += len(rec)
            return DecodeResult(SampleBlock(rec["seq"].copy(), rec["tick"].copy(),
                                            rec["raw"].copy(), rec["flags"].copy()))
        buf = np.frombuffer(data, dtype=np.uint8)
        n = len(buf)
        starts, lengths, hold, crc_errors = _scan(buf)
        self._pending = data[hold:]
        taken = int(lengths.sum()) if len(lengths) else 0
        self.stats.garbage_bytes += hold - taken
        self.stats.crc_errors += crc_errors
        self.stats.frames += len(starts)
        if not len(starts):
            return DecodeResult(SampleBlock.empty())
        types = buf[starts + 3]
        is_sample = types == TYPE_SAMPLE
        sample_starts = starts[is_sample]
        if len(sample_starts) * SAMPLE_FRAME_LEN == n == hold:
            rec = buf.view(SAMPLE_DTYPE)  # the common case: the chunk is whole sample frames
        else:
            rec = buf[sample_starts[:, None] + np.arange(SAMPLE_FRAME_LEN)].reshape(-1).view(
                SAMPLE_DTYPE)
        samples = SampleBlock(rec["seq"].copy(), rec["tick"].copy(), rec["raw"].copy(),
                              rec["flags"].copy())
        messages = []
        if not is_sample.all():
            before = np.cumsum(is_sample) - is_sample
            for i in np.flatnonzero(~is_sample):
                s, ln = int(starts[i]), int(lengths[i])
                msg = _decode_message(int(types[i]), bytes(buf[s + HEADER_LEN:s + ln - CRC_LEN]))
                messages.append((int(before[i]), msg))
        return DecodeResult(samples, messages)


SAMPLE_HEADER = SYNC + bytes((VERSION, TYPE_SAMPLE, SAMPLE_PAYLOAD_LEN))
FAST_PATH_FRAMES = 64  # up to this many frames are checked one by one, more all at once
# a sample frame as nine big-endian 16-bit words: the header's first two, the third's high
# byte, and the CRC over words 1-7 (the CRC is stored little-endian in word 8)
_HEADER_WORDS = (int.from_bytes(SAMPLE_HEADER[0:2], "big"),
                 int.from_bytes(SAMPLE_HEADER[2:4], "big"))


def _whole_sample_frames(data: bytes) -> int | None:
    """If ``data`` is valid sample frames back to back, then possibly the first bytes of the
    next sample frame, the length of the whole frames; else None. That is what a sensor's
    stream almost always is, and checking it directly is several times cheaper than the
    general scan (``_scan``), whose search for sync bytes and frame lengths it skips. The
    result is the same."""
    n = len(data)
    whole = n - n % SAMPLE_FRAME_LEN
    if data[whole:whole + HEADER_LEN] != SAMPLE_HEADER[:n - whole]:
        return None
    if whole > FAST_PATH_FRAMES * SAMPLE_FRAME_LEN:
        return whole if _valid_sample_rows(data, whole // SAMPLE_FRAME_LEN) else None
    crc_at = SAMPLE_FRAME_LEN - CRC_LEN
    for s in range(0, whole, SAMPLE_FRAME_LEN):
        if (data[s:s + HEADER_LEN] != SAMPLE_HEADER or binascii.crc_hqx(
                data[s + 2:s + crc_at], 0xFFFF) != data[s + crc_at] | data[s + crc_at + 1] << 8):
            return None
    return whole


def _valid_sample_rows(data: bytes, frames: int) -> bool:
    """Whether the first ``frames`` frames of ``data`` all have a sample header and a good
    CRC, checked with numpy a 16-bit word column at a time."""
    words = np.frombuffer(data, dtype=">u2", count=frames * SAMPLE_FRAME_LEN // 2).astype(
        np.uint16).reshape(frames, SAMPLE_FRAME_LEN // 2)
    if not ((words[:, 0] == _HEADER_WORDS[0]).all() and (words[:, 1] == _HEADER_WORDS[1]).all()
            and ((words[:, 2] >> 8) == SAMPLE_PAYLOAD_LEN).all()):
        return False
    crc = CRC_TABLE16[words[:, 1] ^ 0xFFFF]
    for col in range(2, SAMPLE_FRAME_LEN // 2 - 1):
        crc = CRC_TABLE16[crc ^ words[:, col]]
    stored = words[:, -1]
    return bool((crc == ((stored >> 8) | (stored << 8))).all())


def _decode_message(frame_type: int, payload: bytes) -> DeviceInfo | Ack | Command:
    if frame_type == TYPE_DEVICE_INFO:
        return decode_device_info(payload)
    if frame_type == TYPE_ACK:
        return Ack(*struct.unpack("<BBi", payload))
    if frame_type == CMD_SET_RATE:
        return Command(frame_type, struct.unpack("<I", payload)[0] / 1000.0)
    return Command(frame_type)


def _scan(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Find the frames the byte-at-a-time parser would take in ``buf``.

    Returns (frame starts, frame lengths, index of the first byte to keep for the next
    chunk, CRC failures). A candidate is a sync pair whose header is plausible (version, a
    known type, a length allowed for that type). Candidates that fit in the buffer are CRC
    checked all at once; valid ones are taken greedily unless they overlap an earlier taken
    frame. The first candidate that does not fit, and is not inside a taken frame, stops the
    scan: everything from there is kept for the next chunk.
    """
    n = len(buf)
    empty = np.empty(0, dtype=np.int64)
    if n < 2:
        hold = n - 1 if n == 1 and buf[0] == SYNC[0] else n
        return empty, empty, hold, 0
    cand = np.flatnonzero((buf[:-1] == SYNC[0]) & (buf[1:] == SYNC[1]))
    complete = cand + HEADER_LEN <= n
    hdr = cand[complete]
    ver, ftype, plen = buf[hdr + 2], buf[hdr + 3], buf[hdr + 4].astype(np.int16)
    plausible = (ver == VERSION) & (plen >= _MIN_LEN[ftype]) & (plen <= _MAX_LEN[ftype])
    hdr, plen = hdr[plausible], plen[plausible].astype(np.int64)
    flen = plen + HEADER_LEN + CRC_LEN
    fits = hdr + flen <= n
    lone_sync = [n - 1] if buf[-1] == SYNC[0] else []  # the first sync byte, at the very end
    waiting = np.concatenate((cand[~complete], hdr[~fits], np.array(lone_sync, np.int64)))
    fit_starts, fit_lens = hdr[fits], flen[fits]
    valid = np.zeros(len(fit_starts), dtype=bool)
    for ln in np.unique(fit_lens):
        sel = fit_lens == ln
        s = fit_starts[sel]
        rows = buf[s[:, None] + np.arange(2, ln)]
        crc = (rows[:, -2].astype(np.uint16) | (rows[:, -1].astype(np.uint16) << 8))
        valid[sel] = crc16_rows(rows[:, :-2]) == crc
    starts, lengths = fit_starts[valid], fit_lens[valid]
    ends = starts + lengths
    if len(starts) > 1 and (starts[1:] < ends[:-1]).any():
        keep = []
        end = -1
        for i, s in enumerate(starts.tolist()):
            if s >= end:
                keep.append(i)
                end = s + int(lengths[i])
        starts, lengths = starts[keep], lengths[keep]
        ends = starts + lengths
    hold = _first_uncovered(np.sort(waiting), starts, ends, n)
    if len(starts) and hold < n:
        inside = starts < hold
        starts, lengths, ends = starts[inside], lengths[inside], ends[inside]
    bad = fit_starts[~valid]
    bad = bad[bad < hold]
    crc_errors = int((~_covered(bad, starts, ends)).sum()) if len(bad) else 0
    return starts, lengths, hold, crc_errors


def _covered(pos: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which positions lie inside a taken frame (starts sorted, frames disjoint)."""
    if not len(starts):
        return np.zeros(len(pos), dtype=bool)
    i = np.searchsorted(starts, pos, side="right") - 1
    return (i >= 0) & (pos < ends[np.maximum(i, 0)])


def _first_uncovered(pos: np.ndarray, starts: np.ndarray, ends: np.ndarray, default: int) -> int:
    free = pos[~_covered(pos, starts, ends)]
    return int(free[0]) if len(free) else default
