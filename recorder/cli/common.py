"""What every command group shares: the one-line error, the display check, the summary."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

EXIT_FAILURE = 1


class CliError(Exception):
    """A failure to report in one line and exit non-zero."""


def check_display() -> None:
    """The window needs Qt and a screen (or QT_QPA_PLATFORM=offscreen); say so plainly."""
    try:
        import pyqtgraph  # noqa: F401
    except ImportError:
        raise CliError("the window needs the gui extra: pip install 'palpation-recorder[gui]' "
                       "(or use --headless)") from None
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        raise CliError("no display for the window: use --headless, or set "
                       "QT_QPA_PLATFORM=offscreen to run without a screen")


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM end the run cleanly instead of interrupting it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def print_summary(path: Path, summary: dict) -> None:
    print(f"recorded {path}")
    for key, value in summary.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        print(f"  {key:<18} {value}")
