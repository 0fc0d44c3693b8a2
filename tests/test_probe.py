"""``palpation probe`` on each emulator over a real pty: what it says is there, and the
exact record command it prints."""

from __future__ import annotations

import math

import pytest

from firmware_bridge.sim.device import SimulatedSensor
from firmware_bridge.sim.gauges import (
    ImadaEmulator,
    Mark10Emulator,
    SketchEmulator,
    WagnerEmulator,
)
from firmware_bridge.sim.server import PtyServer
from tests.conftest import run_palpation


def wave(t: float) -> float:
    return 20.0 + 10.0 * math.sin(t)


@pytest.mark.parametrize("emulator, said, options", [
    (lambda: SimulatedSensor(rate_hz=100), "a palpation protocol-v1 device", ""),
    (lambda: Mark10Emulator(wave, unit="N"), "a Mark-10 gauge, Series 5", "--device mark10"),
    (lambda: Mark10Emulator(wave, unit="N", series=4, numeric_only=True),
     "a Mark-10 gauge, Series 4", "--device mark10 --gauge-unit UNIT"),
    (lambda: ImadaEmulator(wave, unit="N"), "an Imada gauge", "--device imada"),
    (lambda: WagnerEmulator(wave, model="fdix"), "a Wagner FDIX gauge", "--device wagner"),
    (lambda: WagnerEmulator(wave, model="fpx", unit="N"), "a Wagner FPX gauge",
     "--device wagner --wagner-model fpx"),
    (lambda: SketchEmulator(wave, fmt="sparkfun", rate_hz=20, boot_s=0.5),
     "an ASCII sketch printing lines like 'Reading: ", "--device ascii"),
    (lambda: SketchEmulator(wave, fmt="csv", rate_hz=20, boot_s=0.5),
     "an ASCII sketch printing CSV/TSV lines",
     "--device ascii --ascii-column 2 --ascii-time 1:ms --ascii-unit UNIT"),
])
def test_probe_identifies_each_emulator_and_prints_the_record_command(tmp_path, emulator,
                                                                      said, options):
    port = tmp_path / "port"
    with PtyServer(emulator(), link=port):
        r = run_palpation("probe", "--port", str(port))
    assert r.returncode == 0, r.stderr
    found, command = r.stdout.splitlines()
    assert said in found
    device = options or "--device palpation"
    assert command == f"palpation record --port {port} {device} --out session.h5"


def test_probe_of_a_silent_port_fails_with_what_was_tried(tmp_path):
    port = tmp_path / "port"
    with PtyServer(WagnerEmulator(wave, model="fdix"), link=port):
        r = run_palpation("probe", "--port", str(port), "--baud", "57600")
    assert r.returncode != 0
    assert "nothing recognised" in r.stderr
