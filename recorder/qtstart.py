"""Start Qt for a window, or say in one line why it cannot start.

Qt loads its platform plugin (``xcb`` on an X11 desktop, ``wayland``, ``offscreen``, ...) when
the QApplication is created. When the plugin cannot load, because a library it links is
missing (PyQt6 from pip on a stock desktop lacks ``libxcb-cursor0``, ``libxcb-icccm4``,
``libxcb-keysyms1``), or when the display refuses the connection, Qt prints its reasons and
aborts the whole process (SIGABRT): no Python handler runs and nothing is finalised. So the
commands that show a window start Qt before they open a port or a file (``start_qt``), and
before creating the QApplication in this process they have a child process create one, with
the same interpreter and environment (``probe_platform``):

- robust: the child does exactly what this process would do (the same plugin search,
  ``QT_QPA_PLATFORM``, display and libraries), so every way Qt aborts at start is caught, not
  only the ones foreseen. Checking the plugin's libraries alone would miss a display that
  refuses the connection; checking ``DISPLAY`` alone would miss a missing library.
- cheap: about 0.2 s, once per command, and only when no QApplication exists yet.
- readable: when the child fails, the libraries the platform plugin lacks are listed by
  ``ldd``. Qt's own message names ``libxcb-cursor0`` even when that library is present and
  another one is missing. Without missing libraries, Qt's own reason is taken from the
  child's stderr, in one line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

PROBE_TIMEOUT_S = 20.0  # a child creating a QGuiApplication: ~0.2 s, seconds on a busy machine
_PROBE = ("import sys\n"
          "from PyQt6.QtGui import QGuiApplication\n"
          "app = QGuiApplication(sys.argv[:1])\n"
          "print(app.platformName())\n")
_NOT_LOADED = re.compile(r'Could not (load|find) the Qt platform plugin "([^"]*)" in "([^"]*)"')
_QT_MESSAGE = re.compile(r"^qt\.[\w.]+: (.*)$")
_AVAILABLE = re.compile(r"Available platform plugins are: (.*?)\.?$", re.MULTILINE)
_SONAME = re.compile(r"^(lib[\w+.-]*?)\.so\.(\d+)$")


class QtStartError(Exception):
    """Qt cannot start a window here; ``str()`` is one line saying why."""


def start_qt():
    """The QApplication for a window: the one that exists, else a new one, created only once
    a child process has shown that Qt's platform starts here (``QtStartError`` otherwise)."""
    try:
        import pyqtgraph as pg
        from pyqtgraph.Qt import QtWidgets
    except ModuleNotFoundError:
        raise QtStartError("the window needs the gui extra: "
                           "pip install 'palpation-recorder[gui]'") from None
    except ImportError as exc:  # PyQt6 is there, a library its QtGui links is not
        raise QtStartError(f"Qt cannot load: {' '.join(str(exc).split())}") from None
    app = QtWidgets.QApplication.instance()
    if app is not None:
        return app
    if sys.platform.startswith("linux") and not any(
            os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        raise QtStartError("no display for the window (neither DISPLAY nor WAYLAND_DISPLAY is "
                           "set); QT_QPA_PLATFORM=offscreen draws it without a screen")
    probe_platform()
    return pg.mkQApp("palpation")


def probe_platform(timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """Create a QGuiApplication in a child process; the name of the platform it started
    (e.g. "xcb"), or ``QtStartError`` saying why it could not."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise QtStartError(f"Qt's {requested_platform()} platform did not start within "
                           f"{timeout_s:g} s (is the display answering?)") from None
    if done.returncode == 0:
        return done.stdout.strip()
    raise QtStartError(diagnose(done.stderr, done.returncode))


def requested_platform() -> str:
    """The platform Qt will try first: QT_QPA_PLATFORM's first entry, else Qt's choice."""
    first = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    return first or "default"


def diagnose(stderr: str, returncode: int) -> str:
    """One line from what a failed Qt start printed: the libraries its platform plugin
    lacks, else Qt's first reason, else the exit status."""
    failed = _NOT_LOADED.search(stderr)
    name = failed.group(2) if failed else requested_platform()
    if failed and failed.group(1) == "find":
        available = _AVAILABLE.search(stderr)
        return (f"there is no Qt platform plugin {name!r} (QT_QPA_PLATFORM)"
                + (f"; available: {available.group(1)}" if available else ""))
    plugin = platform_plugin(name, failed.group(3) if failed else "")
    missing = missing_libraries(plugin) if plugin else []
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(lib) for lib in missing))
        return (f"Qt's {name} platform cannot load: {', '.join(missing)} not installed "
                f"(Debian/Ubuntu: apt-get install {packages})")
    reasons = [m.group(1) for m in map(_QT_MESSAGE.match, stderr.splitlines())
               if m and "is needed to load" not in m.group(1)]
    if reasons:
        return f"Qt's {name} platform did not start: {reasons[0]}"
    return f"Qt's {name} platform did not start (exit status {returncode})"


