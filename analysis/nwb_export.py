"""One recording as an NWB file (Neurodata Without Borders), for pynwb, NWB Inspector and
DANDI.

Why: a lab's pipeline reads NWB, not this recorder's HDF5 (which only borrows NWB's
``TimeSeries`` conventions). The file holds:

* ``/acquisition/force``: a ``TimeSeries`` in newtons on the fitted device timestamps, the
  recording's force values unchanged (a series whose timestamps are regular to the
  nanosecond, as a simulated ideal clock gives, is stored as starting time and rate instead,
  as NWB asks); ``/acquisition/raw_counts`` the sensor's readings (unit ``counts``) on the
  same timestamps.
* ``/intervals/holds``: a ``TimeIntervals`` table, one row per hold as the hold table
  measures it (``analysis.metrics.recording_metrics``: trigger point, repetition, feedback
  condition, score, complete, ...), each column described with its unit.
* ``/events/<kind>``: one ``EventsTable`` per event kind (pain ratings, button, markers,
  blind on/off, trigger points, notes, ...), with the event's value and text.
* metadata: the subject's code as ``Subject.subject_id`` (a pseudonym; species Homo sapiens,
  sex and age not recorded: ``U`` and ``P0D/``), the trainee as experimenter, the session
  label as ``session_id``, the session protocol (TOML) as ``protocol``, the device as a
  ``Device`` with its ``DeviceModel``, and the rest (session, device and calibration
  attributes, provenance, whether the file was still being recorded) as JSON in
  ``data_collection``.

pynwb is imported only here, and only when an NWB export is asked for (the ``nwb`` extra).
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from analysis.definitions import METRICS
from analysis.metrics import HoldMetrics
from schemas.hdf5 import open_hdf5, reading
from schemas.reader import Recording
from schemas.session_protocol import protocol_of
from schemas.validate import load_schema

__all__ = ["NWB_MISSING", "require_pynwb", "write_nwb"]

NWB_MISSING = "NWB export needs pynwb: pip install 'palpation-recorder[nwb]'"
SPECIES = "Homo sapiens"
KEYWORDS = ("manual therapy", "palpation", "pressure", "force", "trigger point")
AGE_UNKNOWN = "P0D/"  # ISO 8601 open range "0 days or older": the recorder keeps no age
FORCE = "/acquisition/force/data"
_TIME_COLUMNS = ("start_s", "end_s")  # the table's start_time and stop_time


def require_pynwb():
    """The pynwb module; ValueError (one line naming the extra) when it is not installed."""
    try:
        import pynwb
    except ImportError:
        raise ValueError(NWB_MISSING) from None
    return pynwb


def write_nwb(rec: Recording, out: Path, doc: dict[str, Any],
              metrics: list[HoldMetrics]) -> None:
    """Write ``rec`` to ``out`` as NWB; ``doc`` is ``analysis.export.recording_document``
    (kept as JSON in ``data_collection``), ``metrics`` the recording's holds in order."""
    pynwb = require_pynwb()
    nwb = _nwbfile(pynwb, rec, doc)
    device = _device(pynwb, rec)
    nwb.add_device_model(device.model)
    nwb.add_device(device)
    force = _series(pynwb, "force", rec.force, "newtons", rec, _resolution(rec),
                    "calibrated, tared force on the sensor, compression positive")
    nwb.add_acquisition(force)
    nwb.add_acquisition(_series(pynwb, "raw_counts", rec.raw_counts, "counts", rec, 1.0,
                                "the sensor's readings as sent, before calibration", force))
    if metrics:
        nwb.add_time_intervals(_holds(pynwb, metrics))
    for table in _events(pynwb, rec):
        nwb.add_events_table(table)
    with pynwb.NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)


def _nwbfile(pynwb, rec: Recording, doc: dict[str, Any]):
    s = rec.session
    prov = doc["provenance"]
    protocol = protocol_of(rec)
    proto = (protocol.name if protocol else s.get("protocol")) or "none named"
    text = (f"Pressure applied by a manual therapist with a hand-held force sensor "
            f"({rec.device.get('model') or 'unknown sensor'}), protocol: {proto}; "
            f"exported by palpation-recorder {prov['analysed_with']} from {rec.path.name}")
    if prov["still_recording"]:
        text += " while it was still being recorded (not finalised: it may be cut short)"
    subject = s.get("subject", "")
    label = str(s.get("session_label", "")).replace("/", "-")
    return pynwb.NWBFile(
        session_description=text, identifier=str(uuid.uuid4()),
        session_start_time=rec.session_start, session_id=label or None,
        experimenter=[s["trainee"]] if s.get("trainee") else None,
        protocol=s.get("protocol_toml") or None, notes=s.get("notes") or None,
        experiment_description=protocol.description if protocol else None,
        keywords=list(KEYWORDS), institution=s.get("site") or None,
        was_generated_by=[["palpation-recorder (recording)", str(rec.software_version)],
                          ["palpation-recorder (export, holds)", prov["analysed_with"]]],
        data_collection=json.dumps({k: v for k, v in doc.items()
                                    if k not in ("columns", "events", "holds", "protocol_toml")},
                                   allow_nan=False),
        subject=pynwb.file.Subject(
            subject_id=str(subject).replace("/", "-") or "unknown", species=SPECIES,
            sex="U", age=AGE_UNKNOWN,
            description=("the subject's pseudonym or code as recorded (palpation record "
                         "--subject)" if subject else "no subject code was recorded")
            + "; sex and age are not recorded"))


