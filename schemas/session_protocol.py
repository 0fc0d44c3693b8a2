"""Session protocols: which trigger points, in which order, and what dose each gets.

A protocol is a TOML file that a therapist or an instructor edits by hand::

    name = "Neck routine"
    kind = "static"              # static | ischemic | ppt_ramp
    unit = "N"                   # N, kgf, lbf, kPa, N/cm2, kgf/cm2
    contact_area_cm2 = 2.0       # required for a pressure unit; optional for a force unit

    [dose]                       # defaults for every point
    target_low = 30              # target band, in `unit`
    target_high = 50
    min_hold_s = 8
    max_hold_s = 20

    [[point]]
    muscle = "upper trapezius"
    side = "right"
    target_high = 45             # any dose key may be overridden per point

Targets are written in the protocol's unit because that is the unit the person editing the
file thinks in; the recorder keeps raw force in newtons, so every dose also answers in
newtons (``Dose.band_n``, ``Dose.ramp_n_per_s``) through ``schemas.units``, the one
place that converts units.

A mistake in a file is reported as ``ProtocolError`` with a one-line message
``FILE:LINE: what is wrong``, pointing at the offending key or table, so that a person can fix
it in an editor without reading a traceback.

An optional ``[training]`` table sets a feedback schedule (``schemas.training``). Every key,
its unit, default and plausible range is documented in schemas/PROTOCOL.md; the ranges are
checked by ``schemas.protocol_limits``.

Presets ship inside the package (``schemas/protocols/*.toml``): ``list_presets()``,
``load_preset(id)``; ``resolve_protocol(text)`` takes a preset id or a file path.
"""

from __future__ import annotations

import math
import tomllib
from collections import Counter
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from schemas.protocol_errors import KeyLines, ProtocolError, show, suggest, syntax_error
from schemas.protocol_limits import area_problem, dose_problem
from schemas.training import Training, parse_training
from schemas.units import DISPLAY_UNITS, canonical_unit, is_pressure, to_newtons

__all__ = [
    "KINDS",
    "SIDES",
    "Dose",
    "ProtocolError",
    "SessionProtocol",
    "TriggerPoint",
    "list_presets",
    "protocol_of",
    "load_preset",
    "load_protocol",
    "resolve_protocol",
]

KINDS = ("static", "ischemic", "ppt_ramp")
"""static: NMT static compression; ischemic: ischemic compression (Travell/Simons);
ppt_ramp: pressure-pain threshold, a steady ramp until the subject presses the button."""

SIDES = ("left", "right", "")
_SIDE_ALIASES = {"left": "left", "l": "left", "right": "right", "r": "right", "": ""}

_TOP_KEYS = ("name", "description", "kind", "unit", "contact_area_cm2", "dose", "point",
             "training")
_POINT_KEYS = ("name", "muscle", "side", "note")
_PRESET_DIR = "protocols"


