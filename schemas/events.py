"""Records stored in a recording file, and the numpy row types of its tables.

This module is the single source of truth for the compound dtypes of `/events`, `/holds`,
`/acquisition/clock_pairs` and `/acquisition/link_stats`: the writer creates the tables from
them and the reader decodes with them. It also defines the fill values that mark rows HDF5 never
received (a crash or a full disk between two flushes), and the summary of a recording.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EVENT_DTYPE = np.dtype(
    [
        ("time", "<f8"),
        ("sample_index", "<i8"),
        ("kind", "S24"),
        ("value", "<f8"),
        ("text", "S120"),
    ]
)
HOLD_DTYPE = np.dtype(
    [
        ("trigger_point", "S48"),
        ("repetition", "<i4"),
        ("start", "<f8"),
        ("end", "<f8"),
        ("duration", "<f8"),
        ("peak_n", "<f8"),
        ("mean_n", "<f8"),
        ("time_in_band", "<f8"),
        ("target_low_n", "<f8"),
        ("target_high_n", "<f8"),
        ("blind", "u1"),
        ("complete", "u1"),
        ("feedback", "S12"),
        ("feedback_live", "u1"),
    ]
)
CLOCK_PAIR_DTYPE = np.dtype([("host_time", "<f8"), ("device_tick_us", "<i8")])
LINK_STATS_DTYPE = np.dtype(
    [
        ("host_time", "<f8"),
        ("samples", "<i8"),
        ("crc_errors", "<i8"),
        ("garbage_bytes", "<i8"),
        ("seq_gaps", "<i8"),
        ("missing_frames", "<i8"),
        ("reconnects", "<i8"),
        ("writer_lost", "<i8"),
    ]
)

# HDF5 path -> (row dtype, key field). The key field is a float that is finite in every row the
# writer stores, so a NaN there means "row allocated but never written".
TABLES: dict[str, tuple[np.dtype, str]] = {
    "/events": (EVENT_DTYPE, "time"),
    "/holds": (HOLD_DTYPE, "start"),
    "/acquisition/clock_pairs": (CLOCK_PAIR_DTYPE, "host_time"),
    "/acquisition/link_stats": (LINK_STATS_DTYPE, "host_time"),
}

# Per-sample columns that never hold their fill value in a written row (the writer refuses such
# rows). `data` is not one of them: force is NaN when the calibration cannot give one.
SAMPLE_KEYS = ("timestamps", "raw_counts", "device_tick_us", "sequence", "host_time", "flags")

TEXT_BYTES = EVENT_DTYPE["text"].itemsize
_HOLD_FLAGS = ("blind", "complete", "feedback_live")  # u1 columns of /holds, bool in Hold


def fill_value(dtype: np.dtype) -> np.ndarray:
    """The value HDF5 returns for rows that were never written.

    NaN for floats, the most negative value for signed integers, the largest value for unsigned
    integers, b"" for strings; field by field for compound types. Writers never store these in
    the columns the reader uses to find the written part of a crashed file.
    """
    dtype = np.dtype(dtype)
    if dtype.names:
        row = np.zeros((), dtype)
        for name in dtype.names:
            row[name] = fill_value(dtype[name])
        return row
    if dtype.kind == "f":
        return np.array(np.nan, dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.array(info.min if dtype.kind == "i" else info.max, dtype)
    return np.zeros((), dtype)


def unwritten(values: np.ndarray) -> np.ndarray:
    """Mask of entries that hold the fill value (for floats: anything not finite)."""
    if values.dtype.kind == "f":
        return ~np.isfinite(values)
    return values == fill_value(values.dtype)


def written_length(columns: list[np.ndarray]) -> int:
    """Rows before the first one that any of `columns` shows as unwritten."""
    length = min((len(c) for c in columns), default=0)
    for column in columns:
        holes = np.flatnonzero(unwritten(column[:length]))
        if holes.size:
            length = int(holes[0])
    return length


def utf8_truncate(text: str, limit: int) -> bytes:
    """Encode `text` as UTF-8 in at most `limit` bytes without splitting a character."""
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


@dataclass
class Event:
    """Something that happened at one moment of a session (see RECORDING.md for the kinds).

    `time` is in seconds from session_start; `sample_index` points into the per-sample arrays
    (-1 when the event is not tied to a sample); `value` is NaN when the kind has none.
    """

    time: float
    kind: str
    value: float = math.nan
    text: str = ""
    sample_index: int = -1

    def to_row(self) -> tuple:
        """The event as a row of EVENT_DTYPE; the text is cut to 120 bytes of UTF-8."""
        return (
            self.time,
            self.sample_index,
            self.kind.encode("ascii"),
            self.value,
            utf8_truncate(self.text, TEXT_BYTES),
        )

    @classmethod
    def from_row(cls, row: np.void) -> Event:
        """Decode one row of EVENT_DTYPE."""
        return cls(
            time=float(row["time"]),
            kind=row["kind"].decode("ascii", "replace"),
            value=float(row["value"]),
            text=row["text"].decode("utf-8", "replace"),
            sample_index=int(row["sample_index"]),
        )


@dataclass
class LinkStats:
    """Cumulative link counters at `host_time` (session seconds), one row about every second."""

    host_time: float
    samples: int = 0
    crc_errors: int = 0
    garbage_bytes: int = 0
    seq_gaps: int = 0
    missing_frames: int = 0
    reconnects: int = 0
    writer_lost: int = 0

    def to_row(self) -> tuple:
        """The counters as a row of LINK_STATS_DTYPE."""
        return tuple(getattr(self, name) for name in LINK_STATS_DTYPE.names)


@dataclass
class Hold:
    """One static-compression hold on a trigger point (times in session seconds, forces in N).

    ``complete`` is False for a hold the end of the recording cut off (still pressed at the
    last sample, ``analysis.holds.HoldDetector.finish``): it is kept, but never counted as
    done nor judged against the dose. ``feedback`` is the hold's feedback mode under the
    protocol's training schedule ("" without one, ``schemas.training``); ``feedback_live``
    whether live feedback was on (the schedule's and not blind). ``target_low_n/high_n``
    are the band the hold was judged by (a subject-anchored band once the point is anchored).
    """

    trigger_point: str
    repetition: int
    start: float
    end: float
    duration: float
    peak_n: float
    mean_n: float
    time_in_band: float
    target_low_n: float
    target_high_n: float
    blind: bool
    complete: bool = True
    feedback: str = ""
    feedback_live: bool = True

    def to_row(self) -> tuple:
        """The hold as a row of HOLD_DTYPE; the trigger point name is cut to 48 bytes."""
        limit = HOLD_DTYPE["trigger_point"].itemsize
        values = [getattr(self, name) for name in HOLD_DTYPE.names]
        values[0] = utf8_truncate(self.trigger_point, limit)
        values[HOLD_DTYPE.names.index("feedback")] = self.feedback.encode("ascii")
        for flag in _HOLD_FLAGS:
            values[HOLD_DTYPE.names.index(flag)] = int(bool(getattr(self, flag)))
        return tuple(values)

    @classmethod
    def from_row(cls, row: np.void) -> Hold:
        """Decode one row of HOLD_DTYPE."""
        values = {name: row[name].item() for name in HOLD_DTYPE.names}
        values["trigger_point"] = row["trigger_point"].decode("utf-8", "replace")
        values["feedback"] = row["feedback"].decode("ascii", "replace")
        for flag in _HOLD_FLAGS:
            values[flag] = bool(row[flag])
        return cls(**values)


@dataclass
class Summary:
    """Totals of a recording, stored as the attributes of `/summary` when it is finalised."""

    samples: int
    duration_s: float
    effective_rate_hz: float
    gaps: int
    missing_frames: int
    crc_errors: int
    garbage_bytes: int
    reconnects: int
    writer_lost: int
    holds: int  # /holds rows that are complete (a hold cut off at the end is not counted)
    session_end: str

    @classmethod
    def compute(
        cls,
        *,
        samples: int,
        first_time: float,
        last_time: float,
        gap_events: int,
        last_stats: LinkStats | None,
        holds: int,
        session_end: str,
    ) -> Summary:
        """Derive the totals; the link counters come from the last link_stats row.

        duration_s spans first to last sample timestamp; effective_rate_hz is
        (samples - 1) / duration_s, NaN with fewer than two samples.
        """
        duration = last_time - first_time if samples > 1 else 0.0
        stats = last_stats or LinkStats(host_time=math.nan)
        return cls(
            samples=samples,
            duration_s=duration,
            effective_rate_hz=(samples - 1) / duration if duration > 0 else math.nan,
            gaps=gap_events,
            missing_frames=stats.missing_frames,
            crc_errors=stats.crc_errors,
            garbage_bytes=stats.garbage_bytes,
            reconnects=stats.reconnects,
            writer_lost=stats.writer_lost,
            holds=holds,
            session_end=session_end,
        )
