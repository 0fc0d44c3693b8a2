"""The class view's model: what every station is doing, from its messages and force samples.

Pure (no Qt, no LSL): ``recorder.class_inlets`` feeds it what it pulls, the tiles of
``recorder.class_view`` draw from it, and the tests drive it directly. Stations are keyed by
name, so a station that restarts (same name) keeps its ``StationState``: its tile shows a gap
(``restarts`` counts them), not a new tile.

Staleness: a station whose last force samples arrived more than ``STALE_AFTER_S`` ago (host
clock at arrival, so it needs no clock synchronisation) is stale; the tile greys out, naming
how long. A station's force streams all the time (zero between holds), so silence means the
station, its sensor link or the network is down; messages do not count, as a station whose
sensor is unplugged still sends its heartbeat. A stream that stops is therefore shown within
``STALE_AFTER_S`` plus one frame of its last sample, well inside 2 s.

Need, the rule that flags a tile (``Need``): among the station's last ``NEED_WINDOW`` (3)
complete holds, a fault raised by ``NEED_REPEATS`` (2) or more of them is "repeated". The
faults are the ``hold`` messages' flags "overshoot", "unsteady" and "too little time in band"
(shown as "not in band"), the three a passing instructor can correct at once. A
station with a repeated fault needs help; stations are ranked by the number of repeated
faults, then by how many of the last holds raised any of them, then by the lower mean score
of those holds. Tiles keep their place on the screen (a tile that jumps is lost); the ranking
orders the "help needed" line above them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from analysis.class_summary import HoldRow, StationSummary
from analysis.definitions import FLAGS
from analysis.holds import HoldDetector, config_for_band
from analysis.score import mastery
from recorder.ring import RingBuffer

__all__ = ["NEED_FLAGS", "NEED_REPEATS", "NEED_WINDOW", "RESTART_GAP_S", "STALE_AFTER_S",
           "ClassModel", "HoldResult", "Need", "StationState", "summary_rows"]

STALE_AFTER_S = 1.0  # no sample nor message for this long: the tile greys out
RESTART_GAP_S = 1.0  # a force gap this long (a station restarted): the live hold starts over
NEED_WINDOW = 3  # the last complete holds the need rule looks at ...
NEED_REPEATS = 2  # ... and how many of them must raise a fault for it to be "repeated"
#: the faults the need rule counts: flag name (as in ``hold`` messages) -> what the tile says
NEED_FLAGS = {f.name: {"band": "not in band"}.get(f.key, f.name)
              for f in FLAGS if f.key in ("over", "unsteady", "band")}
RING_S = 90.0  # force kept per station: the longest preset hold (60 s) and some


@dataclass(frozen=True)
class HoldResult:
    """A hold as its station reported it when it ended (a ``hold`` message)."""

    point: str
    repetition: int
    duration_s: float
    time_in_band_s: float
    peak_n: float
    score: float  # NaN: not scored
    deduction: str
    flags: tuple[str, ...]
    complete: bool


@dataclass(frozen=True)
class Need:
    """How much a station needs the instructor: its repeated faults (names of
    ``NEED_FLAGS``), how many of the last holds raised any, and their mean score."""

    repeated: tuple[str, ...]
    flagged: int
    mean_score: float
    considered: int  # the holds looked at (at most NEED_WINDOW)

    @property
    def helps(self) -> bool:
        return bool(self.repeated)

    def key(self) -> tuple:
        """Sort key: the neediest first."""
        score = self.mean_score if math.isfinite(self.mean_score) else 101.0
        return (-len(self.repeated), -self.flagged, score)

    def text(self) -> str:
        """E.g. "overshoot, unsteady (last 3 holds)"; "" when no help is needed."""
        if not self.repeated:
            return ""
        return (f"{', '.join(NEED_FLAGS[f] for f in self.repeated)} "
                f"(last {self.considered} holds)")


@dataclass
class StationState:
    """One station: the last ``state`` message's fields, its holds, its force and its link."""

    name: str
    trainee: str = ""
    protocol: str = ""
    point: str = ""
    point_index: int = 0
    points: int = 0
    band_n: tuple[float, float] | None = None
    min_hold_s: float = math.nan
    max_hold_s: float = math.nan
    mastery: str = ""
    link: str = "connected"
    complete: bool = False
    stopped: bool = False  # said "bye"
    holds: list[HoldResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    last_arrival: float = -math.inf  # host clock at the arrival of the last force sample
    last_sample_t: float = -math.inf  # stream time of the last force sample
    restarts: int = 0
    ring: RingBuffer = field(default_factory=lambda: RingBuffer.for_rate(RING_S, 1000.0))
    detector: HoldDetector | None = None
    live_start: float = math.nan  # stream time the hold in progress began (NaN: none)
    last_hold: tuple[float, float] | None = None  # stream times of the last detected hold

    def silent_for(self, now: float) -> float:
        """Seconds since the station's last force samples arrived."""
        return now - self.last_arrival

    def stale(self, now: float) -> bool:
        return self.silent_for(now) > STALE_AFTER_S

    def last(self) -> HoldResult | None:
        return self.holds[-1] if self.holds else None

    def scores(self) -> list[float]:
        return [h.score for h in self.holds if h.complete]

    def mastery_text(self) -> str:
        """The station's own mastery text, else the default rule over its scores."""
        return self.mastery or mastery(self.scores()).text()

    def need(self) -> Need:
        """The need rule (module docstring) over the last complete holds."""
        last = [h for h in self.holds if h.complete][-NEED_WINDOW:]
        counts = {f: sum(f in h.flags for h in last) for f in NEED_FLAGS}
        scores = [h.score for h in last if math.isfinite(h.score)]
        return Need(repeated=tuple(f for f, n in counts.items() if n >= NEED_REPEATS),
                    flagged=sum(any(f in h.flags for f in NEED_FLAGS) for h in last),
                    mean_score=float(np.mean(scores)) if scores else math.nan,
                    considered=len(last))

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The hold in progress as (s since it began, N); empty when none."""
        if not math.isfinite(self.live_start):
            return np.empty(0), np.empty(0)
        view = self.ring.since(self.live_start)
        return view.time - self.live_start, view.force

    def last_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The last finished hold as (s since it began, N), while the ring holds it."""
        if self.last_hold is None:
            return np.empty(0), np.empty(0)
        start, end = self.last_hold
        view = self.ring.since(start)
        keep = view.time <= end
        return view.time[keep] - start, view.force[keep]


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _band(value: object) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _num(value[0]), _num(value[1])
        if math.isfinite(high):
            return (low if math.isfinite(low) else 0.0, high)
    return None


def hold_result(message: dict) -> HoldResult:
    """The ``HoldResult`` of a ``hold`` message (missing fields: NaN or empty)."""
    return HoldResult(point=str(message.get("point") or ""),
                      repetition=int(message.get("repetition") or 0),
                      duration_s=_num(message.get("duration_s")),
                      time_in_band_s=_num(message.get("time_in_band_s")),
                      peak_n=_num(message.get("peak_n")),
                      score=_num(message.get("score")),
                      deduction=str(message.get("deduction") or ""),
                      flags=tuple(str(f) for f in message.get("flags") or ()),
                      complete=bool(message.get("complete", True)))


class ClassModel:
    """Every station seen, by name; ``only`` (names) limits it to those stations."""

    def __init__(self, only: list[str] | None = None) -> None:
        self.only = set(only) if only else None
        self.stations: dict[str, StationState] = {}
        for name in only or ():
            self.station(name)

    def wants(self, name: str) -> bool:
        return self.only is None or name in self.only

    def station(self, name: str) -> StationState:
        """The station called ``name``, created the first time it is seen."""
        if name not in self.stations:
            self.stations[name] = StationState(name)
        return self.stations[name]

    def on_message(self, message: dict, now: float) -> None:
        """Apply one decoded message (``recorder.station_messages.decode``) arrived at
        ``now`` (host clock)."""
        name = message["station"]
        if not self.wants(name):
            return
        st = self.station(name)
        kind = message["kind"]
        if kind == "state":
            self._apply_state(st, message)
        elif kind == "hold":
            st.holds.append(hold_result(message))
        elif kind == "warning":
            st.warnings.append(str(message.get("text") or ""))
        elif kind == "link":
            st.link = "lost" if message.get("state") == "lost" else "connected"
        elif kind == "bye":
            st.stopped = True

    def _apply_state(self, st: StationState, m: dict) -> None:
        if st.stopped:  # a "bye" then a new state: the station came back
            st.stopped = False
        band = _band(m.get("band_n"))
        if band != st.band_n:
            st.detector = config_detector(band)
            st.live_start = math.nan
        st.band_n = band
        st.trainee = str(m.get("trainee") or "")
        st.protocol = str(m.get("protocol") or "")
        st.point = str(m.get("point") or "")
        st.point_index = int(m.get("point_index") or 0)
        st.points = int(m.get("points") or 0)
        st.min_hold_s = _num(m.get("min_hold_s"))
        st.max_hold_s = _num(m.get("max_hold_s"))
        st.mastery = str(m.get("mastery") or "")
        st.link = "lost" if m.get("link") == "lost" else "connected"
        st.complete = bool(m.get("complete"))

    def on_samples(self, name: str, t: np.ndarray, force_n: np.ndarray, now: float) -> None:
        """Force samples (stream times ``t``, N) of station ``name`` arrived at ``now``."""
        if not self.wants(name) or not len(t):
            return
        st = self.station(name)
        st.last_arrival = max(st.last_arrival, now)
        if t[0] - st.last_sample_t > RESTART_GAP_S and math.isfinite(st.last_sample_t):
            st.restarts += 1
            st.detector = config_detector(st.band_n)
            st.live_start = math.nan
        st.last_sample_t = float(t[-1])
        st.ring.push(t, force_n, np.zeros(len(t), dtype=np.uint8))
        if st.detector is None:
            st.detector = config_detector(st.band_n)
        for event in st.detector.feed(t, force_n):
            if event.kind == "end":
                st.last_hold = (event.hold.start_s, event.hold.end_s)
        live = st.detector.current
        st.live_start = live.start_s if live is not None else math.nan

    def ranked(self) -> list[StationState]:
        """Stations that need help, neediest first (``Need``)."""
        needy = [s for s in self.stations.values() if s.need().helps]
        return sorted(needy, key=lambda s: (s.need().key(), s.name))


def config_detector(band: tuple[float, float] | None) -> HoldDetector:
    """The recorder's hold detector for ``band`` (N; None: no band), for the live curve."""
    low, high = band if band is not None else (0.0, math.nan)
    return HoldDetector(config_for_band(low, high))


def summary_rows(model: ClassModel) -> list[StationSummary]:
    """The class summary's rows (``analysis.class_summary``), one per station, by name."""
    return [StationSummary(st.name, st.trainee, [
        HoldRow(h.score, h.duration_s, h.time_in_band_s, h.flags, h.complete) for h in st.holds])
        for _, st in sorted(model.stations.items())]
