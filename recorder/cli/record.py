"""``palpation record``: a sensor, a gauge or the simulated sensor to an HDF5 file, with the
live window or a progress line."""

from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from pathlib import Path

from recorder.cli.common import (
    CliError,
    add_device_options,
    check_screenshot,
    gauge_options,
    print_summary,
    start_window,
    stop_on_signals,
)
from recorder.cli.devices import add_sim_options, check_sim_rate, imperfections, learner_file
from recorder.cli.plan import add_catalog_option, add_to_catalog, planned_session
from schemas.session_protocol import ProtocolError, resolve_protocol
from schemas.units import newtons_per_unit

MAX_LABEL_CHARS = 64  # --subject and --session: a code or a number, never a paragraph


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("record", help="record a sensor to an HDF5 file",
                       description="Record a sensor (or the simulated sensor) to an HDF5 file.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="serial port of the sensor (e.g. /dev/ttyACM0)")
    src.add_argument("--simulate", action="store_true", help="record the simulated sensor")
    p.add_argument("--out", required=True, type=Path, help="recording file to create (.h5)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--until-complete", action="store_true",
                   help="stop once the protocol is complete (the last trigger point's "
                        "repetitions done; --duration still caps the recording)")
    p.add_argument("--headless", action="store_true", help="no window, a progress line only")
    add_device_options(p)
    p.add_argument("--rate", type=float, help="ask the device for this sample rate (Hz)")
    for name in ("trainee", "instructor", "site", "notes"):
        p.add_argument(f"--{name}", default="", help=f"session {name}")
    p.add_argument("--subject", metavar="CODE",
                   help="the person pressed on, as a pseudonym or code (e.g. S03; the trainee "
                        "is the one pressing): kept in the file and in the hold tables")
    p.add_argument("--session", dest="session_label", metavar="LABEL",
                   help="which session of the subject this is, a number or label (e.g. 2, "
                        "retest)")
    p.add_argument("--contact-area", type=float, default=math.nan, metavar="CM2",
                   help="contact area in cm² (for pressure; default: the protocol's)")
    p.add_argument("--protocol", default="nmt-static",
                   help="session protocol: a preset (see `palpation protocols`) or a TOML file")
    p.add_argument("--plan", metavar="TRAINEE",
                   help="run the step of TRAINEE's training plan that is due today (its "
                        "protocol and feedback schedule; --protocol is then not used)")
    add_catalog_option(p)
    p.add_argument("--screenshot", type=Path, metavar="PNG",
                   help="save the window to this PNG when the run ends")
    p.add_argument("--calibration", type=Path,
                   help="calibration file (default: the newest saved for this device)")
    p.add_argument("--audio-cue", action="store_true",
                   help="eyes-free cue: a steady tone in the band, higher above it, lower and "
                        "pulsed below it (needs the window and an audio output)")
    p.add_argument("--lsl", action="store_true",
                   help="also publish the force as a Lab Streaming Layer outlet (lsl extra)")
    p.add_argument("--station", metavar="NAME",
                   help="a classroom station: with --lsl, publish as station NAME (its force "
                        "and a marker stream of its state and holds for `palpation class`)")
    p.add_argument("--pseudonym", metavar="LABEL",
                   help="with --station, publish LABEL instead of the trainee's name")
    p.add_argument("--unit", help="display unit: N, kgf, lbf, kPa, N/cm2, kgf/cm2 "
                                  "(default: the protocol's)")
    add_sim_options(p, standalone=False)
    p.set_defaults(func=cmd_record, plan_attrs={})


def cmd_record(args: argparse.Namespace) -> int:
    planned = planned_session(args) if args.plan else None
    if planned is not None:
        args.plan_attrs = planned.attrs
        print(f"plan step: {planned.label}")
    try:
        protocol = planned.protocol if planned else resolve_protocol(args.protocol)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.out.exists():
        raise CliError(f"{args.out} exists; choose another --out (recordings are never "
                       "overwritten)")
    check_screenshot(args.screenshot)
    _check_identity(args)
    if args.audio_cue and args.headless:
        raise CliError("--audio-cue plays from the live window; drop --headless")
    _check_station(args)
    if not args.headless:
        start_window("use --headless to record without a window")
    sim = _start_simulator(args, protocol) if args.simulate else None
    try:
        session = _run_session(args, sim.server.path if sim else args.port, protocol,
                               sim.settings() if sim else None)
    finally:
        if sim is not None:
            _stop_simulator(sim, args.truth)
    if session.error:
        raise CliError(f"{session.error}; what was written before is kept in {args.out} "
                       f"(if it does not open, run: palpation recover {args.out})")
    from schemas.validate import load_schema

    # the writer's summary (the one /summary and `palpation info` show), without reading back
    # a file that may hold an hour of samples
    print_summary(args.out, {**session.stop(),
                             "schema_version": load_schema()["schema_version"],
                             "finalised": True})
    from recorder.cli.files import print_session_summary

    print_session_summary(args.out)  # how it went, read back: the summary `info` shows
    add_to_catalog(args.out, args.catalog)
    return 0


def _run_session(args: argparse.Namespace, port: str, protocol, simulator: dict | None):
    """Record from ``port`` until the duration ends, Ctrl-C or the window closes
    (``simulator``: the simulated sensor's settings, kept in the file)."""
    from firmware_bridge.link import LinkError
    from recorder.lsl import LslError
    from recorder.session import RecordingSession, SessionError
    from schemas.hdf5 import RecordingFileError

    session = RecordingSession(_session_options(args, port, protocol, simulator))
    try:
        session.start()
    except (LinkError, SessionError, RecordingFileError, LslError, ValueError) as exc:
        raise CliError(str(exc)) from None
    for warning in session.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    publisher = None
    try:
        publisher = _start_station(session, args)
        if args.headless:
            _run_headless(session, args.duration, args.out)
        else:
            from recorder.window import run_live

            try:
                run_live(session, duration=args.duration, screenshot=args.screenshot,
                         audio_cue=args.audio_cue)
            except OSError as exc:  # the recording itself is whole: stop() finalises it
                raise CliError(f"{exc}; the recording is kept in {args.out}") from None
    finally:
        if publisher is not None:
            publisher.halt()  # the port's closing is no link loss
        session.stop()
        if publisher is not None:
            publisher.close()  # the holds the stop ended, then bye
    return session


def _check_identity(args: argparse.Namespace) -> None:
    """--subject and --session, when given, are short one-line labels, not empty: a code, not
    a name or a note (those belong in --notes)."""
    for option, value in (("--subject", args.subject), ("--session", args.session_label)):
        if value is None:
            continue
        if not value.strip() or len(value) > MAX_LABEL_CHARS or not value.isprintable():
            raise CliError(f"{option} {value[:MAX_LABEL_CHARS]!r}: give a code or number of at "
                           f"most {MAX_LABEL_CHARS} characters on one line, e.g. {option} "
                           f"{'S03' if option == '--subject' else '2'}")


def _check_station(args: argparse.Namespace) -> None:
    """--station publishes on LSL; --pseudonym names a station's trainee."""
    if args.station is not None and not args.lsl:
        raise CliError("--station publishes on Lab Streaming Layer; add --lsl")
    if args.pseudonym is not None and args.station is None:
        raise CliError("--pseudonym is what a station publishes; add --station NAME")
    if args.station is not None and (not args.station.strip() or ":" in args.station):
        raise CliError(f"--station {args.station!r}: a name without ':' is needed, "
                       "e.g. --station S1 (it names the LSL streams)")


def _start_station(session, args: argparse.Namespace):
    """The station's publisher (``recorder.station``) with --station, started; else None."""
    if args.station is None:
        return None
    from recorder.station import StationPublisher

    publisher = StationPublisher(session, args.station, args.pseudonym or "")
    publisher.start()
    return publisher


def _start_simulator(args: argparse.Namespace, protocol):
    """The simulated sensor, working through ``protocol``, served from a thread."""
    from firmware_bridge.sim.simulator import build_simulator

    check_sim_rate(args.sim_rate)
    try:
        sim = build_simulator(rate_hz=args.sim_rate, seed=args.seed, profile=args.profile,
                              protocol=protocol, imperfections=imperfections(args),
                              learner=learner_file(args))
    except ValueError as exc:
        raise CliError(f"simulator: {exc}") from None
    try:
        sim.server.start()
    except OSError:
        raise CliError("the simulated sensor did not start") from None
    return sim


def _stop_simulator(sim, truth: Path | None) -> None:
    """Stop serving; write the ground truth (``--truth``) of what was served."""
    from firmware_bridge.sim.simulator import write_json

    sim.server.close()
    if truth:
        write_json(truth, sim.truth())
    sim.save_learner()


def _session_options(args: argparse.Namespace, port: str, protocol, simulator: dict | None):
    """The session's options from the command line: metadata (with the simulated sensor's
    settings, as JSON, when it is recorded), calibration, units, and how the link reads: as
    bytes arrive when a window shows the samples (the latency to the screen), batched
    headless (the CPU)."""
    from firmware_bridge.link import BATCH_S
    from recorder.session import SessionOptions
    from schemas.calibration import CalibrationError, load_calibration

    metadata = {name: getattr(args, name) for name in ("trainee", "instructor", "site", "notes")}
    metadata.update(args.plan_attrs)  # record --plan: the plan's trainee, id, step and plan
    if args.station:
        metadata["station"] = args.station
    if args.subject is not None:
        metadata["subject"] = args.subject.strip()
    if args.session_label is not None:
        metadata["session_label"] = args.session_label.strip()
    if simulator is not None:
        metadata["simulator"] = json.dumps(simulator, sort_keys=True)
    metadata.update(protocol=protocol.name, protocol_toml=protocol.to_toml(),
                    contact_area_cm2=args.contact_area if args.contact_area > 0
                    else protocol.contact_area_cm2)
    try:
        calibration = load_calibration(args.calibration) if args.calibration else None
        if args.unit:
            newtons_per_unit(args.unit, metadata["contact_area_cm2"])
    except (CalibrationError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return SessionOptions(port=port, out=args.out, device=args.device, baudrate=args.baud,
                          flow=args.flow, sensor_id=args.sensor_id or "",
                          ascii_unit=args.ascii_unit, gauge=gauge_options(args),
                          rate_hz=args.rate, metadata=metadata,
                          protocol=protocol, contact_area_cm2=args.contact_area,
                          display_unit=args.unit, calibration=calibration, lsl=args.lsl,
                          station=args.station or "",
                          until_complete=args.until_complete,
                          read_batch_s=BATCH_S if args.headless else 0.0)


def _run_headless(session, duration: float | None, out: Path) -> None:
    stop = threading.Event()
    stop_on_signals(stop)
    deadline = time.monotonic() + duration if duration else math.inf
    progress = _Progress(out)
    while not stop.is_set() and not session.stopped.is_set() and time.monotonic() < deadline:
        stop.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        progress.show(session.status())
    progress.done()


class _Progress:
    """One updating line on a terminal; a line every 10 s otherwise."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def show(self, s) -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 10:
            return
        self._last = now
        state = "" if s.connected else "  RECONNECTING"
        line = (f"{self.out.name}  {s.elapsed_s:7.1f} s  {s.samples:>10,} samples  "
                f"{s.rate_hz:8.0f} Hz  gaps {s.gaps}  crc {s.crc_errors}  "
                f"reconnects {s.reconnects}{state}")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.tty:
            print(file=sys.stderr)
