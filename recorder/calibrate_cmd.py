"""``palpation calibrate``: tare, known loads up (and down), fit, report, save; and ``--check``.

Interactive by default (it asks for each load and waits for Enter); ``--points 0,2,5,8,11
--unit kg`` scripts the loads. With ``--simulate`` the simulated sensor is loaded with exactly
those masses, so the whole procedure runs without a person. A gauge or a sketch
(``--device``) is calibrated like a sensor, its millinewton readings standing for counts,
and saved under ``--sensor-id``, since it cannot say who it is.
"""

from __future__ import annotations

import argparse
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from firmware_bridge.sim.device import AppliedLoad, SimulatedSensor
from firmware_bridge.sim.server import PtyServer
from recorder.probe import ProbeError, SensorProbe
from recorder.source import make_source
from schemas.calibration import (
    DEVICE_KEYS,
    Calibration,
    CalibrationError,
    CalPoint,
    coverage_warnings,
    find_calibration,
    fit,
    load_calibration,
    load_to_newtons,
    save_calibration,
    warnings_for,
)
from schemas.session_protocol import SessionProtocol
from schemas.tare import Tare


class CalibrateError(Exception):
    """One line for the user."""


@contextmanager
def sensor_port(args: argparse.Namespace) -> Iterator[tuple[str, AppliedLoad | None]]:
    """The port to calibrate, and the simulated sensor's load when it is simulated."""
    if not args.simulate:
        yield args.port, None
        return
    load = AppliedLoad()
    sensor = SimulatedSensor(rate_hz=args.sim_rate, seed=args.seed, load=load)
    paths, ready, stop = [], threading.Event(), threading.Event()
    server = PtyServer(sensor, on_path=lambda p: (paths.append(p), ready.set()))
    thread = threading.Thread(target=server.run, args=(stop,), daemon=True)
    thread.start()
    if not ready.wait(5):
        raise CalibrateError("the simulated sensor did not start")
    try:
        yield paths[0], load
    finally:
        stop.set()
        thread.join(5)


def parse_load(text: str, default_unit: str) -> tuple[float, str]:
    """'500 g', '0.5kg', '2' (default unit) → (value, unit)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z/²]*)\s*", text)
    if not m:
        raise CalibrateError(f"cannot read the load {text!r} (e.g. 500 g, 0.5 kg, 10 N)")
    return float(m.group(1)), m.group(2) or default_unit


def place(load: AppliedLoad | None, value: float, unit: str, newtons: float) -> None:
    """Put the load on the sensor: the simulated one directly, a real one by asking."""
    if load is not None:
        load.force_n = newtons
        return
    what = "Take everything off the sensor" if newtons == 0 else f"Put {value:g} {unit} on it"
    try:
        input(f"{what}, hold still, then press Enter ")
    except EOFError:
        raise CalibrateError("no one to place the loads (standard input closed): run it "
                             "interactively, or with --simulate") from None


def sequence(args: argparse.Namespace) -> Iterator[tuple[float, str, str]]:
    """(value, unit, direction) for each reading: scripted, or asked one by one."""
    if args.points:
        values = [parse_load(v, args.unit) for v in args.points.split(",")]
        values = sorted(values, key=lambda vu: load_to_newtons(*vu))
        for _ in range(args.repeat):
            for value, unit in values:
                yield value, unit, "tare" if value == 0 else "load"
            if args.unload:
                for value, unit in reversed(values[:-1]):
                    yield value, unit, "tare" if value == 0 else "unload"
        return
    yield 0.0, args.unit, "tare"
    while True:
        try:
            text = input("next load (e.g. 500 g; prefix '-' when unloading; empty to finish): ")
        except EOFError:
            raise CalibrateError("no one to name the loads (standard input closed): use "
                                 "--points, with --simulate for the simulated sensor") from None
        if not text.strip():
            return
        direction = "unload" if text.strip().startswith("-") else "load"
        value, unit = parse_load(text.strip().lstrip("-"), args.unit)
        yield value, unit, direction


def run_calibrate(args: argparse.Namespace, gauge: dict, protocol: SessionProtocol) -> int:
    """Calibrate (or ``--check``) the sensor ``args`` name: a protocol-v1 device, or a gauge
    or sketch with its driver options ``gauge``; warn where ``protocol``'s target bands lie
    outside the calibrated range."""
    source = make_source(args.device, args.ascii_unit, **gauge)
    try:
        with sensor_port(args) as (port, load), \
                SensorProbe(port, args.baud, source, args.flow) as probe:
            device = identity(args, probe)
            if args.check is not None:
                return check(args, probe, load, device, protocol)
            points = []
            for value, unit, direction in sequence(args):
                newtons = load_to_newtons(value, unit)
                place(load, value, unit, newtons)
                raw = probe.collect(args.seconds)
                points.append(CalPoint.measure(newtons, raw, direction))
                print(f"  {value:8g} {unit:<4} {direction:<6} {points[-1].counts:12.1f} counts "
                      f"(sd {points[-1].sd_counts:.1f}, n {len(raw)})")
    except (ProbeError, ValueError) as exc:
        raise CalibrateError(str(exc)) from None
    if len({p.load_n for p in points}) < 2:
        raise CalibrateError("need at least two different loads to calibrate")
    result = fit(points, args.model)
    cal = Calibration.from_fit(result, device={k: str(device.get(k, "")) for k in DEVICE_KEYS},
                               sensor_note=args.note)
    path = save_calibration(cal, args.out_dir)
    report(cal, device, protocol)
    print(f"saved {path}")
    return 0


def identity(args: argparse.Namespace, probe: SensorProbe) -> dict:
    """Who the sensor is: what a protocol-v1 device says in its handshake; for a gauge or a
    sketch, which cannot say, the user's ``--sensor-id`` with the driver as its model (and
    the port's USB identity, which names an adapter rather than the gauge behind it)."""
    if probe.info is not None:
        return {**probe.info.as_attrs(), "usb_identity": probe.link.usb_identity}
    model = args.device + (f" {args.wagner_model}" if args.wagner_model else "")
    return {"device_id": args.sensor_id, "model": model, "firmware_version": "",
            "sensor_kind": "sketch" if args.device == "ascii" else "gauge",
            "usb_identity": probe.link.usb_identity}


