"""The layering a cluster worker relies on, checked in a fresh interpreter.

import-linter (run by `make test`) checks the project's own imports statically; this checks what
a worker actually loads at run time, third-party packages included.
"""

import subprocess
import sys

import pytest

LIVE_ONLY = ("PyQt6", "pyqtgraph", "serial", "pylsl")


def loaded_by(module: str) -> set[str]:
    code = (f"import sys, {module}\n"
            f"print(' '.join(m for m in {LIVE_ONLY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["analysis.batch", "analysis.report", "analysis.export",
                                    "analysis.nwb_export", "analysis.reliability_design",
                                    "schemas.reader", "schemas.recover", "schemas.recalibrate"])
def test_analysis_and_formats_load_no_live_packages(module):
    assert loaded_by(module) == set()


def test_the_check_sees_a_live_package_when_one_is_loaded():
    assert "serial" in loaded_by("firmware_bridge.link")
