"""Reliability designs from a hold table: test–retest, inter-rater and intra-rater.

``palpation analyze`` writes one row per hold (``analysis/TABLE.md``); this module reads that
table (CSV or Parquet), arranges one measure (``plateau_mean_n`` by default) into the
``scores[targets, columns]`` matrices the statistics of :mod:`analysis.reliability` take, and
computes them. The statistics live there only; this module decides what is a target, what is
a column, which ICC form answers the design's question, and what was left out.

* A **target** is what is measured repeatedly: (subject, trigger point), or the trigger point
  alone when the table names no subjects.
* **test–retest**: one rater, the sessions (``session``) as columns; one result per rater, and
  one pooled over raters (targets = rater × target) when two or more raters share sessions.
* **inter-rater**: the raters (``trainee``) as columns, one result per session.
* **intra-rater**: the repetitions within a session as columns, targets = target × session,
  one result per rater.

A cell is the mean of that target's holds in that column. Incomplete holds (``complete`` False:
cut off by the end, a disconnect or a gap) are left out unless asked for, and counted. A design
must be balanced: a column that fewer than half the targets have is dropped, then every target
missing a remaining column; both are counted and said, never silent.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from analysis.definitions import METRICS
from analysis.reliability import (
    ICC_KINDS,
    MIN_TARGETS,
    BlandAltman,
    ICCResult,
    bland_altman,
    icc,
    lins_ccc,
    mdc95,
    sem,
)

__all__ = ["DESIGNS", "DesignResult", "PairAgreement", "Selection", "TableError",
           "analyse_reliability", "default_measure", "read_hold_table", "select_holds"]

DESIGNS = ("test-retest", "inter-rater", "intra-rater")

MODEL_WORDS = {
    "ICC(1,1)": "one-way random effects, absolute agreement, single measures",
    "ICC(2,1)": "two-way random effects, absolute agreement, single measures",
    "ICC(3,1)": "two-way mixed effects, consistency, single measures",
    "ICC(1,k)": "one-way random effects, absolute agreement, mean of k measures",
    "ICC(2,k)": "two-way random effects, absolute agreement, mean of k measures",
    "ICC(3,k)": "two-way mixed effects, consistency, mean of k measures",
}

# Per design: the ICC form reported first, the one shown beside it, and why.
FORMS = {
    "test-retest": ("ICC(2,1)", "ICC(3,1)",
                    "sessions are a sample of the occasions a measurement could be taken on, "
                    "and a systematic change between sessions is measurement error, so the "
                    "agreement form is reported (McGraw & Wong 1996; Koo & Li 2016); the "
                    "consistency form ICC(3,1) ignores that change, and the gap between the "
                    "two is its size"),
    "inter-rater": ("ICC(2,1)", "ICC(3,1)",
                    "the trainees stand for the raters the result should hold for, and one "
                    "rater pressing harder than another is disagreement, so the agreement "
                    "form is reported (Shrout & Fleiss 1979, case 2); ICC(3,1) is the "
                    "consistency of these raters only, blind to their offsets"),
    "intra-rater": ("ICC(1,1)", "ICC(3,1)",
                    "repetitions within a session are interchangeable replicates: repetition "
                    "1 at one point is not the same 'rater' as repetition 1 at another, so "
                    "all spread within a target is error (one-way random; Shrout & Fleiss "
                    "1979, case 1); ICC(3,1) above it points to a systematic trial effect, "
                    "e.g. a first trial that differs"),
}

_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


class TableError(ValueError):
    """The hold table cannot be read or used as asked (one line: what and where)."""


# ---------------------------------------------------------------------------- reading
def read_hold_table(path: str | Path) -> list[dict]:
    """The rows of a hold table written by ``palpation analyze`` (.csv or .parquet), values as
    written (CSV: strings). TableError when the file cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        elif suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise TableError("reading parquet needs pyarrow: pip install "
                                 "'palpation-recorder[parquet]'") from None
            rows = pq.read_table(path).to_pylist()
        else:
            raise TableError(f"{path}: a hold table is a .csv or .parquet file")
    except TableError:
        raise
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc).splitlines()[0]
        raise TableError(f"{path}: cannot be read as a hold table ({reason})") from None
    if not rows:
        raise TableError(f"{path}: the table has no rows")
    return rows


