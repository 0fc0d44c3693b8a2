"""The byte-at-a-time protocol-v1 parser: the executable definition of decoding.

Slow and obvious on purpose. ``FrameDecoder`` must produce exactly what this produces
(tests check it on random and damaged streams) and the decoding benchmark measures the
vectorised decoder against it.
"""

from __future__ import annotations

from firmware_bridge.frames import (
    _LEN_RANGE,
    CRC_LEN,
    HEADER_LEN,
    SYNC,
    TYPE_SAMPLE,
    VERSION,
    crc16,
)


class BytewiseParser:
    """Feed bytes; collect ``(type, payload)`` frames, CRC failures and discarded bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames: list[tuple[int, bytes]] = []
        self.crc_errors = 0
        self.garbage_bytes = 0

    def feed(self, data: bytes) -> None:
        self.buf += data
        while self.buf:
            status = self._try_frame()
            if status == "wait":
                return
            if status == "skip":
                del self.buf[0]
                self.garbage_bytes += 1

    def _try_frame(self) -> str:
        buf = self.buf
        for i in range(min(len(buf), 2)):
            if buf[i] != SYNC[i]:
                return "skip"
        if len(buf) < HEADER_LEN:
            return "wait"
        ftype, length = buf[3], buf[4]
        lo, hi = _LEN_RANGE.get(ftype, (1, -1))
        if buf[2] != VERSION or not lo <= length <= hi:
            return "skip"
        end = HEADER_LEN + length + CRC_LEN
        if len(buf) < end:
            return "wait"
        if crc16(bytes(buf[2:end - CRC_LEN])) != int.from_bytes(buf[end - CRC_LEN:end], "little"):
            self.crc_errors += 1
            return "skip"
        self.frames.append((ftype, bytes(buf[HEADER_LEN:end - CRC_LEN])))
        del buf[:end]
        return "taken"

    def samples(self) -> list[bytes]:
        return [p for t, p in self.frames if t == TYPE_SAMPLE]
