"""The force model of one simulated hold and its ground truth.

Why a module of its own: this is the physics of the simulator (shape, tremor, wander, dips)
and the exact definitions the analysis is tested against; ``therapist`` only schedules holds,
``hold_draw`` and ``threshold_ramp`` only draw their parameters (a ``HoldPlan``).

Everything is elementwise in time, so a sample's value never depends on how the stream is
chunked. Tremor and wander use NumPy's float32 SIMD sine for speed.

Timeline of one hold (hold-local time ``u`` from its onset; ``c`` = contact force)::

    approach  0 -> c          (c = 2 % of target, below the 5 % detection threshold)
    ramp      c -> peak       (min-jerk shape, warped in time for ramp-rate jitter)
    settle    peak -> level   (overshoot decays; ends at plateau_start_s)
    plateau   level + drift   (fatigue drift, linear in time; ends at release_s)
    release   -> 0            (min-jerk)
    rest      0               (then the next hold's approach)

Force = base(u) * (1 + wander(u)) * (1 + tremor(u)) * (1 - dip(u)), clipped at >= 0. Wander and
tremor scale with the force (signal-dependent noise), so the signal is exactly zero at rest.

Ground-truth definitions (``HoldTruth``), all in seconds of simulated time from stream start:

* ``start_s``: first time the simulated force (tremor included) reaches ``THRESHOLD_FRAC`` (5 %)
  of the dose target on the ramp, resolved to 1 microsecond.
* ``end_s``: first time after the last such crossing on the release that the force is below it.
* ``plateau_start_s``: end of the overshoot settle; ``release_s``: start of the release ramp.
  The planned hold duration ``release_s - plateau_start_s`` scatters around
  ``Therapist.hold_s``.
* ``plateau_level_n``: mean over ``[plateau_start_s, release_s]`` of the *smooth* force
  (base x wander: drift included, tremor and re-press dips excluded).
* ``peak_n``: maximum of the smooth force over the hold (the overshoot peak in practice).
* ``reprs``: times of the bottom of each re-press dip (novice only): a 0.2-0.5 s partial
  unloading that must not split the hold. Dips never take the smooth force below 60 % of target.
* ``button_s``: ``[press, release]`` of the subject's button during this hold, or ``[]``.

For a threshold ramp (see ``threshold_ramp``):

* ``button_s``: ``[press, release]``; the press is the instant the smooth ramp reaches the
  trial's threshold.
* ``threshold_n``: the applied force (tremor and wander included) at the press instant: what
  a perfect algometer reads when the button goes down (None for holds).
* ``plateau_start_s == release_s``: the start of the lift; ``plateau_level_n``: the smooth force
  there.

``ramp_n_per_s`` (every hold): the planned mean rate from the contact force to the ramp's peak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Hold detection threshold, as a fraction of the dose target (defines start_s / end_s).
THRESHOLD_FRAC = 0.05
#: Light contact force during the approach, as a fraction of target (kept below the threshold).
CONTACT_FRAC = 0.02

TWO_PI = 2.0 * math.pi
_F32 = np.float32
_TRUTH_GRID_S = 1e-3  # coarse grid for ground-truth searches
_TRUTH_FINE_POINTS = 1001  # refinement of one coarse step -> 1 us resolution


@dataclass
class HoldTruth:
    """Ground truth of one hold; see the module docstring for the exact definitions."""

    trigger_point: str
    repetition: int  # 1-based repetition on this trigger point
    start_s: float
    plateau_start_s: float
    release_s: float
    end_s: float
    target_n: float
    plateau_level_n: float
    peak_n: float
    reprs: list[float]  # times of re-press dip bottoms
    cycle: int = 0  # pass over the dose (0 = first)
    index: int = 0  # hold number from stream start
    intended_level_n: float = 0.0  # level aimed at when the plateau starts (target + error)
    drift_n_per_s: float = 0.0  # slope of the plateau (fatigue drift)
    tremor_rms_frac: float = 0.0  # RMS tremor as a fraction of the force
    button_s: list[float] = field(default_factory=list)  # [press, release] or []
    ramp_n_per_s: float = 0.0  # planned mean rate of the ramp, contact to peak
    threshold_n: float | None = None  # threshold ramps: applied force when the button went down

    @property
    def hold_duration_s(self) -> float:
        """Planned hold duration: plateau start to release."""
        return self.release_s - self.plateau_start_s


@dataclass(slots=True)
class HoldPlan:
    """Internal per-hold parameters; times in ``s*`` fields are hold-local (from onset)."""

    index: int
    cycle: int
    trigger_point: str
    repetition: int
    target_n: float
    onset: float
    edges: np.ndarray  # absolute [onset, ramp start, settle start, plateau, release, zero]
    s1: float
    s2: float
    s3: float
    s4: float
    contact_n: float
    peak_env_n: float
    level_n: float
    slope_n_per_s: float
    release_level_n: float
    inv_a: float
    inv_tr: float
    inv_ts: float
    inv_td: float
    k1: np.float32
    k2: np.float32
    wander: tuple[np.float32, ...]  # (amp, omega, phase) x 2
    tremor: tuple[np.float32, ...]  # (amp, omega, phase) x 3
    am: tuple[np.float32, ...]  # (depth, omega, phase)
    tremor_rms_frac: float
    dips: list[tuple[float, float, float]]  # (local start, duration, depth)
    button: tuple[float, float] | None  # absolute (press, release)
    ramp_n_per_s: float = 0.0  # planned mean rate, contact to peak
    linear: bool = False  # a threshold ramp (linear) rather than a min-jerk ramp to a plateau
    truth: HoldTruth | None = None


def min_jerk(x: np.ndarray) -> np.ndarray:
    """Minimum-jerk transition 0 -> 1 on x in [0, 1] (zero slope and curvature at both ends)."""
    return x * x * x * (10.0 + x * (-15.0 + 6.0 * x))


def _add_sin(acc: np.ndarray, u32: np.ndarray, tmp: np.ndarray,
             amp: np.float32, omega: np.float32, phase: np.float32) -> None:
    """acc += amp * sin(omega * u + phase), in float32 (fast SIMD sin), in place."""
    np.multiply(u32, omega, out=tmp)
    tmp += phase
    np.sin(tmp, out=tmp)
    tmp *= amp
    acc += tmp


def eval_hold(h: HoldPlan, ts: np.ndarray, *, tremor: bool = True,
              dips: bool = True) -> np.ndarray:
    """Force of hold ``h`` at sorted absolute times ``ts`` (all in ``[onset, zero end)``).

    Purely elementwise in ``ts``: a sample's value does not depend on its neighbours, which is
    what makes the stream independent of chunking.
    """
    u = ts - h.onset
    base = np.empty_like(u)
    j1, j2, j3, j4 = (int(v) for v in np.searchsorted(ts, h.edges[1:5]))
    n = ts.size
    if j1 > 0:  # approach
        base[:j1] = h.contact_n * min_jerk(u[:j1] * h.inv_a)
    if j2 > j1:  # ramp with in-ramp rate wobble (monotone time warp)
        x = (u[j1:j2] - h.s1) * h.inv_tr
        x32 = (x * TWO_PI).astype(_F32)
        wob = h.k1 * np.sin(x32)
        x32 += x32
        wob += h.k2 * np.sin(x32)
        shape = x + wob if h.linear else min_jerk(x + wob)
        base[j1:j2] = h.contact_n + (h.peak_env_n - h.contact_n) * shape
    if j3 > j2:  # overshoot settles onto the plateau
        x = (u[j2:j3] - h.s2) * h.inv_ts
        base[j2:j3] = h.peak_env_n + (h.level_n - h.peak_env_n) * min_jerk(x)
    if j4 > j3:  # plateau with linear fatigue drift
        base[j3:j4] = h.level_n + h.slope_n_per_s * (u[j3:j4] - h.s3)
    if n > j4:  # release
        base[j4:] = h.release_level_n * (1.0 - min_jerk((u[j4:] - h.s4) * h.inv_td))

    u32 = u.astype(_F32)
    tmp = np.empty_like(u32)
    mod = np.ones_like(u32)
    w = h.wander
    _add_sin(mod, u32, tmp, w[0], w[1], w[2])
    _add_sin(mod, u32, tmp, w[3], w[4], w[5])
    if tremor:
        tr = np.zeros_like(u32)
        p = h.tremor
        for i in range(0, 9, 3):
            _add_sin(tr, u32, tmp, p[i], p[i + 1], p[i + 2])
        am = np.ones_like(u32)
        _add_sin(am, u32, tmp, h.am[0], h.am[1], h.am[2])
        tr *= am
        tr += _F32(1.0)
        mod *= tr
    out = base * mod
    if dips:
        for d0, dur, depth in h.dips:
            a, b = (int(v) for v in np.searchsorted(ts, (h.onset + d0, h.onset + d0 + dur)))
            if b > a:
                x = (u[a:b] - d0) / dur
                out[a:b] *= 1.0 - depth * 0.5 * (1.0 - np.cos(TWO_PI * x))
    return out


def clipped_normal(rng: np.random.Generator) -> float:
    """Standard normal draw clipped to +-2.5 so every scatter has a hard bound."""
    return float(np.clip(rng.standard_normal(), -2.5, 2.5))


def span(r: tuple[float, float], x: float) -> float:
    """The point a fraction ``x`` of the way through the range ``r``."""
    return r[0] + (r[1] - r[0]) * x


def hold_truth(h: HoldPlan) -> HoldTruth:
    """Compute (once) the ground truth of hold ``h`` from the model itself."""
    if h.truth is not None:
        return h.truth
    thr = THRESHOLD_FRAC * h.target_n
    e = h.edges

    def grid(t0: float, t1: float) -> np.ndarray:
        return np.linspace(t0, t1, max(2, int(math.ceil((t1 - t0) / _TRUTH_GRID_S))) + 1)

    # start: first crossing on approach+ramp+settle
    g = grid(e[0], e[3])
    i = int(np.flatnonzero(eval_hold(h, g) >= thr)[0])
    fine = np.linspace(g[i - 1], g[i], _TRUTH_FINE_POINTS)
    start = float(fine[np.flatnonzero(eval_hold(h, fine) >= thr)[0]])
    # end: after the last crossing on the release
    g = grid(e[4], e[5])[:-1]
    i = int(np.flatnonzero(eval_hold(h, g) >= thr)[-1])
    fine = np.linspace(g[i], g[i + 1], _TRUTH_FINE_POINTS)
    k = int(np.flatnonzero(eval_hold(h, fine) >= thr)[-1])
    end = float(fine[min(k + 1, fine.size - 1)])
    # plateau level: mean of smooth force (drift + wander, no tremor, no dips)
    g = grid(e[3], e[4])
    smooth = eval_hold(h, g, tremor=False, dips=False)
    level = float(np.trapezoid(smooth, g) / (g[-1] - g[0])) if e[4] > e[3] else float(smooth[0])
    # peak of the smooth force
    g = grid(e[0], e[5])[:-1]
    smooth = eval_hold(h, g, tremor=False, dips=False)
    i = int(np.argmax(smooth))
    fine = np.linspace(g[max(i - 1, 0)], g[min(i + 1, g.size - 1)], 201)
    peak = float(np.max(eval_hold(h, fine, tremor=False, dips=False)))
    h.truth = HoldTruth(
        trigger_point=h.trigger_point,
        repetition=h.repetition,
        start_s=start,
        plateau_start_s=float(e[3]),
        release_s=float(e[4]),
        end_s=end,
        target_n=float(h.target_n),
        plateau_level_n=level,
        peak_n=peak,
        reprs=[float(h.onset + d0 + 0.5 * dur) for d0, dur, _ in h.dips],
        cycle=h.cycle,
        index=h.index,
        intended_level_n=float(h.level_n),
        drift_n_per_s=float(h.slope_n_per_s),
        tremor_rms_frac=float(h.tremor_rms_frac),
        button_s=[float(v) for v in h.button] if h.button is not None else [],
        ramp_n_per_s=float(h.ramp_n_per_s),
        threshold_n=float(eval_hold(h, np.array([h.button[0]]))[0]) if h.linear else None,
    )
    return h.truth
