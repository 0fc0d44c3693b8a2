"""What the hold detector reports, and the running sums it reports from.

Why a module of its own: these records (``HoldConfig``, ``Hold``, ``HoldEvent``, ``LiveHold``)
are what the recorder, the coach, the metrics and the tests exchange, while ``analysis.holds``
holds the detection logic; ``RunningSums`` is the per-hold statistics the detector keeps
cheaply (a few numpy reductions per chunk) and freezes into a ``Hold``. Import them from
``analysis.holds``, which re-exports them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Hold", "HoldConfig", "HoldEvent", "LiveHold", "RunningSums"]


@dataclass(frozen=True, kw_only=True)
class HoldConfig:
    """Thresholds of the hold detector; all forces in newtons, times in seconds.

    on_n: force a cluster must reach to be a hold (arms the detector).
    off_n: lower threshold (< on_n): a hold starts at the upward and ends at the downward
        crossing of it. The gap between the two is the hysteresis that keeps noise and tremor
        near one threshold from toggling the state.
    band_low_n, band_high_n: target band, inclusive, for time in band / above band.
    min_hold_s: debounce; clusters shorter than this are not holds.
    merge_gap_s: a drop below ``off_n`` shorter than this, followed by a re-press, stays in the
        same hold. It is also the latency of the "end" event (the detector must see that long
        below ``off_n`` to know the hold is over).
    max_dt_s: longest sample interval counted as time; longer steps are gaps in the stream
        (lost frames, reconnects) and count only ``max_dt_s``, never the whole gap. ``None``:
        ``AUTO_GAP_FACTOR`` x the median of the stream's first ``BOOT_STEPS`` steps (the
        detector then buffers those first samples before it reports anything).
    """

    on_n: float
    off_n: float
    band_low_n: float
    band_high_n: float
    min_hold_s: float = 1.0
    merge_gap_s: float = 0.3
    max_dt_s: float | None = None

    def __post_init__(self) -> None:
        """Reject thresholds that cannot segment anything sensibly."""
        vals = (self.on_n, self.off_n, self.band_low_n, self.band_high_n, self.min_hold_s,
                self.merge_gap_s)
        if not all(math.isfinite(v) for v in vals):
            raise ValueError("thresholds and times must be finite")
        if not self.off_n < self.on_n:
            raise ValueError("off_n must be below on_n (hysteresis)")
        if not self.band_low_n <= self.band_high_n:
            raise ValueError("band_low_n must be <= band_high_n")
        if self.min_hold_s < 0 or self.merge_gap_s < 0:
            raise ValueError("min_hold_s and merge_gap_s must be >= 0")
        if self.max_dt_s is not None and not self.max_dt_s > 0:
            raise ValueError("max_dt_s must be > 0 (or None for automatic)")


@dataclass(frozen=True)
class Hold:
    """One hold (or, in a "start" event, the part of it seen so far: ``complete`` False).

    A hold still pressed at the end of the data (``HoldDetector.finish``) is also incomplete:
    the recording, not the therapist, ended it, so it is never counted as done nor judged.

    Times are stream seconds; integrals weight each sample by the capped interval since the
    previous sample (see ``HoldConfig.max_dt_s``), so a gap in the stream adds to
    ``duration_s`` and ``missing_s`` but never to ``time_in_band_s`` or ``time_above_s``.
    """

    index: int  # 0-based hold number in this detector's stream
    start_s: float  # upward crossing of off_n
    end_s: float  # downward crossing of off_n (partial hold: time of the last sample seen)
    duration_s: float  # end_s - start_s
    peak_n: float  # highest sample
    peak_s: float  # time of that sample
    mean_n: float  # time-weighted mean force over the hold
    time_in_band_s: float  # cumulative time with band_low_n <= force <= band_high_n
    time_above_s: float  # cumulative time with force > band_high_n
    time_to_band_s: float  # start to the first sample in band; NaN if it never got there
    samples: int  # samples inside [start_s, end_s]
    missing_s: float  # time inside the hold not covered by samples (stream gaps)
    complete: bool  # False: the partial hold of a "start" event, or one the data's end cut off


@dataclass(frozen=True)
class HoldEvent:
    """A hold was confirmed ("start", with a partial hold) or finished ("end").

    ``at_s`` is the time of the sample at which the detector could decide: a start is known
    ``min_hold_s`` after the hold began (debounce), an end ``merge_gap_s`` after it ended.
    """

    kind: Literal["start", "end"]
    hold: Hold
    at_s: float


@dataclass(frozen=True)
class LiveHold:
    """The hold in progress, for the live window (``HoldDetector.current``).

    Shown as soon as the force reaches ``on_n``, before the ``min_hold_s`` debounce has
    ``confirmed`` it, so the trainee gets feedback from the first moment of loading.
    ``releasing`` is True while the force is below ``off_n`` but a re-press could still
    continue the hold (within ``merge_gap_s``).
    """

    index: int
    start_s: float
    elapsed_s: float  # last sample time - start_s
    time_in_band_s: float
    time_above_s: float
    time_to_band_s: float
    peak_n: float
    last_n: float  # force of the last sample
    confirmed: bool
    releasing: bool


class RunningSums:
    """Running sums of a stretch of samples (the cheap live statistics of a hold), kept by
    ``HoldDetector`` for the open hold and frozen into a ``Hold`` when it is reported."""

    __slots__ = ("n", "sum_dt", "sum_fdt", "peak_n", "peak_s", "band_s", "above_s",
                 "first_band_s", "missing_s")

    def __init__(self) -> None:
        self.n = 0
        self.sum_dt = 0.0
        self.sum_fdt = 0.0
        self.peak_n = -math.inf
        self.peak_s = math.nan
        self.band_s = 0.0
        self.above_s = 0.0
        self.first_band_s = math.nan
        self.missing_s = 0.0

    def merge(self, o: RunningSums) -> None:
        """Append the stretch ``o`` that follows this one."""
        self.n += o.n
        self.sum_dt += o.sum_dt
        self.sum_fdt += o.sum_fdt
        if o.peak_n > self.peak_n:
            self.peak_n, self.peak_s = o.peak_n, o.peak_s
        self.band_s += o.band_s
        self.above_s += o.above_s
        if math.isnan(self.first_band_s):
            self.first_band_s = o.first_band_s
        self.missing_s += o.missing_s

    def copy(self) -> RunningSums:
        """An independent copy."""
        c = RunningSums()
        c.merge(self)
        return c

    def add(self, t: np.ndarray, f: np.ndarray, d: np.ndarray, raw: np.ndarray | None,
            config: HoldConfig, a: int, b: int) -> None:
        """Accumulate chunk samples [a, b) (a few numpy reductions): times ``t``, forces ``f``,
        capped intervals ``d`` and, when the chunk has gaps, uncapped intervals ``raw``."""
        if b <= a:
            return
        fs = f[a:b]
        ds = d[a:b]
        self.n += b - a
        self.sum_dt += float(ds.sum())
        self.sum_fdt += float(fs @ ds)
        i = int(fs.argmax())
        peak = float(fs[i])
        if peak > self.peak_n:
            self.peak_n, self.peak_s = peak, float(t[a + i])
        low, high = config.band_low_n, config.band_high_n
        if peak >= low:
            ge = fs >= low
            t_ge = float(ds @ ge)
            if peak > high:
                t_gt = float(ds @ (fs > high))
                self.above_s += t_gt
                self.band_s += t_ge - t_gt
            else:
                self.band_s += t_ge
            if math.isnan(self.first_band_s):
                inb = ge & (fs <= high) if peak > high else ge
                j = int(inb.argmax())
                if inb[j]:
                    self.first_band_s = float(t[a + j])
        if raw is not None:
            self.missing_s += float((raw[a:b] - ds).sum())

    def live(self, index: int, start_s: float, last_s: float, last_n: float, *,
             confirmed: bool, releasing: bool) -> LiveHold:
        """The running sums as the hold in progress, its last sample at ``last_s`` (``last_n``)."""
        return LiveHold(
            index=index,
            start_s=start_s,
            elapsed_s=last_s - start_s,
            time_in_band_s=self.band_s,
            time_above_s=self.above_s,
            time_to_band_s=self.first_band_s - start_s,
            peak_n=self.peak_n,
            last_n=last_n,
            confirmed=confirmed,
            releasing=releasing,
        )

    def freeze(self, index: int, start_s: float, end_s: float, complete: bool) -> Hold:
        """The running sums as a ``Hold``."""
        return Hold(
            index=index,
            start_s=start_s,
            end_s=end_s,
            duration_s=end_s - start_s,
            peak_n=self.peak_n,
            peak_s=self.peak_s,
            mean_n=self.sum_fdt / self.sum_dt if self.sum_dt > 0 else math.nan,
            time_in_band_s=self.band_s,
            time_above_s=self.above_s,
            time_to_band_s=self.first_band_s - start_s,
            samples=self.n,
            missing_s=self.missing_s,
            complete=complete,
        )