def _device(pynwb, rec: Recording):
    d = rec.device
    cal = rec.calibration
    model = pynwb.device.DeviceModel(
        name=(d.get("model") or "unknown sensor").replace("/", "-"), manufacturer="unknown",
        description=f"sensor kind {d.get('sensor_kind') or 'unknown'}, link "
                    f"{d.get('link') or 'unknown'}, firmware {d.get('firmware_version') or '?'}")
    return pynwb.device.Device(
        name="force_sensor", serial_number=d.get("device_id") or None, model=model,
        description=(f"hand-held force sensor; calibration source {cal.get('source', '')}, "
                     f"id {cal.get('calibration_id') or 'none'} (full record in "
                     f"data_collection)"))


def _series(pynwb, name: str, data: np.ndarray, unit: str, rec: Recording, resolution: float,
            description: str, timestamps_of=None):
    """A TimeSeries on the recording's timestamps (those of ``timestamps_of`` if given)."""
    from hdmf.backends.hdf5 import H5DataIO

    t = np.asarray(rec.timestamps)
    timing: dict[str, Any] = {"timestamps": timestamps_of if timestamps_of is not None else t}
    if t.size > 2 and np.unique(np.diff(t).round(9)).size == 1 and t[1] > t[0]:
        timing = {"starting_time": float(t[0]), "rate": float(1.0 / (t[1] - t[0]))}
    return pynwb.TimeSeries(name=name, data=H5DataIO(np.asarray(data), compression="gzip"),
                            unit=unit, resolution=resolution, description=description,
                            continuity="continuous", **timing)


def _resolution(rec: Recording) -> float:
    """Newtons per count as the file states it (RECORDING.md: ``resolution``); -1 unknown."""
    with open_hdf5(rec.path) as f, reading(rec.path, FORCE):
        value = float(f[FORCE].attrs.get("resolution", math.nan))
    return value if math.isfinite(value) and value > 0 else -1.0


def _holds(pynwb, metrics: list[HoldMetrics]):
    table = pynwb.epoch.TimeIntervals(
        name="holds", description="one row per hold, as palpation analyze's hold table "
                                  "measures it (analysis/TABLE.md); times in session seconds")
    names = [f.name for f in fields(HoldMetrics) if f.name not in _TIME_COLUMNS]
    for name in names:
        m = METRICS[name]
        unit = f" [{m.unit}]" if m.unit else ""
        table.add_column(name=name, description=f"{m.name}{unit}: {m.definition}")
    for m in metrics:
        row = asdict(m)
        table.add_row(start_time=m.start_s, stop_time=m.end_s, **{k: row[k] for k in names})
    return table


def _events(pynwb, rec: Recording) -> list:
    """One EventsTable per event kind in the file, rows in time order: the event's value (when
    the kind has values), its text as the annotation, or, when every text of the kind is a
    JSON object (``clock_fit``), one column per key."""
    docs = {k["kind"]: k["doc"] for k in load_schema()["event_kinds"]}
    by_kind: dict[str, list] = {}
    for e in sorted(rec.events, key=lambda e: e.time):
        by_kind.setdefault(e.kind, []).append(e)
    tables = []
    for kind, evs in by_kind.items():
        table = pynwb.event.EventsTable(
            name=kind, description=docs.get(kind, f"events of kind {kind}"),
            source_description="palpation-recorder /events")
        columns: dict[str, list] = {"sample_index": [e.sample_index for e in evs]}
        if any(math.isfinite(e.value) for e in evs):
            columns["value"] = [e.value for e in evs]
        unpacked = _json_columns([e.text for e in evs])
        if unpacked:
            columns.update(unpacked)
        elif any(e.text for e in evs):
            columns["annotation"] = [e.text for e in evs]
        for name in columns:
            if name != "annotation":
                table.add_column(name=name, description=_EVENT_COLUMNS.get(
                    name, f"key {name!r} of the event's JSON text"))
        for i, e in enumerate(evs):
            table.add_event(timestamp=e.time, **{k: v[i] for k, v in columns.items()})
        tables.append(table)
    return tables


_EVENT_COLUMNS = {"sample_index": "index of the force sample at the event (-1: none)",
                  "value": "the event's value (see the table's description)"}


def _json_columns(texts: list[str]) -> dict[str, list]:
    """Columns of texts that are all JSON objects with the same keys and scalar values;
    {} otherwise."""
    try:
        objects = [json.loads(t) for t in texts]
    except ValueError:
        return {}
    if not all(isinstance(o, dict) and o.keys() == objects[0].keys() for o in objects):
        return {}
    columns = {k: [o[k] for o in objects] for k in objects[0] if k not in _EVENT_COLUMNS}
    if not all(isinstance(v, int | float | str) for c in columns.values() for v in c):
        return {}
    return columns
