"""Where calibration records live on disk: one JSON file each in the calibration folder, written
atomically; the newest for a device is found by its id or USB identity (CALIBRATION.md)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from schemas.atomic import write_text_atomic
from schemas.calibration.record import Calibration, CalibrationError


def load_calibration(path: str | Path) -> Calibration:
    """Read and check a calibration file; CalibrationError "FILE: field: problem" otherwise."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CalibrationError(f"{p}: not JSON (not UTF-8 text)") from None
    except OSError as exc:
        raise CalibrationError(f"{p}: cannot read ({exc.strerror or exc})") from None
    return Calibration.from_json(text, str(p))


def calibration_dir() -> Path:
    """Where calibrations live: $PALPATION_DATA_DIR/calibrations if set, else the user's data
    folder + palpation/calibrations (XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/
    Application Support on macOS, %APPDATA% on Windows)."""
    override = os.environ.get("PALPATION_DATA_DIR")
    if override:
        return Path(override).expanduser() / "calibrations"
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or home / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / "palpation" / "calibrations"


def calibration_filename(cal: Calibration) -> str:
    """DEVICE_YYYYMMDD_SHORTID.json, the device id reduced to file-name-safe characters."""
    device = re.sub(r"[^A-Za-z0-9._-]+", "-", cal.device.get("device_id", "")).strip("-.")
    device = device[:40] or "device"
    return f"{device}_{cal.created_at.strftime('%Y%m%d')}_{cal.id[:8]}.json"


def save_calibration(cal: Calibration, directory: str | Path | None = None) -> Path:
    """Check `cal`, then write it atomically into calibration_dir() (or `directory`)."""
    cal.check(f"calibration {cal.id}")
    folder = Path(directory) if directory is not None else calibration_dir()
    target = folder / calibration_filename(cal)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, cal.to_json() + "\n")
    except OSError as exc:
        raise CalibrationError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def list_calibrations(
    directory: str | Path | None = None, problems: list[str] | None = None
) -> list[tuple[Path, Calibration]]:
    """Every readable calibration in the folder, oldest first. Files that fail to load are
    skipped; their one-line errors are appended to `problems` if given."""
    folder = Path(directory) if directory is not None else calibration_dir()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            found.append((path, load_calibration(path)))
        except CalibrationError as exc:
            if problems is not None:
                problems.append(str(exc))
    found.sort(key=lambda item: (item[1].created_at, item[0].name))
    return found


def find_calibration(
    device_id: str,
    usb_identity: str = "",
    *,
    directory: str | Path | None = None,
    problems: list[str] | None = None,
) -> Calibration | None:
    """The newest calibration for a device: matched on device_id when it is given, else on
    usb_identity; None when nothing matches (or neither is given)."""
    if device_id:
        key, wanted = "device_id", device_id
    elif usb_identity:
        key, wanted = "usb_identity", usb_identity
    else:
        return None
    matches = [
        cal for _, cal in list_calibrations(directory, problems) if cal.device.get(key) == wanted
    ]
    return matches[-1] if matches else None

