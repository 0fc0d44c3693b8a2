"""Where a table's numbers come from: the software that recorded and analysed them, the file's
calibration and the analysis settings.

Why one function: the hold table, the CSV sidecar, the NWB export and ``info --json`` all
state provenance, and they must state the same thing (a study that pools files recorded on a
factory scale with calibrated ones has to be able to tell them apart: on the same sensor the
two read +4.3 % and +0.06 %).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from analysis.settings import DEFAULT_SETTINGS, AnalysisSettings
from schemas.reader import still_recording

__all__ = ["PROVENANCE_COLUMNS", "analysed_with", "provenance"]

#: The hold table's provenance columns (name -> (unit, definition)), one value per file.
PROVENANCE_COLUMNS = {
    "analysed_with": ("", "palpation-recorder version that computed the row"),
    "recorded_with": ("", "software version that recorded the file"),
    "schema_version": ("", "the file's schema version"),
    "calibration_source": ("", "how force was measured: file (a calibration), factory, "
                               "device or none"),
    "calibration_id": ("", "id of the calibration applied (empty: none)"),
    "still_recording": ("", "True when a recorder was still writing the file when it was "
                            "analysed: later holds are missing and its last may be cut off"),
}


def analysed_with() -> str:
    """This package's installed version ("unknown" when run from an uninstalled tree)."""
    try:
        return importlib.metadata.version("palpation-recorder")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def provenance(rec, settings: AnalysisSettings = DEFAULT_SETTINGS) -> dict[str, Any]:
    """Provenance of the figures computed from ``rec`` (a ``schemas.reader.Recording``) with
    ``settings``: the ``PROVENANCE_COLUMNS`` plus ``settings`` (``as_dict``). JSON-able."""
    cal = rec.calibration
    return {
        "analysed_with": analysed_with(),
        "recorded_with": str(rec.software_version),
        "schema_version": str(rec.schema_version),
        "calibration_source": str(cal.get("source", "")),
        "calibration_id": str(cal.get("calibration_id", "")),
        "still_recording": not rec.finalised and still_recording(rec.path),
        "settings": settings.as_dict(),
    }
