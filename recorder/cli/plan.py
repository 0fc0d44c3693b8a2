"""``palpation plan new|status`` and ``palpation catalog rebuild|list``: training plans with
retention tests, and the catalog of plans and sessions (``schemas.plan``,
``schemas.catalog``); also what ``record --plan`` asks of them (the step that is due, and
adding each finished recording to the catalog)."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from recorder.cli.common import CliError, DefaultsHelpFormatter

STATE_WORDS = {"done": "done", "due": "DUE", "overdue": "OVERDUE", "upcoming": "upcoming"}


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plan", help="training plans: pre-test, practice, post-test, "
                                    "retention tests",
                       description="Training plans with no-feedback retention tests.")
    psub = p.add_subparsers(dest="plan_command", required=True, metavar="ACTION",
                            help="new: make a plan; status: what is due for whom")
    new = psub.add_parser("new", help="make a plan for a trainee",
                          description="Make a plan: a no-feedback pre-test, three practice "
                                      "blocks (faded: 100, 50, 20 %% live feedback; see "
                                      "--practice), a no-feedback post-test the same day, and "
                                      "no-feedback retention tests days after the post-test.")
    new.add_argument("--trainee", required=True, help="who the plan is for")
    new.add_argument("--protocol", default="nmt-static",
                     help="session protocol: a preset or a TOML file")
    new.add_argument("--practice", default="faded", metavar="MODE",
                     help="feedback in the three practice blocks: faded (100, 50, 20 %% live), "
                          "or concurrent, bandwidth, terminal or summary in all three (a "
                          "control group)")
    new.add_argument("--retention", default="1,7,56", metavar="DAYS",
                     help="retention tests, days after the post-test, comma-separated")
    for name, what in (("pre-holds", "holds in the pre-test"),
                       ("practice-holds", "holds in each of the three practice blocks"),
                       ("test-holds", "holds in the post-test and each retention test")):
        new.add_argument(f"--{name}", type=int, metavar="N",
                         help=f"{what} (default: one pass through the protocol)")
    new.add_argument("--start", type=_day, metavar="YYYY-MM-DD",
                     help="day of the pre-test, practice and post-test (default: today)")
    new.add_argument("--seed", type=int, help="faded schedule's seed (default: random)")
    new.set_defaults(func=cmd_plan_new)
    st = psub.add_parser("status", help="what is due for whom",
                         description="Each plan's steps: done, due, overdue or upcoming.")
    st.add_argument("--trainee", help="only this trainee's plans")
    st.add_argument("--today", type=_day, metavar="YYYY-MM-DD", help="(default: today)")
    st.set_defaults(func=cmd_plan_status)
    c = sub.add_parser("catalog", help="the catalog of plans and recorded sessions",
                       description="The catalog of plans and sessions (SQLite in the user "
                                   "data folder; the recordings are the source of truth).")
    csub = c.add_subparsers(dest="catalog_command", required=True, metavar="ACTION",
                            help="rebuild: recreate it from recordings; list: the sessions")
    rb = csub.add_parser("rebuild", help="recreate the catalog from a folder of recordings")
    rb.add_argument("folder", type=Path, metavar="DIR", help="folder of recordings (.h5)")
    rb.set_defaults(func=cmd_catalog_rebuild)
    ls = csub.add_parser("list", help="the recorded sessions")
    ls.add_argument("--trainee", help="only this trainee's sessions")
    ls.set_defaults(func=cmd_catalog_list)
    for parser in (new, st, rb, ls):
        add_catalog_option(parser)
        parser.formatter_class = DefaultsHelpFormatter


def add_catalog_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--catalog", type=Path, metavar="FILE",
                   help="the catalog (default: $PALPATION_CATALOG, else "
                        "$XDG_DATA_HOME/palpation/catalog.sqlite, "
                        "~/.local/share/palpation/ without XDG_DATA_HOME)")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def _catalog(args: argparse.Namespace, create: bool = True) -> Iterator[Any]:
    """The catalog ``--catalog`` names (or the default); any failure of it is a CliError."""
    from schemas.catalog import Catalog, CatalogError, catalog_path

    try:
        with Catalog(catalog_path(args.catalog), create=create) as catalog:
            yield catalog
    except CatalogError as exc:
        raise CliError(str(exc)) from None


def cmd_plan_new(args: argparse.Namespace) -> int:
    from schemas.plan import PlanError, new_plan, status
    from schemas.session_protocol import ProtocolError, resolve_protocol

    try:
        retention = [int(d) for d in args.retention.split(",") if d.strip()]
    except ValueError:
        raise CliError(f"--retention {args.retention}: give whole days, e.g. 1,7,56") from None
    try:
        base = resolve_protocol(args.protocol)
        plan = new_plan(args.trainee, args.protocol, base, start=args.start or date.today(),
                        created=datetime.now().astimezone(), retention_days=retention,
                        pre_holds=args.pre_holds, practice_holds=args.practice_holds,
                        test_holds=args.test_holds, seed=args.seed, practice=args.practice)
    except (ProtocolError, PlanError) as exc:
        raise CliError(str(exc)) from None
    with _catalog(args) as catalog:
        catalog.add_plan(plan)
        print(f"plan {plan.plan_id} for {plan.trainee} on {plan.protocol} "
              f"(catalog {catalog.path})")
    _print_table([_status_cells(plan, s) for s in status(plan, {}, date.today())])
    print(f"record each step with: palpation record --plan {shlex.quote(plan.trainee)} ...")
    return 0


def cmd_plan_status(args: argparse.Namespace) -> int:
    from schemas.plan import status

    today = args.today or date.today()
    with _catalog(args, create=False) as catalog:
        plans = catalog.plans(args.trainee)
        rows = [_status_cells(plan, s) for plan in plans
                for s in status(plan, catalog.done_steps(plan.plan_id), today)]
    if not plans:
        who = f" for {args.trainee}" if args.trainee else ""
        print(f"no plans{who} (make one: palpation plan new --trainee NAME)")
        return 0
    print(f"on {today.isoformat()}")
    _print_table(rows)
    return 0


def _status_cells(plan, s) -> dict[str, Any]:
    return {"trainee": plan.trainee, "plan": plan.plan_id, "#": s.index, "step": s.step.name,
            "holds": s.step.holds,
            "feedback": _feedback_cells(s.step.blocks),
            "state": STATE_WORDS[s.state], "due": s.due.isoformat(),
            "done": s.done_on.isoformat() if s.done_on else ""}


def _feedback_cells(blocks) -> str:
    """A step's blocks in ``plan status``, in order: "100% live > 50% live > 20% live",
    "concurrent x3" (three blocks alike)."""
    runs = [(cell, len(list(run))) for cell, run in groupby(map(_feedback_cell, blocks))]
    return " > ".join(cell if n == 1 else f"{cell} x{n}" for cell, n in runs)


def _feedback_cell(block) -> str:
    """A block's feedback in ``plan status``: "50% live" (faded), "bandwidth ±15%",
    "summary /5" (a summary after every 5 holds), else the mode."""
    if block.feedback == "faded":
        return f"{block.live_share:.0%} live"
    if block.feedback == "bandwidth":
        return f"bandwidth ±{block.bandwidth_pct:g}%"
    if block.feedback == "summary":
        return f"summary /{block.summary_every}"
    return block.feedback


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = list(rows[0])
    widths = [max(len(n), *(len(str(r[n])) for r in rows)) for n in names]
    for cells in [dict(zip(names, names, strict=True)), *rows]:
        print("  ".join(str(cells[n]).ljust(w) for n, w in zip(names, widths, strict=True))
              .rstrip())


def cmd_catalog_rebuild(args: argparse.Namespace) -> int:
    from schemas.catalog import rebuild

    if not args.folder.is_dir():
        raise CliError(f"{args.folder} is not a folder")
    with _catalog(args) as catalog:
        done = rebuild(catalog, args.folder)
        for line in done.unreadable:
            print(f"skipped {line}", file=sys.stderr)
        print(f"catalog {catalog.path}: {done.sessions} sessions and {done.plans} plans "
              f"from {args.folder}; {len(done.unreadable)} files unreadable")
    return 0


def cmd_catalog_list(args: argparse.Namespace) -> int:
    with _catalog(args, create=False) as catalog:
        sessions = catalog.sessions(trainee=args.trainee)
    if not sessions:
        print("no sessions")
        return 0
    _print_table([{"start": s.start[:19].replace("T", " "), "trainee": s.trainee,
                   "protocol": s.protocol, "plan": s.plan_id or "",
                   "step": "" if s.plan_step is None else s.plan_step, "holds": s.holds,
                   "file": s.path} for s in sessions])
    return 0


# ---- record --plan --------------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedSession:
    """The step ``record --plan`` runs: its protocol and the /session attributes it adds."""

    protocol: Any           # schemas.session_protocol.SessionProtocol
    attrs: dict[str, Any]   # trainee, plan_id, plan_step, plan
    label: str              # "Ana: pre-test (step 0 of ana-20261202-1a2b3c)"


def planned_session(args: argparse.Namespace) -> PlannedSession:
    """The step of ``args.plan``'s plans due today (the oldest plan with one); CliError when
    nothing is due, naming what comes next."""
    from schemas.plan import next_step, plan_attrs
    from schemas.session_protocol import ProtocolError

    today = date.today()
    with _catalog(args, create=False) as catalog:
        plans = catalog.plans(args.plan)
        pending = [(plan, next_step(plan, catalog.done_steps(plan.plan_id), today))
                   for plan in plans]
    if not plans:
        raise CliError(f"no plan for {args.plan} in {catalog.path} "
                       f"(make one: palpation plan new --trainee {shlex.quote(args.plan)})")
    if args.trainee and args.trainee.casefold() != args.plan.casefold():
        raise CliError(f"--trainee {args.trainee} differs from --plan {args.plan}")
    due = [(plan, s) for plan, s in pending if s is not None and s.due <= today]
    if not due:
        later = sorted((s.due, s.step.name) for _, s in pending if s is not None)
        after = f"; next: {later[0][1]} on {later[0][0]}" if later else "; every plan is done"
        raise CliError(f"nothing due today for {args.plan}{after}")
    plan, step = due[0]
    try:
        protocol = plan.step_protocol(step.index)
    except ProtocolError as exc:
        raise CliError(str(exc)) from None
    return PlannedSession(protocol, plan_attrs(plan, step.index),
                          f"{plan.trainee}: {step.step.name} (step {step.index} of "
                          f"{plan.plan_id}, due {step.due})")


def add_to_catalog(path: Path, catalog_file: Path | None) -> None:
    """Add a finished recording to the catalog. The recording is the source of truth, so a
    catalog that cannot take it is a warning (with how to catch up), never a failure."""
    from schemas.catalog import Catalog, CatalogError, catalog_path, session_row
    from schemas.hdf5 import RecordingFileError
    from schemas.plan import PlanError
    from schemas.reader import open_recording

    where = catalog_path(catalog_file)
    try:
        row, plan = session_row(open_recording(path))
        with Catalog(where) as catalog:
            catalog.add_session(row, plan)
    except (CatalogError, RecordingFileError, PlanError, OSError) as exc:
        print(f"warning: {path} not added to the catalog: {exc} (catch up later: "
              f"palpation catalog rebuild {path.parent})", file=sys.stderr)
        return
    print(f"added to the catalog {where}", file=sys.stderr)
