"""Damaged copies of a real recording through every command that reads one.

Seeded variants of a recording (byte flips of 1..512 bytes, scattered or in one burst, and
truncations) each go through validate, info, analyze, report, export, recover and recalibrate
(and every tenth through review, which builds its window offscreen), called in-process through
the real command line in a worker process. A command may fail, but only with its one-line error
and a non-zero exit: an exception escaping the command is a traceback, a dead worker is a crash,
a variant that takes longer than the limit is a hang.

The tally also says how many variants `validate` accepted, and of those how many read back
different data or attributes from the original (silent damage): the rest differ only in bytes
that no reader looks at, such as free space inside the file.

    python tests/corruption.py RECORDING.h5 [--variants 200] [--seed 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

VARIANT_TIMEOUT_S = 30.0
COMMANDS = ("validate", "info", "analyze", "report", "export", "recover", "recalibrate")
REVIEW_EVERY = 10  # `review` builds a window, so it sees every tenth variant only


@dataclass
class Tally:
    variants: int = 0
    runs: int = 0
    tracebacks: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    hangs: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)  # failed without one "error:" line
    accepted: int = 0  # validate exit 0
    accepted_changed: list[str] = field(default_factory=list)  # ... but the content differs
    kinds: dict[str, int] = field(default_factory=dict)


def make_variants(original: Path, folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` damaged copies: 3 in 4 flip 1..512 bytes, the rest are truncated."""
    rng = np.random.default_rng(seed)
    data = np.frombuffer(original.read_bytes(), dtype=np.uint8)
    out = []
    for i in range(count):
        damaged = data.copy()
        if i % 4 == 3:
            damaged = damaged[: int(rng.integers(0, len(data)))]
            kind = "truncated"
        else:
            n = int(rng.integers(1, 513))
            if rng.random() < 0.5:
                start = int(rng.integers(0, len(data) - n))
                where = np.arange(start, start + n)
                kind = "burst"
            else:
                where = rng.choice(len(data), size=n, replace=False)
                kind = "scattered"
            damaged[where] ^= rng.integers(1, 256, size=n, dtype=np.uint8)
        path = folder / f"v{i:04d}-{kind}.h5"
        path.write_bytes(damaged.tobytes())
        out.append(path)
    return out


def _run_command(argv: list[str]) -> tuple[int, str]:
    """One command in-process: (exit code, stderr); exit code None-like -1 for a traceback."""
    from recorder.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException as exc:  # noqa: BLE001 - the point is to catch anything
            return -1, f"{type(exc).__name__}: {exc}"
    text = err.getvalue()
    if "Traceback" in text:
        return -1, text.strip().splitlines()[-1]
    return code, text.strip()


def _argv(command: str, variant: Path, scratch: Path, calibration: Path) -> list[str]:
    if command in ("recover", "recalibrate"):
        copy = scratch / f"{command}.h5"
        for p in scratch.glob(f"{command}*"):
            p.unlink()
        shutil.copyfile(variant, copy)
        if command == "recover":
            return ["recover", str(copy)]
        return ["recalibrate", str(copy), "--calibration", str(calibration)]
    outs = {"analyze": ["--out", str(scratch / "holds.csv"), "--force"],
            "review": ["--screenshot", str(scratch / "review.png")],
            "report": ["--out", str(scratch / "report.html"), "--force"],
            "export": ["--out", str(scratch / "trace.csv"), "--force"],
            "info": ["--json"]}
    return [command, str(variant), *outs.get(command, [])]


def worker(paths: list[str], calibration: Path) -> None:
    """Run every command on each variant; one JSON line per variant on stdout."""
    out = sys.stdout
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            index = int(Path(path).stem[1:5])
            commands = COMMANDS + (("review",) if index % REVIEW_EVERY == 0 else ())
            results = {c: _run_command(_argv(c, Path(path), Path(scratch), calibration))
                       for c in commands}
            out.write(json.dumps({"path": path, "results": results}) + "\n")
            out.flush()


def content(path: Path) -> dict | None:
    """Every dataset's bytes and every attribute of a file, or None if unreadable."""
    import h5py

    found: dict = {}

    def visit(name, obj):
        key = "/" + name
        found[key + "@"] = {k: repr(v) for k, v in obj.attrs.items()}
        if isinstance(obj, h5py.Dataset):
            found[key] = obj[()].tobytes()

    try:
        with h5py.File(path, "r") as f:
            found["/@"] = {k: repr(v) for k, v in f.attrs.items()}
            f.visititems(visit)
    except (OSError, RuntimeError, KeyError, ValueError):
        return None
    return found


def run(original: Path, folder: Path, count: int, seed: int, calibration: Path) -> Tally:
    """Make the variants, run them through a worker (restarted after a crash or a hang)."""
    variants = make_variants(original, folder, count, seed)
    reference = content(original)
    tally = Tally(variants=len(variants))
    for v in variants:
        kind = v.stem.split("-")[1]
        tally.kinds[kind] = tally.kinds.get(kind, 0) + 1
    todo = [str(v) for v in variants]
    while todo:
        done = _drive_worker(todo, calibration, tally, reference)
        todo = todo[done:]
    return tally


def _drive_worker(todo: list[str], calibration: Path, tally: Tally, reference) -> int:
    """Feed variants to one worker until it finishes, dies or hangs; return how many it
    settled (a variant that killed or hung the worker counts as settled)."""
    proc = subprocess.Popen([sys.executable, __file__, "--worker", str(calibration), *todo],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    settled = 0
    try:
        while settled < len(todo):
            ready, _, _ = select.select([proc.stdout], [], [], VARIANT_TIMEOUT_S)
            line = proc.stdout.readline() if ready else ""
            if not ready:
                tally.hangs.append(todo[settled])
                return settled + 1
            if not line:
                proc.wait(10)
                tally.crashes.append(f"{todo[settled]} (exit {proc.returncode})")
                return settled + 1
            _record(json.loads(line), tally, reference)
            settled += 1
        return settled
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _record(row: dict, tally: Tally, reference) -> None:
    name = Path(row["path"]).name
    for command, (code, text) in row["results"].items():
        tally.runs += 1
        if code == -1:
            tally.tracebacks.append(f"{command} {name}: {text}")
        elif code != 0 and (len(text.splitlines()) != 1 or "error: " not in text):
            tally.unclear.append(f"{command} {name}: {text!r}")
    if row["results"]["validate"][0] == 0:
        tally.accepted += 1
        if content(Path(row["path"])) != reference:
            tally.accepted_changed.append(name)


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(sys.argv[3:], Path(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--variants", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as folder:
        tally = run(args.recording, Path(folder), args.variants, args.seed, args.calibration)
    result = {**asdict(tally), "seconds": round(time.monotonic() - start, 1)}
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
