"""Benchmark 1: protocol-v1 decoding throughput, vectorised decoder vs the byte-at-a-time
reference parser, on the same clean stream in the same run. Prints frames/s and the ratio."""

from __future__ import annotations

import time

import numpy as np

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


def main() -> None:
    n = 1_000_000
    data = make_stream(n)
    small = data[: 20_000 * 18]
    base = rate(bytewise, small, 4096, 20_000, repeat=1)
    print("decoding benchmark: 18-byte sample frames, best of 3")
    print(f"  byte-at-a-time parser, 4 KiB reads : {base:12,.0f} frames/s")
    for chunk in (1024, 4096, 65536):
        r = rate(vectorised, data, chunk, n)
        print(f"  vectorised decoder, {chunk // 1024:>2} KiB reads  : {r:12,.0f} frames/s"
              f"  ({r / base:5.0f}x)")


if __name__ == "__main__":
    main()
