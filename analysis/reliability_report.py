"""What ``palpation reliability`` shows and writes: a text summary, a CSV or JSON of every
statistic, and a self-contained HTML page with a Bland–Altman plot per pair of columns.

Every output says which holds were left out (incomplete ones, ones without a value, targets
dropped to balance a design), states each design's model in words and why that ICC form is the
one reported, and lists each statistic that was refused with its reason.
"""

from __future__ import annotations

import csv
import io
import json
import math
import textwrap
from pathlib import Path

import numpy as np

from analysis.reliability_design import FORMS, MODEL_WORDS, DesignResult, PairAgreement, Selection
from analysis.report import COLOURS, CSS
from analysis.svg import Series, esc, num, svg_plot
from schemas.atomic import write_text_atomic

__all__ = ["MAX_PLOTS", "ba_plot", "build_html", "result_rows", "results_json", "summary_text",
           "write_results"]

MAX_PLOTS = 6  # Bland-Altman plots per design and scope (pairs beyond are in the table only)


def _left_out(sel: Selection) -> list[str]:
    out = []
    if sel.incomplete_left_out:
        out.append(f"{sel.incomplete_left_out} incomplete holds left out "
                   f"(--include-incomplete keeps them)")
    if sel.incomplete_kept:
        out.append(f"{sel.incomplete_kept} incomplete holds kept (--include-incomplete)")
    if sel.no_value:
        out.append(f"{sel.no_value} holds without a {sel.measure} value left out")
    return out


def _shape(d: DesignResult) -> str:
    what = {"test-retest": "sessions", "inter-rater": "raters", "intra-rater": "repetitions"}
    text = (f"{len(d.targets)} targets x {len(d.columns)} {what[d.design]} "
            f"({', '.join(d.columns)})")
    if d.dropped_targets:
        text += f"; {d.dropped_targets} targets dropped (not in every column)"
    if d.dropped_columns:
        text += f"; column(s) {', '.join(d.dropped_columns)} dropped (fewer than half the targets)"
    return text


def _refusals(d: DesignResult) -> list[str]:
    reasons = d.refused + [r for p in d.pairs for r in p.refused]
    return list(dict.fromkeys(reasons))


_COLUMN_WORD = {"test-retest": "session ", "inter-rater": "", "intra-rater": "repetition "}


def _names(design: str, p: PairAgreement) -> tuple[str, str]:
    """The pair's columns as a reader says them: "session 1", a rater's name, "repetition 2"."""
    return _COLUMN_WORD[design] + p.a, _COLUMN_WORD[design] + p.b


def _ba_line(design: str, p: PairAgreement, unit: str) -> str:
    a, b = _names(design, p)
    parts = [f"{a} vs {b}:"]
    if p.ba is not None:
        parts.append(f"bias {p.ba.bias:.2f} {unit}, limits of agreement {p.ba.loa_low:.2f} to "
                     f"{p.ba.loa_high:.2f} {unit};")
    if p.ccc is not None:
        parts.append(f"Lin's CCC {p.ccc:.3f}")
    return " ".join(parts).rstrip(";:")


def summary_text(source: str, sel: Selection, results: list[DesignResult],
                 impossible: list[str]) -> str:
    """The readable summary ``palpation reliability`` prints."""
    unit = sel.unit
    lines = [f"{source}: {sel.holds} holds, measure {sel.measure}" + (f" ({unit})" if unit else "")]
    lines += [f"  {line}" for line in _left_out(sel)]
    lines += [f"  {line}" for line in impossible]
    for design in dict.fromkeys(d.design for d in results):
        primary, secondary, why = FORMS[design]
        lines += ["", textwrap.fill(f"{design}: {primary} reported because {why}.", 96,
                                    subsequent_indent="  ")]
        for d in (r for r in results if r.design == design):
            lines.append(f"  {d.scope}: {_shape(d)}")
            for kind, lead in ((primary, ""), (secondary, "also ")):
                r = d.iccs.get(kind)
                if r is not None:
                    lines.append(f"    {lead}{kind}, {MODEL_WORDS[kind]}: {r.value:.3f} "
                                 f"[95 % CI {r.ci_low:.3f}, {r.ci_high:.3f}]")
            if d.sem_value is not None:
                lines.append(f"    SEM {d.sem_value:.2f} {unit}, MDC95 {d.mdc_value:.2f} {unit} "
                             f"(from {primary})")
            lines += [f"    {_ba_line(design, p, unit)}" for p in d.pairs
                      if p.ba or p.ccc is not None]
            lines += [f"    refused: {reason}" for reason in _refusals(d)]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- CSV / JSON
