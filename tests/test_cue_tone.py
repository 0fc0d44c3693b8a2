"""The eyes-free cue: the pitch mapping and the tone generator rendered to buffers and measured
with an FFT, and the Qt audio output on a machine without a sound device."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from recorder.cue_audio import cue_now
from recorder.cue_tone import (
    AMPLITUDE,
    BAND_HZ,
    HIGH_HZ,
    LOW_HZ,
    PULSE_HZ,
    ToneRenderer,
    cue_frequency,
    is_pulsed,
)
from recorder.session import RecordingSession, SessionOptions
from schemas.reader import open_recording
from schemas.session_protocol import load_preset
from schemas.training import Training, TrainingBlock
from tests.conftest import ROOT, run_palpation

RATE = 48_000
BLOCK = 2_400  # 50 ms, the Qt part's block
BAND = (25.5, 34.5)  # the simulator's default dose: 30 N +- 15 %; rest below 3 N


def render_force(force_n: float, seconds: float) -> np.ndarray:
    """The cue for a steady force, rendered in 50 ms blocks as the Qt part does."""
    r = ToneRenderer(RATE)
    freq = cue_frequency(force_n, BAND)
    blocks = [r.render(freq, BLOCK, is_pulsed(freq)) for _ in range(round(seconds * RATE / BLOCK))]
    return np.concatenate(blocks)


def peak_hz(x: np.ndarray) -> float:
    """The strongest frequency of ``x``: Hann window, 8x zero padding (0.06 Hz bins on 2 s),
    parabolic interpolation of the peak bin."""
    n = 8 * len(x)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * RATE / n


def semitones_up(hz: float) -> float:
    return 12 * math.log2(hz / BAND_HZ)


def test_in_band_is_a_steady_440_hz():
    x = render_force(30.0, 2.0)[RATE // 10:]  # past the 10 ms start fade
    assert abs(peak_hz(x) - 440.0) < 1.0
    # steady: the same loudness in every 25 ms window
    rms = np.sqrt(np.mean(x[: len(x) // 1200 * 1200].reshape(-1, 1200) ** 2, axis=1))
    assert rms.min() > 0.95 * AMPLITUDE / math.sqrt(2)


@pytest.mark.parametrize(("force", "semitones"), [
    (34.5 * 1.15, 2 + 15 / 4),  # 15 % over the top: a whole tone + 3.75 semitones
    (34.5 * 1.40, 2 + 40 / 4),
    (25.5 * 0.90, -(2 + 10 / 4)),  # 10 % under the bottom: falls
    (25.5 * 0.80, -(2 + 20 / 4)),
])
def test_outside_the_band_the_measured_pitch_follows_the_documented_mapping(force, semitones):
    want = BAND_HZ * 2 ** (semitones / 12)
    assert cue_frequency(force, BAND) == pytest.approx(want)
    x = render_force(force, 2.0)[RATE // 10:]
    assert abs(peak_hz(x) - want) < 1.0, (force, peak_hz(x), want)


def test_pitch_is_clamped_to_the_audible_range():
    assert cue_frequency(34.5 * 3, BAND) == HIGH_HZ
    assert cue_frequency(25.5 * 0.5, BAND) == LOW_HZ
    assert abs(peak_hz(render_force(34.5 * 3, 1.0)[RATE // 10:]) - HIGH_HZ) < 1.0


def test_pitch_never_falls_as_the_force_grows_and_steps_at_both_edges():
    forces = np.linspace(3.0, 80.0, 2000)
    freqs = np.array([cue_frequency(float(f), BAND) for f in forces])
    assert np.all(np.diff(freqs) >= 0)
    assert semitones_up(cue_frequency(25.49, BAND)) == pytest.approx(-2.0, abs=0.01)
    assert semitones_up(cue_frequency(34.51, BAND)) == pytest.approx(2.0, abs=0.01)
    measured = [peak_hz(render_force(f, 1.0)[RATE // 10:]) for f in (12.0, 20.0, 30.0, 38.0, 45.0)]
    assert all(b > a + 10 for a, b in zip(measured, measured[1:], strict=False)), measured


def test_silence_at_rest_and_without_a_band():
    # the hold detector starts at 10 % of the target (3 N here): below it, nothing
    assert cue_frequency(2.9, BAND) is None
    assert cue_frequency(3.1, BAND) == LOW_HZ
    assert cue_frequency(math.nan, BAND) is None
    assert cue_frequency(30.0, None) is None
    assert cue_frequency(30.0, (0.0, math.nan)) is None
    assert not np.any(render_force(1.0, 0.5))


def test_below_the_band_pulses_in_the_band_does_not():
    assert is_pulsed(cue_frequency(20.0, BAND)) and not is_pulsed(cue_frequency(40.0, BAND))
    x = render_force(20.0, 2.0)[RATE // 10:]
    window = RATE // 100  # 10 ms: shorter than a 4 Hz pulse's gap
    rms = np.sqrt(np.mean(x[: len(x) // window * window].reshape(-1, window) ** 2, axis=1))
    assert rms.min() < 0.05 * rms.max()
    envelope = np.fft.rfft(rms - rms.mean())
    assert np.argmax(np.abs(envelope)) * 100 / len(rms) == pytest.approx(PULSE_HZ, abs=0.3)


def max_step(f_hz: float) -> float:
    """The largest change between two samples of a sine at ``f_hz`` at full cue amplitude."""
    return AMPLITUDE * 2 * math.pi * f_hz / RATE


def test_blocks_join_without_a_click():
    r = ToneRenderer(RATE)
    sizes = [37, 2400, 1, 999, 2400, 513] * 4
    whole = ToneRenderer(RATE).render(BAND_HZ, sum(sizes))
    x = np.concatenate([r.render(BAND_HZ, n) for n in sizes])
    np.testing.assert_allclose(x, whole, atol=1e-6)  # blocks are one continuous tone
    assert np.abs(np.diff(x)).max() <= max_step(BAND_HZ) * 1.001


def test_pitch_changes_start_and_stop_are_click_free():
    r = ToneRenderer(RATE)
    plan = [None, 440.0, 440.0, 611.0, 1760.0, 300.0, 220.0, None, None, 880.0, None]
    x = np.concatenate([np.zeros(1, np.float32)]
                       + [r.render(f, BLOCK, is_pulsed(f)) for f in plan] + [np.zeros(1)])
    steps = np.abs(np.diff(x))
    assert steps.max() <= max_step(1760.0) * 1.001
    # each start fades in and each stop fades out: the first and last 5 samples of a start
    # and a stop are quiet, and silence after a stop is exact
    start = 1 + BLOCK
    assert np.abs(x[start:start + 5]).max() < 0.01 * AMPLITUDE
    stop = 1 + 7 * BLOCK
    assert np.abs(x[stop + 475:stop + BLOCK]).max() < 0.01 * AMPLITUDE
    assert not np.any(x[stop + BLOCK:stop + 2 * BLOCK])


def session_under(tmp_path, training: Training | None) -> RecordingSession:
    """A real session (not started: nothing is opened) on nmt-static, whose first point's band
    is 30-50 N (target 40 N), under ``training``."""
    protocol = replace(load_preset("nmt-static"), training=training)
    return RecordingSession(SessionOptions(port=str(tmp_path / "no-port"),
                                           out=tmp_path / "never.h5", protocol=protocol))


def test_the_cue_follows_the_feedback_schedule(tmp_path):
    plain = session_under(tmp_path, None)
    assert plain.protocol.band_n(0) == (30.0, 50.0)
    assert cue_now(plain, 40.0) == BAND_HZ and cue_now(plain, 55.0) > BAND_HZ
    retention = session_under(tmp_path, Training(blocks=(TrainingBlock("test", 5, "none"),)))
    assert cue_now(retention, 40.0) is None and cue_now(retention, 55.0) is None
    # bandwidth 10 %: no cue within 36-44 N, the usual cue outside it
    bandwidth = session_under(tmp_path, Training(blocks=(
        TrainingBlock("bw", 5, "bandwidth", bandwidth_pct=10.0),)))
    assert cue_now(bandwidth, 40.0) is None and cue_now(bandwidth, 43.9) is None
    assert cue_now(bandwidth, 35.0) == BAND_HZ
    assert cue_now(bandwidth, 55.0) == cue_frequency(55.0, (30.0, 50.0))
    assert cue_now(bandwidth, 1.0) is None  # at rest, as ever


def test_no_audio_device_degrades_to_one_line():
    """Offscreen, on this machine without a sound card, the Qt part says so in one line and
    returns no cue; the session it was given is untouched (it never reads it)."""
    code = ("import sys\n"
            "from recorder.qtstart import start_qt\n"
            "from recorder.cue_audio import open_audio_cue\n"
            "app = start_qt()\n"
            "print('cue', open_audio_cue(None))\n")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT, env=env)
    assert run.returncode == 0, run.stderr
    if "no audio output device" not in run.stderr:
        pytest.skip("this machine has an audio output")
    assert run.stdout.strip() == "cue None"
    assert run.stderr.strip() == "audio cue: no audio output device; recording without it"


def test_record_without_an_audio_device_goes_on_with_one_line(tmp_path):
    out = tmp_path / "cue.h5"
    run = run_palpation("record", "--simulate", "--out", str(out), "--duration", "2",
                        "--audio-cue", env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert run.returncode == 0, run.stderr
    if "no audio output device" not in run.stderr:
        pytest.skip("this machine has an audio output")
    cue_lines = [line for line in run.stderr.splitlines() if "audio" in line.lower()]
    assert cue_lines == ["audio cue: no audio output device; recording without it"]
    assert open_recording(out).force.size > 1000  # 2 s at 1 kHz, recorded all the same


def test_audio_cue_needs_the_window(tmp_path):
    run = run_palpation("record", "--simulate", "--out", str(tmp_path / "x.h5"), "--headless",
                        "--audio-cue")
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        "palpation: error: --audio-cue plays from the live window; drop --headless"]
    assert not (tmp_path / "x.h5").exists()


# ---- through a real sound server: a private PulseAudio with a null sink ----------------------

IN_BAND_N, ABOVE_N = 40.0, 60.0  # nmt-static's first point: band 30-50 N
ABOVE_HZ = BAND_HZ * 2 ** ((2 + 20 / 4) / 12)  # 20 % over the top: 7 semitones, 659.3 Hz


def play_cue_plan(out: str) -> None:
    """(Run in a child process.) The cue of a real session on the simulated sensor, on the
    default audio output: 1.5 s at rest (silent, while the audio stream starts), 1.5 s at
    IN_BAND_N, 1.5 s at ABOVE_N, 1 s at IN_BAND_N in a blind trial (no live feedback:
    silent), then 0.5 s at rest."""
    import time
    from pathlib import Path

    from recorder.cue_audio import open_audio_cue
    from recorder.qtstart import start_qt
    from tests.conftest import fast_session

    app = start_qt()
    session, end = fast_session(Path(out))
    try:
        cue = open_audio_cue(session)
        assert cue is not None, "no audio output"
        for force, seconds, blind in ((1.0, 1.5, False), (IN_BAND_N, 1.5, False),
                                      (ABOVE_N, 1.5, False),
                                      (IN_BAND_N, 1.0, True), (1.0, 0.5, True)):
            session.set_blind(blind)
            deadline = time.monotonic() + 5
            while session.blind != blind and time.monotonic() < deadline:
                time.sleep(0.01)
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:  # the window's frames
                cue.feed(force)
                app.processEvents()
                time.sleep(0.01)
    finally:
        end()


@pytest.fixture
def pulse_server():
    """A private PulseAudio daemon with one null sink; yields the environment that reaches it
    (the machine's own sound, if any, is untouched)."""
    if shutil.which("pulseaudio") is None or shutil.which("parec") is None:
        pytest.skip("PulseAudio is not installed (pulseaudio, pulseaudio-utils)")
    runtime = Path(tempfile.mkdtemp(prefix="pa-"))  # short: a socket path is <= 107 bytes
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime),
           "PULSE_SERVER": f"unix:{runtime}/native", "QT_QPA_PLATFORM": "offscreen"}
    daemon = subprocess.Popen(
        ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
         "-L", "module-null-sink sink_name=cue",
         "-L", f"module-native-protocol-unix socket={runtime}/native auth-anonymous=1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (runtime / "native").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not (runtime / "native").exists():
            pytest.skip("PulseAudio did not start here")
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(runtime, ignore_errors=True)


def played_by(env: dict, player: str, tmp_path: Path) -> np.ndarray:
    """What the null sink played (from its monitor, -1..1) while ``player``, a function of
    this module, ran in a child process on the private sound server ``env``."""
    raw = tmp_path / "monitor.raw"
    rec = subprocess.Popen(["parec", "-d", "cue.monitor", "--format=s16le", "--channels=1",
                            f"--rate={RATE}", "--raw", str(raw)], env=env)
    try:
        time.sleep(0.3)
        child = subprocess.run(
            [sys.executable, "-c", f"from tests.test_cue_tone import {player}; "
             f"{player}({str(tmp_path / 's.h5')!r})"],
            capture_output=True, text=True, timeout=60, cwd=ROOT, env=env)
        time.sleep(0.3)
    finally:
        rec.terminate()
        rec.wait(timeout=10)
    assert child.returncode == 0, child.stderr
    return np.fromfile(raw, dtype="<i2").astype(np.float64) / 32767


def test_the_cue_plays_through_a_sound_server(pulse_server, tmp_path):
    """What the sink plays, recorded from its monitor: 440 Hz while in band, the documented
    pitch above it, silence during a blind trial and at rest. (Clicks are judged on the
    rendered blocks above: here a CPU-starved feeder may let the stream run dry.)"""
    x = played_by(pulse_server, "play_cue_plan", tmp_path)
    window = RATE // 10
    kinds = []  # per 100 ms: "silent", "band", "above" or the odd frequency
    for i in range(0, len(x) - window, window):
        part = x[i:i + window]
        if np.sqrt(np.mean(part ** 2)) < 0.01:
            kinds.append("silent")
            continue
        hz = peak_hz(part)
        kinds.append("band" if abs(hz - BAND_HZ) < 2 else "above" if abs(hz - ABOVE_HZ) < 2
                     else f"{hz:.0f} Hz")
    sounding = [i for i, k in enumerate(kinds) if k != "silent"]
    assert sounding, "nothing was played"
    played = kinds[sounding[0]:]
    clear = [k for k in played if k in ("silent", "band", "above")]
    assert len(played) - len(clear) <= 2, kinds  # only windows straddling the change of pitch
    assert runs_of(clear) == ["band", "above", "silent"], kinds  # blind and rest: silent
    assert clear.count("band") >= 10 and clear.count("above") >= 10, kinds
    assert clear.count("silent") >= 12, kinds


def runs_of(kinds: list[str], dropout: int = 2) -> list[str]:
    """The sequence of what was played, a run per change; a silence of at most ``dropout``
    windows between two sounds is a stream that ran dry on a loaded machine (its clicks are
    judged on the rendered blocks above), not a silence the cue chose."""
    runs: list[list] = []
    for kind in kinds:
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    kept = [r for i, r in enumerate(runs)
            if not (r[0] == "silent" and r[1] <= dropout and 0 < i < len(runs) - 1)]
    return [k for i, (k, _) in enumerate(kept) if i == 0 or kept[i - 1][0] != k]


def show_window_with_cue(out: str) -> None:
    """(Run in a child process.) The live window with the cue for 5 s of a real session on the
    simulated sensor (holds of 2.5 s in the band 30-50 N, 1 s rests)."""
    from pathlib import Path

    from recorder.window import run_live
    from tests.conftest import fast_session

    session, end = fast_session(Path(out))
    try:
        run_live(session, duration=5.0, audio_cue=True)
    finally:
        end()


def test_the_window_feeds_the_cue_the_live_force(pulse_server, tmp_path):
    """The window's frames drive the cue: while the simulated therapist holds in the band the
    sink plays 440 Hz, at rest it is silent, on the way in it is low and pulsed."""
    x = played_by(pulse_server, "show_window_with_cue", tmp_path)
    window = RATE // 10
    parts = [x[i:i + window] for i in range(0, len(x) - window, window)]
    loud = [np.sqrt(np.mean(p ** 2)) >= 0.01 for p in parts]
    pitch = [peak_hz(p) for p, sounding in zip(parts, loud, strict=True) if sounding]
    assert sum(abs(hz - BAND_HZ) < 2 for hz in pitch) >= 10, pitch  # >= 1 s in the band
    assert any(hz < BAND_HZ - 20 for hz in pitch), pitch  # pressing in: under the band
    assert loud.count(False) >= 5  # at rest
