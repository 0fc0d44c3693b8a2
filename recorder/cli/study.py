"""``palpation simulate-study``: a small reliability study of simulated recordings, written
without real time (``firmware_bridge.sim.study``): subjects x raters x sessions, one file per
visit, and the ground truth, ready for ``analyze`` and ``reliability``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recorder.cli.common import CliError

MIN_STUDY_RATE_HZ = 10.0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate-study", help="write a simulated reliability study (subjects x raters x "
                               "sessions) as recordings",
        description="Write a simulated reliability study: each subject with their own level "
                    "at every trigger point (the force that gives 6/10 discomfort, or the "
                    "pressure-pain threshold under ppt-ramp), measured by each rater "
                    "(trainee, with their own bias and noise) in each session, as "
                    "DIR/<rater>/<subject>-s<session>.h5, and the ground truth as "
                    "DIR/study.truth.json. Rendered offline: seconds, not hours.")
    p.add_argument("--out-dir", type=Path, required=True, metavar="DIR",
                   help="the study's folder (created; must be empty unless --force)")
    p.add_argument("--subjects", type=count, default=8, metavar="N", help="subjects")
    p.add_argument("--raters", type=count, default=3, metavar="N", help="raters (trainees)")
    p.add_argument("--sessions", type=count, default=2, metavar="N",
                   help="sessions (each subject seen by every rater in each)")
    p.add_argument("--protocol", default="nmt-static",
                   help="session protocol: a preset (nmt-static, nmt-anchored, ppt-ramp, ...) "
                        "or a TOML file")
    p.add_argument("--points", type=count, metavar="N",
                   help="only the protocol's first N trigger points (default: all)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the whole study")
    p.add_argument("--rate", type=float, default=100.0, metavar="HZ", help="sample rate")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that is not empty, replacing the files of a "
                        "study already there and any file of the same name")
    p.set_defaults(func=cmd_simulate_study)


def count(text: str) -> int:
    """A whole number of at least 1 (argparse reports the option on ValueError)."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def cmd_simulate_study(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from firmware_bridge.sim.study import draw_study, write_study
    from recorder.cli.devices import check_sim_rate
    from schemas.hdf5 import RecordingFileError
    from schemas.session_protocol import ProtocolError, resolve_protocol

    check_sim_rate(args.rate)
    if args.rate < MIN_STUDY_RATE_HZ:
        raise CliError(f"--rate {args.rate:g}: a study needs at least {MIN_STUDY_RATE_HZ:g} Hz "
                       "(the analysis smooths holds over 100 ms)")
    if args.seed < 0:
        raise CliError(f"--seed {args.seed}: give a whole number >= 0")
    try:
        protocol = resolve_protocol(args.protocol)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    if args.points is not None:
        if args.points > len(protocol.points):
            raise CliError(f"--points {args.points}: protocol {args.protocol} has "
                           f"{len(protocol.points)} trigger points")
        protocol = replace(protocol, points=protocol.points[:args.points])
    out = args.out_dir
    study = draw_study(protocol, subjects=args.subjects, raters=args.raters,
                       sessions=args.sessions, seed=args.seed)
    try:
        _make_room(out, study, force=args.force)
        written = write_study(study, out, rate_hz=args.rate)
    except (RecordingFileError, OSError, ValueError) as exc:
        raise CliError(f"--out-dir {out}: {exc}") from None
    for path in written[:-1]:
        print(path)
    sizes = " x ".join(_plural(n, word) for n, word in (
        (args.subjects, "subject"), (args.raters, "rater"), (args.sessions, "session")))
    print(f"{_plural(len(written) - 1, 'recording')} ({sizes}, "
          f"{_plural(len(protocol.points), 'point')} of {protocol.name}) in {out}; ground "
          f"truth in {written[-1]}")
    print(f"next: palpation analyze {out} --out holds.csv, then palpation reliability "
          "holds.csv")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _make_room(out: Path, study, *, force: bool) -> None:
    """Create ``out``, or check it may be written: empty, or ``force`` (then the files a
    study there listed in its truth, and the files this one will write, are removed)."""
    from firmware_bridge.sim.study import TRUTH_NAME

    if out.exists() and not out.is_dir():
        raise CliError(f"--out-dir {out}: not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CliError(f"--out-dir {out}: not empty; give --force to write the study "
                           "there (replacing a study already in it)")
        old = []
        truth = out / TRUTH_NAME
        if truth.is_file():
            try:
                old = [Path(f["path"]) for f in json.loads(truth.read_text())["files"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CliError(f"--out-dir {out}: cannot read {truth}: {exc}") from None
        inside = [p for p in old if not p.is_absolute() and ".." not in p.parts]
        for name in [*inside, *study.file_names(), TRUTH_NAME]:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
