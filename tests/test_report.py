"""The instructor's HTML report, on real recordings made by the real command, checked as text
and rendered in a real headless browser (Chromium; CI installs it, so a missing browser is a
failure, not a skip)."""

from __future__ import annotations

import copy
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from analysis.curves import dtw_per_second, median_abs_difference, reference_curve
from analysis.definitions import FLAGS, INCOMPLETE, METRICS, REFERENCE_METRICS
from analysis.metrics import recording_metrics
from analysis.report import MAX_PLOT_POINTS, ReportError, build_report, write_report
from analysis.svg import CHAR_WIDTH_EM
from schemas.reader import open_recording
from tests.conftest import ROOT, palpation_cmd, run_palpation
from tests.test_metrics import PROTOCOL, stream, write_recording

CHROMIUM = Path("/usr/bin/chromium")
TRAINEE = 'Zoë <b>&amp; "Q" & co'
INSTRUCTOR = "Dr <i>Ref</i>"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    """Two sessions of a novice trainee and an expert (instructor) reference, recorded in
    parallel by ``palpation record --simulate``."""
    d = tmp_path_factory.mktemp("report-recordings")
    specs = {
        "novice1": ("novice", "11", ["--trainee", TRAINEE]),
        "novice2": ("novice", "12", ["--trainee", TRAINEE]),
        "expert": ("expert", "13", ["--trainee", "", "--instructor", INSTRUCTOR]),
    }
    procs = {}
    for name, (profile, seed, extra) in specs.items():
        out = d / f"{name}.h5"
        procs[name] = (out, subprocess.Popen(
            palpation_cmd("record", "--simulate", "--headless", "--duration", "25",
                          "--out", str(out), "--profile", profile, "--seed", seed, *extra),
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    paths = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"{name}: {stderr}\n{stdout}"
        paths[name] = out
    return paths


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, recordings) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("report-bad")
    foreign = d / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = [1, 2, 3]
    truncated = d / "truncated.h5"
    shutil.copy(recordings["novice1"], truncated)
    with open(truncated, "r+b") as fh:
        fh.truncate(truncated.stat().st_size // 4)
    text = d / "notes.h5"
    text.write_text("not a recording at all\n")
    return {"foreign": foreign, "truncated": truncated, "text": text}


@pytest.fixture(scope="module")
def report(tmp_path_factory, recordings, bad_files) -> tuple[Path, list[str], str]:
    out = tmp_path_factory.mktemp("report-out") / "report.html"
    warnings = write_report([recordings["novice1"], bad_files["foreign"], recordings["novice2"],
                             bad_files["truncated"]], out, reference=recordings["expert"])
    return out, warnings, out.read_text(encoding="utf-8")


def _sections(page: str) -> dict[str, str]:
    found = re.findall(r'<section class="point" id="point-\d+" data-label="([^"]*)">(.*?)'
                       r"</section>", page, re.S)
    return {html.unescape(label): body for label, body in found}


# ---------------------------------------------------------------------------- content
def test_recordings_have_holds(recordings):
    for path in recordings.values():
        assert len(recording_metrics(open_recording(path))) >= 1, path


def test_one_section_per_trigger_point_with_holds(recordings, report):
    _, _, page = report
    labels = set()
    for name in ("novice1", "novice2"):
        labels |= {m.trigger_point for m in recording_metrics(open_recording(recordings[name]))}
    sections = _sections(page)
    assert set(sections) == labels
    for label, body in sections.items():
        rows = re.findall(r"<tbody>(.*?)</tbody>", body, re.S)[0].count("<tr>")
        n = sum(1 for name in ("novice1", "novice2")
                for m in recording_metrics(open_recording(recordings[name]))
                if m.trigger_point == label)
        assert rows == n
        # holds + the dashed reference hold
        m = re.search(r'<svg class="plot" data-points="(\d+)"', body)
        assert int(m.group(1)) == n + 1 == body.count("<polyline")
        assert body.count('stroke-dasharray="6,4"') == 1
        assert 'class="band"' in body and 'class="window"' in body


def test_curves_decimated(report):
    _, _, page = report
    for pts in re.findall(r'<polyline points="([^"]*)"', page):
        assert 2 <= len(pts.split()) <= MAX_PLOT_POINTS


def test_tables_say_units_and_every_flag_is_defined_against_its_reference(report):
    _, _, page = report
    for col in ("duration (s)", "time in band (s)", "plateau mean (N)", "peak over band (%)",
                "steadiness (N)", "absolute error (N)", "pain (0–10)", "feedback off",
                "DTW per second of hold (N)", "median difference (N)"):
        assert f">{html.escape(col)}</th>" in page, col
    assert "force in N" in page and "contact area 2.00 cm²" in page
    assert "NMT static compression" in page
    legend = page.split('id="legend"')[1].split("</section>")[0]
    for flag in (*FLAGS, INCOMPLETE):
        assert (f'<span class="badge b-{flag.key}">{html.escape(flag.name)}</span></dt>'
                f"<dd>{html.escape(flag.definition)}</dd>") in legend
    assert ">too long</span></dt><dd>held past the dose&#x27;s maximum hold" in legend
    assert "peak more than 15 % above the band&#x27;s top" in legend
    # each column and each distance with its one definition, as analysis.definitions says
    for name in ("plateau_mean_n", "abs_error_n", "peak_over_band_pct"):
        assert html.escape(METRICS[name].definition) in legend
    for metric in REFERENCE_METRICS.values():
        assert html.escape(metric.definition) in legend
    assert "0 is the same shape" in legend  # how to read DTW


def test_flags_follow_the_metrics(recordings):
    rec = open_recording(recordings["novice1"])
    page = build_report([rec])
    rows = [m for m in recording_metrics(rec) if m.complete]
    expect = {"over": sum(m.peak_n > 1.15 * m.band_high_n for m in rows),
              "short": sum(m.duration_s < m.min_hold_s for m in rows),
              "long": sum(m.duration_s > m.max_hold_s for m in rows),
              "band": sum(m.time_in_band_s < m.min_hold_s for m in rows),
              "unsteady": sum(m.steadiness_n > 0.05 * m.target_n for m in rows)}
    for key, n in expect.items():
        assert page.count(f'<span class="badge b-{key}" title=') == n, key
    # without a reference there is no comparison column
    assert "DTW" not in page and "Reference (dashed)" not in page


def _rows(body: str) -> list[list[str]]:
    """The cells of each row of a point section's hold table."""
    return [re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>")[1], re.S)]


def test_reference_comparison(report):
    _, _, page = report
    sections = _sections(page)
    assert sections
    for body in sections.values():
        for cells in _rows(body):
            assert float(cells[-3]) > 0 and float(cells[-2]) > 0  # a trainee is not the expert


def test_the_reference_is_the_mean_of_the_instructors_holds(tmp_path):
    """A simulated novice's recording as its own reference: at each point the reference is
    the mean of its holds there (``reference_curve``, checked against the simulator's truth
    in test_metrics), so no hold is at distance 0 from it, as the first was when it alone was
    the reference, and each distance is the one to that mean."""
    s = stream("novice", 0)
    path = tmp_path / "novice.h5"
    write_recording(path, s, with_rows=True)
    rec = open_recording(path)
    sections = _sections(build_report([rec], rec))
    t, f = np.asarray(rec.timestamps), np.asarray(rec.force)
    by_point: dict[str, list] = {}
    for m in recording_metrics(rec):
        a, b = np.searchsorted(t, (m.start_s, m.end_s))
        by_point.setdefault(m.trigger_point, []).append((t[a:b] - m.start_s, f[a:b]))
    assert [len(c) for c in by_point.values()] == [3, 9]
    for label, curves in by_point.items():
        mean = reference_curve(curves)
        rows = _rows(sections[label])
        assert f"the mean of the instructor's {len(curves)} hold(s)" in sections[label]
        for cells, curve in zip(rows, curves, strict=True):
            dtw, mad = float(cells[-3]), float(cells[-2])
            assert dtw > 0.1 and mad > 0.1
            assert mad == pytest.approx(median_abs_difference(curve, mean), abs=0.051)
            assert dtw == pytest.approx(dtw_per_second(curve, mean), abs=0.051)


def test_a_point_with_one_hold_is_its_own_reference(recordings):
    rec = open_recording(recordings["novice1"])
    sections = _sections(build_report([rec], rec))
    assert sections
    for body in sections.values():
        for cells in _rows(body):
            if "incomplete" not in cells[-1]:
                assert (cells[-3], cells[-2]) == ("0.0", "0.0")


def test_holds_past_the_maximum_are_flagged_too_long_against_the_simulated_truth(tmp_path):
    """The protocol's maximum hold set between the simulated holds' true durations: exactly
    the holds the simulator made longer carry the "too long" badge, and only they fail the
    dose for it (the legend defines the badge)."""
    s = stream("expert", 0)
    limit = 15.55
    durations = [g.end_s - g.start_s for g in s.truth]
    assert min(abs(d - limit) for d in durations) > 0.05  # no truth sits on the limit
    path = tmp_path / "long.h5"
    write_recording(path, s, with_rows=True,
                    protocol=PROTOCOL.replace("max_hold_s = 20.0", f"max_hold_s = {limit}"))
    page = build_report([open_recording(path)])
    sections = _sections(page)
    rows = _rows(sections["upper trapezius L"]) + _rows(sections["upper trapezius R"])
    flagged = ["b-long" in cells[-1] for cells in rows]
    assert flagged == [d > limit for d in durations]
    assert 0 < sum(flagged) < len(flagged)
    assert "hold window 8–15.55 s" in sections["upper trapezius L"]
    assert "held past the dose&#x27;s maximum hold" in page


def test_table_values_match_the_simulated_truth(tmp_path):
    """A recording of a simulated therapist (written by the real writer): each row of the
    report shows the duration, plateau mean and |error| of the hold the simulator made."""
    from tests.test_metrics import stream, write_recording

    s = stream("expert", 0)
    path = tmp_path / "truth.h5"
    write_recording(path, s, with_rows=True)
    sections = _sections(build_report([open_recording(path)]))
    rows = _rows(sections["upper trapezius L"]) + _rows(sections["upper trapezius R"])
    assert len(rows) == len(s.truth)
    for k, (cells, g) in enumerate(zip(rows, s.truth, strict=True)):
        rep, duration, _, plateau, _, _, error = cells[:7]
        if k < 6:  # the holds the file's /holds table names (the rest are counted on)
            assert int(rep) == g.repetition
        assert float(duration) == pytest.approx(g.end_s - g.start_s, abs=0.1)
        assert float(plateau) == pytest.approx(g.plateau_level_n, rel=0.01, abs=0.05)
        target = 30.0  # the middle of the protocol's 25.5-34.5 N band
        assert float(error) == pytest.approx(abs(g.plateau_level_n - target), abs=0.4)


def test_progress_across_sessions_on_the_band_scale(report, recordings):
    _, _, page = report
    assert "Progress across sessions" in page
    progress = page.split('id="progress"')[1]
    assert html.escape(TRAINEE) in progress
    assert progress.count('<table class="progress">') == len(_sections(page))
    assert "mean error (N)" in progress and "CV of plateau means (%)" in progress
    charts = re.findall(r'<svg class="plot" data-points="1".*?</svg>', progress, re.S)
    assert charts
    for svg in charts:
        width = int(re.search(r'width="(\d+)"', svg).group(1))
        title = re.search(r'<text class="title"[^>]*font-size="([\d.]+)"[^>]*><title>'
                          r"[^<]*</title>([^<]*)</text>", svg)
        size, text = float(title.group(1)), html.unescape(title.group(2))
        assert "…" not in text and len(text) * CHAR_WIDTH_EM * size <= width - 62, text
    # the error chart spans twice the band's half-width each way (30-50 N: -20 to 20 N),
    # whatever the errors were, and shades the band (±10 N)
    error_chart = next(c for c in charts if "plateau mean − target" in c)
    ticks = [float(v) for v in re.findall(r'text-anchor="end">(-?[\d.]+)</text>', error_chart)]
    assert min(ticks) == -20 and max(ticks) == 20
    assert 'class="band"' in error_chart
    # sessions are numbered by their start and labelled with their date
    starts = sorted(open_recording(recordings[n]).session_start for n in ("novice1", "novice2"))
    for k, start in enumerate(starts):
        assert f"S{k + 1} ({start:%Y-%m-%d %H:%M})" in progress
        assert f"S{k + 1}</tspan>" in error_chart and f"{start.day} {start:%b}</tspan>" in \
            error_chart


def test_recordings_made_with_different_protocols_are_judged_each_by_its_own(recordings):
    """A session recorded under a 60-90 N protocol next to one under 30-50 N: the page says
    so, each point has one section per dose, and only the holds of the 60-90 N session (at
    30-50 N, under its band all along) are flagged for too little time in band."""
    nmt = open_recording(recordings["novice1"])
    other = open_recording(recordings["novice2"])
    toml = other.session["protocol_toml"]
    assert "target_low = 30" in toml and "target_high = 50" in toml
    other.session = {**other.session, "protocol_toml": toml
                     .replace('name = "NMT static compression"', 'name = "Heavy"')
                     .replace("target_low = 30", "target_low = 60")
                     .replace("target_high = 50", "target_high = 90")}
    page = build_report([nmt, other])
    assert "These sessions follow 2 protocols" in page
    assert "judged by its own file's protocol" in page
    found = re.findall(r'<section class="point" id="point-\d+" data-label="[^"]*"><h2>([^<]*)'
                       r"</h2>(.*?)</section>", page, re.S)
    heavy = [body for title, body in found if title.endswith("— Heavy")]
    normal = [body for title, body in found if title.endswith("— NMT static compression")]
    assert heavy and len(heavy) == len(normal)
    for body in heavy:
        assert "target band 60.0–90.0 N" in body
        assert all("b-band" in cells[-1] for cells in _rows(body) if "incomplete" not in cells[-1])
    for body in normal:
        assert "target band 30.0–50.0 N" in body
        assert not any("b-band" in cells[-1] for cells in _rows(body))


def test_single_session_has_no_progress(recordings):
    page = build_report([open_recording(recordings["novice1"])])
    assert "Progress across sessions" not in page


def test_escaping(report):
    _, _, page = report
    assert TRAINEE not in page and "<b>" not in page and "<i>" not in page
    assert html.escape(TRAINEE) in page
    assert html.escape(INSTRUCTOR) in page
    # nothing external: self-contained
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_unreadable_files_reported_and_others_render(report, bad_files):
    out, warnings, page = report
    assert len(warnings) == 2
    assert any(str(bad_files["foreign"]) in w for w in warnings)
    assert any(str(bad_files["truncated"]) in w for w in warnings)
    for w in warnings:
        assert f"Warning: {html.escape(w)}" in page
    assert len(_sections(page)) >= 1
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_an_unreadable_reference_or_no_readable_recording_is_an_error(tmp_path, recordings,
                                                                       bad_files):
    out = tmp_path / "r.html"
    with pytest.raises(ReportError, match=re.escape(str(bad_files["foreign"]))):
        write_report([recordings["novice1"]], out, reference=bad_files["foreign"])
    with pytest.raises(ReportError, match=re.escape(str(bad_files["text"]))):
        write_report([bad_files["text"]], out)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_report_command_errors_name_the_file_and_write_nothing(tmp_path, recordings,
                                                               bad_files):
    out = tmp_path / "x.html"
    cases = [(["nosuch.h5"], "nosuch.h5: no such file"),
             ([str(bad_files["text"])], str(bad_files["text"])),
             ([str(recordings["novice1"]), "--reference", str(bad_files["foreign"])],
              str(bad_files["foreign"]))]
    for args, named in cases:
        r = run_palpation("report", *args, "--out", str(out))
        assert r.returncode == 1, r
        assert len(r.stderr.splitlines()) == 1 and named in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and not out.exists()


def test_analyze_over_unreadable_files_only_is_an_error(tmp_path, bad_files):
    out = tmp_path / "holds.csv"
    for inputs, named in (([str(bad_files["text"])], str(bad_files["text"])),
                          ([str(bad_files["text"]), str(bad_files["foreign"])], "none of the 2"),
                          ([str(tmp_path / "nosuch.h5")], "nosuch.h5: no such file")):
        r = run_palpation("analyze", *inputs, "--out", str(out))
        assert r.returncode == 1, r
        assert len(r.stderr.splitlines()) == 1 and named in r.stderr, r.stderr
        assert not out.exists()


def test_pressure_unit_uses_contact_area(recordings):
    rec = open_recording(recordings["novice1"])
    toml = rec.session["protocol_toml"]
    assert 'unit = "N"' in toml and "contact_area_cm2 = 2" in toml
    # the same band as a pressure on the same 2 cm² thumb: 30-50 N = 150-250 kPa
    toml = (toml.replace('unit = "N"', 'unit = "kPa"')
            .replace("target_low = 30", "target_low = 150")
            .replace("target_high = 50", "target_high = 250"))
    kpa = copy.copy(rec)
    kpa.session = {**rec.session, "protocol_toml": toml}
    page_n, page_kpa = build_report([rec]), build_report([kpa])
    assert "plateau mean (kPa)" in page_kpa and "plateau mean (N)" not in page_kpa
    assert "pressure in kPa" in page_kpa
    assert "target band 150.0–250.0 kPa" in page_kpa
    m = recording_metrics(rec)[0]
    assert f"<td>{m.plateau_mean_n:.1f}</td>" in page_n
    assert f"<td>{m.plateau_mean_n * 5:.1f}</td>" in page_kpa  # 1 N on 2 cm² = 5 kPa


def test_pressure_pain_thresholds_section_against_the_simulated_truth(tmp_path):
    """Two ppt-ramp sessions of subject S01 by one trainee (the simulated therapist, written
    by the real writer): per session and site the series is the truth's thresholds in kPa
    (1 cm² probe), the mean theirs, L−R % and the change those of ``analysis.ppt`` (two
    pairs of sessions: too few for the data's own MDC, so the change is not judged); a
    report of static holds has no such section."""
    from analysis.ppt import ppt_hold_rows, ppt_summary_rows
    from tests.test_ppt import PPT_TOML, THRESHOLD_TOL_N, write_simulated

    recs, truths = [], []
    for k, seed in enumerate((3, 5), start=1):
        path = tmp_path / f"ppt{k}.h5"
        truths.append(write_simulated(path, PPT_TOML, seed=seed, session={
            "trainee": "Ana", "subject": "S01", "session_label": str(k)}))
        recs.append(open_recording(path))
    page = build_report(recs)
    section = re.search(r'<section class="ppt" id="ppt">(.*?)</section>', page, re.S).group(1)
    assert "<h2>Pressure-pain thresholds</h2>" in section and "series (kPa)" in section
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row)
            for row in re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>")[1], re.S)]
    summary = ppt_summary_rows([r for i, rec in enumerate(recs)
                                for r in ppt_hold_rows(rec, recording_metrics(rec), str(i))])
    assert len(rows) == len(summary) == 4
    for cells, want in zip(rows, summary, strict=True):
        k = int(want["session"])
        tag, site, series, used, left_out, mean, lr, change = (html.unescape(c) for c in cells)
        assert tag.startswith(f"S{k} (") and site == want["site"] and used == "3"
        truth = [h.threshold_n * 10 for h in truths[k - 1] if h.trigger_point == site]
        assert [float(v) for v in series.split(", ")] == pytest.approx(
            truth, abs=THRESHOLD_TOL_N * 10 + 0.05)
        assert float(mean) == pytest.approx(np.mean(truth), abs=THRESHOLD_TOL_N * 10 + 0.05)
        assert left_out == ""
        assert lr == f"{want['lr_diff_pct']:.1f}" and abs(float(lr)) > 1.0
        if k == 1:
            assert change == "—"
        else:
            assert change == f"{want['change_n'] * 10:+.1f} vs session 1 (MDC unknown)"
    assert "MDC95: unknown: 2 pair(s) of sessions" in section
    static = tmp_path / "static.h5"
    write_simulated(static, PPT_TOML.replace('kind = "ppt_ramp"', 'kind = "static"'), seed=3)
    assert 'id="ppt"' not in build_report([open_recording(static)])


# ---------------------------------------------------------------------------- real browser
def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"{CHROMIUM} not found: the report must be checked in a real browser; "
                    "install it with `apt-get install -y chromium` (the Makefile does this "
                    "for CI)")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    env = {**os.environ, "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def test_renders_in_headless_chromium(tmp_path, report):
    out, _, page = report
    dom = _chromium(tmp_path, "--dump-dom", out.as_uri()).stdout
    svgs = re.findall(r'<svg class="plot" data-points="(\d+)"[^>]*>(.*?)</svg>', dom, re.S)
    assert len(svgs) == page.count('<svg class="plot"') >= 2
    for n, body in svgs:
        assert body.count("<polyline") == int(n) >= 1
    assert 'data-label="' in dom and "Progress across sessions" in dom
    # the browser kept the name as text, not markup (it re-serialises quotes unescaped)
    assert html.escape(TRAINEE, quote=False) in dom
    assert "<b>" not in dom


def test_screenshot_is_not_blank(tmp_path, report):
    out, _, _ = report
    png = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={png}", "--window-size=1200,2000", out.as_uri())
    assert png.exists() and png.stat().st_size > 20_000
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from pyqtgraph.Qt import QtGui

    img = QtGui.QImage(str(png))
    assert not img.isNull()
    assert (img.width(), img.height()) == (1200, 2000)
    colours: dict[int, int] = {}
    for y in range(0, img.height(), 7):
        for x in range(0, img.width(), 7):
            c = img.pixel(x, y)
            colours[c] = colours.get(c, 0) + 1
    total = sum(colours.values())
    assert len(colours) > 20
    background = max(colours.values())
    assert background < 0.97 * total  # something besides the page background was drawn
    # the plots' coloured curves and the shaded band are there (not just black text)
    coloured = sum(n for c, n in colours.items()
                   if max(_rgb(c)) - min(_rgb(c)) > 40)
    assert coloured > 50


def _rgb(c: int) -> tuple[int, int, int]:
    return (c >> 16) & 255, (c >> 8) & 255, c & 255