@dataclass(frozen=True)
class Dose:
    """The dose for one trigger point, in the protocol's ``unit`` (a force or a pressure).

    target_low, target_high: the band to hold (static, ischemic). For ``ppt_ramp`` there is
        nothing to hold: the threshold is the measurement, target_high is the cut-off at
        which the probe is lifted even without the button and target_low the lowest
        plausible threshold (0 for none).
    min_hold_s, max_hold_s: the shortest hold counted as a full dose and the longest one
        advised. Releasing early is always allowed (the client may stop); it is recorded.
    repetitions, rest_s: how many times the point is loaded, and the rest between them.
    ramp_min, ramp_max: corridor for the rate of force application (``unit`` per second),
        None where unbounded; both None means the ramp is not coached.
    stop_on_button: the subject's button ends the trial (PPT) or the hold (any kind).
    target_pain: the 0-10 rating at which the subject's signal sets the point's target (NaN:
        the fixed band); anchor_band_pct: that band's half-width, % of the anchored target;
        reaction_time_s: the signal comes this long after the force that earned it.
    """

    unit: str
    target_low: float
    target_high: float
    min_hold_s: float = 0.0
    max_hold_s: float = 60.0
    repetitions: int = 1
    rest_s: float = 0.0
    ramp_min: float | None = None
    ramp_max: float | None = None
    stop_on_button: bool = True
    target_pain: float = math.nan
    anchor_band_pct: float = 15.0
    reaction_time_s: float = 0.3

    def band_n(self, area_cm2: float = math.nan) -> tuple[float, float]:
        """(low, high) of the target band in newtons; a pressure unit needs the contact area
        in cm² (ValueError otherwise)."""
        return (float(to_newtons(self.target_low, self.unit, area_cm2)),
                float(to_newtons(self.target_high, self.unit, area_cm2)))

    def ramp_n_per_s(self, area_cm2: float = math.nan) -> tuple[float, float] | None:
        """(min, max) rate of force application in N/s, or None when the ramp is not coached.
        An open side is 0 (no minimum) or ``inf`` (no maximum)."""
        if self.ramp_min is None and self.ramp_max is None:
            return None
        low = 0.0 if self.ramp_min is None else self.ramp_min
        high = math.inf if self.ramp_max is None else self.ramp_max
        return (float(to_newtons(low, self.unit, area_cm2)),
                float(to_newtons(high, self.unit, area_cm2)))

    def anchored_band_n(self, target_n: float) -> tuple[float, float]:
        """(low, high) in newtons around a target the subject anchored: ± anchor_band_pct %.
        The one home of the anchored band (recorder, window and analysis)."""
        share = self.anchor_band_pct / 100.0
        return (target_n * (1.0 - share), target_n * (1.0 + share))

    @property
    def is_threshold_ramp(self) -> bool:
        """A ramp to the subject's button (pressure-pain threshold): a coached ramp and no
        hold to make (``max_hold_s`` 0), so no band to keep and no hold clock."""
        return self.max_hold_s <= 0 and (self.ramp_min, self.ramp_max) != (None, None)


_DOSE_KEYS = tuple(f.name for f in fields(Dose) if f.name != "unit")
_DOSE_DEFAULTS = {f.name: f.default for f in fields(Dose) if f.name in _DOSE_KEYS}
_REQUIRED_DOSE = ("target_low", "target_high")
_OPTIONAL_DOSE = ("ramp_min", "ramp_max", "target_pain")  # may be absent (None, NaN)


@dataclass(frozen=True)
class TriggerPoint:
    """One trigger point of the session: ``name`` is what the therapist calls it (defaults to
    the muscle), ``side`` is "left", "right" or "" (midline / not applicable)."""

    name: str
    muscle: str
    side: str
    note: str
    dose: Dose

    @property
    def label(self) -> str:
        """Short label for screens and reports, e.g. "upper trapezius L"."""
        return f"{self.name} {self.side[0].upper()}" if self.side else self.name


@dataclass(frozen=True)
class SessionProtocol:
    """A session: trigger points in order, each with its dose.

    ``unit`` is the display/target unit (canonical spelling); ``contact_area_cm2`` is the
    contact area that turns force into pressure (required for a pressure unit, optional for a
    force unit, where it only lets pressure be shown too). ``source_path`` says where the
    protocol came from and takes no part in equality.
    """

    name: str
    description: str
    unit: str
    contact_area_cm2: float | None
    kind: str
    points: tuple[TriggerPoint, ...]
    source_path: str | None = field(default=None, compare=False)
    training: Training | None = None

    @property
    def _area(self) -> float:
        return math.nan if self.contact_area_cm2 is None else self.contact_area_cm2

    def band_n(self, point_index: int) -> tuple[float, float]:
        """Target band of point ``point_index`` (0-based) in newtons."""
        return self.points[point_index].dose.band_n(self._area)

    def ramp_n_per_s(self, point_index: int) -> tuple[float, float] | None:
        """Ramp corridor of point ``point_index`` (0-based) in N/s, or None."""
        return self.points[point_index].dose.ramp_n_per_s(self._area)

    def to_toml(self) -> str:
        """The protocol as TOML that ``load_protocol`` reads back to an equal protocol.

        The ``[dose]`` table gets, for each key, the value most points share; each point
        lists only the keys where it differs."""
        defaults: dict[str, Any] = {}
        for key in _DOSE_KEYS:
            values = [getattr(p.dose, key) for p in self.points]
            if key in _OPTIONAL_DOSE and any(map(_unset, values)):
                defaults[key] = None  # a point without it cannot override back to "none"
            elif values:
                defaults[key] = Counter(values).most_common(1)[0][0]
        document: dict[str, Any] = {"name": self.name, "description": self.description,
                                    "kind": self.kind, "unit": self.unit}
        if self.contact_area_cm2 is not None:
            document["contact_area_cm2"] = self.contact_area_cm2
        document["dose"] = {k: v for k, v in defaults.items() if v is not None}
        document["point"] = [_point_table(point, defaults) for point in self.points]
        if self.training is not None:
            document["training"] = self.training.to_table()
        header = (f"# Session protocol for palpation-recorder. Units: {self.unit}. Every key, "
                  "its unit and default: schemas/PROTOCOL.md\n")
        return header + tomli_w.dumps(document)