def _finite(v) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def result_rows(sel: Selection, results: list[DesignResult]) -> list[dict]:
    """One row per statistic (CSV): design, scope, statistic, value, CI, unit, the design's
    size and what was left out; a refused statistic has no value and its reason as note."""
    rows = []
    for d in results:
        base = {"design": d.design, "scope": d.scope, "measure": sel.measure,
                "targets": len(d.targets), "columns": len(d.columns),
                "dropped_targets": d.dropped_targets,
                "incomplete_left_out": sel.incomplete_left_out}

        def add(statistic, value, lo=None, hi=None, unit="", model="", note="", _b=base):
            rows.append({**_b, "statistic": statistic, "value": _finite(value),
                         "ci_low": _finite(lo), "ci_high": _finite(hi), "unit": unit,
                         "model": model, "note": note})

        for kind, r in d.iccs.items():
            add(kind, r.value, r.ci_low, r.ci_high, model=MODEL_WORDS[kind],
                note="reported" if kind == d.primary else "")
        if d.sem_value is not None:
            add("SEM", d.sem_value, unit=sel.unit, note=f"from {d.primary}")
            add("MDC95", d.mdc_value, unit=sel.unit, note=f"from {d.primary}")
        for p in d.pairs:
            if p.ba is not None:
                add(f"bias {p.a}-{p.b}", p.ba.bias, *p.ba.bias_ci, unit=sel.unit)
                add(f"LoA low {p.a}-{p.b}", p.ba.loa_low, *p.ba.loa_low_ci, unit=sel.unit)
                add(f"LoA high {p.a}-{p.b}", p.ba.loa_high, *p.ba.loa_high_ci, unit=sel.unit)
            if p.ccc is not None:
                add(f"CCC {p.a}-{p.b}", p.ccc)
        for reason in _refusals(d):
            add("refused", None, note=reason)
    return rows


def results_json(source: str, sel: Selection, results: list[DesignResult],
                 impossible: list[str]) -> dict:
    """Everything as JSON-able data: the selection, and per design its matrix and statistics."""
    def one(d: DesignResult) -> dict:
        return {"design": d.design, "scope": d.scope, "statement": d.statement,
                "reason": d.reason, "targets": d.targets, "columns": d.columns,
                "scores": [[_finite(v) for v in row] for row in d.scores],
                "dropped_targets": d.dropped_targets, "dropped_columns": d.dropped_columns,
                "icc": {k: {"value": _finite(r.value), "ci_low": _finite(r.ci_low),
                            "ci_high": _finite(r.ci_high), "F": _finite(r.F), "df1": r.df1,
                            "df2": _finite(r.df2), "p": _finite(r.p),
                            "model": MODEL_WORDS[k]} for k, r in d.iccs.items()},
                "sem": _finite(d.sem_value), "mdc95": _finite(d.mdc_value),
                "pairs": [{"a": p.a, "b": p.b, "ccc": _finite(p.ccc),
                           "bland_altman": None if p.ba is None else {
                               "n": p.ba.n, "bias": p.ba.bias, "sd_diff": p.ba.sd_diff,
                               "loa_low": p.ba.loa_low, "loa_high": p.ba.loa_high,
                               "bias_ci": list(p.ba.bias_ci),
                               "loa_low_ci": list(p.ba.loa_low_ci),
                               "loa_high_ci": list(p.ba.loa_high_ci)}} for p in d.pairs],
                "refused": _refusals(d)}
    return {"table": source, "measure": sel.measure, "unit": sel.unit, "holds": sel.holds,
            "incomplete_left_out": sel.incomplete_left_out,
            "incomplete_kept": sel.incomplete_kept, "no_value": sel.no_value,
            "not_possible": impossible, "results": [one(d) for d in results]}


def write_results(out: Path, source: str, sel: Selection, results: list[DesignResult],
                  impossible: list[str]) -> None:
    """``out`` as .csv (``result_rows``) or .json (``results_json``), written atomically."""
    if out.suffix.lower() == ".json":
        text = json.dumps(results_json(source, sel, results, impossible), indent=2) + "\n"
    elif out.suffix.lower() == ".csv":
        rows = result_rows(sel, results)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["design"])
        w.writeheader()
        w.writerows({k: ("" if v is None else v) for k, v in r.items()} for r in rows)
        text = buf.getvalue()
    else:
        raise ValueError(f"{out}: the results are written as .csv or .json")
    write_text_atomic(out, text)


