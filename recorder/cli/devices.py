"""``palpation simulate`` and ``palpation devices``: the simulated sensor and the real ports,
and the simulated sensor's options that ``record --simulate`` shares."""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

from recorder.cli.common import CliError, stop_on_signals


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="serve the simulated sensor on a pseudo-terminal",
                       description="Serve a simulated sensor on a new pseudo-terminal. The "
                                   "device path is the first line of standard output.")
    add_sim_options(p, standalone=True)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("devices", help="list serial ports with their USB identity")
    p.set_defaults(func=cmd_devices)


def add_sim_options(p: argparse.ArgumentParser, standalone: bool) -> None:
    """The simulated sensor's options: all of them for ``simulate``, the sensor's own for
    ``record --simulate`` (where ``--rate`` is the device's, so the sensor's is --sim-rate)."""
    g = p.add_argument_group("simulated sensor")
    g.add_argument("--sim-rate" if not standalone else "--rate", dest="sim_rate", type=float,
                   default=None if standalone else 1000.0,
                   help="sample rate in Hz (10 to 100000; default 1000, with --offline-plan "
                        "100)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--profile", choices=["novice", "expert"], default="expert",
                   help="simulated therapist")
    g.add_argument("--truth", type=Path, help="write the ground truth (JSON) here at exit")
    g.add_argument("--learner", type=Path, metavar="STATE.json",
                   help="the therapist is a learning trainee kept in this file (created if "
                        "absent, saved at the end): her holds follow the protocol's "
                        "[training] feedback schedule")
    g.add_argument("--baseline-error", type=float, default=35.0, metavar="PCT",
                   help="a new learner's calibration error before training, %% of target "
                        "(signed; default 35: too firm)")
    _add_imperfection_options(p)
    if not standalone:
        return
    o = p.add_argument_group("offline training plan (no device, no real time)")
    o.add_argument("--offline-plan", type=Path, metavar="DIR",
                   help="write a whole training plan of --protocol (pre-test, practice, "
                        "post-test, retention tests) as recordings in DIR, one per session, "
                        "made by the learner (--learner, default DIR/learner.json)")
    o.add_argument("--trainee", help="the trainee's name (with --offline-plan)")
    o.add_argument("--practice", default="faded", metavar="MODE",
                   help="feedback in the plan's three practice blocks, as plan new --practice: "
                        "faded (100, 50, 20 %% live; default), concurrent, bandwidth, terminal "
                        "or summary")
    o.add_argument("--retention-days", default="1,7,56", metavar="D,D,...",
                   help="retention tests this many days after the post-test (default 1,7,56)")
    o.add_argument("--start-date", type=date.fromisoformat, metavar="YYYY-MM-DD",
                   help="the plan's first day (default today)")
    g.add_argument("--protocol", default="nmt-static",
                   help="the session protocol the simulated therapist follows: a preset or a "
                        "TOML file (default nmt-static, as record)")
    g.add_argument("--format", choices=["palpation", "ascii"], default="palpation",
                   help="speak protocol v1 (default) or print '<value> N' lines like a sketch")
    g.add_argument("--link", type=Path, help="keep a symlink here to the current device path")
    g.add_argument("--duration", type=float, help="stop after this many seconds")
    g.add_argument("--corrupt", type=float, default=0.0, metavar="P",
                   help="probability that a byte is damaged")
    g.add_argument("--drop", type=float, default=0.0, metavar="P",
                   help="probability that a frame is dropped")
    g.add_argument("--disconnect-after", type=float, metavar="S",
                   help="unplug after S seconds")
    g.add_argument("--reappear-after", type=float, metavar="T",
                   help="plug back in T seconds after the unplug (same --link)")
    g.add_argument("--tx-buffer", type=int, default=65536, metavar="BYTES",
                   help="unsent bytes held before frames are dropped (default 65536)")
    g.add_argument("--report", type=Path, help="write what the simulator did (JSON) at exit")


def _add_imperfection_options(p: argparse.ArgumentParser) -> None:
    """How far the simulated sensor is from ideal (every default ideal; --imperfect turns
    on a realistic mix, the options given override it). See firmware_bridge/sim/README.md."""
    g = p.add_argument_group("simulated sensor imperfections (default: ideal)")
    g.add_argument("--imperfect", action="store_true",
                   help="a realistic mix: clock 40 ppm, zero shift 0.5 N, thermal drift "
                        "0.05 N/min, creep, bursts 1-16 ms, hiccups 0.2/s")
    g.add_argument("--sensor", choices=["loadcell", "fsr"],
                   help="the sensing element (default loadcell; an FSR creeps several %% in "
                        "tens of seconds, has hysteresis and is nonlinear)")
    g.add_argument("--creep", action="store_true", default=None,
                   help="a load cell creeps under load (0.03 %% in 30 min)")
    g.add_argument("--zero-shift", type=float, metavar="N",
                   help="SD of the zero's shift at each power-up, in newtons")
    g.add_argument("--thermal-drift", type=float, metavar="N",
                   help="the zero's drift within a power-up, in newtons per minute")
    g.add_argument("--clock-ppm", type=float, metavar="P",
                   help="the device clock runs P ppm fast (crystal +-50, resonator +-5000)")
    g.add_argument("--burst-ms", metavar="LO,HI",
                   help="deliver bytes in bursts LO to HI ms apart, as USB-serial does")
    g.add_argument("--hiccups", type=float, metavar="RATE",
                   help="host scheduling hiccups per second, each 20-200 ms late")


