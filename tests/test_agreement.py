"""A recording agrees with itself (validate --deep), and a moved zero reads zero at rest."""

import json
import threading

import numpy as np
import pytest
from conftest import run_palpation

from firmware_bridge.sim.device import AppliedLoad, SimulatedSensor
from firmware_bridge.sim.imperfect import Imperfections
from firmware_bridge.sim.server import PtyServer
from firmware_bridge.sim.truth import zero_counts_at
from recorder.session import RecordingSession, SessionOptions
from schemas.calibration import Calibration, CalPoint, fit
from schemas.events import Event
from schemas.hdf5 import RecordingFileError
from schemas.reader import open_recording
from schemas.tare import Tare
from schemas.validate import validate
from schemas.writer import RecordingWriter

TRUE_CPN, FIRST_ZERO = 4000.0, 80_000.0


def calibration(device_id: str, zero: float, cpn: float) -> Calibration:
    """A calibration made on 'calibration day', when the sensor's zero was ``zero``."""
    loads = np.linspace(0.0, 100.0, 6)
    points = [CalPoint(f, zero + cpn * f, "load" if f else "tare") for f in loads]
    return Calibration.from_fit(fit(points), device={"device_id": device_id},
                                software_version="test")


def write(path, force_of, tare_zero=FIRST_ZERO + 800.0):
    """A file whose force column is ``force_of(raw, tare)``, claiming the tared calibration."""
    cal = calibration("DEV-1", FIRST_ZERO, TRUE_CPN)
    tare = Tare(tare_zero, cal)
    w = RecordingWriter(path, session={}, device={"device_id": "DEV-1"},
                        calibration=tare.attrs(), software_version="test")
    n = 2000
    raw = (tare_zero + TRUE_CPN * 10 * np.sin(np.arange(n) / 300) ** 2).astype(np.int32)
    t = np.arange(n) / 1000
    w.append_samples(data=force_of(raw, tare), timestamps=t, raw_counts=raw,
                     device_tick_us=(t * 1e6).astype(np.int64), sequence=np.arange(n),
                     host_time=t, flags=np.zeros(n, np.uint8))
    w.append_events([Event(0.0, "tare", value=tare_zero, sample_index=0)])
    w.close()


def test_deep_validation_refuses_a_force_column_that_ignores_the_tare(tmp_path):
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    write(good, lambda raw, tare: tare.newtons(raw))
    write(bad, lambda raw, tare: tare.calibration.force(raw))  # untared: the old bug
    validate(good, deep=True)
    validate(bad)  # the layout is fine: only the deep check can see this
    with pytest.raises(RecordingFileError, match="disagree with raw counts") as err:
        validate(bad, deep=True)
    assert str(err.value).startswith(str(bad)) and "\n" not in str(err.value)
    done = run_palpation("validate", "--deep", str(bad))
    assert done.returncode == 1 and done.stderr.count("\n") == 1


def test_a_zero_moved_since_calibration_day_still_reads_zero_at_rest(tmp_path):
    """The zero moves between power-ups; the start-up tare applies to the saved calibration."""
    sensor = SimulatedSensor(seed=5, load=AppliedLoad(0.0),
                             imperfections=Imperfections(zero_shift_n=3.0))
    cal = calibration("SIM-0001", sensor.adc.offset_counts, sensor.adc.counts_per_newton)
    out = tmp_path / "rest.h5"
    server = PtyServer(sensor)
    try:
        session = RecordingSession(SessionOptions(port=server.start(), out=out,
                                                  calibration=cal))
        session.start()
        threading.Event().wait(1.5)
        session.stop()
    finally:
        server.close()
    rec = open_recording(out)
    truth = sensor.truth()
    shift_n = (float(zero_counts_at(truth, rec.sequence[:1])[0]) - sensor.adc.offset_counts) \
        / sensor.adc.counts_per_newton
    assert abs(shift_n) > 1.0  # the zero really moved since calibration day
    noise_n = sensor.adc.noise_counts / sensor.adc.counts_per_newton
    print(f"\nzero moved {shift_n:+.2f} N since calibration day: rest force median "
          f"{float(np.median(rec.force)):+.4f} N (noise SD {noise_n:.4f} N)")
    assert abs(float(np.median(rec.force))) <= 3 * noise_n
    assert json.loads(rec.calibration["json"])["id"] == cal.id
    validate(out, deep=True)
