"""The sensor side of the synthetic generator: sRGB transfer, exposure over time and shot + read noise.

Exposure of frame ``t`` (a factor on linear intensity) is ``e_t = e * exp(d_t + s_t + j_t)``:

* ``e`` — the clip's exposure, log-uniform in a range;
* ``d_t`` — slow drift, a stationary AR(1) process in log exposure: ``d_0 ~ N(0, sigma^2)``,
  ``d_t = rho d_{t-1} + sqrt(1 - rho^2) sigma eps_t`` (ISO / gain wander, slow lights);
* ``s_t`` — auto-exposure steps: from frame 1 on, each frame starts a step with probability ``rate``; a step adds
  ``+-|step|`` (log-uniform magnitude, random sign) that stays until the next one;
* ``j_t`` — i.i.d. jitter ``N(0, flicker^2)`` (the only term of the first-generation generator).

Noise is heteroscedastic Gaussian with variance ``a * I + b`` on the darkened linear intensity ``I`` (shot term
``a``, read term ``b``), fresh every frame, with Brooks et al.'s calibration of the read/shot relation
(:func:`draw_noise_levels`).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

#: ``log b = READ_SLOPE * log a + READ_INTERCEPT + N(0, READ_STD)``: the read-vs-shot line Brooks et al. fitted to
#: calibrated camera sensors ("Unprocessing Images for Learned Raw Denoising", CVPR 2019).
READ_SLOPE, READ_INTERCEPT, READ_STD = 2.18, 1.20, 0.26


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer function (IEC 61966-2-1) on values in [0, 1]."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function on linear values (clipped to [0, 1])."""
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055).astype(np.float32)


def quantize8(x: np.ndarray) -> np.ndarray:
    """Round to the nearest of the 256 8-bit levels (float32 in [0, 1])."""
    return (np.rint(np.clip(x, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A draw log-uniform in ``bounds`` (no draw is consumed when ``low == high``)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    if not 0 < lo <= hi:
        raise InputError(f"range must satisfy 0 < low <= high, got {bounds}")
    return lo if lo == hi else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def drift_series(rng: np.random.Generator, frames: int, sigma: float, rho: float) -> np.ndarray:
    """``(T,)`` stationary AR(1) log-exposure drift with marginal std ``sigma`` and lag-1 correlation ``rho``."""
    if not 0 <= rho < 1:
        raise InputError(f"drift_rho must be in [0, 1), got {rho}")
    out = np.zeros(frames)
    if sigma <= 0:
        return out
    eps = rng.standard_normal(frames)
    out[0] = sigma * eps[0]
    innovation = math.sqrt(1 - rho * rho) * sigma
    for t in range(1, frames):
        out[t] = rho * out[t - 1] + innovation * eps[t]
    return out


def step_series(rng: np.random.Generator, frames: int, rate: float, step: tuple[float, float]) -> np.ndarray:
    """``(T,)`` piecewise-constant log-exposure offset of auto-exposure steps (0 before the first step)."""
    if not 0 <= rate <= 1:
        raise InputError(f"ae_rate must be a probability in [0, 1], got {rate}")
    out = np.zeros(frames)
    if rate == 0 or frames < 2:
        return out
    starts = rng.uniform(size=frames - 1) < rate
    sizes = np.array([log_uniform(rng, step) for _ in range(frames - 1)])
    signs = np.where(rng.uniform(size=frames - 1) < 0.5, -1.0, 1.0)
    out[1:] = np.cumsum(np.where(starts, signs * sizes, 0.0))
    return out


def draw_noise_levels(rng: np.random.Generator, shot_noise: tuple[float, float],
                      read_noise: tuple[float, float] | None) -> tuple[float, float]:
    """Shot term ``a`` (log-uniform in ``shot_noise``) and read term ``b``.

    ``b`` is log-uniform in ``read_noise`` when given, else tied to ``a`` by Brooks et al.'s calibration
    (``log b = 2.18 log a + 1.20 + N(0, 0.26)``).
    """
    shot = log_uniform(rng, shot_noise)
    if read_noise is None:
        read = float(math.exp(READ_SLOPE * math.log(shot) + READ_INTERCEPT + rng.normal(0.0, READ_STD)))
    else:
        read = log_uniform(rng, read_noise)
    return shot, read


def add_noise(rng: np.random.Generator, linear: np.ndarray, shot: float, read: float) -> np.ndarray:
    """``linear + sqrt(a * linear + b) * N(0, 1)`` per pixel and channel (float32)."""
    sigma = np.sqrt(shot * linear + read)
    return linear + sigma * rng.standard_normal(linear.shape, dtype=np.float32)
