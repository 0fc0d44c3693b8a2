"""The command line: help for every subcommand, protocols, and one-line errors."""

import subprocess
import sys

import pytest

from recorder.cli import build_parser
from schemas.session_protocol import load_protocol
from tests.conftest import run_palpation

SUBCOMMANDS = ["record", "simulate", "devices", "validate", "info", "recover", "protocols",
               "calibrate", "calibrations", "recalibrate", "analyze", "report", "export",
               "review", "probe", "refit"]


def test_every_subcommand_has_help():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert sorted(choices) == sorted(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit) as e:
            parser.parse_args([name, "--help"])
        assert e.value.code == 0


def test_protocols_lists_presets_and_shows_one_as_toml(tmp_path):
    r = run_palpation("protocols")
    assert r.returncode == 0
    ids = [line.split()[0] for line in r.stdout.splitlines()]
    assert ids == ["ischemic", "nmt-static", "ppt-ramp"]
    r = run_palpation("protocols", "ppt-ramp")
    assert r.returncode == 0
    p = load_protocol(r.stdout)
    assert p.unit == "kPa" and p.ramp_n_per_s(0) == pytest.approx((4.0, 6.0))


def test_malformed_protocol_file_is_a_one_line_error_with_its_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nkind = "static"\nunit = "N"\n[dose]\ntarget_low = 30\n'
                   'target_hgh = 50\n[[point]]\nmuscle = "piriformis"\n')
    r = run_palpation("record", "--simulate", "--headless", "--duration", "1", "--protocol",
                      str(bad), "--out", str(tmp_path / "x.h5"))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and f"{bad}:6:" in r.stderr and "target_hgh" in r.stderr
    assert not (tmp_path / "x.h5").exists()


def test_info_and_validate_on_a_missing_file(tmp_path):
    for cmd in ("info", "validate"):
        r = run_palpation(cmd, str(tmp_path / "none.h5"))
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "none.h5" in r.stderr


def test_the_parser_loads_no_heavy_package():
    """Commands import numpy, h5py, pyserial and Qt only when they run (recorder/cli)."""
    code = ("import sys; from recorder.cli import build_parser; build_parser(); "
            "print(' '.join(m for m in ('numpy', 'h5py', 'serial', 'PyQt6', 'pyqtgraph') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == []
