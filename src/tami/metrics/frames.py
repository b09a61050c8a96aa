"""Input handling shared by every metric: shape checks and 8-bit quantisation.

Every metric of :mod:`tami.metrics` works on 8-bit-quantised sRGB (the evaluation protocol of
``docs/metrics.md``): float frames in ``[0, 1]`` are clipped to ``[0, 1]`` and rounded to the nearest of the 256 levels
``k / 255`` (round half to even) before anything is computed. Videos are therefore held as ``(T, H, W, 3) uint8``
arrays (channels last, the layout OpenCV works on), which is exact for the metrics and four times smaller than
float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..frames import to_uint8

ArrayLike = Tensor | np.ndarray

# A float input whose maximum exceeds this is taken for a 0-255 image given by mistake.
_MAX_FLOAT = 2.0


def quantize(x: ArrayLike, *, name: str = "input", video: bool = True) -> np.ndarray:
    """Quantise frames to 8 bits, channels last.

    Args:
        x: ``(T, 3, H, W)`` video or ``(3, H, W)`` image; float in ``[0, 1]`` (values outside are clipped) or
            ``uint8`` in ``[0, 255]``; torch tensor (any device) or numpy array.
        name: what ``x`` is, for error messages (``"pred"``, ``"gt"``).
        video: require a video; with ``False`` a single image ``(3, H, W)`` is accepted as a 1-frame video.

    Returns:
        ``(T, H, W, 3) uint8`` C-contiguous numpy array (the layout OpenCV works on).

    Raises:
        InputError: wrong rank or channel count, NaN/inf values, or floats that look like 0-255 data.
    """
    if isinstance(x, Tensor):
        t = x.detach().cpu()
        a = (t.float() if t.is_floating_point() and t.dtype != torch.float64 else t).numpy()
    elif isinstance(x, np.ndarray):
        a = x
    else:
        raise InputError(f"{name} must be a torch tensor or numpy array, got {type(x).__name__}")
    if a.ndim == 3 and not video:
        a = a[None]
    layout = "(T, 3, H, W)" if video else "(T, 3, H, W) or (3, H, W)"
    if a.ndim != 4 or a.shape[1] != 3:
        hint = ""
        if a.ndim == 4 and a.shape[-1] == 3:
            hint = "; channels-last input: pass x.permute(0, 3, 1, 2) (torch) or x.transpose(0, 3, 1, 2) (numpy)"
        raise InputError(f"{name} must be {layout} RGB, got shape {tuple(a.shape)}{hint}")
    return _quantize_channels_last(a.transpose(0, 2, 3, 1), name)


def quantize_frames(frames: np.ndarray, *, name: str = "input") -> np.ndarray:
    """Quantise a ``(T, H, W, 3)`` video in the readers' layout (float in ``[0, 1]`` or uint8) to 8 bits.

    The metrics work channels last: frames read from files (:mod:`tami.data.video`) are scored as they come, with no
    transpose to ``(T, 3, H, W)`` and back (that entry, :func:`quantize`, is for tensors).

    Raises:
        InputError: not ``(T, H, W, 3)``, NaN/inf values, or floats that look like 0-255 data.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputError(f"{name} must be (T, H, W, 3) RGB frames, got shape {tuple(frames.shape)}")
    return _quantize_channels_last(frames, name)


def _quantize_channels_last(a: np.ndarray, name: str) -> np.ndarray:
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise InputError(f"{name} is empty: {a.shape[0]} frames of {a.shape[2]}x{a.shape[1]} pixels")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if not np.issubdtype(a.dtype, np.floating):
        raise InputError(f"{name} must be float in [0, 1] or uint8, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise InputError(f"{name} contains NaN or inf values; check the model output")
    peak = float(a.max())
    if peak > _MAX_FLOAT:
        raise InputError(
            f"{name} has values up to {peak:.4g}, expected floats in [0, 1]; divide 0-255 data by 255 "
            "or pass it as uint8"
        )
    return to_uint8(a)


def quantize_pair(pred: ArrayLike, gt: ArrayLike, *, video: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Quantise ``pred`` and ``gt`` (see :func:`quantize`) and check that their shapes match.

    Returns:
        ``(pred, gt)`` as ``(T, H, W, 3) uint8`` arrays.

    Raises:
        InputError: the shapes differ or either input is malformed.
    """
    p = quantize(pred, name="pred", video=video)
    g = quantize(gt, name="gt", video=video)
    if p.shape != g.shape:
        raise InputError(
            f"pred and gt shapes differ: {_shape_chw(p)} vs {_shape_chw(g)}; both must be (T, 3, H, W) with "
            "the same frame count and size"
        )
    return p, g


def _shape_chw(a: np.ndarray) -> tuple[int, ...]:
    return (a.shape[0], a.shape[3], a.shape[1], a.shape[2])


def ycbcr_y(frames: np.ndarray) -> np.ndarray:
    """Y channel of ITU-R BT.601 YCbCr (studio range), the convention of super-resolution papers and BasicSR.

    Args:
        frames: ``(T, H, W, 3) uint8``.

    Returns:
        ``(T, H, W, 1) float64`` in ``[16/255, 235/255]``: ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255`` with
        ``R, G, B`` in ``[0, 1]``; not re-quantised.
    """
    weights = np.array([65.481, 128.553, 24.966]) / 255.0 / 255.0
    return (frames @ weights + 16.0 / 255.0)[..., None]
