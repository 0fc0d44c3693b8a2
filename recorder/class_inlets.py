"""The class view's side of Lab Streaming Layer: find the stations' streams and pull them.

Discovery: a ``pylsl.ContinuousResolver`` keeps the list of streams whose source_id starts
with ``palpation-station:`` (spec: ``palpation-station:NAME:force`` and ``...:markers``), so
stations that start after the view are found too; the station's name is read from the
source_id, which a resolver reports without opening the stream. ``only`` (``--station``)
limits it to those names.

Reading: on the UI timer, like pylsl's timer-driven plot example, not on a thread of its own.
``poll`` pulls whatever each inlet holds with a zero timeout (it never waits), and feeds
``recorder.class_model.ClassModel``; at 30 frames a second and 1 kHz a station's chunk is
~33 samples, a few microseconds of numpy, so one timer serves a class. No lock is needed since
only the UI thread touches the model.

Inlets are opened with ``recover=True`` and kept per source_id: a station that restarts
publishes the same source_ids, LSL reconnects the same inlet, and the model keeps its tile.

Privacy: this module creates inlets only, never an outlet: the view sends nothing to a
station.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from recorder.class_model import ClassModel

__all__ = ["PREFIX", "StationInlets", "station_of"]

PREFIX = "palpation-station:"
RESOLVE_EVERY_S = 0.5  # how often the resolver's list is read for new streams
FORCE_BUFFER_S = 10  # an inlet keeps at most this much force for the view (it reads every frame)
MAX_CHUNK = 8192  # samples a poll takes from one force inlet (>= 1 s at 8 kHz)


def station_of(source_id: str) -> tuple[str, str] | None:
    """(station name, "force" | "markers") of a station's source_id, else None."""
    if not source_id.startswith(PREFIX):
        return None
    name, _, kind = source_id[len(PREFIX):].rpartition(":")
    return (name, kind) if name and kind in ("force", "markers") else None


@dataclass
class _Inlet:
    station: str
    kind: str
    inlet: object  # pylsl.StreamInlet


class StationInlets:
    """The inlets of every station stream on the network; ``poll`` feeds ``model``."""

    def __init__(self, model: ClassModel) -> None:
        import pylsl

        self._pylsl = pylsl
        self.model = model
        self._resolver = pylsl.ContinuousResolver(
            pred=f"starts-with(source_id,'{PREFIX}')", forget_after=5.0)
        self._inlets: dict[str, _Inlet] = {}
        self._next_resolve = 0.0

    def discover(self) -> None:
        """Open an inlet for every station stream the resolver lists that has none yet."""
        for info in self._resolver.results():
            sid = info.source_id()
            found = station_of(sid)
            if sid in self._inlets or found is None or not self.model.wants(found[0]):
                continue
            name, kind = found
            buflen = FORCE_BUFFER_S if kind == "force" else 360
            inlet = self._pylsl.StreamInlet(info, max_buflen=buflen, recover=True)
            self._inlets[sid] = _Inlet(name, kind, inlet)
            self.model.station(name)

    def poll(self, now: float | None = None) -> None:
        """Pull everything waiting (never blocks) into the model; looks for new streams
        every ``RESOLVE_EVERY_S``."""
        now = time.monotonic() if now is None else now
        if now >= self._next_resolve:
            self._next_resolve = now + RESOLVE_EVERY_S
            self.discover()
        for entry in self._inlets.values():
            if entry.kind == "force":
                self._pull_force(entry, now)
            else:
                self._pull_markers(entry, now)

    def _pull_force(self, entry: _Inlet, now: float) -> None:
        samples, stamps = entry.inlet.pull_chunk(timeout=0.0, max_samples=MAX_CHUNK,
                                                 as_numpy=True)
        if len(stamps):
            self.model.on_samples(entry.station, np.asarray(stamps, dtype=np.float64),
                                  np.asarray(samples, dtype=np.float64)[:, 0], now)

    def _pull_markers(self, entry: _Inlet, now: float) -> None:
        from recorder.station_messages import decode

        samples, _ = entry.inlet.pull_chunk(timeout=0.0, max_samples=1024, as_numpy=False)
        for sample in samples:
            try:
                message = decode(sample[0])
            except ValueError:
                continue  # not ours to crash on: a foreign or damaged message is skipped
            self.model.on_message(message, now)

    def close(self) -> None:
        for entry in self._inlets.values():
            entry.inlet.close_stream()
        self._inlets.clear()
