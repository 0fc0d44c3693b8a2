"""The command line: help for every subcommand, protocols, and one-line errors."""

import subprocess
import sys

import pytest

from recorder.cli import build_parser
from schemas.session_protocol import load_protocol
from tests.conftest import run_palpation

SUBCOMMANDS = ["record", "simulate", "devices", "validate", "info", "recover", "protocols",
               "calibrate", "calibrations", "recalibrate", "analyze", "report", "export",
               "review", "probe", "refit", "plan", "catalog", "class", "reliability",
               "simulate-study"]


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
    assert ids == ["ischemic", "nmt-anchored", "nmt-static", "nmt-training", "ppt-ramp"]
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


def subparsers():
    return build_parser()._subparsers._group_actions[0].choices


def test_every_argument_has_help_and_every_default_is_shown():
    import argparse

    for name, parser in subparsers().items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue
            where = f"{name} {action.option_strings or action.dest}"
            assert (action.help or "").strip(), f"{where}: no help"
            if action.option_strings and action.default not in (None, False):
                text = formatter._expand_help(action)
                assert "default" in text, f"{where}: default {action.default!r} not shown"
    calibrate_help = " ".join(subparsers()["calibrate"].format_help().split())
    assert "unit of the loads: g, kg, lb, oz, N, kN, mN, kgf, gf, lbf, ozf (default: kg)" in \
        calibrate_help
    assert "--tolerance PCT --check passes when the reading is within this many % of the " \
        "load (default: 2.0)" in calibrate_help


def test_calibrate_unit_error_lists_the_units_its_help_lists():
    from schemas.units import LOAD_UNITS

    r = run_palpation("calibrate", "--simulate", "--points", "0,1", "--unit", "stone")
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert f"(known: {', '.join(LOAD_UNITS)})" in r.stderr
    assert ", ".join(LOAD_UNITS) in " ".join(run_palpation("calibrate", "--help").stdout.split())


def test_a_screenshot_into_a_missing_folder_is_refused_before_anything_starts(tmp_path):
    shot = tmp_path / "no-such-folder" / "shot.png"
    out = tmp_path / "x.h5"
    r = run_palpation("record", "--simulate", "--headless", "--duration", "5", "--out",
                      str(out), "--screenshot", str(shot))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no-such-folder does not exist" in r.stderr and "--screenshot" in r.stderr
    assert not out.exists()
    r = run_palpation("review", str(tmp_path / "any.h5"), "--screenshot", str(shot))
    assert r.returncode == 1 and r.stderr.count("\n") == 1
    assert "no-such-folder does not exist" in r.stderr
    r = run_palpation("review", str(tmp_path / "any.h5"), "--screenshot",
                      str(tmp_path / "shot.jpeg"))
    assert r.returncode == 1 and "ending in .png" in r.stderr
