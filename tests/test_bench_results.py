"""The README's performance figures are the benchmark results files, not typed by hand.

bench/results/*.json hold what ``make bench`` measured; bench/readme.py writes the README's
performance section from them. These tests read the real files and the real README.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import readme  # noqa: E402
import results  # noqa: E402


def blank(value):
    """The same structure with every number NaN and every string a letter."""
    if isinstance(value, dict):
        return {k: blank(v) for k, v in value.items()}
    if isinstance(value, list):
        return [blank(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return math.nan
    return "x"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    _, begin, rest = text.partition(readme.BEGIN)
    block, end, _ = rest.partition(readme.END)
    assert begin and end, "README.md lacks the generated performance section's markers"
    return block.removeprefix("\n")


def test_readme_performance_section_is_what_the_results_files_say():
    assert readme_block() == readme.render(results.load_all())


def test_no_figure_in_the_performance_section_is_typed_by_hand():
    """Rendered from results whose numbers are all NaN, the section has no digit left: every
    figure in it comes from a results file."""
    rendered = readme.render(blank(results.load_all()))
    assert "nan" in rendered
    assert re.findall(r".{0,30}\d.{0,30}", rendered) == []


def test_every_results_file_says_when_where_and_on_which_commit():
    for name, r in results.load_all().items():
        assert r["benchmark"] == name
        assert datetime.fromisoformat(r["date"]).tzinfo is not None
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"]), r["commit"]
        assert isinstance(r["dirty"], bool) and isinstance(r["quick"], bool)
        machine = r["machine"]
        assert machine["cores"] >= 1 and machine["cpu_model"]
        assert re.fullmatch(r"3\.\d+\.\d+", machine["python"])


def test_the_analysis_batch_uses_distinct_recordings_and_says_if_the_cache_was_cold():
    a = results.load_all()["analysis"]
    assert a["parameters"]["distinct"] is True
    assert len(set(a["figures"]["single_holds"])) > 1  # different seeds/profiles, different holds
    f = a["figures"]
    assert f["cold_cache"] == (f["cold_one_process_s"] is not None) == (f["why_not_cold"] == "")


def test_the_decode_baseline_is_timed_like_the_product():
    d = results.load_all()["decode"]
    rows = d["figures"]["frames_per_s"]
    assert [r["read_bytes"] for r in rows] == d["parameters"]["read_sizes"]
    assert d["parameters"]["repeat"] == 3
    assert all(r["perbyte"] > 0 and r["product"] > 0 and r["reference"] > 0 for r in rows)


def test_save_records_this_checkout_and_machine(tmp_path):
    path = results.save("decode", {"frames": 1}, {"frames_per_s": []}, quick=True,
                        folder=tmp_path)
    saved = json.loads(path.read_text())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)bench/results", ":(exclude)README.md"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.strip() != ""
    assert (saved["commit"], saved["dirty"]) == (head, dirty)
    assert saved["machine"]["cores"] == os.cpu_count()
    model = next(line.split(":", 1)[1].strip() for line in
                 Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    assert saved["machine"]["cpu_model"] == model
    assert saved["parameters"] == {"frames": 1} and saved["quick"] is True
    with pytest.raises(ValueError, match="unknown benchmark"):
        results.save("decoding", {}, {}, quick=True, folder=tmp_path)


def test_splice_replaces_only_the_generated_section():
    text = f"# title\n\nbefore\n{readme.BEGIN}\nold 1 2 3\n{readme.END}\nafter\n"
    assert readme.splice(text, "new\n") == (f"# title\n\nbefore\n{readme.BEGIN}\nnew\n"
                                            f"{readme.END}\nafter\n")
    with pytest.raises(ValueError, match="markers"):
        readme.splice("no markers here\n", "new\n")
