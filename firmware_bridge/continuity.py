"""Sequence and device-clock unwrapping, and gap detection, for a stream of sample frames.

The wire carries a 16-bit sequence counter and a 32-bit microsecond tick, both wrapping.
At 100 kHz the counter wraps every 0.66 s, so a long outage is ambiguous from the counter
alone; the tick (wrapping every 71 min) tells how many whole counter turns were missed.
A tick that goes backwards means the device restarted: a new epoch begins, and the
unwrapped counters continue from where they were so that they stay monotonic in the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SEQ_MOD = 1 << 16
TICK_MOD = 1 << 32
PLAIN_MAX = 64  # blocks up to this size are checked with plain Python, larger ones with numpy


@dataclass
class Gap:
    """``missing`` frames were lost just before the sample at ``index`` of the block."""

    index: int
    missing: int


@dataclass
class Unwrapped:
    sequence: np.ndarray  # int64
    tick_us: np.ndarray  # int64
    gaps: list[Gap] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)  # indices where a new device epoch began


class ContinuityTracker:
    """Unwraps sequence and tick across blocks and reports gaps and device restarts.

    ``nominal_rate_hz`` (from the device information) lets the tick resolve gaps longer than
    one counter turn; without it gaps are taken modulo 65536.
    """

    def __init__(self, nominal_rate_hz: float = 0.0) -> None:
        self.nominal_rate_hz = nominal_rate_hz
        self._wire: tuple[int, int] | None = None  # last (seq, tick) as received
        self._unwrapped: tuple[int, int] | None = None  # last (seq, tick) unwrapped
        self.gap_count = 0
        self.missing_frames = 0
        self.restart_count = 0
        self.duplicates = 0

    @property
    def last_tick_us(self) -> int | None:
        return None if self._unwrapped is None else self._unwrapped[1]

    def feed(self, seq: np.ndarray, tick: np.ndarray) -> Unwrapped:
        if len(seq) == 0:
            return Unwrapped(np.empty(0, np.int64), np.empty(0, np.int64))
        seq = seq.astype(np.int64)
        tick = tick.astype(np.int64)
        quick = self._contiguous(seq, tick)
        if quick is not None:
            return quick
        if self._wire is None:
            prev_wire, prev_un = (int(seq[0]) - 1, int(tick[0])), (int(seq[0]) - 1, int(tick[0]))
        else:
            prev_wire, prev_un = self._wire, self._unwrapped
        dseq = np.diff(seq, prepend=prev_wire[0]) % SEQ_MOD
        dtick = np.diff(tick, prepend=prev_wire[1]) % TICK_MOD
        gaps, restarts = [], []
        odd = (dseq != 1) | (dtick >= TICK_MOD // 2)
        if self.nominal_rate_hz > 0:  # a step of 1 with a long pause: whole turns were lost
            odd |= dtick > (SEQ_MOD // 2) * 1e6 / self.nominal_rate_hz
        for i in np.flatnonzero(odd).tolist():
            d, dt = int(dseq[i]), int(dtick[i])
            if dt >= TICK_MOD // 2:
                restarts.append(i)
                dseq[i], dtick[i] = 1, self._period_us()
                continue
            d = self._resolve(d, dt)
            dseq[i] = d
            if d == 0:
                self.duplicates += 1
            elif d > 1:
                gaps.append(Gap(i, d - 1))
        seq_un = np.cumsum(dseq) + prev_un[0]
        tick_un = np.cumsum(dtick) + prev_un[1]
        self._wire = (int(seq[-1]), int(tick[-1]))
        self._unwrapped = (int(seq_un[-1]), int(tick_un[-1]))
        self.gap_count += len(gaps)
        self.missing_frames += sum(g.missing for g in gaps)
        self.restart_count += len(restarts)
        return Unwrapped(seq_un, tick_un, gaps, restarts)

    def _contiguous(self, seq: np.ndarray, tick: np.ndarray) -> Unwrapped | None:
        """The usual block (no gap, no wrap of the tick) unwrapped without the general
        path's bookkeeping; None if the block is not that."""
        if self._wire is None:
            return None
        last_seq, last_tick = self._wire
        if not _steps_by_one(seq, tick, last_seq, last_tick):
            return None
        n = len(seq)
        end_tick = int(tick[-1])
        if (self.nominal_rate_hz > 0
                and (end_tick - last_tick) * self.nominal_rate_hz / 1e6 > n + SEQ_MOD // 2):
            return None  # the counter looks contiguous but whole turns of it were lost
        seq_base, tick_base = self._unwrapped
        seq_un = np.arange(seq_base + 1, seq_base + 1 + n, dtype=np.int64)
        tick_un = tick - (last_tick - tick_base)
        self._wire = (int(seq[-1]), end_tick)
        self._unwrapped = (seq_base + n, end_tick - last_tick + tick_base)
        return Unwrapped(seq_un, tick_un)

    def _period_us(self) -> int:
        return round(1e6 / self.nominal_rate_hz) if self.nominal_rate_hz > 0 else 1

    def _resolve(self, dseq: int, dtick: int) -> int:
        """Counter step including whole turns of the counter the tick says were missed."""
        if self.nominal_rate_hz <= 0:
            return dseq
        expected = dtick * self.nominal_rate_hz / 1e6
        turns = max(0, round((expected - dseq) / SEQ_MOD))
        return dseq + turns * SEQ_MOD


def _steps_by_one(seq: np.ndarray, tick: np.ndarray, last_seq: int, last_tick: int) -> bool:
    """Whether every sequence number follows the one before it by one (modulo the counter)
    and the tick never goes back, from (``last_seq``, ``last_tick``) on. A slow sensor's
    block is a handful of samples, where numpy's per-call cost is most of the work, so small
    blocks are checked on lists."""
    if len(seq) > PLAIN_MAX:
        if (int(seq[0]) - last_seq) % SEQ_MOD != 1 or int(tick[0]) < last_tick:
            return False
        return bool((((seq[1:] - seq[:-1]) & (SEQ_MOD - 1)) == 1).all()
                    and (tick[1:] >= tick[:-1]).all())
    prev = last_seq
    for v in seq.tolist():
        if v - prev not in (1, 1 - SEQ_MOD):
            return False
        prev = v
    prev = last_tick
    for v in tick.tolist():
        if v < prev:
            return False
        prev = v
    return True
