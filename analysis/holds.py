"""Hold segmentation: find static-compression holds in a force stream, live or offline.

Why one module for both: the recorder shows the trainee a live hold clock and the analysis
reports holds afterwards. If the two used different code they would disagree about where a hold
starts, and trainees would be coached on numbers the report contradicts. ``segment_holds`` is
literally ``HoldDetector`` run over the whole arrays, so they agree by construction, and the
detector's results do not depend on how the stream was chunked (up to float rounding of the
running sums).

Pure: no threads, no Qt, no I/O. Vectorised per chunk: the per-sample work is a handful of
numpy reductions; Python only runs once per threshold crossing (see ``HoldDetector``).

What is a hold (the definition both paths implement):

1. Runs: maximal stretches of samples with ``force >= off_n``. A run's start is the upward
   crossing of ``off_n`` and its end the downward crossing, both linearly interpolated between
   the two samples around the crossing (not across a gap in the stream, see ``max_dt_s``).
2. Runs separated by less than ``merge_gap_s`` below ``off_n`` belong to one cluster, so a
   brief lift-off and re-press, or tremor chattering about the threshold, does not split a hold.
   Re-press dips that stay above ``off_n`` never leave the run in the first place.
3. A cluster is a hold if it reaches ``on_n`` (hysteresis: light contact between ``off_n`` and
   ``on_n`` is not a hold) and it lasts at least ``min_hold_s`` (debounce: a tap is not a hold),
   i.e. some sample at or above ``off_n`` lies ``min_hold_s`` or more after the start.

So ``start_s`` is the first upward crossing of ``off_n`` and ``end_s`` the last downward
crossing, which is how ``firmware_bridge.sim.therapist`` defines its ground truth (5 % of target):
with ``config_for_band`` on a symmetric band the two agree to about a millisecond at 1 kHz.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from analysis.hold_records import Hold, HoldConfig, HoldEvent, LiveHold, RunningSums
from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings

__all__ = [
    "Hold",
    "HoldConfig",
    "HoldDetector",
    "HoldEvent",
    "LiveHold",
    "config_for_band",
    "segment_holds",
]

#: Steps used to estimate the nominal sample interval when ``max_dt_s`` is not given.
BOOT_STEPS = 16
#: A step longer than this many nominal intervals is a gap in the stream (auto ``max_dt_s``).
AUTO_GAP_FACTOR = 5.0
#: ``config_for_band``: the detector arms at this fraction of the target ...
ON_FRAC = DEFAULT_SETTINGS.on_frac
#: ... and a hold starts and ends at the crossings of this fraction (the simulator's 5 %).
OFF_FRAC = DEFAULT_SETTINGS.off_frac

_IDLE, _ACTIVE, _PENDING = 0, 1, 2


class HoldDetector:
    """Incremental hold detector; feed it chunks of (time, force) as they arrive.

    ``feed(t, force_n)`` returns the events decided by these samples; ``current`` is the hold in
    progress; ``finish()`` closes an open hold at the end of the data. Results do not depend on
    the chunking: every decision is taken at a specific sample using only that sample, earlier
    samples and the configuration.

    How it stays fast: per chunk it finds the crossings of ``off_n`` with one vectorised compare
    (skipped entirely when a ``max``/``min`` shows there are none, the usual case), walks the
    crossings in Python (a few scalar operations each), and accumulates statistics with a few
    numpy reductions over whole ranges of samples, not per run. Times must be non-decreasing; a
    backward step counts as zero time. Non-finite samples are dropped (the time they would have
    covered is then a gap).
    """

    def __init__(self, config: HoldConfig) -> None:
        """Create a detector for ``config``; nothing is reported until samples arrive."""
        self.config = config
        self._cap = _IntervalCap(config.max_dt_s)
        self._count = 0  # holds confirmed so far (index of the next hold)
        self._reset_stream()
        # per-chunk working set (valid inside _process only)
        self._t = self._f = self._d = np.empty(0)
        self._raw: np.ndarray | None = None
        self._on_idx: np.ndarray | None = None
        self._above: np.ndarray | None = None
        self._rs = 0  # first chunk index of the cluster not yet accumulated
        self._pi = -1  # chunk index where the current pending stretch starts (-1: none here)
        self._events: list[HoldEvent] = []

    def _reset_stream(self) -> None:
        """Forget the previous sample and any open cluster (start of a new stream)."""
        self._prev_t: float | None = None
        self._prev_f = 0.0
        self._state = _IDLE
        self._start_s = math.nan
        self._down_s = math.nan
        self._reached_on = False
        self._confirmed = False
        self._acc = RunningSums()
        self._pend = RunningSums()

    # ------------------------------------------------------------------ public API
    @property
    def max_dt_s(self) -> float | None:
        """Interval cap in use (None while the automatic estimate is still being gathered)."""
        return self._cap.value

    @property
    def holds_found(self) -> int:
        """Number of holds confirmed so far."""
        return self._count

    def feed(self, t: np.ndarray, force_n: np.ndarray) -> list[HoldEvent]:
        """Process the next chunk of samples (times in s, forces in N); return its events."""
        tt = np.asarray(t, dtype=np.float64).reshape(-1)
        ff = np.asarray(force_n, dtype=np.float64).reshape(-1)
        if tt.shape != ff.shape:
            raise ValueError(f"t has {tt.size} samples but force_n has {ff.size}")
        if tt.size == 0:
            return []
        if not math.isfinite(float(ff.sum()) + float(tt.sum())):
            keep = np.isfinite(tt) & np.isfinite(ff)
            tt, ff = tt[keep], ff[keep]
            if tt.size == 0:
                return []
        admitted = self._cap.admit(tt, ff)
        return [] if admitted is None else self._process(*admitted)

    def finish(self) -> list[HoldEvent]:
        """Close the open hold, if any, at the end of the data and return its events.

        An active hold ends at the last sample, incomplete (``complete`` False: the data
        ended it, still pressed); one that was releasing ends, complete, at its downward
        crossing (the release was seen, only the merge gap was not over). The one rule for a
        hold cut off by the end of a recording, live and offline. The detector then starts a
        new stream (no crossing is interpolated across the two), keeping its hold count and
        interval cap.
        """
        events: list[HoldEvent] = []
        if (boot := self._cap.flush()) is not None:
            events += self._process(*boot)
        if self._state == _ACTIVE and self._prev_t is not None:
            events += self._close(self._prev_t, self._prev_t, complete=False)
        elif self._state == _PENDING and self._prev_t is not None:
            events += self._close(self._down_s, self._prev_t)
        self._reset_stream()
        return events

    @property
    def current(self) -> LiveHold | None:
        """The hold in progress once it has reached ``on_n``, else None."""
        if self._state == _IDLE or not self._reached_on or self._prev_t is None:
            return None
        acc = self._acc
        if self._state == _PENDING and self._pend.n:
            acc = acc.copy()
            acc.merge(self._pend)
        return acc.live(self._count, self._start_s, self._prev_t, self._prev_f,
                        confirmed=self._confirmed, releasing=self._state == _PENDING)

    # ------------------------------------------------------------------ internals
    def _process(self, t: np.ndarray, f: np.ndarray) -> list[HoldEvent]:
        """Run the state machine over one chunk (finite samples, cap known)."""
        off = self.config.off_n
        state = self._state
        n = t.size
        if state == _IDLE and f.max() < off:  # fast path: nothing is happening
            self._prev_t, self._prev_f = float(t[-1]), float(f[-1])
            return []
        max_dt = self._cap.value
        assert max_dt is not None
        d, raw = _intervals(t, self._prev_t, max_dt)
        self._t, self._f, self._d, self._raw = t, f, d, raw
        self._on_idx = None
        self._events = []
        self._rs = 0
        self._pi = 0 if state == _PENDING else -1
        changes, self._above = _crossings(t, f, state, self.config, max_dt)

        pos = 0
        for c in changes:
            self._run(pos, c)
            if self._state == _ACTIVE:
                self._down(c)
            else:
                self._up(c)
            pos = c
        self._run(pos, n)

        # carry the open cluster's statistics over to the next chunk
        if self._state == _ACTIVE:
            self._sum(self._acc, self._rs, n)
        elif self._state == _PENDING:
            self._sum(self._acc, self._rs, self._pi)
            self._sum(self._pend, self._pi, n)
        self._prev_t, self._prev_f = float(t[-1]), float(f[-1])
        self._t = self._f = self._d = np.empty(0)
        self._raw = self._on_idx = self._above = None
        return self._events

    def _sum(self, acc: RunningSums, a: int, b: int) -> None:
        """Add this chunk's samples [a, b) to ``acc``."""
        acc.add(self._t, self._f, self._d, self._raw, self.config, a, b)

    def _before(self, i: int) -> tuple[float | None, float]:
        """(time, force) of the sample before chunk index ``i`` (None at stream start)."""
        if i > 0:
            return float(self._t[i - 1]), float(self._f[i - 1])
        return self._prev_t, self._prev_f

    def _up(self, c: int) -> None:
        """Sample ``c`` is the first at or above off_n after samples below it."""
        t1, f1 = float(self._t[c]), float(self._f[c])
        t0, f0 = self._before(c)
        up_s = _up_time(t0, f0, t1, f1, self.config.off_n, self._cap.value)
        if self._state == _PENDING:
            if up_s - self._down_s < self.config.merge_gap_s:  # re-press: same hold
                self._state = _ACTIVE
                self._acc.merge(self._pend)
                self._pend = RunningSums()
                self._pi = -1
                return
            self._close_pending(t1)
        # the hold's integrals begin at its start: only the part of this sample's interval
        # after the crossing is inside it (none after a gap, where the start is the sample)
        self._d[c] = t1 - up_s
        if self._raw is not None:
            self._raw[c] = t1 - up_s
        self._state = _ACTIVE
        self._start_s = up_s
        self._reached_on = False
        self._confirmed = False
        self._acc = RunningSums()
        self._pend = RunningSums()
        self._rs = c
        self._pi = -1

    def _down(self, c: int) -> None:
        """Sample ``c`` is the first below off_n after samples at or above it."""
        t1, f1 = float(self._t[c]), float(self._f[c])
        t0, f0 = self._before(c)
        assert t0 is not None  # a cluster is open, so a sample came before
        self._down_s = _down_time(t0, f0, t1, f1, self.config.off_n, self._cap.value)
        self._state = _PENDING
        self._pi = c

    def _run(self, a: int, b: int) -> None:
        """Samples [a, b) share the state: look for a confirmation or a release timeout."""
        if b <= a or self._state == _IDLE:
            return
        t = self._t
        if self._state == _ACTIVE:
            if self._confirmed:
                return
            cfg = self.config
            if not self._reached_on:
                if self._on_idx is None:
                    self._on_idx = np.flatnonzero(self._f >= cfg.on_n)
                k = int(np.searchsorted(self._on_idx, a))
                if k == self._on_idx.size or self._on_idx[k] >= b:
                    return
                self._reached_on = True
                first = int(self._on_idx[k])
            else:
                first = a
            c = max(first, int(np.searchsorted(t, self._start_s + cfg.min_hold_s)))
            if c < b:
                if self._above is not None and not self._above[c]:
                    # inside a bridged dip below off_n: confirm at the next sample above it
                    # (the run ends with a sample above off_n, so there is one)
                    c += int(self._above[c:b].argmax())
                self._confirm(c)
        else:  # pending: has it been below off_n for merge_gap_s?
            k = max(a, int(np.searchsorted(t, self._down_s + self.config.merge_gap_s)))
            if k < b:
                self._close_pending(float(t[k]))

    def _confirm(self, c: int) -> None:
        """The hold is confirmed at chunk index ``c``: emit a "start" with the hold so far."""
        self._sum(self._acc, self._rs, c + 1)
        self._rs = c + 1
        self._confirmed = True
        t_c = float(self._t[c])
        hold = self._acc.freeze(self._count, self._start_s, t_c, False)
        self._events.append(HoldEvent("start", hold, t_c))

    def _close_pending(self, at_s: float) -> None:
        """End the releasing cluster at its downward crossing (pending samples dropped)."""
        if self._pi > self._rs:
            self._sum(self._acc, self._rs, self._pi)
        self._events += self._close(self._down_s, at_s)
        self._rs = self._pi = -1

    def _close(self, end_s: float, at_s: float, complete: bool = True) -> list[HoldEvent]:
        """Finish the open cluster at ``end_s``; an "end" event if it was a hold."""
        events = []
        if self._confirmed:
            hold = self._acc.freeze(self._count, self._start_s, end_s, complete)
            events.append(HoldEvent("end", hold, at_s))
            self._count += 1
        self._state = _IDLE
        self._reached_on = self._confirmed = False
        self._acc, self._pend = RunningSums(), RunningSums()
        return events


