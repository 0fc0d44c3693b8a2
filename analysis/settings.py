"""The settings that shape the hold table: where a hold starts and ends, when it is whole, and
what its plateau is.

Why a record of its own: a hold table is only reproducible with the settings it was made with,
so every output that carries hold metrics states them (``analysis.provenance``), and
``palpation analyze`` lets a study set them. The defaults are the values the live recorder
uses (``analysis.holds`` and ``analysis.hold_shape`` take theirs from here), so a table made
without options agrees with what the trainee was shown. A leaf module without numpy: the
command line's parser shows these defaults without loading the analysis. Each field is
documented in analysis/TABLE.md ("Settings").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["DEFAULT_SETTINGS", "SETTINGS_HELP", "AnalysisSettings"]

#: One line per setting: what it decides (the option ``--on-frac`` sets ``on_frac``).
SETTINGS_HELP = {
    "on_frac": "a contact becomes a hold once it reaches this fraction of the point's target",
    "off_frac": "a hold starts and ends where the force crosses this fraction of the target "
                "(below on_frac: the hysteresis)",
    "debounce_s": "a contact shorter than this (s) is a tap, not a hold",
    "merge_gap_s": "a lift-off shorter than this (s) followed by a re-press stays one hold",
    "max_gap_s": "a stretch without samples longer than this (s) inside a hold, or hiding its "
                 "start or end, makes the hold incomplete, as a disconnect does",
    "smooth_s": "moving-average window (s) that locates the peak, the plateau and the ramp",
    "plateau_tol": "the plateau is where the smoothed force stays within this fraction of its "
                   "level around the trend; dips further below are re-presses, left out",
    "plateau_min_s": "a plateau shorter than this (s) is none (plateau metrics empty)",
    "plateau_max_change": "a trend changing by more than this fraction of the level across "
                          "the plateau is none (a ramp straight into a release)",
}

@dataclass(frozen=True)
class AnalysisSettings:
    """Hold detection (fractions of a point's target force, times in s) and plateau settings;
    what each means: ``SETTINGS_HELP`` (which ``palpation analyze --help`` and TABLE.md show)."""

    on_frac: float = 0.10
    off_frac: float = 0.05  # the simulator's ground truth: a hold from 5 % of the target
    debounce_s: float = 1.0  # = HoldConfig.min_hold_s
    merge_gap_s: float = 0.3  # = HoldConfig.merge_gap_s
    max_gap_s: float = 0.1
    smooth_s: float = 0.1
    plateau_tol: float = 0.08
    plateau_min_s: float = 0.5
    plateau_max_change: float = 0.20

    def __post_init__(self) -> None:
        """Refuse settings that cannot segment a hold, with the setting named."""
        for name, value in self.as_dict().items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, not {value}")
        if not 0 < self.off_frac < self.on_frac:
            raise ValueError(f"off_frac ({self.off_frac}) must be above 0 and below on_frac "
                             f"({self.on_frac}): the hysteresis")
        for name in ("max_gap_s", "plateau_tol", "plateau_max_change"):
            if getattr(self, name) == 0:
                raise ValueError(f"{name} must be above 0")

    def as_dict(self) -> dict[str, float]:
        """Every setting by name (JSON-able), as the outputs state them."""
        return {k: float(v) for k, v in asdict(self).items()}


DEFAULT_SETTINGS = AnalysisSettings()
