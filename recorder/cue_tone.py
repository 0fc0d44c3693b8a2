"""The eyes-free cue's sound: which pitch a force gets, and a click-free tone generator.

Why: the therapist watches the patient, not a screen. A tone that is steady while the force is
in the target band and moves in pitch with the error outside it coaches the hold without a
glance. This module is pure (numpy, no Qt, no threads) so the sound can be rendered to a
buffer and checked with an FFT; ``recorder.cue_audio`` plays it.

The mapping (``cue_frequency``), for a band [low, high] in newtons:

- at rest, below the hold detector's start threshold (``config_for_band(low, high).on_n``,
  10 % of the target): silence, so a hand resting between holds is not nagged;
- in the band: a steady ``BAND_HZ`` (440 Hz);
- above the band: the pitch rises; below it, it falls (and is pulsed, ``is_pulsed``). Leaving
  the band steps the pitch by ``EDGE_STEP_ST`` semitones (a whole tone: heard at once, even
  by an untrained ear), then it moves on by one semitone per ``PCT_PER_ST`` (4) % of the
  crossed band edge, continuously: a 15 % overshoot over the top is 5.75 semitones up (a
  fourth), 440 -> 611 Hz. The pitch is clamped to ``LOW_HZ``..``HIGH_HZ`` (220-1760 Hz,
  an octave down and two up, audible on laptop speakers): reached at 40 % under the band's
  bottom and 88 % over its top. The frequency never decreases as the force grows.

Tones below the band's pitch are pulsed at ``PULSE_HZ`` (4 Hz), so too light and too firm
differ in rhythm as well as in pitch (for a listener who hears pitch poorly).
"""

from __future__ import annotations

import math

import numpy as np

from analysis.holds import config_for_band

__all__ = ["BAND_HZ", "HIGH_HZ", "LOW_HZ", "PULSE_HZ", "ToneRenderer", "cue_frequency",
           "is_pulsed"]

BAND_HZ = 440.0  # in the band: a steady A4
LOW_HZ = 220.0  # the lowest pitch (far below the band)
HIGH_HZ = 1760.0  # the highest pitch (far above the band)
EDGE_STEP_ST = 2.0  # semitones the pitch steps on leaving the band
PCT_PER_ST = 4.0  # then one semitone per this many percent of the crossed band edge
PULSE_HZ = 4.0  # below the band the tone pulses this many times a second
FADE_S = 0.01  # start and stop fade: long enough not to click, short enough to feel instant
AMPLITUDE = 0.3  # of full scale: audible over a quiet room, never clipping


def cue_frequency(force_n: float, band_n: tuple[float, float] | None) -> float | None:
    """The cue's pitch (Hz) for the force ``force_n`` (N) against the target band ``band_n``
    (low, high in N); None means silence: at rest, with no band (no protocol, a threshold
    ramp), or a force that is not a number. The mapping is the module's docstring's."""
    if band_n is None or not math.isfinite(force_n):
        return None
    low, high = band_n
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high and high > 0):
        return None
    if force_n < config_for_band(low, high).on_n:
        return None
    if low <= force_n <= high:
        return BAND_HZ
    if force_n > high:
        semitones = EDGE_STEP_ST + 100.0 * (force_n - high) / high / PCT_PER_ST
    else:
        semitones = -(EDGE_STEP_ST + 100.0 * (low - force_n) / low / PCT_PER_ST)
    return min(HIGH_HZ, max(LOW_HZ, BAND_HZ * 2.0 ** (semitones / 12.0)))


def is_pulsed(freq_hz: float | None) -> bool:
    """Whether the cue at ``freq_hz`` pulses: tones below the band's pitch (too light) do."""
    return freq_hz is not None and freq_hz < BAND_HZ


def _ramp(start: float, target: float, n: int, step: float) -> np.ndarray:
    """``n`` values moving from ``start`` toward ``target`` by ``step`` per sample (the first
    already one step on), stopping at the target."""
    k = np.arange(1, n + 1, dtype=np.float64)
    if target >= start:
        return np.minimum(target, start + step * k)
    return np.maximum(target, start - step * k)


class ToneRenderer:
    """A sine tone rendered block by block without clicks: the phase carries over from block
    to block, a change of pitch glides linearly across the next block, starts and stops fade
    over ``fade_s``, and the pulse (``pulsed``) fades in and out with the same care. Blocks
    rendered one after another equal one block of their total length."""

    def __init__(self, sample_rate: float, amplitude: float = AMPLITUDE,
                 fade_s: float = FADE_S, pulse_hz: float = PULSE_HZ) -> None:
        if not sample_rate > 0:
            raise ValueError(f"sample rate must be positive, not {sample_rate}")
        self.sample_rate = float(sample_rate)
        self.amplitude = amplitude
        self.pulse_hz = pulse_hz
        self._step = 1.0 / max(1.0, fade_s * self.sample_rate)  # gain change per sample
        self._phase = 0.0  # of the tone, in cycles
        self._pulse_phase = 0.0  # of the pulse, in cycles
        self._freq: float | None = None  # the pitch sounding (or fading out) now
        self._gain = 0.0  # 0 silent .. 1 full
        self._depth = 0.0  # 0 steady .. 1 fully pulsed

    def render(self, freq_hz: float | None, n_samples: int, pulsed: bool = False) -> np.ndarray:
        """The next ``n_samples`` (float32, within +-amplitude) of a tone at ``freq_hz``
        (None: fade out to silence), pulsed at ``pulse_hz`` if ``pulsed``."""
        n = int(n_samples)
        if n <= 0:
            return np.zeros(0, dtype=np.float32)
        start = self._freq if self._freq is not None else freq_hz
        end = freq_hz if freq_hz is not None else self._freq
        if start is None or end is None:  # silent, and was
            return np.zeros(n, dtype=np.float32)
        k = np.arange(1, n + 1, dtype=np.float64)
        freq = start + (end - start) * k / n  # glides to the new pitch across the block
        cycles = np.cumsum(freq) / self.sample_rate
        phase = self._phase + np.concatenate(([0.0], cycles[:-1]))
        self._phase = (self._phase + cycles[-1]) % 1.0
        gain = _ramp(self._gain, 0.0 if freq_hz is None else 1.0, n, self._step)
        depth = _ramp(self._depth, 1.0 if pulsed else 0.0, n, self._step)
        pulse_phase = self._pulse_phase + np.arange(n) * self.pulse_hz / self.sample_rate
        self._pulse_phase = (self._pulse_phase + n * self.pulse_hz / self.sample_rate) % 1.0
        # on about 58 % of each period, with ~20 ms ramps at 4 Hz: a beep, not a click
        shape = np.clip(0.5 + 2.0 * np.sin(2 * np.pi * pulse_phase), 0.0, 1.0)
        envelope = gain * (1.0 - depth * (1.0 - shape))
        self._gain, self._depth = float(gain[-1]), float(depth[-1])
        self._freq = end if self._gain > 0 else None
        return (self.amplitude * envelope * np.sin(2 * np.pi * phase)).astype(np.float32)