class _IntervalCap:
    """The longest sample interval counted as time (``HoldConfig.max_dt_s``). When it is not
    given, it is estimated from the stream's first ``BOOT_STEPS`` steps, and those samples are
    held back until the estimate exists."""

    __slots__ = ("value", "_boot", "_boot_n")

    def __init__(self, max_dt_s: float | None) -> None:
        self.value = max_dt_s
        self._boot: list[tuple[np.ndarray, np.ndarray]] = []
        self._boot_n = 0

    def admit(self, tt: np.ndarray, ff: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """The samples to process now: these, or the held-back start of the stream with these
        once the cap is known; None while still holding back."""
        if self.value is not None:
            return tt, ff
        self._boot.append((tt, ff))
        self._boot_n += tt.size
        if self._boot_n <= BOOT_STEPS:
            return None
        return self._take()

    def flush(self) -> tuple[np.ndarray, np.ndarray] | None:
        """At the end of the data: the held-back samples (the cap estimated from them), if any."""
        return self._take() if self.value is None and self._boot_n else None

    def _take(self) -> tuple[np.ndarray, np.ndarray]:
        """Concatenate the held-back start of the stream and fix the automatic interval cap."""
        tt = np.concatenate([b[0] for b in self._boot])
        ff = np.concatenate([b[1] for b in self._boot])
        self._boot, self._boot_n = [], 0
        steps = np.diff(tt[: BOOT_STEPS + 1])
        steps = steps[steps > 0]
        self.value = AUTO_GAP_FACTOR * float(np.median(steps)) if steps.size else math.inf
        return tt, ff


def _up_time(t0: float | None, f0: float, t1: float, f1: float, off: float,
             max_dt: float) -> float:
    """Upward crossing of ``off`` between samples (t0, f0) and (t1, f1), interpolated; the
    sample's time at stream start (``t0`` None) or after a gap, where it is not observable."""
    if t0 is None or t1 - t0 > max_dt:
        return t1
    return t0 + (off - f0) / (f1 - f0) * (t1 - t0)


def _down_time(t0: float, f0: float, t1: float, f1: float, off: float, max_dt: float) -> float:
    """Downward crossing of ``off`` between samples (t0, f0) and (t1, f1), interpolated; after
    a gap, ``t0``: the hold was last seen there."""
    if t1 - t0 > max_dt:
        return t0
    return t0 + (f0 - off) / (f0 - f1) * (t1 - t0)


def _intervals(t: np.ndarray, prev_t: float | None,
               max_dt: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Each sample's interval since the one before (``prev_t``: the previous chunk's last),
    capped at ``max_dt``, and the uncapped intervals when some step is a gap (else None)."""
    d = np.empty(t.size)
    d[0] = 0.0 if prev_t is None else t[0] - prev_t
    np.subtract(t[1:], t[:-1], out=d[1:])
    raw = None
    if d.min() < 0:  # clock stepped back: that step covers no time
        np.maximum(d, 0.0, out=d)
    if d.max() > max_dt:
        raw = d.copy()
        np.minimum(d, max_dt, out=d)
    return d, raw


def _crossings(t: np.ndarray, f: np.ndarray, state: int, config: HoldConfig,
               max_dt: float) -> tuple[list[int], np.ndarray | None]:
    """Crossings of off_n: chunk indices where the above/below state differs from the previous
    sample's (state ACTIVE <=> the previous sample was above), bridged pairs dropped; and the
    above-off_n mask, None when every sample is on the side the state says. An idle chunk
    gets here only because it has a sample above off_n."""
    off = config.off_n
    if state != _IDLE and ((f.min() >= off) if state == _ACTIVE else (f.max() < off)):
        return [], None
    above = f >= off
    ch = np.flatnonzero(above[1:] != above[:-1]) + 1
    if bool(above[0]) != (state == _ACTIVE):
        ch = np.concatenate(([0], ch))
    if ch.size > 2:
        ch = _drop_bridged(ch, above, t, f, config, max_dt)
    return ch.tolist(), above


def _drop_bridged(ch: np.ndarray, above: np.ndarray, t: np.ndarray, f: np.ndarray,
              config: HoldConfig, max_dt: float) -> np.ndarray:
    """Remove (down, up) crossing pairs inside the chunk that the merge gap bridges.

    Such a pair changes nothing: the cluster stays open and its samples stay in it. Doing
    this vectorised keeps chatter (tremor or noise riding on off_n) from costing a Python
    step per crossing. The crossing times use exactly the expressions of ``_down_time`` and
    ``_up_time`` (IEEE operations in the same order), so the decisions are the ones the scalar
    walk would take, whatever the chunking.
    """
    cand = np.flatnonzero(~above[ch[:-1]] & (ch[:-1] > 0))  # down at ch[k], up at ch[k+1]
    if cand.size == 0:
        return ch
    off = config.off_n
    dn, up = ch[cand], ch[cand + 1]
    t0, f0, t1, f1 = t[dn - 1], f[dn - 1], t[dn], f[dn]
    down_s = np.where(t1 - t0 > max_dt, t0, t0 + (f0 - off) / (f0 - f1) * (t1 - t0))
    t0, f0, t1, f1 = t[up - 1], f[up - 1], t[up], f[up]
    up_s = np.where(t1 - t0 > max_dt, t1, t0 + (off - f0) / (f1 - f0) * (t1 - t0))
    gone = cand[up_s - down_s < config.merge_gap_s]
    if gone.size == 0:
        return ch
    keep = np.ones(ch.size, dtype=bool)
    keep[gone] = False
    keep[gone + 1] = False
    return ch[keep]


def config_for_band(low_n: float, high_n: float, *, target_n: float | None = None,
                    max_dt_s: float | None = None,
                    settings: AnalysisSettings = DEFAULT_SETTINGS) -> HoldConfig:
    """The thresholds the recorder uses for a trigger point's band, live and offline: off at
    ``OFF_FRAC`` (5 %) and on at ``ON_FRAC`` (10 %) of the target. An analysis may set other
    fractions, debounce (``min_hold_s``) and merge gap (``analysis.settings``).

    The target defaults to the band's midpoint (a band is normally target +- x %), so on the
    default simulated dose (30 N, band 25.5-34.5 N) off_n is exactly the simulator's 1.5 N
    hold threshold; a band starting at 0 (a pressure-pain ramp to the button) takes 20 % of
    its upper limit; no band (NaN upper limit): 2 N on, 1 N off. 5 % is low enough that the
    hold spans nearly all of the loading, and above the light contact of a thumb resting on
    the skin (~2 %) and sensor noise; 10 % arms it well clear of both while still counting a
    weak hold that never reaches the band (that is a hold, coached as "press harder", not an
    absence of one). ``HoldConfig``'s defaults apply: ``min_hold_s`` 1 s rejects palpation
    taps; ``merge_gap_s`` 0.3 s bridges a lift-off and re-press and any tremor chatter
    (8-12 Hz: under 65 ms per half cycle), yet is far shorter than any rest between holds.

    Caveat: a thumb resting with a force that hovers right at off_n keeps a cluster open
    (its chatter is bridged), so a press that follows is backdated to the start of that
    contact.
    """
    times = {"min_hold_s": settings.debounce_s, "merge_gap_s": settings.merge_gap_s}
    if not math.isfinite(high_n):
        return HoldConfig(on_n=2.0, off_n=1.0, band_low_n=0.0, band_high_n=sys.float_info.max,
                          max_dt_s=max_dt_s, **times)
    if not (math.isfinite(low_n) and 0 <= low_n <= high_n and high_n > 0):
        raise ValueError("band must satisfy 0 <= low_n <= high_n, high_n > 0")
    if target_n is None:
        target_n = 0.5 * (low_n + high_n) if low_n > 0 else 0.2 * high_n
    target = float(target_n)
    if not (math.isfinite(target) and target > 0):
        raise ValueError("target_n must be positive and finite")
    return HoldConfig(on_n=settings.on_frac * target, off_n=settings.off_frac * target,
                      band_low_n=float(low_n), band_high_n=float(high_n), max_dt_s=max_dt_s,
                      **times)


def segment_holds(t: np.ndarray, force_n: np.ndarray, config: HoldConfig) -> list[Hold]:
    """All holds in a whole recording: the live detector run over the full arrays (a hold
    still pressed at the last sample comes last, with ``complete`` False)."""
    det = HoldDetector(config)
    events = det.feed(t, force_n) + det.finish()
    return [e.hold for e in events if e.kind == "end"]