def report(cal: Calibration, device: dict, protocol: SessionProtocol) -> None:
    m, r = cal.metrics, cal.range
    slope = cal.resolution_n()
    print(f"calibration {cal.id[:8]} for {cal.device.get('device_id') or 'this sensor'}: "
          f"{cal.model}, {1 / slope:,.1f} counts per N")
    print(f"  valid range        {r['min_n']:.2f} .. {r['max_n']:.2f} N")
    print(f"  max residual       {m['max_residual_pct_fs']:.3f} % of full scale")
    print(f"  nonlinearity       {m['nonlinearity_pct_fs']:.3f} % of full scale")
    print(f"  hysteresis         {_pct(m['hysteresis_pct_fs'])}")
    print(f"  repeatability      {_pct(m['repeatability_pct_fs'])}")
    for w in [*warnings_for(cal, device=device), *coverage_warnings(cal, protocol)]:
        print(f"  warning: {w}")


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.3f} % of full scale"


def check(args: argparse.Namespace, probe: SensorProbe, load: AppliedLoad | None,
          device: dict, protocol: SessionProtocol) -> int:
    """Verify a calibration against one known load: tare at no load, then the load; pass
    within ``--tolerance`` % of the load (exit status 1 on a fail)."""
    try:
        cal = (load_calibration(args.calibration) if args.calibration else
               find_calibration(device.get("device_id", ""), device.get("usb_identity", "")))
    except CalibrationError as exc:
        raise CalibrateError(str(exc)) from None
    if cal is None:
        raise CalibrateError(f"no calibration for {device.get('device_id') or args.port}; "
                             "run palpation calibrate first")
    value, unit = parse_load(args.check, args.unit)
    expected = load_to_newtons(value, unit)
    if expected <= 0:
        raise CalibrateError(f"--check {args.check}: give a load above zero")
    place(load, 0.0, unit, 0.0)
    zero = float(np.mean(probe.collect(args.seconds)))
    place(load, value, unit, expected)
    counts = float(np.mean(probe.collect(args.seconds)))
    measured = float(Tare(zero, cal).newtons(counts))
    error = measured - expected
    passed = abs(error) <= args.tolerance / 100 * expected
    print(f"check with {value:g} {unit} ({expected:.3f} N): reads {measured:.3f} N, "
          f"error {error:+.3f} N ({100 * error / expected:+.2f} %) "
          f"[calibration {cal.id[:8]}, {cal.age_days():.0f} days old]")
    print(f"  {'PASS' if passed else 'FAIL'}: the tolerance is {args.tolerance:g} % of the "
          f"load ({args.tolerance / 100 * expected:.3f} N)")
    r = cal.range
    if not r["min_n"] <= expected <= r["max_n"]:
        print(f"  warning: {expected:.2f} N is outside the calibrated range "
              f"{r['min_n']:.2f} .. {r['max_n']:.2f} N: the reading is extrapolated; "
              "calibrate up to this load")
    for w in [*warnings_for(cal, device=device), *coverage_warnings(cal, protocol)]:
        print(f"  warning: {w}")
    return 0 if passed else 1
