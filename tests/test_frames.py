"""Protocol v1 codec: test vectors, splitting, resynchronisation, and agreement with the
byte-at-a-time reference parser on damaged streams."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.bytewise import BytewiseParser
from firmware_bridge.frames import (
    ACK_OK,
    CMD_SET_RATE,
    CMD_TARE,
    COMMAND_NAMES,
    COMMANDS,
    SAMPLE_FRAME_LEN,
    Ack,
    Command,
    DeviceInfo,
    FrameDecoder,
    crc16,
    encode_ack,
    encode_command,
    encode_device_info,
    encode_sample,
    encode_samples,
)

SPEC = Path(__file__).parents[1] / "firmware_bridge" / "PROTOCOL.md"


def spec_vectors() -> dict[str, bytes]:
    rows = re.findall(r"^\| ([^|]+?) \| `([0-9A-F ]+)` \|$", SPEC.read_text(), re.M)
    return {name: bytes.fromhex(hexes) for name, hexes in rows}


def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1


def test_spec_vectors_match_the_encoder():
    v = spec_vectors()
    assert len(v) == 10
    assert v["sample seq 1, tick 1000, raw 8388607, flags button"] == encode_sample(
        1, 1000, 8388607, 1)
    assert v["sample seq 65535, tick 4294967295, raw −8388608, flags saturated+fault"] == \
        encode_sample(65535, 4294967295, -8388608, 6)
    assert v["sample seq 0x1234, tick 0x89ABCDEF, raw −1, flags 0"] == encode_sample(
        0x1234, 0x89ABCDEF, -1, 0)
    info = DeviceInfo("SN42", "uno-hx711", "1.2.3", 1, 24, 80.0, 4000.0)
    key = [k for k in v if k.startswith("device info")][0]
    assert v[key] == encode_device_info(info)
    assert v["ack tare ok, zero 84213 counts"] == encode_ack(Ack(CMD_TARE, ACK_OK, 84213))
    for cmd in COMMANDS:
        name = "set rate 1000 Hz" if cmd == CMD_SET_RATE else COMMAND_NAMES[cmd]
        assert v[name] == encode_command(cmd, 1000.0)


def test_spec_vectors_decode():
    v = spec_vectors()
    d = FrameDecoder()
    out = d.feed(b"".join(v.values()))
    assert d.stats.crc_errors == 0 and d.stats.garbage_bytes == 0
    assert out.samples.seq.tolist() == [1, 65535, 0x1234]
    assert out.samples.tick.tolist() == [1000, 4294967295, 0x89ABCDEF]
    assert out.samples.raw.tolist() == [8388607, -8388608, -1]
    assert out.samples.flags.tolist() == [1, 6, 0]
    msgs = [m for _, m in out.messages]
    assert msgs[0] == DeviceInfo("SN42", "uno-hx711", "1.2.3", 1, 24, 80.0, 4000.0)
    assert msgs[1] == Ack(CMD_TARE, ACK_OK, 84213)
    assert msgs[2:] == [Command(c, 1000.0 if c == CMD_SET_RATE else None) for c in COMMANDS]
    # messages keep their place among the samples
    assert [i for i, _ in out.messages] == [3] * 7


def test_device_info_without_factory_calibration_round_trips_nan():
    info = DeviceInfo("X", counts_per_newton=math.nan, nominal_rate_hz=0.5)
    (_, got), = FrameDecoder().feed(encode_device_info(info)).messages
    assert math.isnan(got.counts_per_newton) and got.nominal_rate_hz == 0.5


def stream(n: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = rng.integers(-(2**23), 2**23, n)
    data = encode_samples(np.arange(n), np.arange(n) * 1000, raw, rng.integers(0, 8, n))
    return data, raw


def test_split_at_every_byte_boundary():
    data, raw = stream(6)
    data = data[:36] + encode_device_info(DeviceInfo("SN1")) + data[36:]
    for cut in range(len(data) + 1):
        d = FrameDecoder()
        a, b = d.feed(data[:cut]), d.feed(data[cut:])
        got = np.concatenate((a.samples.raw, b.samples.raw))
        assert got.tolist() == raw.tolist(), cut
        assert len(a.messages) + len(b.messages) == 1
        assert d.stats.garbage_bytes == 0 and d.stats.crc_errors == 0 and d.pending_bytes == 0


def test_one_byte_at_a_time():
    data, raw = stream(20)
    d = FrameDecoder()
    got = [r for i in range(len(data)) for r in d.feed(data[i:i + 1]).samples.raw.tolist()]
    assert got == raw.tolist()


def test_garbage_between_frames_is_skipped_and_counted():
    data, raw = stream(3)
    junk = b"\x00\xa5\xa5\x5a\x02hello\xa5"
    f = SAMPLE_FRAME_LEN
    d = FrameDecoder()
    out = d.feed(junk + data[:f] + junk + data[f:2 * f] + junk + data[2 * f:])
    assert out.samples.raw.tolist() == raw.tolist()
    assert d.stats.garbage_bytes == 3 * len(junk)


def test_bad_crc_loses_only_that_frame():
    data, raw = stream(5)
    bad = bytearray(data)
    bad[2 * SAMPLE_FRAME_LEN + 9] ^= 0x40  # inside the raw reading of frame 2
    d = FrameDecoder()
    out = d.feed(bytes(bad))
    assert out.samples.raw.tolist() == raw[[0, 1, 3, 4]].tolist()
    assert d.stats.crc_errors == 1
    assert d.stats.garbage_bytes == SAMPLE_FRAME_LEN


def test_truncated_frame_waits_then_is_dropped_when_a_frame_follows():
    data, raw = stream(3)
    d = FrameDecoder()
    first = d.feed(data[:SAMPLE_FRAME_LEN + 7])
    assert first.samples.raw.tolist() == raw[:1].tolist() and d.pending_bytes == 7
    rest = d.feed(data[2 * SAMPLE_FRAME_LEN:])
    assert rest.samples.raw.tolist() == raw[2:].tolist()
    assert d.stats.garbage_bytes == 7


@pytest.mark.parametrize("seed", range(12))
def test_agrees_with_bytewise_parser_on_damaged_streams(seed):
    rng = np.random.default_rng(seed)
    data, _ = stream(400, seed)
    infos = encode_device_info(DeviceInfo(f"D{seed}")) + encode_ack(Ack(CMD_TARE, 0, seed))
    buf = bytearray(data[:3000] + infos + data[3000:])
    for pos in rng.integers(0, len(buf), 40):  # flipped bytes
        buf[pos] ^= int(rng.integers(1, 256))
    for pos in sorted(rng.integers(0, len(buf), 10), reverse=True):  # deleted runs
        del buf[pos:pos + int(rng.integers(1, 30))]
    for pos in sorted(rng.integers(0, len(buf), 10), reverse=True):  # inserted sync noise
        buf[pos:pos] = bytes([0xA5, 0x5A, 0x01, 0x01, 0x0B])[: int(rng.integers(1, 6))]
    ref = BytewiseParser()
    ref.feed(bytes(buf))
    d = FrameDecoder()
    cuts = np.sort(rng.integers(0, len(buf), 30))
    samples, others = [], 0
    for a, b in zip([0, *cuts], [*cuts, len(buf)], strict=True):
        out = d.feed(bytes(buf[a:b]))
        samples += out.samples.raw.tolist()
        others += len(out.messages)
    want = [int.from_bytes(p[6:10], "little", signed=True) for p in ref.samples()]
    assert samples == want
    assert others == len(ref.frames) - len(want)
    assert d.stats.crc_errors == ref.crc_errors
    assert d.stats.garbage_bytes + d.pending_bytes == ref.garbage_bytes + len(ref.buf)
    assert d.stats.crc_errors > 0


def test_payload_too_long_is_refused():
    from firmware_bridge.frames import encode_frame

    with pytest.raises(ValueError):
        encode_frame(0x01, bytes(241))


def test_frame_ending_in_a_sync_byte_is_not_held_back():
    # a CRC whose last byte is 0xA5 must not be mistaken for the start of the next frame
    frames = [encode_sample(seq, 0, 0, 0) for seq in range(2000)]
    ending = [(seq, frame) for seq, frame in enumerate(frames) if frame[-1] == 0xA5]
    assert ending, "no sample frame among the first 2000 ends in 0xA5: the test tests nothing"
    seq, frame = ending[0]
    d = FrameDecoder()
    out = d.feed(frame)
    assert out.samples.seq.tolist() == [seq]
    assert d.pending_bytes == 0 and d.stats.garbage_bytes == 0
