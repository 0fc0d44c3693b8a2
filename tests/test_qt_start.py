"""The window on a real X server (Xvfb, Qt's xcb platform, not offscreen), and the one-line
errors when Qt's platform cannot start: no reachable display, a library the platform plugin
needs missing. Qt aborts the process in both cases; the commands must say why, exit 1 and
leave no recording behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pyqtgraph.Qt import QtGui

from recorder.qtstart import debian_package, missing_libraries, platform_plugin
from schemas.reader import open_recording
from tests.conftest import ROOT, palpation_cmd, run_palpation
from tests.test_window import band_pixel_count

# the whole X screen, as the X server holds it, grabbed by a separate xcb client
GRAB_SCREEN = """
import sys
from PyQt6.QtGui import QGuiApplication
app = QGuiApplication(sys.argv[:1])
assert app.platformName() == "xcb", app.platformName()
app.primaryScreen().grabWindow(0).save(sys.argv[1])
"""
SCREEN = (1280, 800)  # a laptop's screen, smaller than the 1600 x 1000 the window asks
BARE_QT = "from PyQt6.QtGui import QGuiApplication; QGuiApplication([])"


@pytest.fixture
def xvfb():
    """An Xvfb server on a display number it picks itself (``-displayfd``); its DISPLAY."""
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed (make system-deps installs the xvfb package)")
    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp",
                               "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def env_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}


def assert_one_line_error(r: subprocess.CompletedProcess, *words: str) -> None:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and all(w in lines[0] for w in words), lines[0]


def test_the_window_opens_and_draws_on_a_real_x_server(xvfb, tmp_path):
    out, png, screen = tmp_path / "x.h5", tmp_path / "window.png", tmp_path / "screen.png"
    record = subprocess.Popen(
        palpation_cmd("record", "--simulate", "--seed", "3", "--duration", "3", "--out", str(out),
                      "--screenshot", str(png)),
        cwd=ROOT, env=env_with(QT_QPA_PLATFORM="xcb", DISPLAY=xvfb),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    on_screen = 0
    while record.poll() is None and on_screen < 2000:  # until the band shows on the X screen
        time.sleep(1.0)
        grab = subprocess.run([sys.executable, "-c", GRAB_SCREEN, str(screen)], timeout=30,
                              env=env_with(QT_QPA_PLATFORM="xcb", DISPLAY=xvfb),
                              capture_output=True, text=True)
        assert grab.returncode == 0, grab.stderr
        on_screen = band_pixel_count(QtGui.QImage(str(screen)))
    _, stderr = record.communicate(timeout=60)
    assert record.returncode == 0, stderr
    assert on_screen > 2000  # the window was mapped on the X server and drew the band
    img = QtGui.QImage(str(png))
    assert band_pixel_count(img) > 2000
    assert 800 <= img.width() <= SCREEN[0] and img.height() <= SCREEN[1]  # fitted to the screen
    assert open_recording(out).finalised


def unused_display() -> str:
    taken = {p.name for p in Path("/tmp/.X11-unix").glob("X*")}
    return next(f":{n}" for n in range(917, 999) if f"X{n}" not in taken)


def test_an_unreachable_display_is_a_one_line_error_and_no_file(tmp_path):
    out, display = tmp_path / "x.h5", unused_display()
    env = env_with(QT_QPA_PLATFORM="xcb", DISPLAY=display)
    r = run_palpation("record", "--simulate", "--duration", "2", "--out", str(out), env=env)
    assert_one_line_error(r, f"could not connect to display {display}", "--headless")
    assert not out.exists()
    # review starts Qt before it opens the file: the display, not the missing file, is named
    r = run_palpation("review", str(tmp_path / "absent.h5"), env=env)
    assert_one_line_error(r, f"could not connect to display {display}",
                          "QT_QPA_PLATFORM=offscreen")


@pytest.fixture
def plugin_missing_a_library(tmp_path) -> Path:
    """A copy of PyQt6's real xcb platform plugin that needs one library no system has
    (its libxcb-keysyms.so.1 renamed libpalpation-x.so.1) and answers to the platform name
    "xcq"; its Qt libraries are PyQt6's own (the copy's RUNPATH is $ORIGIN/../../lib)."""
    real = platform_plugin("xcb")
    assert real is not None, "PyQt6 has no xcb platform plugin"
    platforms = tmp_path / "Qt6" / "plugins" / "platforms"
    platforms.mkdir(parents=True)
    (tmp_path / "Qt6" / "lib").symlink_to(real.parents[2] / "lib")
    data = real.read_bytes()
    needed, keys = b"libxcb-keysyms.so.1\0", b"\x81\x63xcb"  # CBOR: the key list ["xcb"]
    assert data.count(needed) == 1 and data.count(keys) == 1
    copy = platforms / "libqxcq.so"
    copy.write_bytes(data.replace(needed, b"libpalpation-x.so.1\0")
                     .replace(keys, b"\x81\x63xcq"))
    return copy


def test_a_missing_platform_library_is_named_and_no_file(plugin_missing_a_library, tmp_path):
    env = env_with(QT_QPA_PLATFORM="xcq", DISPLAY=unused_display(),
                   QT_QPA_PLATFORM_PLUGIN_PATH=str(plugin_missing_a_library.parent))
    bare = subprocess.run([sys.executable, "-c", BARE_QT], env=env, capture_output=True,
                          text=True, timeout=30)
    assert bare.returncode == -signal.SIGABRT  # what the commands did before they probed
    assert missing_libraries(plugin_missing_a_library) == ["libpalpation-x.so.1"]
    out = tmp_path / "x.h5"
    r = run_palpation("record", "--simulate", "--duration", "2", "--out", str(out), env=env)
    assert_one_line_error(r, "xcq platform cannot load: libpalpation-x.so.1 not installed",
                          "apt-get install libpalpation-x1", "--headless")
    assert not out.exists()


def makefile_list(name: str) -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    found = re.search(rf"^{name} := (.*)$", text, re.MULTILINE)
    assert found, f"no {name} in the Makefile"
    return set(found.group(1).split())


def test_the_makefile_installs_every_x_library_the_xcb_plugin_links():
    """Every X library the xcb plugin needs (directly or through Qt's own libraries) comes
    from a package in QT_DEBS, whose name ``debian_package`` derives as dpkg says."""
    plugin = platform_plugin("xcb")
    lines = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                           timeout=30).stdout.splitlines()
    x_libraries = {}
    for line in lines:
        name, _, path = (part.strip() for part in line.partition("=>"))
        if re.match(r"lib(xcb|X11|xkbcommon)", name):
            x_libraries[name] = path.split(" (")[0]
    assert len(x_libraries) >= 15, lines  # libxcb and its extensions, X11, xkbcommon
    assert all(path != "not found" for path in x_libraries.values()), x_libraries
    qt_debs = makefile_list("QT_DEBS")
    for name, path in x_libraries.items():
        owner = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True,
                               text=True, timeout=30).stdout.split(":")[0]
        assert owner == debian_package(name) and owner in qt_debs, (name, owner)
    assert "xvfb" in makefile_list("TEST_DEBS")
