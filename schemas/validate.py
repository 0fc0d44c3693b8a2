"""Check an HDF5 file against the palpation recording schema (recording-v1.json).

`validate(path)` is what `palpation validate` runs. The smaller checks it is built from are
shared with the reader: opening a file a crashed writer left behind, identity (schema name and
version), layout (groups, datasets, dtypes, attributes) and equal per-sample lengths. Every
problem is reported as a RecordingFileError with a one-line message naming the file and the
HDF5 path, because the people running this are therapists, not HDF5 experts.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from schemas.agreement import check_force
from schemas.hdf5 import RecordingFileError, open_hdf5, reading
from schemas.recording_lock import held

SCHEMA_FILE = "recording-v1.json"
READ_BLOCK_BYTES = 8 << 20  # validate reads datasets in blocks of this size


@functools.cache
def load_schema() -> dict[str, Any]:
    """The machine-readable schema shipped with this package."""
    return json.loads(resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8"))


def schema_objects(kind: str | None = None) -> list[dict[str, Any]]:
    """The schema's groups and datasets in file order, optionally only one kind."""
    return [o for o in load_schema()["objects"] if kind is None or o["kind"] == kind]


def per_sample_paths() -> list[str]:
    """HDF5 paths of the per-sample datasets, which always have the same length."""
    return [o["path"] for o in schema_objects("dataset") if o.get("per_sample")]


def event_kinds() -> list[str]:
    """The event kinds this schema version defines."""
    return [k["kind"] for k in load_schema()["event_kinds"]]


def supported_major() -> int:
    """Major schema version this code reads and writes."""
    return int(load_schema()["schema_version"].split(".")[0])


def is_finalised(f: h5py.File) -> bool:
    """True when the writer closed the file normally."""
    try:
        return int(f.attrs.get("finalised", 0)) == 1
    except (TypeError, ValueError):
        return False


def check_identity(f: h5py.File, path: str | Path) -> str:
    """Refuse foreign files and files of a newer major schema version; return schema_version."""
    with reading(path, "/"):
        name = f.attrs.get("schema_name")
        version = _text(f.attrs.get("schema_version", ""))
    expected = load_schema()["schema_name"]
    if name is None:
        raise RecordingFileError(f"{path}: not a palpation recording (no schema_name attribute)")
    if _text(name) != expected:
        raise RecordingFileError(f"{path}: not a palpation recording (schema_name {_text(name)!r})")
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    if not match or int(match.group(1)) < supported_major():
        raise RecordingFileError(f"{path}: /: unsupported schema_version {version!r}")
    if int(match.group(1)) > supported_major():
        raise RecordingFileError(
            f"{path}: written by a newer palpation (schema {version}); upgrade palpation"
        )
    return version


def check_layout(f: h5py.File, path: str | Path, *, finalised: bool,
                 version: str | None = None) -> None:
    """Every group, dataset and attribute of the schema, with the right types.

    Attributes marked presence "finalised" are required only when `finalised` is true. A
    compound field marked "since" a version newer than `version` (the file's schema_version,
    as ``check_identity`` returns it; default: this schema's) is not expected: older files
    keep their narrower rows.
    """
    version = version or load_schema()["schema_version"]
    for spec in load_schema()["objects"]:
        with reading(path, spec["path"]):
            _check_object(f, path, spec, finalised, version)


def _compound_fields(spec: dict[str, Any], version: str) -> list[dict[str, Any]]:
    """The fields a compound dataset has in a file of schema `version`."""
    return [fld for fld in spec["fields"]
            if _version_key(fld.get("since", "0.0.0")) <= _version_key(version)]


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _check_object(f: h5py.File, path: str | Path, spec: dict[str, Any], finalised: bool,
                  version: str) -> None:
    where = spec["path"]
    obj = f.get(where)
    wanted = h5py.Group if spec["kind"] == "group" else h5py.Dataset
    if not isinstance(obj, wanted):
        state = "missing" if obj is None else f"not a {spec['kind']}"
        raise RecordingFileError(f"{path}: {where}: {spec['kind']} {state}")
    if spec["kind"] == "dataset":
        _check_dataset(obj, spec, f"{path}: {where}", version)
    for attr in spec["attrs"]:
        presence = attr.get("presence", "always")
        required = presence == "always" or (presence == "finalised" and finalised)
        if attr["name"] in obj.attrs:
            _check_attr(obj.attrs[attr["name"]], attr, f"{path}: {where}")
        elif required:
            raise RecordingFileError(f"{path}: {where}: attribute {attr['name']!r} missing")


