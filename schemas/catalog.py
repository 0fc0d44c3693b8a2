"""The catalog: every training plan and every recorded session, in one SQLite file in the
user's data folder, so that ``plan status`` and ``record --plan`` know who did what when.

Why SQLite in WAL mode with short ``BEGIN IMMEDIATE`` transactions: two recorders on one
machine may finish sessions at the same moment; each write takes the write lock up front (no
reader-to-writer upgrade that could fail with "database is locked"), waits up to
``BUSY_TIMEOUT_MS`` for the other's, and holds it only for a few rows.

The recordings stay the source of truth: each carries its trainee, plan id, plan step and the
plan itself (``/session`` attributes), so ``rebuild`` recreates the catalog from a folder of
recordings, row for row what the live inserts wrote (``session_row`` is the one place a row is
made from a recording).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass, fields
from datetime import date, datetime
from pathlib import Path

from schemas.hdf5 import RecordingFileError
from schemas.plan import Plan, PlanError

APPLICATION_ID = 0x50414C50  # "PALP": marks the file as a palpation catalog
VERSION = 1
BUSY_TIMEOUT_MS = 15_000
ENV_VAR = "PALPATION_CATALOG"
RECORDING_SUFFIXES = (".h5", ".hdf5")

_TABLES = """
CREATE TABLE plans (
    id TEXT PRIMARY KEY, trainee TEXT NOT NULL, protocol TEXT NOT NULL, created TEXT NOT NULL,
    start_date TEXT NOT NULL, seed INTEGER NOT NULL, protocol_toml TEXT NOT NULL,
    steps TEXT NOT NULL);
CREATE TABLE sessions (
    path TEXT PRIMARY KEY, trainee TEXT NOT NULL, start TEXT NOT NULL, protocol TEXT NOT NULL,
    plan_id TEXT, plan_step INTEGER, holds INTEGER NOT NULL, size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL);
CREATE INDEX sessions_trainee ON sessions (trainee);
CREATE INDEX sessions_plan ON sessions (plan_id, plan_step)
"""


class CatalogError(Exception):
    """A catalog that cannot be used, in one line naming its file."""


@dataclass(frozen=True)
class SessionRow:
    """One recorded session as the catalog lists it (``path``: absolute)."""

    path: str
    trainee: str
    start: str                # the recording's session_start, ISO-8601 with offset
    protocol: str
    plan_id: str | None
    plan_step: int | None
    holds: int                # complete holds
    size_bytes: int
    mtime_ns: int

    @property
    def day(self) -> date:
        """The local calendar day the session started on (where it was recorded)."""
        return datetime.fromisoformat(self.start).date()


def catalog_path(explicit: str | Path | None = None) -> Path:
    """Where the catalog is: ``explicit`` (``--catalog``), else $PALPATION_CATALOG, else
    $XDG_DATA_HOME/palpation/catalog.sqlite (default ~/.local/share/palpation/)."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "palpation" / "catalog.sqlite"


def session_row(rec) -> tuple[SessionRow, Plan | None]:
    """The catalog row of a recording (``schemas.reader.Recording``) and the plan it was
    recorded under (None without one). PlanError when its plan attribute is unreadable."""
    s = rec.session
    stat = Path(rec.path).stat()
    plan_text = s.get("plan") or ""
    step = s.get("plan_step")
    row = SessionRow(path=str(Path(rec.path).resolve()), trainee=str(s.get("trainee", "")),
                     start=rec.session_start.isoformat(timespec="milliseconds"),
                     protocol=str(s.get("protocol", "")), plan_id=s.get("plan_id") or None,
                     plan_step=None if step is None else int(step),
                     holds=int(rec.totals().holds), size_bytes=stat.st_size,
                     mtime_ns=stat.st_mtime_ns)
    return row, (Plan.from_json(plan_text) if plan_text else None)


