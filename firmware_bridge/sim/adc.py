"""HX711-like 24-bit load-cell ADC model: unknown offset and scale, Gaussian noise, saturation.

Why: the recorder must calibrate (tare + scale) a sensor whose true gain differs from what the
factory claims, and must notice clipping. The model's truth (``offset_counts``,
``counts_per_newton``) is deliberately different from the nominal factory values
(``nominal_offset_counts``, ``nominal_counts_per_newton``) so calibration code is exercised.

Noise is a pure function of ``(seed, sample_index)``: indices are grouped in fixed blocks of
``NOISE_BLOCK`` samples, and block ``b`` draws its noise from ``np.random.default_rng([seed, b])``.
So a sample's counts never depend on how the stream was chunked. Recently used blocks are cached.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["NOISE_BLOCK", "AdcModel"]

#: Samples per deterministic noise block.
NOISE_BLOCK = 4096
_SHIFT = 12  # log2(NOISE_BLOCK)
_CACHE_BLOCKS = 256  # 1 M samples, 8 MiB of cached unit-variance noise
assert 1 << _SHIFT == NOISE_BLOCK


@dataclass
class AdcModel:
    """Converts force (N) to raw signed ADC counts: ``round(offset + scale * force + noise)``.

    ``offset_counts`` and ``counts_per_newton`` are the hidden truth; ``noise_counts`` is the
    standard deviation of white Gaussian noise in counts; the output is clipped to the signed
    range of ``bits`` (HX711: 24 bits, two's complement, saturating at 0x7FFFFF / -0x800000).
    """

    offset_counts: float = 84_213.0
    counts_per_newton: float = 4_173.2
    noise_counts: float = 25.0
    bits: int = 24
    seed: int = 0
    #: What the "factory" claims; deliberately wrong so calibration is exercised.
    nominal_offset_counts: float = 80_000.0
    nominal_counts_per_newton: float = 4_000.0
    _cache: OrderedDict[int, np.ndarray] = field(
        default_factory=OrderedDict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Validate the configuration (int32 output, positive scales, usable seed)."""
        if not 2 <= int(self.bits) <= 32:
            raise ValueError("bits must be in 2..32 (the output is int32)")
        if self.counts_per_newton == 0 or self.nominal_counts_per_newton == 0:
            raise ValueError("scales must be non-zero")
        if self.noise_counts < 0:
            raise ValueError("noise_counts must be >= 0")
        if int(self.seed) != self.seed or self.seed < 0:
            raise ValueError("seed must be a non-negative integer")

    @property
    def min_count(self) -> int:
        """Most negative representable count, -2**(bits-1)."""
        return -(1 << (int(self.bits) - 1))

    @property
    def max_count(self) -> int:
        """Most positive representable count, 2**(bits-1) - 1."""
        return (1 << (int(self.bits) - 1)) - 1

    @property
    def full_scale_n(self) -> float:
        """Force (true scale) at which the positive rail is reached, ignoring noise."""
        return (self.max_count - self.offset_counts) / self.counts_per_newton

    def _block(self, b: int) -> np.ndarray:
        """Unit-variance noise of block ``b`` (cached, least recently used evicted)."""
        arr = self._cache.get(b)
        if arr is None:
            arr = np.random.default_rng([int(self.seed), b]).standard_normal(NOISE_BLOCK)
            self._cache[b] = arr
            if len(self._cache) > _CACHE_BLOCKS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(b)
        return arr

    def unit_noise(self, sample_index: np.ndarray) -> np.ndarray:
        """Unit-variance deterministic noise at each (non-negative) sample index."""
        idx = np.asarray(sample_index, dtype=np.int64)
        if idx.size == 0:
            return np.zeros(idx.shape)
        imin, imax = int(idx.min()), int(idx.max())
        if imin < 0:
            raise ValueError("sample_index must be >= 0")
        b0, b1 = imin >> _SHIFT, imax >> _SHIFT
        if b1 - b0 < 2 * (idx.size >> _SHIFT) + 4:  # dense (the streaming case): one table
            blocks = [self._block(b) for b in range(b0, b1 + 1)]
            table = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
            return table[idx - (b0 << _SHIFT)]
        ub, inv = np.unique(idx >> _SHIFT, return_inverse=True)  # sparse indices
        table = np.stack([self._block(int(b)) for b in ub])
        return table[inv.reshape(idx.shape), idx & (NOISE_BLOCK - 1)]

    def counts(self, force_n: np.ndarray, sample_index: np.ndarray,
               zero_counts: np.ndarray | float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw counts (int32) and a saturation flag for forces at the given sample indices.

        ``force_n`` and ``sample_index`` must have the same shape. ``zero_counts`` is the
        zero at each sample when it has moved (a shifted or drifting zero, see
        :mod:`firmware_bridge.sim.imperfect`); None means ``offset_counts``. A sample is
        saturated when the rounded value fell outside the ``bits`` range and was clipped.
        """
        f = np.asarray(force_n, dtype=np.float64)
        idx = np.asarray(sample_index, dtype=np.int64)
        if f.shape != idx.shape:
            raise ValueError(f"force_n shape {f.shape} != sample_index shape {idx.shape}")
        shape = f.shape
        raw = f.reshape(-1) * self.counts_per_newton  # always a fresh 1-d array
        raw += self.offset_counts if zero_counts is None else np.reshape(zero_counts, -1)
        if self.noise_counts:
            noise = self.unit_noise(idx.reshape(-1))
            noise *= self.noise_counts
            raw += noise
        np.rint(raw, out=raw)
        if np.isnan(raw).any():
            raise ValueError("force_n contains NaN")
        lo, hi = self.min_count, self.max_count
        saturated = (raw < lo) | (raw > hi)
        np.clip(raw, lo, hi, out=raw)
        return raw.astype(np.int32).reshape(shape), saturated.reshape(shape)

    def force_from_counts(self, counts: np.ndarray, tare_counts: float | None = None
                          ) -> np.ndarray:
        """Force (N) from counts using the *nominal* factory scale.

        The zero is ``tare_counts`` if given (e.g. the mean of an unloaded stretch), otherwise the
        nominal factory offset. Without a proper calibration this is off by the scale error
        (about 4 % with the defaults): that is intended.
        """
        zero = self.nominal_offset_counts if tare_counts is None else float(tare_counts)
        return (np.asarray(counts, dtype=np.float64) - zero) / self.nominal_counts_per_newton
