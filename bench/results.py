"""Where every benchmark keeps its figures: ``bench/results/<name>.json``.

Why: the README's performance section is generated from these files (``bench/readme.py``), so
a figure is never typed by hand, and each file says when, on which commit and on which machine
it was measured. The machine is shared and noisy, so every benchmark also measures a baseline
in the same run and the README quotes ratios next to absolute figures.

A file holds::

    {"benchmark": name, "date": ISO 8601 UTC, "commit": 40 hex digits or "unknown",
     "dirty": true if the work tree had uncommitted changes,
     "machine": {"cores": int, "cpu_model": str, "python": "3.12.3"},
     "quick": true for a short smoke run (``--quick``),
     "parameters": {...what was run...}, "figures": {...what was measured...}}
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
RESULTS = Path(__file__).parent / "results"
#: Every benchmark, in the order the README presents them.
BENCHMARKS = ("end_to_end", "decode", "window", "analysis", "soak", "class")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The first ``model name`` in /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_state(root: Path = ROOT) -> tuple[str, bool]:
    """(``git rev-parse HEAD``, whether tracked files differ from it, apart from what the
    benchmarks write themselves: bench/results and the README's generated section);
    ("unknown", False) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                 ".", ":(exclude)bench/results", ":(exclude)README.md"],
                                cwd=root, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status.strip())


def provenance() -> dict[str, Any]:
    """Date, commit, dirty flag and machine of a run made now."""
    commit, dirty = git_state()
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
            "dirty": dirty,
            "machine": {"cores": os.cpu_count(), "cpu_model": cpu_model(),
                        "python": platform.python_version()}}


def save(name: str, parameters: dict[str, Any], figures: dict[str, Any], *, quick: bool,
         folder: Path = RESULTS) -> Path:
    """Write ``folder/<name>.json`` (replacing the previous run) and return its path."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}: one of {', '.join(BENCHMARKS)}")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    record = {"benchmark": name, **provenance(), "quick": quick, "parameters": parameters,
              "figures": figures}
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"  -> {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


def load_all(folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every benchmark's last saved run, keyed by name (FileNotFoundError names a missing
    one: run ``make bench``)."""
    out = {}
    for name in BENCHMARKS:
        path = folder / f"{name}.json"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: run `make bench`")
        out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out
