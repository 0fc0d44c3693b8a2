"""The straightforward parser most serial-plotter projects write: a state machine that
takes one byte at a time (sync, sync, header, payload, CRC) and updates the CRC per byte.
Benchmark baseline only; it does not resynchronise inside a bad frame as the product does."""

from __future__ import annotations

import struct

from firmware_bridge.frames import CRC_TABLE, SYNC, TYPE_SAMPLE

_TABLE = CRC_TABLE.tolist()


class PerByteParser:
    def __init__(self) -> None:
        self.state = 0
        self.body = bytearray()
        self.need = 0
        self.crc = 0xFFFF
        self.samples: list[tuple[int, int, int, int]] = []

    def feed(self, data: bytes) -> None:
        for b in data:
            if self.state == 0:
                self.state = 1 if b == SYNC[0] else 0
            elif self.state == 1:
                self.state = 2 if b == SYNC[1] else (1 if b == SYNC[0] else 0)
                self.body.clear()
                self.crc = 0xFFFF
            elif self.state == 2:
                self.body.append(b)
                self.crc = ((self.crc << 8) & 0xFFFF) ^ _TABLE[(self.crc >> 8) ^ b]
                if len(self.body) == 3:
                    self.need = 3 + self.body[2]
                    self.state = 3 if self.need > 3 else 4
            elif self.state == 3:
                self.body.append(b)
                self.crc = ((self.crc << 8) & 0xFFFF) ^ _TABLE[(self.crc >> 8) ^ b]
                if len(self.body) == self.need:
                    self.state = 4
            elif self.state == 4:
                self.lo = b
                self.state = 5
            else:
                if self.lo | b << 8 == self.crc and self.body[1] == TYPE_SAMPLE:
                    self.samples.append(struct.unpack_from("<HIiB", self.body, 3))
                self.state = 0