def check_lengths(f: h5py.File, path: str | Path) -> None:
    """All per-sample datasets hold the same number of rows."""
    paths = per_sample_paths()
    reference = len(f[paths[0]])
    for where in paths[1:]:
        if len(f[where]) != reference:
            raise RecordingFileError(
                f"{path}: {where}: length {len(f[where])}, expected {reference} "
                f"(as {paths[0]})"
            )


def validate(path: str | Path, *, deep: bool = False) -> None:
    """Raise RecordingFileError unless `path` is a complete, finalised recording of schema v1;
    ``deep`` also re-derives the force from the raw counts (``schemas.agreement``)."""
    with open_hdf5(path) as f:
        version = check_identity(f, path)
        with reading(path, "/"):
            finalised = is_finalised(f)
        if not finalised:
            raise RecordingFileError(_unfinished(path))
        check_layout(f, path, finalised=True, version=version)
        with reading(path, "per-sample datasets"):
            check_lengths(f, path)
        check_data(f, path)
        if deep:
            check_force(f, path)


def _unfinished(path: str | Path) -> str:
    """Why an unfinished file is not valid yet: still being recorded (wait for the recorder
    to finish it), or left by an interrupted writer (recover it)."""
    if held(path):
        return (f"{path}: still being recorded (not finalised yet); validate it once the "
                "recording has ended")
    return f"{path}: recording not finalised (interrupted?); run `palpation recover {path}`"


def check_data(f: h5py.File, path: str | Path) -> None:
    """Read every chunk of every dataset, so that HDF5 verifies each chunk's Fletcher-32
    checksum (files written since the checksums were added) and a damaged chunk is named."""
    for spec in schema_objects("dataset"):
        with reading(path, spec["path"]):
            ds = f[spec["path"]]
        step = ds.chunks[0] if ds.chunks else len(ds) or 1
        block = step * max(1, READ_BLOCK_BYTES // max(1, step * ds.dtype.itemsize))
        for start in range(0, len(ds), block):
            if _readable(ds, start, start + block):
                continue
            for first in range(start, min(len(ds), start + block), step):
                last = min(len(ds), first + step)
                if not _readable(ds, first, last):
                    raise RecordingFileError(
                        f"{path}: {spec['path']}: rows {first}..{last - 1} are damaged "
                        "(their checksum does not verify)")


def _readable(ds: h5py.Dataset, start: int, stop: int) -> bool:
    try:
        ds[start:stop]
    except (OSError, RuntimeError):
        return False
    return True


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.names:
        return "compound(" + ", ".join(f"{n}:{_dtype_name(dtype[n])}" for n in dtype.names) + ")"
    return f"S{dtype.itemsize}" if dtype.kind == "S" else dtype.name


def _check_dataset(ds: h5py.Dataset, spec: dict[str, Any], where: str, version: str) -> None:
    if ds.ndim != spec["rank"]:
        raise RecordingFileError(f"{where}: rank {ds.ndim}, expected {spec['rank']}")
    if spec["dtype"] == "compound":
        expected = np.dtype([(fld["name"], fld["dtype"])
                             for fld in _compound_fields(spec, version)])
    else:
        expected = np.dtype(spec["dtype"])
    if ds.dtype != expected:
        raise RecordingFileError(
            f"{where}: dtype {_dtype_name(ds.dtype)}, expected {_dtype_name(expected)}"
        )


def _check_attr(value: Any, spec: dict[str, Any], where: str) -> None:
    name, kind = spec["name"], spec["type"]
    text = isinstance(value, str | bytes)
    arr = np.asarray(value)
    got = "str" if text else _dtype_name(arr.dtype) + ("[]" if arr.ndim else "")
    if kind == "str":
        ok = text
    else:
        rank = 1 if kind.endswith("[]") else 0
        ok = not text and arr.ndim == rank and arr.dtype == np.dtype(kind.removesuffix("[]"))
    if not ok:
        raise RecordingFileError(f"{where}: attribute {name!r} has type {got}, expected {kind}")
    if "value" in spec and (_text(value) if kind == "str" else value) != spec["value"]:
        raise RecordingFileError(
            f"{where}: attribute {name!r} is {_text(value)!r}, expected {spec['value']!r}"
        )
    if spec.get("format") == "iso8601":
        try:
            stamp = datetime.fromisoformat(_text(value))
        except ValueError:
            stamp = None
        if stamp is None or stamp.tzinfo is None:
            raise RecordingFileError(
                f"{where}: attribute {name!r} is {_text(value)!r}, "
                "expected an ISO-8601 time with UTC offset"
            )