def imperfections(args: argparse.Namespace):
    """The imperfections the options ask for (``--imperfect``'s mix under the ones given)."""
    from firmware_bridge.sim.imperfect import Imperfections

    sensor = args.sensor or "loadcell"
    base = Imperfections.realistic(sensor) if args.imperfect else Imperfections(sensor=sensor)
    given = {"zero_shift_n": args.zero_shift, "thermal_drift_n_per_min": args.thermal_drift,
             "creep": args.creep, "clock_ppm": args.clock_ppm,
             "hiccups_per_s": args.hiccups}
    if args.burst_ms is not None:
        try:
            lo, hi = (float(x) for x in args.burst_ms.split(","))
        except ValueError:
            raise CliError(f"--burst-ms {args.burst_ms}: give LO,HI in ms, e.g. 1,16") from None
        given["burst_ms"] = (lo, hi)
    try:
        return replace(base, **{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:
        raise CliError(f"simulated sensor: {exc}") from None


def learner_file(args: argparse.Namespace):
    """The simulated learner the options ask for (``--learner``), or None."""
    from firmware_bridge.sim.simulator import LearnerFile

    if args.learner is None:
        return None
    return LearnerFile(args.learner, args.baseline_error, args.seed)


def check_sim_rate(rate_hz: float) -> None:
    """The simulated sensor's rate (``--rate``, ``--sim-rate``) within what it runs at."""
    from firmware_bridge.sim.device import MAX_RATE_HZ, MIN_RATE_HZ

    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise CliError(f"--rate {rate_hz:g}: the simulator runs at {MIN_RATE_HZ:g} to "
                       f"{MAX_RATE_HZ:g} Hz")


def cmd_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge.sim.simulator import build_simulator, write_json
    from schemas.session_protocol import ProtocolError, resolve_protocol

    try:
        protocol = resolve_protocol(args.protocol)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.offline_plan is not None:
        return _simulate_plan(args, protocol)
    args.sim_rate = 1000.0 if args.sim_rate is None else args.sim_rate
    check_sim_rate(args.sim_rate)
    try:
        sim = build_simulator(
            rate_hz=args.sim_rate, seed=args.seed, profile=args.profile, protocol=protocol,
            ascii=args.format == "ascii", drop=args.drop, corrupt=args.corrupt,
            disconnect_after=args.disconnect_after, reappear_after=args.reappear_after,
            link=args.link, tx_buffer=args.tx_buffer,
            on_path=lambda p: print(p, flush=True), imperfections=imperfections(args),
            learner=learner_file(args))
    except ValueError as exc:
        raise CliError(f"simulator: {exc}") from None
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        sim.server.run(stop, duration=args.duration)
    except OSError as exc:
        raise CliError(f"simulator: {exc.strerror or exc}") from None
    finally:
        if args.truth:
            write_json(args.truth, sim.truth())
        if args.report:
            write_json(args.report, sim.report())
        sim.save_learner()
    return 0


def _simulate_plan(args: argparse.Namespace, protocol) -> int:
    """``simulate --offline-plan DIR``: a training plan's sessions as recordings in DIR."""
    from firmware_bridge.sim.offline import run_plan
    from firmware_bridge.sim.simulator import LearnerFile
    from schemas.hdf5 import RecordingFileError
    from schemas.plan import PlanError, new_plan

    if not args.trainee:
        raise CliError("--offline-plan needs --trainee NAME")
    rate = 100.0 if args.sim_rate is None else args.sim_rate
    check_sim_rate(rate)
    try:
        days = [int(d) for d in args.retention_days.split(",") if d.strip()]
    except ValueError:
        raise CliError(f"--retention-days {args.retention_days}: give whole days, e.g. "
                       "1,7,56") from None
    start = datetime.combine(args.start_date or date.today(), datetime.min.time()) \
        + timedelta(hours=9)
    out_dir = args.offline_plan
    try:
        plan = new_plan(args.trainee, args.protocol, protocol, start=start.date(),
                        created=start.astimezone(), retention_days=days, seed=args.seed,
                        practice=args.practice)
        out_dir.mkdir(parents=True, exist_ok=True)
        learner = learner_file(args) or LearnerFile(out_dir / "learner.json",
                                                    args.baseline_error, args.seed)
        written = run_plan(plan, out_dir, learner, seed=args.seed, profile=args.profile,
                           rate_hz=rate, start=start)
    except (PlanError, RecordingFileError, ValueError, OSError) as exc:
        raise CliError(f"--offline-plan {out_dir}: {exc}") from None
    for w in written:
        print(f"{w.path}  step {w.step} {w.name}, day {w.day}, {w.holds} holds")
    print(f"learner saved in {learner.path}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from firmware_bridge.ports import list_serial_ports

    ports = list_serial_ports()
    if not ports:
        print("no serial ports found")
        return 0
    print(f"{'PORT':<20} {'USB IDENTITY (VID:PID SERIAL)':<30} DESCRIPTION")
    for p in ports:
        print(f"{p.device:<20} {p.usb_identity or '-':<30} {p.description}")
    return 0