class Catalog:
    """An open catalog. ``create``: make the file (and its folder) if missing."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise CatalogError(f"no catalog at {self.path} yet (plan new and record make "
                               "it; catalog rebuild DIR recreates it)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                                       isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise CatalogError(f"cannot open the catalog {self.path}: {exc}") from None
        try:
            with self._errors():
                self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # WAL with NORMAL: never corrupt; a power cut may lose the last rows, which
                # ``rebuild`` restores from the recordings
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._check_and_create()
        except CatalogError:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Every SQLite failure as one CatalogError line naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not a database" in text or "malformed" in text:
                text = (f"{text}: damaged or not a catalog (move it aside, then run "
                        "palpation catalog rebuild DIR)")
            raise CatalogError(f"catalog {self.path}: {text}") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction, the write lock taken at its start."""
        with self._errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _check_and_create(self) -> None:
        """Refuse a foreign or newer SQLite file (before changing anything in it); switch a
        catalog to write-ahead logging; make the tables of a new one."""
        self._check_identity(self._db)
        if self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise CatalogError(f"catalog {self.path}: cannot use write-ahead logging here")
        with self._write() as db:
            if not self._check_identity(db):  # another process may have made it meanwhile
                for statement in _TABLES.split(";"):  # (executescript would COMMIT first)
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {VERSION}")

    def _check_identity(self, db: sqlite3.Connection) -> bool:
        """True for a palpation catalog, False for an empty file; CatalogError otherwise."""
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id != APPLICATION_ID and (app_id or tables):
            raise CatalogError(f"{self.path} is an SQLite file but not a palpation catalog; "
                               "give another --catalog")
        if version > VERSION:
            raise CatalogError(f"catalog {self.path} is version {version}, newer than this "
                               f"program's {VERSION}; update palpation-recorder")
        return app_id == APPLICATION_ID

    # ---- writing ------------------------------------------------------------------------

    def add_plan(self, plan: Plan) -> None:
        with self._write() as db:
            _insert_plans(db, [plan])

    def add_session(self, row: SessionRow, plan: Plan | None = None) -> None:
        """Add (or update: same path) a session, with its plan if the catalog lacks it."""
        with self._write() as db:
            if plan is not None:
                _insert_plans(db, [plan], replace=False)
            _insert_sessions(db, [row])

    def replace_sessions(self, rows: Iterable[SessionRow], plans: Iterable[Plan]) -> None:
        """Make ``rows`` the catalog's sessions and add ``plans`` (plans already in the
        catalog and not among them are kept: a plan not yet recorded lives only here)."""
        with self._write() as db:
            db.execute("DELETE FROM sessions")
            _insert_plans(db, list(plans))
            _insert_sessions(db, list(rows))

    # ---- reading ------------------------------------------------------------------------

    def plans(self, trainee: str | None = None) -> list[Plan]:
        """Plans, oldest first (one trainee's, if named, in any letter case)."""
        sql = "SELECT id, trainee, protocol, created, start_date, seed, protocol_toml, steps " \
              "FROM plans"
        args: tuple = ()
        if trainee is not None:
            sql, args = sql + " WHERE trainee = ? COLLATE NOCASE", (trainee,)
        with self._errors():
            rows = self._db.execute(sql + " ORDER BY created, id", args).fetchall()
        try:
            return [Plan.from_dict({"plan_id": r[0], "trainee": r[1], "protocol": r[2],
                                    "created": r[3], "start": r[4], "seed": r[5],
                                    "protocol_toml": r[6], "steps": json.loads(r[7])})
                    for r in rows]
        except (PlanError, ValueError) as exc:
            raise CatalogError(f"catalog {self.path}: a plan is unreadable: {exc}") from None

    def sessions(self, trainee: str | None = None, plan_id: str | None = None
                 ) -> list[SessionRow]:
        """Sessions, by start time (filtered by trainee and/or plan, in any letter case)."""
        where, args = [], []
        for column, value in (("trainee", trainee), ("plan_id", plan_id)):
            if value is not None:
                where.append(f"{column} = ? COLLATE NOCASE")
                args.append(value)
        sql = f"SELECT {', '.join(f.name for f in fields(SessionRow))} FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._errors():
            rows = self._db.execute(sql + " ORDER BY start, path", args).fetchall()
        return [SessionRow(*r) for r in rows]

    def done_steps(self, plan_id: str) -> dict[int, date]:
        """Step index -> the day it was first recorded, for one plan."""
        done: dict[int, date] = {}
        for row in self.sessions(plan_id=plan_id):
            if row.plan_step is not None:
                done.setdefault(row.plan_step, row.day)
        return done


def _insert_plans(db: sqlite3.Connection, plans: list[Plan], replace: bool = True) -> None:
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    db.executemany(
        f"{verb} INTO plans VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(p.plan_id, p.trainee, p.protocol, p.created, p.start.isoformat(), p.seed,
          p.protocol_toml, json.dumps(p.to_dict()["steps"], sort_keys=True)) for p in plans])


def _insert_sessions(db: sqlite3.Connection, rows: list[SessionRow]) -> None:
    db.executemany("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   [astuple(r) for r in rows])


@dataclass(frozen=True)
class Rebuilt:
    """What ``rebuild`` found: sessions and plans recreated, and one line per file it could
    not read."""

    sessions: int
    plans: int
    unreadable: tuple[str, ...]


def rebuild(catalog: Catalog, folder: str | Path) -> Rebuilt:
    """Recreate the catalog's sessions (and the plans they were recorded under) from the
    recordings under ``folder``. The files are read first, then written in one short
    transaction; a file that cannot be read is named in ``unreadable`` and left out."""
    from schemas.reader import open_recording

    rows: list[SessionRow] = []
    plans: dict[str, Plan] = {}
    unreadable: list[str] = []
    for path in sorted(p for p in Path(folder).rglob("*")
                       if p.suffix.lower() in RECORDING_SUFFIXES and p.is_file()):
        try:
            row, plan = session_row(open_recording(path))
        except (RecordingFileError, PlanError, OSError) as exc:
            unreadable.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
            continue
        rows.append(row)
        if plan is not None:
            plans[plan.plan_id] = plan
    catalog.replace_sessions(rows, plans.values())
    return Rebuilt(len(rows), len(plans), tuple(unreadable))