def _flag(value, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise TableError(f"{where}: 'complete' is {value!r}, not True or False")


def _number(value, where: str, column: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TableError(f"{where}: column {column!r} holds {value!r}, not a number") from None


def _text(value) -> str:
    return "" if value is None else str(value).strip()


# ---------------------------------------------------------------------------- selection
@dataclass
class Selection:
    """The holds a measure is taken from, and what was left out of them (and why)."""

    measure: str
    unit: str
    holds: int  # rows in the table
    incomplete_left_out: int  # complete False, left out (0 with include_incomplete)
    incomplete_kept: int  # complete False, kept on request
    no_value: int  # the measure is empty (NaN) for the hold
    has_subjects: bool
    records: list[dict] = field(default_factory=list)  # rater, subject, session, point, rep, value


def default_measure(rows: list[dict]) -> str:
    """``plateau_mean_n``, or ``threshold_n`` when more holds have a threshold than a plateau
    (a table of pressure-pain-threshold ramps, whose holds have no plateau)."""
    def filled(column: str) -> int:
        return sum(_text(r.get(column)) not in ("", "nan", "None") for r in rows)
    return "threshold_n" if filled("threshold_n") > filled("plateau_mean_n") else \
        "plateau_mean_n"


def _unit(measure: str) -> str:
    if measure in METRICS:
        return METRICS[measure].unit
    for suffix, unit in (("_kpa", "kPa"), ("_n_s", "N·s"), ("_n", "N"), ("_s", "s"),
                         ("_pct", "%")):
        if measure.endswith(suffix):
            return unit
    return ""


def _measures(rows: list[dict]) -> list[str]:
    """The columns holding a number in some row (the measures one could assess)."""
    def numeric(value) -> bool:
        try:
            return math.isfinite(float(value)) and not isinstance(value, bool)
        except (TypeError, ValueError):
            return False
    skip = {"session", "repetition", "start_s", "end_s", "plateau_start_s", "plateau_end_s"}
    found = [c for c in rows[0] if c not in skip and any(numeric(r.get(c)) for r in rows[:50])]
    first = [c for c in ("plateau_mean_n", "threshold_n", "peak_n") if c in found]
    return first + [c for c in found if c not in first]


def select_holds(rows: list[dict], measure: str, *, include_incomplete: bool = False,
                 source: str = "table") -> Selection:
    """The holds with a value of ``measure``, incomplete ones left out unless
    ``include_incomplete``; TableError naming the column when one the designs need is
    missing or ``measure`` is not a number."""
    columns = list(rows[0])
    for needed in ("trainee", "trigger_point", "repetition", "complete", measure):
        if needed not in columns:
            hint = f"; measures include {', '.join(_measures(rows)[:8])}, ..." \
                if needed == measure else ""
            raise TableError(f"{source}: no column {needed!r}{hint}")
    sel = Selection(measure, _unit(measure), len(rows), 0, 0, 0,
                    has_subjects=any(_text(r.get("subject")) for r in rows))
    for i, row in enumerate(rows, start=1):
        where = f"{source} hold {i}"
        complete = _flag(row["complete"], where)
        value = _number(row[measure], where, measure)
        if not complete and not include_incomplete:
            sel.incomplete_left_out += 1
            continue
        if not math.isfinite(value):
            sel.no_value += 1
            continue
        sel.incomplete_kept += not complete
        rep = _number(row["repetition"], where, "repetition")
        sel.records.append({"rater": _text(row["trainee"]), "subject": _text(row.get("subject")),
                            "session": _text(row.get("session")),
                            "point": _text(row["trigger_point"]),
                            "rep": str(int(rep)) if math.isfinite(rep) else "", "value": value})
    return sel


# ---------------------------------------------------------------------------- results
@dataclass
class PairAgreement:
    """Two columns of a design compared: Bland–Altman of ``a - b`` and Lin's CCC, with the
    per-target means and differences the Bland–Altman plot draws."""

    a: str
    b: str
    means: np.ndarray
    diffs: np.ndarray
    ba: BlandAltman | None = None
    ccc: float | None = None
    refused: list[str] = field(default_factory=list)


@dataclass
class DesignResult:
    """One design in one scope (a rater, a session, or pooled): its matrix, what was dropped to
    balance it, and its statistics (``refused``: each statistic the design is too small or too
    degenerate for, with the reason)."""

    design: str
    scope: str
    targets: list[str]
    columns: list[str]
    scores: np.ndarray
    dropped_targets: int = 0
    dropped_columns: list[str] = field(default_factory=list)
    iccs: dict[str, ICCResult] = field(default_factory=dict)
    sem_value: float | None = None
    mdc_value: float | None = None
    pairs: list[PairAgreement] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def primary(self) -> str:
        return FORMS[self.design][0]

    @property
    def secondary(self) -> str:
        return FORMS[self.design][1]

    @property
    def reason(self) -> str:
        return FORMS[self.design][2]

    @property
    def statement(self) -> str:
        """The design and model in words, e.g. "ICC(2,1), two-way random effects, absolute
        agreement, single measures"."""
        return f"{self.primary}, {MODEL_WORDS[self.primary]}"

    @property
    def computed(self) -> bool:
        return bool(self.iccs) or any(p.ba or p.ccc is not None for p in self.pairs)


def _order(labels: Iterable[str]) -> list[str]:
    """Labels in natural order: numbers by value ("2" before "10"), then text."""
    def key(label: str) -> tuple:
        try:
            return (0, float(label), label)
        except ValueError:
            return (1, 0.0, label)
    return sorted(set(labels), key=key)


def _balanced(cells: dict[tuple, dict[str, list[float]]], design: str,
              scope: str) -> DesignResult:
    """The design's matrix: a column fewer than half the targets have is dropped, then every
    target missing one of the columns left; a cell is the mean of its holds."""
    columns = _order(c for row in cells.values() for c in row)
    half = len(cells) / 2
    kept = [c for c in columns if sum(c in row for row in cells.values()) >= half]
    targets = sorted(t for t, row in cells.items() if all(c in row for c in kept))
    scores = np.array([[float(np.mean(cells[t][c])) for c in kept] for t in targets],
                      dtype=float).reshape(len(targets), len(kept))
    return DesignResult(design, scope, [" / ".join(t) for t in targets], kept, scores,
                        dropped_targets=len(cells) - len(targets),
                        dropped_columns=[c for c in columns if c not in kept])


def _group(records: list[dict], target, column) -> dict[tuple, dict[str, list[float]]]:
    cells: dict[tuple, dict[str, list[float]]] = {}
    for r in records:
        cells.setdefault(target(r), {}).setdefault(column(r), []).append(r["value"])
    return cells


def _designs(sel: Selection, design: str) -> tuple[list[DesignResult], str]:
    """The matrices of ``design`` (not yet computed), or none and the reason why none."""
    recs = sel.records
    target = (lambda r: (r["subject"], r["point"])) if sel.has_subjects \
        else (lambda r: (r["point"],))
    raters = _order(r["rater"] for r in recs)
    sessions = _order(r["session"] for r in recs)
    out: list[DesignResult] = []
    if design == "test-retest":
        for rater in raters:
            mine = [r for r in recs if r["rater"] == rater]
            if len({r["session"] for r in mine}) >= 2:
                out.append(_balanced(_group(mine, target, lambda r: r["session"]), design,
                                     f"rater {rater or '(unnamed)'}"))
        if len(out) >= 2:
            out.append(_balanced(_group(recs, lambda r: (r["rater"], *target(r)),
                                        lambda r: r["session"]), design, "pooled over raters"))
        why = "no rater has holds in two or more sessions (column 'session')"
    elif design == "inter-rater":
        for session in sessions:
            mine = [r for r in recs if r["session"] == session]
            if len({r["rater"] for r in mine}) >= 2:
                scope = f"session {session}" if session else "holds without a session label"
                out.append(_balanced(_group(mine, target, lambda r: r["rater"]), design, scope))
        why = "no session has holds from two or more raters (column 'trainee')"
    else:
        for rater in raters:
            mine = [r for r in recs if r["rater"] == rater]
            if len({r["rep"] for r in mine}) >= 2:
                out.append(_balanced(_group(mine, lambda r: (*target(r), r["session"]),
                                            lambda r: r["rep"]), design,
                                     f"rater {rater or '(unnamed)'}"))
        why = "no trigger point has two or more repetitions (column 'repetition')"
    return out, why


def _compute(d: DesignResult, confidence: float) -> None:
    """The statistics of one design, each refused with its reason when it cannot be had."""
    n, k = d.scores.shape
    if n < MIN_TARGETS:
        try:
            icc(d.scores, d.primary, confidence)
        except ValueError as exc:  # the library's own refusal, said once for every form
            d.refused.append(str(exc).replace(d.primary, "an ICC"))
    else:
        for kind in ICC_KINDS:
            try:
                d.iccs[kind] = icc(d.scores, kind, confidence)
            except ValueError as exc:
                d.refused.append(str(exc))
    if d.primary in d.iccs:
        d.sem_value = sem(d.scores, d.iccs[d.primary].value)
        d.mdc_value = mdc95(d.sem_value)
    d.pairs = [_pair(d.columns[i], d.columns[j], d.scores[:, i], d.scores[:, j], confidence)
               for i, j in combinations(range(k), 2)]


def _pair(label_a: str, label_b: str, a: np.ndarray, b: np.ndarray,
          confidence: float) -> PairAgreement:
    pair = PairAgreement(label_a, label_b, (a + b) / 2, a - b)
    try:
        pair.ba = bland_altman(a, b, confidence)
    except ValueError as exc:
        pair.refused.append(str(exc))
    try:
        pair.ccc = lins_ccc(a, b)
    except ValueError as exc:
        pair.refused.append(str(exc))
    return pair


def analyse_reliability(sel: Selection, designs: Iterable[str] = DESIGNS,
                        confidence: float = 0.95) -> tuple[list[DesignResult], list[str]]:
    """Every requested design the holds allow, computed, and one line per design that is not
    possible and why. TableError when none is possible."""
    results: list[DesignResult] = []
    impossible: list[str] = []
    for design in designs:
        found, why = _designs(sel, design)
        if not found:
            impossible.append(f"no {design} design: {why}")
        for d in found:
            if len(d.columns) < 2 or len(d.targets) < 2:
                impossible.append(f"no {design} design for {d.scope}: {len(d.targets)} "
                                  f"targets have {len(d.columns)} columns in common "
                                  f"({d.dropped_targets} targets dropped)")
                continue
            _compute(d, confidence)
            results.append(d)
    if not results:
        raise TableError("; ".join(impossible) if impossible else "no design requested")
    return results, impossible
