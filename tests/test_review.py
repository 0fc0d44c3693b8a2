"""Review for teaching: the real review window, built offscreen on recordings of the simulated
therapist written by the real writer and reopened, checked by its widgets' state and by the
pixels of its screenshot; and ``palpation review`` with --point, --hold and --screenshot."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from pyqtgraph.Qt import QtCore, QtGui, QtTest

from analysis.definitions import INCOMPLETE, METRICS, REFERENCE_METRICS
from analysis.report import build_report
from recorder.panels import COLORS
from recorder.review import ReviewWindow
from schemas.reader import open_recording
from schemas.writer import RecordingWriter
from tests.conftest import run_palpation
from tests.test_metrics import PROTOCOL, stream, write_recording
from tests.test_window import band_pixel_count, colours_at

APP = pg.mkQApp("palpation-tests")
MAX_HOLD_S = 16.0  # the novice's holds last 12-20 s: some are too long against it
TRAINEE = "Ana <b>B</b>"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A novice trainee (12 holds at two points) against an expert instructor, and an
    instructor's recording in which nobody pressed."""
    d = tmp_path_factory.mktemp("review")
    paths = {"trainee": d / "trainee.h5", "instructor": d / "instructor.h5",
             "empty": d / "empty.h5"}
    write_recording(paths["trainee"], stream("novice", 0), with_rows=True,
                    protocol=PROTOCOL.replace("max_hold_s = 20.0", f"max_hold_s = {MAX_HOLD_S}"),
                    session={"trainee": TRAINEE})
    write_recording(paths["instructor"], stream("expert", 1), with_rows=True,
                    session={"instructor": "Dr Ref"})
    t = np.arange(0.0, 30.0, 0.001)
    w = RecordingWriter(paths["empty"], session={"protocol_toml": PROTOCOL}, device={},
                        calibration={}, software_version="test")
    w.append_samples(data=np.zeros(t.size), timestamps=t, raw_counts=np.zeros(t.size, np.int64),
                     device_tick_us=(t * 1e6).astype(np.int64), sequence=np.arange(t.size) % 65536,
                     host_time=t, flags=np.zeros(t.size, np.uint8))
    w.close()
    return paths


def _window(files, reference: str | None = "instructor", **kw) -> ReviewWindow:
    ref = open_recording(files[reference]) if reference else None
    w = ReviewWindow(open_recording(files["trainee"]), ref, **kw)
    w.show()
    APP.processEvents()
    return w


def _text(label) -> str:
    """A rich-text label as the words on screen."""
    return html.unescape(re.sub(r"<[^>]+>", " ", label.text()))


