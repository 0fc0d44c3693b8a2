"""Benchmark 1: protocol-v1 decoding throughput on the same clean stream in the same run:
the product's decoder (FrameDecoder) against a straightforward per-byte state machine
(bench/perbyte_parser.py, the baseline) and against the byte-at-a-time reference parser
that defines the semantics (firmware_bridge/bytewise.py). Prints frames/s and ratios."""

from __future__ import annotations

import time

import numpy as np
from perbyte_parser import PerByteParser

from firmware_bridge.bytewise import BytewiseParser
from firmware_bridge.frames import FrameDecoder, encode_samples


def make_stream(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode_samples(np.arange(n), np.arange(n) * 10, rng.integers(-2**23, 2**23, n),
                          np.zeros(n, np.uint8))


def rate(fn, data: bytes, chunk: int, frames: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(data, chunk)
        best = min(best, time.perf_counter() - t)
    return frames / best


def vectorised(data: bytes, chunk: int) -> None:
    d = FrameDecoder()
    for i in range(0, len(data), chunk):
        d.feed(data[i:i + chunk])


def bytewise(data: bytes, chunk: int) -> None:
    p = BytewiseParser()
    for i in range(0, len(data), chunk):
        p.feed(data[i:i + chunk])


def perbyte(data: bytes, chunk: int) -> None:
    p = PerByteParser()
    for i in range(0, len(data), chunk):
        p.feed(data[i:i + chunk])


def check(data: bytes, frames: int) -> None:
    """Both parsers find every frame (so the figures compare equal work)."""
    p = PerByteParser()
    p.feed(data)
    d = FrameDecoder()
    assert len(p.samples) == frames == len(d.feed(data).samples)


def main() -> None:
    n = 1_000_000
    data = make_stream(n)
    check(data[: 10_000 * 18], 10_000)
    small = data[: 50_000 * 18]
    base = rate(perbyte, small, 4096, 50_000, repeat=1)
    ref = rate(bytewise, small, 4096, 50_000, repeat=1)
    print("decoding benchmark: 18-byte sample frames, frames/s (ratio to the per-byte baseline)")
    print(f"  per-byte state machine (baseline), 4 KiB reads : {base:12,.0f}")
    print(f"  reference byte-at-a-time parser,   4 KiB reads : {ref:12,.0f}  ({ref / base:4.1f}x)")
    for chunk in (288, 1024, 4096, 65536):
        r = rate(vectorised, data, chunk, n)
        print(f"  FrameDecoder, {chunk:>6} B reads                 : {r:12,.0f}  "
              f"({r / base:4.1f}x)")


if __name__ == "__main__":
    main()
