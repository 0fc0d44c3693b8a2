"""The schema-v1 layout a new recording file is created with, and its attributes' typed values.

Why a module of its own: SWMR forbids creating objects once a file is in SWMR mode, so
``schemas.writer`` creates every group, dataset and attribute of ``recording-v1.json`` up front
(``create_layout``), from attribute values checked and typed here (``layout_attrs``); /summary's
values are typed by the same rules when the file is finalised (``summary_attrs``). Pure
functions of their arguments and the schema; the writer thread calls them, no state is kept.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import h5py
import numpy as np

from schemas.events import TABLES, fill_value
from schemas.validate import load_schema, schema_objects

SAMPLE_CHUNK_BYTES = 64 * 1024
TABLE_CHUNK_BYTES = 16 * 1024
MAX_ATTR_BYTES = 16 * 1024
FORCE_DESCRIPTION = "force on the hand-held sensor's tip, in newtons"


def layout_attrs(session_start: datetime, software_version: str, session: dict[str, Any],
                 device: dict[str, Any], calibration: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Typed values of every attribute present from creation on, by HDF5 path: the root's,
    and the metadata groups' from the given dicts (missing keys get their "unknown" value,
    unknown keys raise ValueError)."""
    return _typed_layout({
        "/": {
            "schema_version": load_schema()["schema_version"],
            "session_start": session_start.isoformat(timespec="milliseconds"),
            "software_version": software_version,
            "finalised": 0,
        },
        **_group_attrs(session, device, calibration),
    })


def create_layout(f: h5py.File, attrs: dict[str, dict[str, Any]]) -> dict[str, h5py.Dataset]:
    """Every group and dataset of the schema, with the attributes from layout_attrs; returns
    the datasets by path."""
    datasets = {}
    for spec in schema_objects():
        where = spec["path"]
        if spec["kind"] == "group":
            obj = f["/"] if where == "/" else f.create_group(where)
        else:
            dtype = TABLES[where][0] if where in TABLES else np.dtype(spec["dtype"])
            chunk = SAMPLE_CHUNK_BYTES if spec.get("per_sample") else TABLE_CHUNK_BYTES
            obj = f.create_dataset(
                where,
                shape=(0,),
                maxshape=(None,),
                dtype=dtype,
                chunks=(max(1, chunk // dtype.itemsize),),
                fillvalue=fill_value(dtype),
                fletcher32=True,
            )
            datasets[where] = obj
        for name, value in attrs[where].items():
            obj.attrs[name] = value
    return datasets


def summary_attrs(values: dict[str, Any]) -> dict[str, Any]:
    """/summary's attribute values (by schemas.events.Summary field) as the schema's types."""
    spec = {a["name"]: a for a in _object_spec("/summary")["attrs"]}
    return {name: _typed(spec[name], value, "/summary") for name, value in values.items()}


def _group_attrs(session: dict[str, Any], device: dict[str, Any],
                 calibration: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The attributes given for the groups below the root."""
    return {
        "/session": _metadata("/session", session),
        "/device": _metadata("/device", device),
        "/calibration": _metadata("/calibration", calibration),
        "/acquisition/force": {"description": FORCE_DESCRIPTION},
        "/acquisition/force/data": {"resolution": _resolution(calibration, device)},
    }


def _object_spec(where: str) -> dict[str, Any]:
    return next(o for o in schema_objects() if o["path"] == where)


def _metadata(where: str, given: dict[str, Any]) -> dict[str, Any]:
    """The attributes of a metadata group: given values, or the type's 'unknown' value."""
    specs = {a["name"]: a for a in _object_spec(where)["attrs"]}
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {', '.join(specs)}")
    values = {}
    for name, spec in specs.items():
        value = given.get(name)
        empty = value is None or (isinstance(value, str) and not value)
        if empty and spec.get("presence", "always") != "always":
            continue  # an optional attribute is written only when given a value
        if "value" in spec and value is not None and value != spec["value"]:
            raise ValueError(f"{where}: {name} must be {spec['value']!r}, got {value!r}")
        values[name] = _unknown(spec["type"]) if value is None else value
    return values


def _unknown(kind: str) -> Any:
    if kind == "str":
        return ""
    if kind.endswith("[]"):
        return np.zeros(0)
    return math.nan if kind.startswith("float") else 0


def _typed_layout(given: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Typed values of every attribute present from creation on, by HDF5 path."""
    attrs: dict[str, dict[str, Any]] = {}
    for spec in schema_objects():
        where = spec["path"]
        attrs[where] = {
            a["name"]: _typed(a, a["value"] if "value" in a else given[where][a["name"]], where)
            for a in spec["attrs"]
            if a.get("presence", "always") == "always" or a["name"] in given.get(where, {})
        }
    return attrs


def _typed(spec: dict[str, Any], value: Any, where: str) -> Any:
    """`value` as the schema's attribute type; strings over 16 KiB raise ValueError."""
    kind = spec["type"]
    if kind == "str":
        text = str(value)
        if len(text.encode("utf-8")) > MAX_ATTR_BYTES:
            raise ValueError(f"{where}: {spec['name']} is over {MAX_ATTR_BYTES} bytes")
        return text
    try:
        if kind.endswith("[]"):
            return np.asarray(value, dtype=kind.removesuffix("[]")).reshape(-1)
        return np.dtype(kind).type(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where}: {spec['name']}: cannot store {value!r} as {kind}") from None


def _resolution(calibration: dict[str, Any], device: dict[str, Any]) -> float:
    """Newtons per count: the slope of a linear calibration, else 1 / counts_per_newton."""
    coefficients = np.asarray(calibration.get("coefficients", ()), dtype=np.float64).reshape(-1)
    if calibration.get("source") != "none" and len(coefficients) == 2:
        slope = abs(float(coefficients[1]))
        if math.isfinite(slope) and slope > 0:
            return slope
    per_newton = float(device.get("counts_per_newton", math.nan))
    return 1.0 / per_newton if math.isfinite(per_newton) and per_newton > 0 else math.nan
