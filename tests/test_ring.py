"""The screen's ring buffer: wrap-around, oversize pushes, peeking without consuming, its size
per rate and its memory reserved up front."""

import subprocess
import sys
import threading

import numpy as np

from recorder.ring import MAX_SAMPLES, MIN_SAMPLES, RingBuffer


def push(ring, a, b):
    t = np.arange(a, b, dtype=float)
    ring.push(t, t * 2, (np.arange(a, b) % 2).astype(np.uint8))


def test_latest_after_wrap_is_in_order():
    ring = RingBuffer(10)
    for a in range(0, 37, 3):
        push(ring, a, a + 3)
    v = ring.latest()
    assert v.time.tolist() == list(range(29, 39)) and v.total == 39
    assert (v.force == v.time * 2).all()
    assert ring.latest(4).time.tolist() == [35, 36, 37, 38]
    assert ring.latest().total == 39  # peeking does not consume


def test_push_larger_than_capacity_keeps_newest():
    ring = RingBuffer(8)
    push(ring, 0, 3)
    push(ring, 3, 30)
    assert ring.latest().time.tolist() == list(range(22, 30)) and ring.total == 30


def test_since():
    ring = RingBuffer(100)
    push(ring, 0, 50)
    assert ring.since(45.5).time.tolist() == [46, 47, 48, 49]


def test_concurrent_reader_sees_consistent_blocks():
    ring = RingBuffer(1000)
    done = threading.Event()
    bad = []

    def reader():
        while not done.is_set():
            v = ring.latest(500)
            if len(v.time) > 1 and not (np.diff(v.time) == 1).all():
                bad.append(v.time)

    th = threading.Thread(target=reader)
    th.start()
    for a in range(0, 200_000, 777):
        push(ring, a, a + 777)
    done.set()
    th.join(10)
    assert not bad


def test_for_rate_holds_the_seconds_asked_between_the_floor_and_the_cap():
    assert RingBuffer.for_rate(120.0, 1000.0).capacity == 120_000
    assert RingBuffer.for_rate(120.0, None).capacity == 12_000  # unknown rate: 100 Hz
    assert RingBuffer.for_rate(1.0, 10.0).capacity == MIN_SAMPLES
    assert RingBuffer.for_rate(120.0, 100_000.0).capacity == MAX_SAMPLES < 12_000_000


MEMORY_PROBE = """
import numpy as np, psutil
from recorder.ring import RingBuffer
me = psutil.Process()
before = me.memory_info().rss
ring = RingBuffer(2_000_000)
allocated = me.memory_info().rss
for a in range(0, 2_000_000, 10_000):
    t = np.arange(a, a + 10_000) / 1000.0
    ring.push(t, t, np.zeros(10_000, np.uint8))
print(before, allocated, me.memory_info().rss)
"""


def test_memory_is_resident_from_allocation_not_as_the_ring_fills():
    """The pages are touched when the ring is made, so resident memory does not grow while
    it fills (zero-filled pages from np.zeros would only arrive as samples are written).
    Measured in a fresh interpreter, where no freed pages are waiting to be reused."""
    out = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    before, allocated, filled = map(int, out.split())
    size = 2_000_000 * (8 + 8 + 1)
    assert allocated - before >= 0.9 * size
    assert filled - allocated < 0.1 * size
