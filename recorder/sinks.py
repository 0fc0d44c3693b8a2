"""The file sink: a lossless queue of typed messages drained into the HDF5 file by one thread.

Any thread may ``put`` a message; only the writer thread touches the file. Every
``drain_s`` the writer takes everything queued and makes one append per dataset, then a flush,
so a killed process loses at most the last ``drain_s`` of data. The queue carries the records
the file stores (``Samples``, ``Event``, ``LinkStats``, ``Hold``, ``ClockPair``) and nothing
else: anything else is refused when it is put. A block of samples is first admitted (the
reader thread), which tells the rows of the file it will fill before it is queued, so the
events of its samples can point at them. If the writer falls behind by more than
``queue_limit`` samples, blocks are dropped, counted and recorded as an event, never silently.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from schemas.events import Event, LinkStats
from schemas.events import Hold as HoldRow
from schemas.hdf5 import RecordingFileError
from schemas.writer import RecordingWriter


@dataclass(frozen=True)
class Samples:
    """A block of samples, one array per per-sample dataset of the file."""

    data: np.ndarray
    timestamps: np.ndarray
    raw_counts: np.ndarray
    device_tick_us: np.ndarray
    sequence: np.ndarray
    host_time: np.ndarray
    flags: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    def columns(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def concat(cls, blocks: list[Samples]) -> Samples:
        return cls(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks])
                      for f in fields(cls)})


@dataclass(frozen=True)
class ClockPair:
    """The device clock read ``device_tick_us`` at session time ``host_time``."""

    host_time: float
    device_tick_us: int


@dataclass(frozen=True)
class _Close:
    """No more messages: write what is queued and end."""


Message = Samples | Event | LinkStats | HoldRow | ClockPair
MESSAGE_TYPES = (Samples, Event, LinkStats, HoldRow, ClockPair)
RECORD_TYPES = (Event, LinkStats, HoldRow, ClockPair)  # what ``put`` takes; samples are admitted


class FileSink:
    """The writer thread and its queue; ``paused`` holds samples and holds back (events go on).

    ``rows`` counts the sample rows queued for the file, so it is the row the next recorded
    sample gets: what an event's ``sample_index`` points at."""

    def __init__(self, queue_limit: int, drain_s: float) -> None:
        self.queue_limit = queue_limit
        self.drain_s = drain_s
        self.paused = False
        self.lost = 0  # samples dropped because the writer fell behind
        self.rows = 0  # sample rows queued for the file so far
        self._queue: queue.Queue = queue.Queue()
        self._queued = 0  # samples waiting for the writer
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(self, message: Message) -> None:
        """Queue one record for the file (any thread); TypeError for anything else (samples
        go through ``admit`` and ``put_samples``)."""
        if type(message) not in RECORD_TYPES:
            raise TypeError(f"the file sink takes {', '.join(t.__name__ for t in RECORD_TYPES)}"
                            f", not {type(message).__name__}")
        self._queue.put(message)

    def set_paused(self, paused: bool, time_s: float, sample_index: int) -> list[Event]:
        """Pause or resume the recording of samples and holds; the event, if it changed."""
        if paused == self.paused:
            return []
        self.paused = paused
        return [Event(time_s, "record_stop" if paused else "record_start",
                      text="paused" if paused else "resumed", sample_index=sample_index)]

    def admit(self, n: int, host: float) -> bool:
        """Whether a block of ``n`` samples read at session time ``host`` goes to the file
        (then rows ``rows`` to ``rows + n - 1`` are its, and ``put_samples`` must follow): not
        while paused, nor when the writer is ``queue_limit`` behind, in which case the block
        is counted in ``lost`` and recorded as a writer_overrun event (reader thread)."""
        if self.paused:
            return False
        with self._lock:
            overrun = self._queued + n > self.queue_limit
            if not overrun:
                self._queued += n
        if overrun:
            self.lost += n
            self.put(Event(host, "writer_overrun", value=n, sample_index=self.rows,
                           text="writer fell behind; samples dropped"))
            return False
        self.rows += n
        return True

    def put_samples(self, block: Samples) -> None:
        """Queue a block of samples that ``admit`` let in."""
        self._queue.put(block)

    def start(self, writer: RecordingWriter, on_error: Callable[[str], None]) -> None:
        """Start the writer thread; a file error ends it and is passed to ``on_error``."""
        self._thread = threading.Thread(target=self._run, args=(writer, on_error),
                                        name="hdf5-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Write everything queued so far and end the writer thread."""
        self._queue.put(_Close())
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, writer: RecordingWriter, on_error: Callable[[str], None]) -> None:
        done = False
        try:
            while not done:
                time.sleep(self.drain_s)
                batch, done = self._take()
                self._write(writer, batch)
        except (RecordingFileError, OSError) as exc:
            on_error(f"recording stopped: {exc}")

    def _take(self) -> tuple[dict[type, list], bool]:
        """Everything queued now, by type; True once the close message was taken."""
        batch: dict[type, list] = {kind: [] for kind in MESSAGE_TYPES}
        while True:
            try:
                message = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
            if isinstance(message, _Close):
                return batch, True
            batch[type(message)].append(message)

    def _write(self, writer: RecordingWriter, batch: dict[type, list]) -> None:
        writer.append_clock_pairs([(p.host_time, p.device_tick_us) for p in batch[ClockPair]])
        if batch[Samples]:
            block = Samples.concat(batch[Samples])
            writer.append_samples(**block.columns())
            with self._lock:
                self._queued -= len(block)
        if batch[Event]:
            writer.append_events(batch[Event])
        for row in batch[LinkStats]:
            writer.append_link_stats(row)
        if batch[HoldRow]:
            writer.append_holds(batch[HoldRow])
        writer.flush()