def platform_plugin(name: str, folder: str = "") -> Path | None:
    """The file of platform plugin ``name``: in ``folder`` (where Qt said it looked), in
    QT_QPA_PLATFORM_PLUGIN_PATH, or among PyQt6's own plugins; None if in none of them."""
    from PyQt6.QtCore import QLibraryInfo

    bundled = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms"
    for where in (folder, os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH", ""), bundled):
        if where and (Path(where) / f"libq{name}.so").is_file():
            return Path(where) / f"libq{name}.so"
    return None


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries ``library`` needs (directly or through others) that the dynamic
    loader cannot find, by ``ldd``; empty when none is missing or ``ldd`` is not there."""
    try:
        done = subprocess.run(["ldd", str(library)], capture_output=True, text=True,
                              timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return []
    found = (line.split("=>")[0].strip() for line in done.stdout.splitlines()
             if line.rstrip().endswith("not found"))
    return list(dict.fromkeys(found))


def debian_package(soname: str) -> str:
    """The Debian/Ubuntu package that usually ships ``soname``, by Debian's library naming
    policy: libxcb-icccm.so.4 is in libxcb-icccm4, libX11.so.6 in libx11-6 (a hyphen when the
    name ends in a digit). A name it does not fit is returned as is."""
    match = _SONAME.match(soname)
    if not match:
        return soname
    stem, version = match.group(1).lower(), match.group(2)
    return f"{stem}-{version}" if stem[-1].isdigit() else f"{stem}{version}"


def fit_to_screen(window) -> None:
    """Shrink ``window`` (a QWidget) to its screen's free area when it is larger: the windows
    ask for 1600 x 1000, more than a 1366 x 768 laptop has, and without a window manager to
    clamp it (a kiosk, Xvfb) the cues and the panels would fall off the screen. The offscreen
    platform's screen is a fixed 800 x 600 fiction, so there the size is left as asked."""
    from pyqtgraph.Qt import QtWidgets

    screen = window.screen() or QtWidgets.QApplication.primaryScreen()
    if screen is None or QtWidgets.QApplication.platformName() == "offscreen":
        return
    free = screen.availableGeometry()
    if window.width() > free.width() or window.height() > free.height():
        window.resize(min(window.width(), free.width()), min(window.height(), free.height()))
        window.move(free.topLeft())


def run_window(app, window, duration: float | None = None,
               stop: Callable[[], bool] = lambda: False) -> None:
    """Run Qt until ``window`` is closed, Ctrl-C or SIGTERM, ``duration`` seconds, or
    ``stop()`` turns true; each of these closes the window (its closeEvent saves what it
    must). Polled every 100 ms, which also lets Python run its signal handlers while Qt
    waits."""
    import math
    import signal
    import time

    from pyqtgraph.Qt import QtCore

    end = time.monotonic() + duration if duration else math.inf
    interrupted: list[bool] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: interrupted.append(True))

    def watch() -> None:
        if interrupted or stop() or time.monotonic() >= end:
            window.close()

    guard = QtCore.QTimer(window)
    guard.timeout.connect(watch)
    guard.start(100)
    app.exec()