# ---------------------------------------------------------------------------- HTML
def ba_plot(design: str, p: PairAgreement, unit: str, title: str) -> str:
    """Bland–Altman plot: per target the difference ``a - b`` against the mean of the two, the
    bias (solid) and the 95 % limits of agreement (dashed)."""
    u = f" ({unit})" if unit else ""
    a, b = _names(design, p)
    series = [Series(p.means, p.diffs, COLOURS[0], label="targets", line=False)]
    if p.ba is not None and p.means.size:
        xs = np.array([p.means.min(), p.means.max()])
        series += [Series(xs, np.full(2, p.ba.bias), COLOURS[1], label="bias"),
                   Series(xs, np.full(2, p.ba.loa_low), COLOURS[1], dashed=True,
                          label="lower limit of agreement"),
                   Series(xs, np.full(2, p.ba.loa_high), COLOURS[1], dashed=True,
                          label="upper limit of agreement")]
    return svg_plot(series, xlabel=f"mean of {a} and {b}{u}", ylabel=f"{a} − {b}{u}",
                    title=title, width=560, height=300)


def _icc_table(d: DesignResult) -> str:
    rows = "".join(
        f"<tr{' class=primary' if k == d.primary else ''}><td class=l>{esc(k)}</td>"
        f"<td class=l>{esc(MODEL_WORDS[k])}</td><td>{num(r.value, 3)}</td>"
        f"<td>{num(r.ci_low, 3)} to {num(r.ci_high, 3)}</td><td>{num(r.F, 2)}</td>"
        f"<td>{r.p:.2g}</td></tr>" for k, r in d.iccs.items())
    return ("<table class=rel><thead><tr><th class=l>form</th><th class=l>model</th><th>ICC</th>"
            "<th>95 % CI</th><th>F</th><th>p</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>") if rows else ""


def _pair_table(d: DesignResult, unit: str) -> str:
    rows = "".join(
        f"<tr><td class=l>{esc(' − '.join(_names(d.design, p)))}</td>"
        f"<td>{num(p.ba.bias if p.ba else None, 2)}</td>"
        f"<td>{num(p.ba.loa_low if p.ba else None, 2)} to "
        f"{num(p.ba.loa_high if p.ba else None, 2)}</td><td>{num(p.ccc, 3)}</td></tr>"
        for p in d.pairs)
    return (f"<table class=rel><thead><tr><th class=l>pair</th><th>bias ({esc(unit)})</th>"
            f"<th>limits of agreement ({esc(unit)})</th><th>Lin's CCC</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def _result_section(d: DesignResult, unit: str) -> str:
    parts = [f"<h3>{esc(d.scope)}</h3>", f"<p><b>{esc(d.statement)}</b>. {esc(_shape(d))}.</p>",
             _icc_table(d)]
    if d.sem_value is not None:
        parts.append(f"<p>SEM {num(d.sem_value, 2)} {esc(unit)}, MDC95 "
                     f"{num(d.mdc_value, 2)} {esc(unit)} (from {esc(d.primary)}).</p>")
    parts.append(_pair_table(d, unit))
    parts += [ba_plot(d.design, p, unit, f"{d.design}, {d.scope}: "
                      f"{' − '.join(_names(d.design, p))}")
              for p in d.pairs[:MAX_PLOTS] if p.ba is not None]
    if len(d.pairs) > MAX_PLOTS:
        parts.append(f'<p class="note">{len(d.pairs) - MAX_PLOTS} more pairs are in the table '
                     f"only.</p>")
    parts += [f'<p class="warn">Refused: {esc(r)}</p>' for r in _refusals(d)]
    return "\n".join(parts)


def build_html(source: str, sel: Selection, results: list[DesignResult],
               impossible: list[str], title: str = "Reliability") -> str:
    """The self-contained HTML page (inline CSS and SVG, no scripts)."""
    unit = sel.unit
    head = [f"<h1>{esc(title)}</h1>", '<dl class="meta">',
            f"<dt>table</dt><dd>{esc(source)}</dd>",
            f"<dt>measure</dt><dd>{esc(sel.measure)}" + (f" ({esc(unit)})" if unit else "")
            + "</dd>", f"<dt>holds</dt><dd>{sel.holds}</dd>", "</dl>"]
    head += [f'<p class="warn">{esc(line)}</p>' for line in _left_out(sel) + impossible]
    body = []
    for design in dict.fromkeys(d.design for d in results):
        primary, _, why = FORMS[design]
        body += [f"<h2>{esc(design)}</h2>", f"<p>{esc(primary)} is reported because "
                 f"{esc(why)}.</p>"]
        body += [_result_section(d, unit) for d in results if d.design == design]
    style = f"{CSS}tr.primary td{{font-weight:600}}table.rel td:not(.l){{white-space:nowrap}}"
    return "\n".join(["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                      f"<title>{esc(title)}</title><style>{style}</style></head><body>",
                      *head, *body, "</body></html>\n"])
