"""Benchmark 1: protocol-v1 decoding throughput on the same clean stream in the same run:
the product's decoder (FrameDecoder) against a straightforward per-byte state machine
(bench/perbyte_parser.py, the baseline) and against the byte-at-a-time reference parser
that defines the semantics (firmware_bridge/bytewise.py). All three are timed the same way:
best of 3 over the same frames, at each read size. Prints frames/s and ratios to the
baseline at the same read size, and saves them to bench/results/decode.json.

    python bench/bench_decode.py [--frames 1000000] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from perbyte_parser import PerByteParser
from results import save

from firmware_bridge.bytewise import BytewiseParser
from firmware_bridge.frames import FrameDecoder, encode_samples

READ_SIZES = (288, 1024, 4096, 65536)
REPEAT = 3
FRAME_BYTES = 18


def make_stream(n: int) -> bytes:
    rng = np.random.default_rng(0)
    return encode_samples(np.arange(n), np.arange(n) * 10, rng.integers(-2**23, 2**23, n),
                          np.zeros(n, np.uint8))


def rate(fn: Callable[[bytes, int], None], data: bytes, chunk: int, frames: int) -> float:
    """Frames per second of ``fn`` fed ``data`` in ``chunk``-byte reads, best of REPEAT."""
    best = float("inf")
    for _ in range(REPEAT):
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
    """Every parser finds every frame (so the figures compare equal work)."""
    p = PerByteParser()
    p.feed(data)
    b = BytewiseParser()
    b.feed(data)
    d = FrameDecoder()
    assert len(p.samples) == len(b.samples()) == frames == len(d.feed(data).samples)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100 000 frames: a smoke run")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.frames
    data = make_stream(n)
    check(data[: 10_000 * FRAME_BYTES], 10_000)
    print(f"decoding benchmark: {n:,} {FRAME_BYTES}-byte sample frames, best of {REPEAT}, "
          "frames/s (ratio to the per-byte baseline at the same read size)")
    rows = []
    for chunk in READ_SIZES:
        row = {"read_bytes": chunk, "perbyte": rate(perbyte, data, chunk, n),
               "reference": rate(bytewise, data, chunk, n),
               "product": rate(vectorised, data, chunk, n)}
        rows.append(row)
        base = row["perbyte"]
        print(f"  {chunk:>6} B reads: per-byte state machine (baseline) {base:12,.0f}   "
              f"reference parser {row['reference']:12,.0f} ({row['reference'] / base:4.1f}x)   "
              f"FrameDecoder {row['product']:12,.0f} ({row['product'] / base:4.1f}x)",
              flush=True)
    save("decode", {"frames": n, "frame_bytes": FRAME_BYTES, "repeat": REPEAT,
                    "read_sizes": list(READ_SIZES)},
         {"frames_per_s": rows}, quick=args.quick)


if __name__ == "__main__":
    main()
