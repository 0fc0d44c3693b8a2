"""What a recording session reports: its ``status()``, the link statistics row written to the
file, and the live state the window reads (holds, the hold in progress, the trigger point, the
blind and pause flags, warnings, the tare, a point's band and hold thresholds).

Why a module of its own: ``RecordingSession`` (``recorder.session``) starts and stops the
pipeline and takes the caller's commands; reading its state back is a separate job, and
keeping it here keeps that class within its size limit. ``SessionReadouts`` is a mixin of
that class, so callers read these on the session itself.

Threads: nothing here changes state. The caller's thread (the window's timer, the CLI's
progress loop) reads them; each reads values the reader thread replaces or appends in one
step, so a read is never torn. ``_link_stats`` is also called by the reader thread (the
pipeline's periodic row, under the pipeline lock) and by ``stop`` after that thread ended.
"""

from __future__ import annotations

from dataclasses import dataclass

from analysis.holds import HoldConfig, LiveHold
from firmware_bridge.link import SerialLink
from recorder.force import ForceStage
from recorder.hold_tracker import HoldTracker, PointHold
from recorder.pipeline import Pipeline
from recorder.sinks import FileSink
from recorder.source import DeviceSource, GaugeSource
from recorder.timeline import Timeline
from schemas.events import LinkStats
from schemas.training import HoldCondition


@dataclass
class SessionStatus:
    connected: bool
    elapsed_s: float
    samples: int
    rate_hz: float
    gaps: int
    missing_frames: int
    crc_errors: int
    garbage_bytes: int
    reconnects: int
    writer_lost: int
    error: str | None
    recording: bool
    blind: bool
    point_index: int
    condition: HoldCondition | None = None  # the next hold's feedback (training schedule)
    holds_done: int = 0  # complete holds so far
    awaiting_estimate: bool = False  # a self-estimate is asked for the last hold, not given


class SessionReadouts:
    """Mixin of ``RecordingSession``: it has the source ``source``, the link ``_link``, the
    ``_timeline``, the tracker ``_holds``, the file sink ``_sink``, the ``_pipeline``, the
    ``_force`` stage, ``error``, ``_reconnects``, the start time ``_t0`` and ``_now()``."""

    source: DeviceSource | GaugeSource
    error: str | None
    _link: SerialLink | None
    _timeline: Timeline
    _holds: HoldTracker
    _sink: FileSink
    _pipeline: Pipeline | None
    _force: ForceStage | None
    _reconnects: int
    _t0: float

    def _now(self) -> float: ...

    @property
    def start_monotonic(self) -> float:
        """The host monotonic time (= LSL's local_clock) of session time zero."""
        return self._t0

    def status(self) -> SessionStatus:
        """The link's and the recording's figures now, for the window's status line and the
        CLI's progress line."""
        elapsed = self._now() if self._t0 else 0.0
        samples = self._timeline.samples
        continuity = self._timeline.continuity
        return SessionStatus(
            connected=bool(self._link and self._link.connected.is_set()), elapsed_s=elapsed,
            samples=samples, rate_hz=samples / elapsed if elapsed > 0 else 0.0,
            gaps=continuity.gap_count, missing_frames=continuity.missing_frames,
            crc_errors=self.source.crc_errors, garbage_bytes=self.source.garbage_bytes,
            reconnects=self._reconnects, writer_lost=self._sink.lost, error=self.error,
            recording=not self._sink.paused, blind=self._holds.blind,
            point_index=self._holds.point_index, condition=self._holds.condition,
            holds_done=self._holds.hold_count, awaiting_estimate=self._holds.awaiting_estimate)

    def _link_stats(self) -> LinkStats:
        """The file's link statistics row: the counters of ``status()`` at the last chunk."""
        s = self.status()
        return LinkStats(host_time=self._pipeline.last_host, samples=s.samples,
                         crc_errors=s.crc_errors, garbage_bytes=s.garbage_bytes,
                         seq_gaps=s.gaps, missing_frames=s.missing_frames,
                         reconnects=s.reconnects, writer_lost=s.writer_lost)

    @property
    def holds(self) -> list[PointHold]:
        """Finished holds, oldest first (``PointHold``: the point, the hold and its band)."""
        return self._holds.holds

    @property
    def live_hold(self) -> LiveHold | None:
        return self._holds.live

    @property
    def point_index(self) -> int:
        return self._holds.point_index

    @property
    def protocol_complete(self) -> bool:
        """The last trigger point has all its repetitions: holds are no longer counted."""
        return self._holds.complete

    @property
    def blind(self) -> bool:
        return self._holds.blind

    @property
    def paused(self) -> bool:
        return self._sink.paused

    @property
    def live_warnings(self) -> dict[str, str]:
        """Conditions now (saturated, range, drift): kind -> message."""
        return self._pipeline.warnings.now if self._pipeline is not None else {}

    @property
    def tare_counts(self) -> float:
        """Raw counts at zero load (the latest tare)."""
        return self._force.zero_counts if self._force is not None else 0.0

    def band_n(self, point_index: int | None = None) -> tuple[float, float]:
        """Target band in newtons of a trigger point (the current one by default)."""
        return self._holds.band_n(point_index)

    def anchored(self, point_index: int | None = None) -> bool:
        """Whether the subject has anchored a point's target (the current one by default)."""
        return self._holds.anchored(point_index)

    def hold_config(self, point_index: int) -> HoldConfig:
        """Hold detection thresholds for a point (``analysis.holds.config_for_band``)."""
        return self._holds.hold_config(point_index)
