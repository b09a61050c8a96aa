"""Per-frame image quality: PSNR and SSIM on 8-bit-quantised sRGB.

Pinned protocol (``docs/metrics.md``): PSNR on RGB, per frame, peak 1; SSIM (Wang et al., IEEE TIP 2004) with an 11x11
Gaussian window of sigma 1.5, ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = 1``, computed per RGB channel and
averaged over the "valid" region (pixels whose window lies inside the image, i.e. 5 px from each border are not
scored). These numbers equal scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)`` on the same quantised frames.

Other conventions that users meet are options (one default each):

* ``channel="y"``: the BT.601 Y channel of YCbCr (as in BasicSR / super-resolution papers), peak 1.
* ``window="uniform"``: scikit-image's default SSIM, a 7x7 uniform window with the sample covariance
  (normalised by ``N - 1``).
* ``crop_border=k``: drop ``k`` pixels at each border before scoring.

A video's score is the mean of its per-frame values. Identical frames give PSNR ``inf``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from ..errors import InputError
from .frames import ArrayLike, quantize_pair, ycbcr_y

Channel = Literal["rgb", "y"]
Window = Literal["gaussian", "uniform"]

CHANNELS: tuple[str, ...] = ("rgb", "y")
WINDOWS: tuple[str, ...] = ("gaussian", "uniform")

_K1, _K2 = 0.01, 0.03
_GAUSSIAN_SIZE, _GAUSSIAN_SIGMA = 11, 1.5
_UNIFORM_SIZE = 7


def check_options(channel: str, crop_border: int, window: str = "gaussian") -> None:
    """Raise :class:`InputError` for an unknown channel or window or a negative border crop."""
    if channel not in CHANNELS:
        raise InputError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    if window not in WINDOWS:
        raise InputError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    if not isinstance(crop_border, int) or crop_border < 0:
        raise InputError(f"crop_border must be a non-negative integer, got {crop_border!r}")


def _prepare(frames: np.ndarray, channel: str, crop_border: int) -> np.ndarray:
    """``(T, H, W, 3) uint8`` -> cropped ``(T, H', W', C)`` values: uint8 for RGB, float64 in [0, 1] for Y."""
    if crop_border:
        h, w = frames.shape[1:3]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise InputError(f"crop_border={crop_border} removes the whole {w}x{h} frame; use a smaller value")
        frames = frames[:, crop_border:-crop_border, crop_border:-crop_border]
    return ycbcr_y(frames) if channel == "y" else frames


def psnr_frames_u8(pred: np.ndarray, gt: np.ndarray, *, channel: Channel = "rgb",
                   crop_border: int = 0) -> np.ndarray:
    """Per-frame PSNR of quantised frames.

    Args:
        pred, gt: ``(T, H, W, 3) uint8``.
        channel: ``"rgb"`` (default) or ``"y"``.
        crop_border: pixels dropped at each border.

    Returns:
        ``(T,) float64`` PSNR in dB (peak 1); ``inf`` where a frame equals its reference.
    """
    check_options(channel, crop_border)
    p = _prepare(pred, channel, crop_border)
    g = _prepare(gt, channel, crop_border)
    if channel == "rgb":
        sq = np.array([cv2.norm(a, b, cv2.NORM_L2SQR) for a, b in zip(p, g)], dtype=np.float64)
        mse = sq / (255.0**2 * p[0].size)
    else:
        diff = p - g
        mse = np.einsum("thwc,thwc->t", diff, diff) / diff[0].size
    with np.errstate(divide="ignore"):
        return -10.0 * np.log10(mse)


def _window(kind: str) -> tuple[np.ndarray, int, float]:
    """Separable 1-D kernel (column vector), its radius and the covariance normaliser."""
    if kind == "gaussian":
        kernel = cv2.getGaussianKernel(_GAUSSIAN_SIZE, _GAUSSIAN_SIGMA, cv2.CV_64F)
        return kernel.astype(np.float32), _GAUSSIAN_SIZE // 2, 1.0
    n = _UNIFORM_SIZE
    kernel = np.full((n, 1), 1.0 / n, dtype=np.float32)
    return kernel, n // 2, n * n / (n * n - 1.0)


def _ssim_frame(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, pad: int, cov_norm: float) -> float:
    """Mean SSIM of one ``(H, W, C) float32`` pair in [0, 1] over the valid region."""

    def blur(a: np.ndarray) -> np.ndarray:
        out = cv2.sepFilter2D(a, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
        out = out.reshape(a.shape)
        return out[pad:-pad, pad:-pad] if pad else out

    mu_x, mu_y = blur(x), blur(y)
    xx, yy, xy = blur(x * x), blur(y * y), blur(x * y)
    # In-place arithmetic: this function dominates the cost of SSIM on large frames.
    mu_xy = mu_x * mu_y
    mu_x *= mu_x
    mu_y *= mu_y
    c1, c2 = np.float32(_K1**2), np.float32(_K2**2)
    cov = np.subtract(xy, mu_xy, out=xy)
    cov *= np.float32(2.0 * cov_norm)
    cov += c2
    num = mu_xy
    num *= np.float32(2.0)
    num += c1
    num *= cov
    var = np.subtract(xx, mu_x, out=xx)
    var += yy
    var -= mu_y
    var *= np.float32(cov_norm)
    var += c2
    den = mu_x
    den += mu_y
    den += c1
    den *= var
    num /= den
    return float(num.sum(dtype=np.float64)) / num.size


def ssim_frames_u8(pred: np.ndarray, gt: np.ndarray, *, window: Window = "gaussian", channel: Channel = "rgb",
                   crop_border: int = 0) -> np.ndarray:
    """Per-frame SSIM of quantised frames.

    Args:
        pred, gt: ``(T, H, W, 3) uint8``.
        window: ``"gaussian"`` (11x11, sigma 1.5; default) or ``"uniform"`` (7x7, sample covariance).
        channel: ``"rgb"`` (per channel, averaged; default) or ``"y"``.
        crop_border: pixels dropped at each border before the window is applied.

    Returns:
        ``(T,) float64`` SSIM in ``[-1, 1]``.

    Raises:
        InputError: frames smaller than the window.
    """
    check_options(channel, crop_border, window)
    kernel, pad, cov_norm = _window(window)
    p = _prepare(pred, channel, crop_border)
    g = _prepare(gt, channel, crop_border)
    h, w = p.shape[1:3]
    if h <= 2 * pad or w <= 2 * pad:
        raise InputError(f"frames of {w}x{h} are too small for SSIM's {2 * pad + 1}x{2 * pad + 1} window")
    scale = np.float32(1.0 / 255.0) if channel == "rgb" else np.float32(1.0)
    out = np.empty(p.shape[0], dtype=np.float64)
    for t in range(p.shape[0]):
        x = p[t].astype(np.float32)
        x *= scale
        y = g[t].astype(np.float32)
        y *= scale
        out[t] = _ssim_frame(x, y, kernel, pad, cov_norm)
    return out


def psnr(pred: ArrayLike, gt: ArrayLike, *, channel: Channel = "rgb", crop_border: int = 0) -> float:
    """PSNR of a video (mean of per-frame PSNR) or of one image, after 8-bit quantisation.

    Args:
        pred: ``(T, 3, H, W)`` or ``(3, H, W)`` float in ``[0, 1]`` (or uint8), tensor or array.
        gt: same shape as ``pred``.
        channel: ``"rgb"`` (default) or ``"y"`` (BT.601 luma of YCbCr).
        crop_border: pixels dropped at each border (default 0).

    Returns:
        PSNR in dB (peak 1); ``inf`` when every frame equals its reference.

    Raises:
        InputError: malformed or mismatched inputs, unknown options.
    """
    p, g = quantize_pair(pred, gt, video=False)
    return float(np.mean(psnr_frames_u8(p, g, channel=channel, crop_border=crop_border)))


def ssim(pred: ArrayLike, gt: ArrayLike, *, window: Window = "gaussian", channel: Channel = "rgb",
         crop_border: int = 0) -> float:
    """SSIM of a video (mean of per-frame SSIM) or of one image, after 8-bit quantisation.

    Args:
        pred: ``(T, 3, H, W)`` or ``(3, H, W)`` float in ``[0, 1]`` (or uint8), tensor or array.
        gt: same shape as ``pred``.
        window: ``"gaussian"`` (11x11, sigma 1.5; default) or ``"uniform"`` (skimage's default 7x7).
        channel: ``"rgb"`` (default) or ``"y"``.
        crop_border: pixels dropped at each border (default 0).

    Returns:
        SSIM in ``[-1, 1]`` (1 for identical inputs).

    Raises:
        InputError: malformed or mismatched inputs, frames smaller than the window, unknown options.
    """
    p, g = quantize_pair(pred, gt, video=False)
    return float(np.mean(ssim_frames_u8(p, g, window=window, channel=channel, crop_border=crop_border)))