def _point_table(point: TriggerPoint, defaults: dict[str, Any]) -> dict[str, Any]:
    """A ``[[point]]`` table: its names, and the dose keys where it differs from [dose]."""
    table: dict[str, Any] = {"name": point.name, "muscle": point.muscle, "side": point.side}
    if point.note:
        table["note"] = point.note
    for key in _DOSE_KEYS:
        value = getattr(point.dose, key)
        if value != defaults.get(key) and not _unset(value):
            table[key] = value
    return table


def _unset(value: Any) -> bool:
    """An optional dose key left out: None (ramp) or NaN (target_pain)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


# ---------------------------------------------------------------------------------- loading

def load_protocol(path_or_text: str | Path, *, source: str | None = None) -> SessionProtocol:
    """Read and check a protocol from a file or from TOML text.

    A ``Path`` is a file. A ``str`` is TOML text if it contains a newline, ``=`` or ``[``,
    otherwise a file path. ``source`` names the text in error messages (default ``<text>``).
    Raises ``ProtocolError`` for anything wrong, with the line to fix.
    """
    source_path: str | None = None
    if isinstance(path_or_text, Path) or not any(c in path_or_text for c in "\n=["):
        path = Path(path_or_text)
        source_path = str(path)
        label = source or str(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ProtocolError(label, None, f"cannot read: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.count(b"\n", 0, exc.start) + 1
            raise ProtocolError(label, line, "not UTF-8 text (save the file as UTF-8)") from None
    else:
        text, label = path_or_text, source or "<text>"
    return _parse(text, label, source_path)


def _parse(text: str, label: str, source_path: str | None) -> SessionProtocol:
    text = text.removeprefix("\ufeff")  # some editors start UTF-8 files with a BOM
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise syntax_error(exc, text, label) from None
    return _Builder(data, KeyLines(text), label).build(source_path)


class _Builder:
    """Checks the parsed TOML and builds the protocol; every failure names its line."""

    def __init__(self, data: dict[str, Any], lines: KeyLines, label: str) -> None:
        self.data, self.lines, self.label = data, lines, label

    def fail(self, table: tuple, key: str | None, message: str) -> ProtocolError:
        return ProtocolError(self.label, self.lines.line(table, key), message)

    def where(self, table: tuple) -> str:
        if not table:
            return "at the top level"
        if isinstance(table[-1], int):  # the N-th table of an array of tables
            return f"in [[{'.'.join(table[:-1])}]] {table[-1]}"
        return f"in [{'.'.join(map(str, table))}]"

    # -- typed getters ---------------------------------------------------------------------
    def string(self, table: tuple, values: dict, key: str, default: str | None = None) -> str:
        if key not in values:
            if default is None:
                raise self.fail(table, None, f"missing required key {key!r} {self.where(table)}")
            return default
        value = values[key]
        if not isinstance(value, str):
            raise self.fail(table, key, f"{key} must be text in quotes, not {show(value)}")
        return value.strip()

    def number(self, table: tuple, key: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(table, key, f"{key} must be a number, not {show(value)}")
        if not math.isfinite(value):
            raise self.fail(table, key, f"{key} must be a finite number, not {value}")
        if value < 0:
            raise self.fail(table, key, f"{key} must not be negative (got {value})")
        return float(value)

    def check_keys(self, table: tuple, values: dict, known: tuple[str, ...]) -> None:
        for key in values:
            if key not in known:
                raise self.fail(table, key, f"unknown key {key!r} {self.where(table)}"
                                f"{suggest(key, known)}")

    # -- the protocol ----------------------------------------------------------------------
    def build(self, source_path: str | None) -> SessionProtocol:
        data, top = self.data, ()
        for key in data:
            if key not in _TOP_KEYS:
                hint = suggest(key, _TOP_KEYS)
                if key in _DOSE_KEYS:
                    hint = " (dose keys go under [dose] or inside a [[point]])"
                value = data[key]
                tables = isinstance(value, list) and value and all(
                    isinstance(v, dict) for v in value)
                what = "table" if isinstance(value, dict) or tables else "key"
                raise self.fail(top, key, f"unknown {what} {key!r} at the top level{hint}")
        name = self.string(top, data, "name")
        if not name:
            raise self.fail(top, "name", "name must not be empty")
        description = self.string(top, data, "description", "")
        kind = self.string(top, data, "kind")
        if kind not in KINDS:
            raise self.fail(top, "kind", f"unknown kind {kind!r} (use one of "
                            f"{', '.join(KINDS)}){suggest(kind, KINDS)}")
        unit = self.unit(self.string(top, data, "unit"))
        area: float | None = None
        if "contact_area_cm2" in data:
            area = self.number(top, "contact_area_cm2", data["contact_area_cm2"])
            if area == 0:
                raise self.fail(top, "contact_area_cm2", "contact_area_cm2 must be above 0")
            if problem := area_problem(area):
                raise self.fail(top, "contact_area_cm2", problem)
        if area is None and is_pressure(unit):
            raise self.fail(top, "unit", f"unit {unit} is a pressure: set contact_area_cm2 "
                            "(e.g. 1.0 for a 1 cm² algometer tip, about 2 for a thumb)")

        defaults = data.get("dose", {})
        if not isinstance(defaults, dict):
            raise self.fail(top, "dose", "dose must be a table: write [dose] and keys below it")
        self.check_keys(("dose",), defaults, _DOSE_KEYS)
        defaults = {k: (v, ("dose",)) for k, v in defaults.items()}

        raw_points = data.get("point")
        if raw_points is None:
            raise self.fail(top, None, "no trigger points: add at least one [[point]] table")
        if not isinstance(raw_points, list) or not all(isinstance(p, dict) for p in raw_points):
            raise self.fail(top, "point", "point must be written as [[point]] tables")
        if not raw_points:
            raise self.fail(top, "point", "no trigger points: add at least one [[point]] table")
        points = tuple(self.point(i, raw, unit, area, defaults)
                       for i, raw in enumerate(raw_points, 1))
        training = parse_training(self, data["training"]) if "training" in data else None
        return SessionProtocol(name, description, unit, area, kind, points, source_path,
                               training)

    def unit(self, text: str) -> str:
        try:
            unit = canonical_unit(text)
        except ValueError:
            unit = None
        if unit not in DISPLAY_UNITS:
            raise self.fail((), "unit", f"unknown unit {text!r} (use one of "
                            f"{', '.join(DISPLAY_UNITS)})")
        return unit

    def point(self, index: int, raw: dict, unit: str, area: float | None,
              defaults: dict) -> TriggerPoint:
        table = ("point", index)
        self.check_keys(table, raw, _POINT_KEYS + _DOSE_KEYS)
        muscle = self.string(table, raw, "muscle", "")
        name = self.string(table, raw, "name", "") or muscle
        if not name:
            raise self.fail(table, None, f"[[point]] {index} needs a muscle or a name")
        side_text = self.string(table, raw, "side", "")
        side = _SIDE_ALIASES.get(side_text.lower())
        if side is None:
            raise self.fail(table, "side", f"unknown side {side_text!r} in [[point]] {index} "
                            "(use \"left\", \"right\" or \"\" for none)")
        note = self.string(table, raw, "note", "")
        merged = {**defaults, **{k: (v, table) for k, v in raw.items() if k in _DOSE_KEYS}}
        return TriggerPoint(name, muscle, side, note,
                            self.dose(index, name, unit, area, merged))

    def dose(self, index: int, name: str, unit: str, area: float | None,
             merged: dict) -> Dose:
        """``merged`` maps each dose key given to (value, table it was written in); values
        are checked for type, order and plausible range (``schemas.protocol_limits``)."""
        where = f"[[point]] {index} ({name})"
        values: dict[str, Any] = {}
        for key in _DOSE_KEYS:
            if key not in merged:
                if key in _REQUIRED_DOSE:
                    raise self.fail(("point", index), None, f"{where} has no {key}: set it in "
                                    "[dose] or in this point")
                values[key] = _DOSE_DEFAULTS[key]
                continue
            value, table = merged[key]
            if key == "stop_on_button":
                if not isinstance(value, bool):
                    raise self.fail(table, key, f"{key} must be true or false, not "
                                    f"{show(value)}")
            elif key == "repetitions":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise self.fail(table, key, "repetitions must be a whole number of at "
                                    f"least 1, not {show(value)}")
            else:
                value = self.number(table, key, value)
            values[key] = value

        def order(low: str, high: str, what: str) -> None:
            if values[low] is None or values[high] is None or values[low] <= values[high]:
                return
            # point at the key written closest to the point: that is where to look first
            table, key = merged[low][1], low
            if merged[high][1][:1] == ("point",):
                table, key = merged[high][1], high
            raise self.fail(table, key, f"{where}: {low} ({values[low]:g}) is above "
                            f"{high} ({values[high]:g}); the {what} is upside down")

        order("target_low", "target_high", "target band")
        order("min_hold_s", "max_hold_s", "hold range")
        order("ramp_min", "ramp_max", "ramp corridor")
        if values["target_high"] == 0:
            raise self.fail(merged["target_high"][1], "target_high",
                            f"{where}: target_high must be above 0")
        if problem := dose_problem(values, unit, area):
            key, message = problem
            raise self.fail(merged[key][1], key, f"{where}: {message}")
        return Dose(unit=unit, **values)


# ---------------------------------------------------------------------------------- presets

def _preset_files() -> dict[str, Any]:
    folder = resources.files("schemas") / _PRESET_DIR
    return {f.name.removesuffix(".toml"): f for f in folder.iterdir()
            if f.name.endswith(".toml")}


def list_presets() -> list[tuple[str, str]]:
    """(id, one-line description) of every protocol shipped with the package, sorted by id."""
    out = []
    for preset_id, _ in sorted(_preset_files().items()):
        protocol = load_preset(preset_id)
        first = (protocol.description.strip().splitlines() or [protocol.name])[0]
        out.append((preset_id, first))
    return out


def load_preset(preset_id: str) -> SessionProtocol:
    """A protocol shipped with the package, by id (``nmt-static``, ``ischemic``, ...)."""
    files = _preset_files()
    if preset_id not in files:
        raise ProtocolError(preset_id, None, "no such preset (presets: "
                            f"{', '.join(sorted(files))})")
    resource = files[preset_id]
    return _parse(resource.read_text(encoding="utf-8"), f"preset {preset_id}", str(resource))


def resolve_protocol(name_or_path: str | Path) -> SessionProtocol:
    """A preset id or a protocol file. A preset id wins unless the string looks like a path
    (has a ``/`` or ends in ``.toml``); anything else must name an existing file.
    ``ProtocolError`` says which presets exist when it is neither."""
    if isinstance(name_or_path, Path):
        return load_protocol(name_or_path)
    text = name_or_path.strip()
    looks_like_path = "/" in text or "\\" in text or text.lower().endswith(".toml")
    presets = _preset_files()
    if not looks_like_path and text in presets:
        return load_preset(text)
    if looks_like_path or Path(text).is_file():
        return load_protocol(Path(text))
    raise ProtocolError(text, None, "neither a preset nor a protocol file (presets: "
                        f"{', '.join(sorted(presets))}; a file path should end in .toml)")


def protocol_of(recording) -> SessionProtocol | None:
    """The session protocol a recording stored (its /session protocol_toml), if readable."""
    text = (recording.session or {}).get("protocol_toml") or ""
    if not text:
        return None
    try:
        return load_protocol(text, source=str(recording.path))
    except ProtocolError:
        return None