def test_point_and_hold_select_what_is_shown(files):
    s = stream("novice", 0)
    w = _window(files, point="upper trapezius r", hold=5)
    assert (w.point, w.selected) == (1, 4)
    assert "upper trapezius R" in w.title.text() and "9 holds" in w.title.text()
    truth = s.truth[3 + 4]  # the fifth hold at the second point (write_recording's naming)
    m = w.holds.rows[w.holds.at(1)[4]]
    assert m.start_s == pytest.approx(truth.start_s, abs=0.05)
    shown = _text(w.details)
    assert "hold 5 of 9" in shown
    # one name and one definition per metric, as the report's, and its numbers
    for name in ("duration_s", "plateau_mean_n", "peak_over_band_pct", "abs_error_n"):
        assert METRICS[name].name in shown and METRICS[name].definition in shown, name
    assert f"plateau mean {m.plateau_mean_n:.1f} N" in " ".join(shown.split())
    assert m.plateau_mean_n == pytest.approx(truth.plateau_level_n, rel=0.01)
    # the report shows the same value for the same hold
    page = build_report([open_recording(files["trainee"])])
    section = page.split('data-label="upper trapezius R">')[1].split("</section>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1], re.S)
    assert re.findall(r"<td[^>]*>(.*?)</td>", rows[4])[3] == f"{m.plateau_mean_n:.1f}"
    for metric in REFERENCE_METRICS.values():
        assert metric.name in shown
    # the overview marks the selected hold: its pixels are tinted there, not at the next hold
    nxt = w.holds.rows[w.holds.at(1)[5]]
    inside, outside = colours_at(w, w.overview, [(0.5 * (m.start_s + m.end_s), 0.0),
                                                 (0.5 * (nxt.start_s + nxt.end_s), 0.0)])
    assert inside != outside
    QtTest.QTest.keyClick(w, QtCore.Qt.Key.Key_Up)
    assert w.selected == 3 and "hold 4 of 9" in _text(w.details)
    w.close()


def test_too_long_holds_are_flagged_with_their_definition(files):
    s = stream("novice", 0)
    w = _window(files, reference=None)
    seen = {True: 0, False: 0}
    for point in (0, 1):
        for k, index in enumerate(w.holds.at(point)):
            w.point, w.selected = point, k
            w._show()
            truth = s.truth[index]
            too_long = truth.end_s - truth.start_s > MAX_HOLD_S
            shown = _text(w.details)
            assert ("too long" in shown) is too_long, (index, shown)
            if too_long:
                assert "held past the dose's maximum hold" in shown
            seen[too_long] += 1
    assert seen[True] and seen[False]
    w.close()


def test_trainee_file_reference_and_legend_are_on_screen(files):
    w = _window(files)
    who = w.who.text()
    assert TRAINEE in who and "trainee.h5" in who
    assert "reference: Dr Ref · instructor.h5" in who
    assert w.who.textFormat() == QtCore.Qt.TextFormat.PlainText  # a name is not markup
    legend = _text(w.legend)
    for words in ("selected hold", "other holds here", "reference: mean of the instructor",
                  "target band", "hold window"):
        assert words in legend
    assert not w.warning_label.isVisible() and w.warning == ""
    w.close()


def _near(c: tuple[int, int, int], want, tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(c, want[:3], strict=True))


def test_the_reference_is_drawn_in_its_own_colour(files):
    """Pixels of the central plot: the selected hold in yellow, the reference (the mean of
    the instructor's holds, dashed) in magenta, which is far from that yellow."""
    sel, ref = COLORS["selected"], COLORS["reference"]
    assert sum(abs(a - b) for a, b in zip(sel[:3], ref[:3], strict=True)) > 200
    w = _window(files, point="1", hold=1)
    mean_t, mean_f = w.reference.mean_at(0)
    xs = np.linspace(3.0, 0.8 * mean_t[-1], 60)
    on_ref = colours_at(w, w.heart, [(x, float(np.interp(x, mean_t, mean_f))) for x in xs])
    assert sum(_near(c, ref) for c in on_ref) >= 10, on_ref  # dashed: gaps show others
    img = w.grab().toImage()
    counts = {"sel": 0, "ref": 0}
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            c = img.pixelColor(x, y)
            rgb = (c.red(), c.green(), c.blue())
            counts["sel"] += _near(rgb, sel, 30)
            counts["ref"] += _near(rgb, ref, 30)
    assert counts["sel"] > 200 and counts["ref"] > 50, counts
    w.close()


def test_a_reference_without_holds_is_warned_of(files, tmp_path):
    w = _window(files, reference="empty")
    assert w.warning_label.isVisible()
    assert "empty.h5 has no holds" in w.warning_label.text()
    assert "the instructor recorded no hold at this point" in _text(w.details)
    w.close()
    page = build_report([open_recording(files["trainee"])], open_recording(files["empty"]))
    assert "Warning: the reference empty.h5 has no holds" in page
    png = tmp_path / "r.png"
    r = run_palpation("review", str(files["trainee"]), "--reference", str(files["empty"]),
                      "--screenshot", str(png))
    assert r.returncode == 0 and png.exists()
    assert r.stderr.strip() == ("palpation: warning: The reference empty.h5 has no holds: "
                                "there is nothing to compare with.")


def test_review_command_screenshots_the_chosen_point_and_hold(files, tmp_path):
    png = tmp_path / "review.png"
    r = run_palpation("review", str(files["trainee"]), "--reference", str(files["instructor"]),
                      "--point", "2", "--hold", "3", "--screenshot", str(png))
    assert r.returncode == 0, r.stderr
    img = QtGui.QImage(str(png))
    assert (img.width(), img.height()) == (1600, 1000) and band_pixel_count(img) > 2000
    # the same window built here maps session time to pixels: the saved overview is tinted at
    # the third hold of point 2, and not at its first
    w = _window(files, point="2", hold=3)
    assert (w.point, w.selected) == (1, 2)
    at = w.holds.at(1)
    chosen, first = w.holds.rows[at[2]], w.holds.rows[at[0]]
    vb = w.overview.getPlotItem().getViewBox()

    def pixel(t: float) -> QtGui.QColor:
        scene = vb.mapViewToScene(QtCore.QPointF(t, 0.0))
        return img.pixelColor(w.overview.mapTo(w, w.overview.mapFromScene(scene)))

    live = w.grab().toImage()
    for t in (0.5 * (chosen.start_s + chosen.end_s), 0.5 * (first.start_s + first.end_s)):
        scene = vb.mapViewToScene(QtCore.QPointF(t, 0.0))
        assert pixel(t) == live.pixelColor(w.overview.mapTo(w, w.overview.mapFromScene(scene)))
    assert pixel(0.5 * (chosen.start_s + chosen.end_s)) != \
        pixel(0.5 * (first.start_s + first.end_s))
    w.close()


@pytest.mark.parametrize(("args", "says"), [
    (["--point", "3"], "--point 3: the recording has trigger points 1–2"),
    (["--point", "piriformis L"], "--point 'piriformis L': no such trigger point (the "
                                  "recording has: upper trapezius L, upper trapezius R)"),
    (["--point", "1", "--hold", "4"], "--hold 4: upper trapezius L has 3 holds"),
])
def test_a_point_or_hold_that_does_not_exist_is_a_one_line_error(files, tmp_path, args, says):
    png = tmp_path / "x.png"
    r = run_palpation("review", str(files["trainee"]), *args, "--screenshot", str(png))
    assert r.returncode == 1 and not png.exists()
    assert r.stderr.strip().splitlines() == [f"palpation: error: {says}"]


def test_a_hold_cut_off_by_the_end_is_shown_incomplete_not_judged(tmp_path):
    """The novice's stream cut in the middle of its third hold: review lists that hold as
    incomplete, with the report's definition, and judges it against nothing, while the two
    whole holds before it are judged as usual."""
    s = stream("novice", 0)
    g = s.truth[2]
    n = int(np.searchsorted(s.t, 0.5 * (g.start_s + g.end_s)))
    t = s.t[:n]
    path = tmp_path / "cut.h5"
    w = RecordingWriter(path, session={"protocol_toml": PROTOCOL}, device={}, calibration={},
                        software_version="test")
    w.append_samples(data=s.force_n[:n], timestamps=t, raw_counts=np.zeros(n, np.int64),
                     device_tick_us=(t * 1e6).astype(np.int64), sequence=np.arange(n) % 65536,
                     host_time=t, flags=np.zeros(n, np.uint8))
    w.close()
    window = ReviewWindow(open_recording(path), point="1", hold=3)
    window.show()
    APP.processEvents()
    assert window.title.text().endswith("3 holds (1 incomplete)")
    cut = window.holds.rows[window.holds.at(0)[2]]
    assert not cut.complete and cut.start_s == pytest.approx(g.start_s, abs=0.05)
    shown = " ".join(_text(window.details).split())
    assert "INCOMPLETE" in shown and INCOMPLETE.definition in shown
    assert "not judged against the band nor the hold window" in shown
    assert shown.count("judged against") == 1
    for k in (0, 1):
        window.selected = k
        window._show()
        whole = " ".join(_text(window.details).split())
        assert "judged against the band" in whole and "not judged" not in whole
        assert "INCOMPLETE" not in whole
    window.close()


def test_a_screenshot_that_cannot_be_written_is_a_one_line_error(files, tmp_path):
    """The checks before the window (a .png in a writable folder) pass, but the name is a
    folder, so saving the image fails: a one-line error and exit 1, not a silent 0."""
    png = tmp_path / "taken.png"
    png.mkdir()
    r = run_palpation("review", str(files["trainee"]), "--screenshot", str(png))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"palpation: error: cannot write the screenshot {png}"]
    assert png.is_dir() and not any(png.iterdir())
