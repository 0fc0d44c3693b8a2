"""The eyes-free cue, played: a Qt Multimedia audio sink fed from the live window's timer.

Why here and how: the window's timer (the UI thread) already reads the latest force every
frame; it hands it to ``AudioCue.feed``, which keeps about ``QUEUE_S`` of sound queued in a
``QAudioSink`` in push mode, rendering ``BLOCK_S`` blocks with ``recorder.cue_tone`` (the pitch
mapping and the click-free generator live there). No thread of its own, no callback from the
audio system: a block is rendered only when the queue runs short, so the pitch lags the force
by at most about ``QUEUE_S`` plus a block.

The cue is live feedback: it sounds only when the window gives live cues (not in a blind trial,
nor under a training condition without live feedback, nor inside bandwidth feedback's zone),
and not with no protocol, at a threshold ramp, or once the protocol is complete. On the first
approach to a subject-anchored point (``recorder.anchor``) it is silent, not a neutral tone:
the point's band is only provisional until the subject's signal, so there is nothing to coach
(a steady tone would say "in band", a pitch would coach toward a band that is no target), and
silence leaves the ear on the subject, whose rating ends the approach; the cue starts once
the point is anchored, against its band.

When Qt quits (the window closed) the tone fades out. A machine without an audio output, or
without Qt Multimedia, gets one line on stderr (``open_audio_cue``) and records without the
cue.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from pyqtgraph.Qt import QT_LIB, QtCore

from recorder.anchor import first_approach
from recorder.cue_tone import ToneRenderer, cue_frequency, is_pulsed
from recorder.feedback_view import live_view
from recorder.session import RecordingSession

__all__ = ["BLOCK_S", "NO_DEVICE", "QUEUE_S", "AudioCue", "cue_now", "open_audio_cue"]

BLOCK_S = 0.05  # one rendered block
QUEUE_S = 0.15  # sound queued ahead: covers a late frame (p99 50 ms under load), adds this lag
SINK_BUFFER_S = 0.25  # the sink's buffer, room for the queue and a spare block
NO_DEVICE = "audio cue: no audio output device; recording without it"
_FAILED = ("OpenError", "IOError", "FatalError")  # QtAudio.Error names that end the cue


@contextmanager
def _quiet_qt() -> Iterator[None]:
    """Drop Qt's messages while the audio back-end starts: without a device it warns about
    each missing library and service; the one line the user needs is ours."""
    previous = QtCore.qInstallMessageHandler(lambda *_: None)
    try:
        yield
    finally:
        QtCore.qInstallMessageHandler(previous)


def _encode(samples: np.ndarray, fmt) -> bytes:
    """Mono float samples in [-1, 1] as the bytes of the sink's format (every channel the
    same sound)."""
    frames = np.repeat(samples[:, None], max(1, fmt.channelCount()), axis=1).ravel()
    name = fmt.sampleFormat().name
    if name == "Float":
        return frames.astype("<f4").tobytes()
    if name == "Int32":
        return np.round(frames * 2147483647.0).astype("<i4").tobytes()
    if name == "UInt8":
        return np.round(frames * 127.0 + 128.0).astype("u1").tobytes()
    return np.round(frames * 32767.0).astype("<i2").tobytes()


def cue_now(session: RecordingSession, force_n: float) -> float | None:
    """The cue's pitch (Hz) for the force ``force_n`` (N) now, None for silence: whenever the
    window gives no live cue (``recorder.feedback_view.live_view``: a blind trial, a
    training condition without live feedback, bandwidth feedback inside its zone), with no
    protocol, at a threshold ramp, on the first approach to a subject-anchored point, and
    once the protocol is complete."""
    if session.protocol is None or session.protocol_complete:
        return None
    dose = session.protocol.points[session.point_index].dose
    if dose.is_threshold_ramp:
        return None
    if first_approach(dose, session.anchored()):  # no band yet
        return None
    band = session.band_n()  # the point's band: anchored to the subject's rating, once it is
    st = session.status()
    if not live_view(st.condition, st.blind, force_n, band).cues:
        return None
    return cue_frequency(force_n, band)


class AudioCue:
    """Plays the cue for one session through an open sink (``open_audio_cue`` makes one)."""

    def __init__(self, session: RecordingSession, sink, io) -> None:
        self.session = session
        self._sink = sink
        self._io = io
        fmt = sink.format()
        self._format = fmt
        self._rate = fmt.sampleRate()
        self._frame_bytes = max(1, fmt.bytesPerFrame())
        self._renderer = ToneRenderer(self._rate)
        self.failed: str | None = None  # why the cue stopped, once it has

    def feed(self, force_n: float) -> None:
        """The window's frame: the latest force (N). Renders and queues blocks until about
        ``QUEUE_S`` of sound waits in the sink."""
        if self.failed is not None:
            return
        error = self._sink.error().name
        if error in _FAILED:
            self.failed = f"audio cue: the audio output failed ({error}); recording goes on"
            print(self.failed, file=sys.stderr)
            self._sink.stop()
            return
        block = max(1, round(BLOCK_S * self._rate))
        free = self._sink.bytesFree() // self._frame_bytes
        queued = self._sink.bufferSize() // self._frame_bytes - free
        if queued >= QUEUE_S * self._rate or free < block:
            return
        freq = cue_now(self.session, force_n)
        while queued < QUEUE_S * self._rate and free >= block:
            samples = self._renderer.render(freq, block, is_pulsed(freq))
            self._io.write(_encode(samples, self._format))
            queued += block
            free -= block

    def fade_out(self) -> None:
        """End the queue with the tone faded to silence, so that the stream running dry (the
        window closed, nobody feeds it) does not click; the sound stops within ``QUEUE_S``."""
        if self.failed is not None:
            return
        free = self._sink.bytesFree() // self._frame_bytes
        n = min(free, round(BLOCK_S * self._rate))
        self._io.write(_encode(self._renderer.render(None, n), self._format))


def open_audio_cue(session: RecordingSession) -> AudioCue | None:
    """The cue on the default audio output, or None after printing one line on stderr saying
    why there is none (no output device, no Qt Multimedia, a device that will not open). Needs
    the Qt application (``recorder.qtstart.start_qt``)."""
    with _quiet_qt():
        try:
            mm = importlib.import_module(f"{QT_LIB}.QtMultimedia")
        except ImportError as exc:
            print(f"audio cue: Qt Multimedia is not available ({exc}); recording without it",
                  file=sys.stderr)
            return None
        device = mm.QMediaDevices.defaultAudioOutput()
        if device.isNull():
            print(NO_DEVICE, file=sys.stderr)
            return None
        fmt = device.preferredFormat()
        sink = mm.QAudioSink(device, fmt)
        sink.setBufferSize(round(SINK_BUFFER_S * fmt.sampleRate()) * max(1, fmt.bytesPerFrame()))
        io = sink.start()
        if io is None or sink.error().name in _FAILED:
            print(f"audio cue: cannot open {device.description()} ({sink.error().name}); "
                  "recording without it", file=sys.stderr)
            return None
    cue = AudioCue(session, sink, io)
    QtCore.QCoreApplication.instance().aboutToQuit.connect(cue.fade_out)
    return cue
