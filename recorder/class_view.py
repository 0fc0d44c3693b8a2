"""``palpation class``: the instructor's screen, one tile per station.

A tile (``StationTile``) shows the trainee (or pseudonym) and trigger point, the live pressure
against time since the hold began on a ``recorder.panels.HoldPlot`` (band and hold window
shaded, the last hold faded), the last hold's score and largest deduction, mastery progress
and the link. A stale station (``recorder.class_model.STALE_AFTER_S``) greys out and says
"no data for N s". A station that needs help (``class_model.Need``) gets a red frame and its
faults; the line above the tiles lists those stations, neediest first. Tiles keep their
place (sorted by station name) so that number keys always select the same one.

Click a tile, or press its number (1-9, then 0 for the 10th), to fill the window with it;
Esc goes back. ``big_screen`` (a projector) uses large type throughout and drops the small
lines (mastery, link) from the grid, keeping them for a tile shown alone.

The view reads LSL on its UI timer (``recorder.class_inlets``) and never sends anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from analysis.decimate import peak_decimate
from recorder.class_model import ClassModel, StationState
from recorder.panels import COLORS, HISTORY_POINTS, LIVE_POINTS, HoldPlot, big_label
from recorder.window_layout import FrameClock

__all__ = ["ClassWindow", "StationTile"]

FRAME_MS = 33  # ~30 frames a second
_KEYS = [QtCore.Qt.Key.Key_1, QtCore.Qt.Key.Key_2, QtCore.Qt.Key.Key_3, QtCore.Qt.Key.Key_4,
         QtCore.Qt.Key.Key_5, QtCore.Qt.Key.Key_6, QtCore.Qt.Key.Key_7, QtCore.Qt.Key.Key_8,
         QtCore.Qt.Key.Key_9, QtCore.Qt.Key.Key_0]
_FRAME = {"ok": "#30363d", "help": COLORS["above"], "stale": "#6e7681"}


def _score_text(st: StationState) -> str:
    last = st.last()
    if last is None:
        return "no hold yet"
    score = f"{last.score:.0f}" if math.isfinite(last.score) else "not scored"
    ded = f" · {last.deduction}" if last.deduction else ""
    return f"hold {len(st.holds)}: score {score}{ded}"


class _TilePlot(HoldPlot):
    """A tile's plot; the end of each of its paints marks a frame on the tile's clock."""

    def __init__(self, clock: FrameClock) -> None:
        super().__init__("", "N", small=True)
        self.clock = clock

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().paintEvent(event)
        self.clock.painted()


class StationTile(QtWidgets.QFrame):
    """One station's tile; ``update_from`` redraws it from the model at host time ``now``."""

    def __init__(self, name: str, number: int, big: bool,
                 on_click: Callable[[str], None]) -> None:
        super().__init__()
        self.name, self.number, self.big = name, number, big
        self._on_click = on_click
        self.stale = False
        self._kind = ""
        self._dose: tuple = ()
        self._last_hold: tuple[float, float] | None = None
        size = 20 if big else 12
        lay = QtWidgets.QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 4)
        lay.setSpacing(2)
        self.title = big_label(size + 4)
        self.point = big_label(size, bold=False)
        # read-only, for bench/bench_class.py (as LiveWindow.clock for bench_window): when
        # the plot painted and how many of the station's samples (ring.total) it had taken in
        self.clock = FrameClock()
        self.plot = _TilePlot(self.clock)
        self.plot.setMinimumHeight(120)
        self.score = big_label(size)
        self.need = big_label(size)
        self.need.setStyleSheet(f"color:{COLORS['above']}")
        self.mastery = big_label(max(size - 2, 10), bold=False)
        self.link = big_label(max(size - 2, 10), bold=False)
        self.last = self.plot.plot(pen=pg.mkPen(COLORS["history"], width=1))
        if big:  # a projector's axis: ticks as large as the text
            axis = self.plot.getPlotItem().getAxis("left")
            axis.setStyle(tickFont=QtGui.QFont("", size))
            axis.setWidth(3 * size)
        for w in (self.title, self.point, self.plot, self.score, self.need, self.mastery,
                  self.link):
            lay.addWidget(w)
        lay.setStretch(2, 1)
        self.set_alone(False)
        self._frame("ok")

    def set_alone(self, alone: bool) -> None:
        """A projector's grid shows no small lines; a tile shown alone shows them all."""
        for w in (self.mastery, self.link):
            w.setVisible(alone or not self.big)

    def _frame(self, kind: str) -> None:
        if kind == self._kind:  # a style sheet repolishes: only on a change
            return
        self._kind = kind
        self.setStyleSheet(f"StationTile{{border:3px solid {_FRAME[kind]};"
                           f"background:{COLORS['background']}}}"
                           f"QLabel{{color:{'#6e7681' if kind == 'stale' else '#c9d1d9'}}}")

    def mousePressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self._on_click(self.name)

    def update_from(self, st: StationState, now: float) -> None:
        """Redraw from ``st``: texts, band, window, curves and the stale or help frame."""
        who = st.trainee or st.name
        self.title.setText(f"{self.number}  {who}" + (f"  ({st.name})" if who != st.name
                                                        else ""))
        where = f"point {st.point_index + 1}/{st.points}: {st.point}" if st.points else ""
        self.point.setText(where or (st.protocol or "waiting for the station"))
        self.score.setText(_score_text(st))
        self.mastery.setText(st.mastery_text())
        self._draw(st)
        need = st.need()
        self.stale = st.stale(now)
        if self.stale:
            silent = st.silent_for(now)
            lost = " (sensor link lost)" if st.link == "lost" else ""
            self.link.setText("no data yet" if not math.isfinite(silent)
                              else f"no data for {silent:.0f} s{lost}")
            self.need.setText(self.link.text())
        else:
            gaps = f", {st.restarts} gap{'s' * (st.restarts != 1)}" if st.restarts else ""
            self.link.setText(f"link {st.link}{gaps}" + (" · finished" if st.stopped else ""))
            self.need.setText(f"help: {need.text()}" if need.helps else "")
        self.plot.colour_band(not self.stale)
        self._frame("stale" if self.stale else "help" if need.helps else "ok")

    def _draw(self, st: StationState) -> None:
        """The curves every frame; the band, window, ranges and last hold only when they
        change (each repaints the axes)."""
        dose = (st.band_n, st.min_hold_s, st.max_hold_s)
        if dose != self._dose:
            self._dose = dose
            self._draw_dose(*dose)
        if st.last_hold != self._last_hold:
            self._last_hold = st.last_hold
            self.last.setData(*peak_decimate(*st.last_curve(), HISTORY_POINTS))
        self.clock.drawn_total = st.ring.total
        self.plot.set_current(*peak_decimate(*st.curve(), LIVE_POINTS))

    def _draw_dose(self, band: tuple[float, float] | None, min_s: float, max_s: float) -> None:
        self.plot.band.setVisible(band is not None)
        window = band is not None and math.isfinite(min_s) and math.isfinite(max_s)
        self.plot.window.setVisible(window)
        if band is not None:
            self.plot.band.setRegion(band)
            self.plot.set_range(max(25.0, max_s * 1.15 if window else 0.0), band[1] * 1.4)
        if window:
            self.plot.window.setRegion((min_s, max_s))


