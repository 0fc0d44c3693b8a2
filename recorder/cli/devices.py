"""``palpation simulate`` and ``palpation devices``: the simulated sensor and the real ports,
and the simulated sensor's options that ``record --simulate`` shares."""

from __future__ import annotations

import argparse
import threading
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
                   default=1000.0, help="sample rate in Hz (10 to 100000; default 1000)")
    g.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    g.add_argument("--profile", choices=["novice", "expert"], default="expert",
                   help="simulated therapist")
    if not standalone:
        return
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
    g.add_argument("--truth", type=Path, help="write the ground truth (JSON) here")
    g.add_argument("--report", type=Path, help="write what the simulator did (JSON) at exit")


def check_sim_rate(rate_hz: float) -> None:
    """The simulated sensor's rate (``--rate``, ``--sim-rate``) within what it runs at."""
    from firmware_bridge.sim.device import MAX_RATE_HZ, MIN_RATE_HZ

    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:
        raise CliError(f"--rate {rate_hz:g}: the simulator runs at {MIN_RATE_HZ:g} to "
                       f"{MAX_RATE_HZ:g} Hz")


def cmd_simulate(args: argparse.Namespace) -> int:
    from firmware_bridge.sim.simulator import build_simulator, write_json

    check_sim_rate(args.sim_rate)
    sim = build_simulator(rate_hz=args.sim_rate, seed=args.seed, profile=args.profile,
                          ascii=args.format == "ascii", drop=args.drop, corrupt=args.corrupt,
                          disconnect_after=args.disconnect_after,
                          reappear_after=args.reappear_after, link=args.link,
                          tx_buffer=args.tx_buffer, on_path=lambda p: print(p, flush=True))
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        sim.server.run(stop, duration=args.duration)
    except OSError as exc:
        raise CliError(f"simulator: {exc.strerror or exc}") from None
    finally:
        if args.truth:
            write_json(args.truth, sim.sensor.truth())
        if args.report:
            write_json(args.report, sim.report())
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from firmware_bridge.ports import list_serial_ports

    ports = list_serial_ports()
    if not ports:
        print("no serial ports found")
    for p in ports:
        print(f"{p.device:<20} {p.usb_identity or '-':<24} {p.description}")
    return 0