class ClassWindow(QtWidgets.QWidget):
    """The tiles of every station in ``model``, refreshed every frame after ``poll()``
    (the inlets' poll, or nothing in a test that feeds the model itself)."""

    def __init__(self, model: ClassModel, poll: Callable[[], None], big_screen: bool = False,
                 screenshot: Path | None = None) -> None:
        super().__init__()
        self.model, self._poll, self.big = model, poll, big_screen
        self.screenshot = screenshot
        self.screenshot_saved = True
        self.tiles: dict[str, StationTile] = {}
        self.selected: str | None = None
        self.setWindowTitle("palpation class")
        self.setStyleSheet(f"background:{COLORS['background']};color:#c9d1d9")
        lay = QtWidgets.QVBoxLayout(self)
        self.help_line = big_label(22 if big_screen else 14)
        self._help_red = True
        lay.addWidget(self.help_line)
        self.grid = QtWidgets.QGridLayout()
        lay.addLayout(self.grid, 1)
        self.resize(1600, 1000)
        self.timer = QtCore.QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(FRAME_MS)

    def refresh(self) -> None:
        """One frame: pull, add tiles for new stations, redraw every visible tile."""
        self._poll()
        now = time.monotonic()
        if set(self.model.stations) != set(self.tiles):
            self._layout()
        for name, tile in self.tiles.items():
            if tile.isVisible() or self.selected in (None, name):
                tile.update_from(self.model.stations[name], now)
        needy = self.model.ranked()
        self.help_line.setText("help needed: " + "; ".join(
            f"{self.tiles[s.name].number} {s.trainee or s.name} ({s.need().text()})"
            for s in needy) if needy else "no station needs help")
        if bool(needy) != self._help_red:  # a style sheet repolishes: only on a change
            self._help_red = bool(needy)
            self.help_line.setStyleSheet(f"color:{COLORS['above' if needy else 'idle']}")

    def _layout(self) -> None:
        for name in sorted(self.model.stations):
            if name not in self.tiles:
                self.tiles[name] = StationTile(name, 0, self.big, self.select)
        names = sorted(self.tiles)
        columns = max(1, math.ceil(math.sqrt(len(names))))
        for i, name in enumerate(names):
            tile = self.tiles[name]
            tile.number = i + 1
            self.grid.addWidget(tile, i // columns, i % columns)
        self._show_selected()

    def select(self, name: str | None) -> None:
        """Fill the window with station ``name``'s tile; None: every tile again."""
        self.selected = name if name in self.tiles else None
        self._show_selected()

    def _show_selected(self) -> None:
        for name, tile in self.tiles.items():
            tile.setVisible(self.selected in (None, name))
            tile.set_alone(self.selected == name)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        key = event.key()
        if key == QtCore.Qt.Key.Key_Escape:
            self.select(None)
        elif key in _KEYS:
            names = sorted(self.tiles)
            index = _KEYS.index(key)
            if index < len(names):
                self.select(names[index])
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.timer.stop()
        if self.screenshot is not None:
            self.screenshot_saved = self.grab().save(str(self.screenshot), "PNG")
        super().closeEvent(event)
