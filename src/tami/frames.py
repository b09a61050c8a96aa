"""Frame conventions, one home each: 8-bit (and 16-bit) quantisation, Rec.709 luma, and writing an image file.

Frames are ``(H, W, 3)`` RGB, float in ``[0, 1]`` or unsigned integers. Quantising clips to ``[0, 1]`` and rounds
to the nearest level, half to even (``np.rint``): the rule of the evaluation protocol (docs/metrics.md), of every
writer and of the report, so a frame written to disk and a frame scored in memory have the same 8-bit values.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from .atomic import atomic_path
from .errors import InputError

#: Rec.709 / sRGB luma weights of gamma-encoded R, G, B.
LUMA_709 = (0.2126, 0.7152, 0.0722)


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Any-shape float array in ``[0, 1]`` (values outside are clipped) to uint8 levels, rounded half to even;
    uint8 input is returned as is (C-contiguous)."""
    x = np.asarray(x)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    out = np.empty(x.shape, dtype=np.uint8)
    np.rint(np.clip(x, 0.0, 1.0) * 255.0, out=out, casting="unsafe")
    return out


def to_uint(frame: np.ndarray, bits: int = 8) -> np.ndarray:
    """``(H, W, 3)`` RGB, float in ``[0, 1]`` or uint8/uint16, to uint8 (``bits`` 8) or uint16 (16), rounded.

    Raises:
        InputError: not an ``(H, W, 3)`` frame.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"cannot write a frame of shape {frame.shape}; expected (H, W, 3) RGB")
    if bits == 8:
        if frame.dtype == np.uint16:
            return ((frame.astype(np.uint32) + 128) // 257).astype(np.uint8)
        return to_uint8(frame)
    if frame.dtype == np.uint16:
        return np.ascontiguousarray(frame)
    if frame.dtype == np.uint8:
        return frame.astype(np.uint16) * 257
    return np.rint(np.clip(frame, 0.0, 1.0) * 65535.0).astype(np.uint16)


def luma(frames: np.ndarray) -> np.ndarray:
    """Rec.709 luma ``(...)`` of RGB frames ``(..., 3)`` in their own scale (float32 for float32 or integer input)."""
    dtype = np.float64 if frames.dtype == np.float64 else np.float32
    return frames.astype(dtype, copy=False) @ np.asarray(LUMA_709, dtype=dtype)


def encode_image(frame: np.ndarray, suffix: str = ".png", *, bits: int = 8) -> np.ndarray:
    """An ``(H, W, 3)`` RGB frame encoded as ``suffix`` (``.png``, ``.jpg``, ...; ``bits`` 16 for png and tif).

    Raises:
        InputError: OpenCV cannot encode the frame in that format.
    """
    data = to_uint(frame, bits)
    try:
        ok, buf = cv2.imencode(suffix, np.ascontiguousarray(data[:, :, ::-1]))
    except cv2.error:
        ok = False
    if not ok:
        raise InputError(f"cannot encode an image as {suffix}; use .png or .jpg")
    return buf


def write_image(path: str | os.PathLike[str], frame: np.ndarray, *, bits: int = 8) -> Path:
    """Write an ``(H, W, 3)`` RGB frame to ``path`` atomically: an image format by its suffix, or ``.npy`` (float32
    RGB in ``[0, 1]``); ``bits`` 16 gives 16-bit png and tif (other formats get 8 bits).

    Raises:
        InputError: the format cannot be encoded, or the file cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                np.save(f, np.clip(frame, 0.0, 1.0).astype(np.float32))
        else:
            deep = bits == 16 and suffix in {".png", ".tif", ".tiff"}
            buf = encode_image(frame, path.suffix, bits=16 if deep else 8)
            with atomic_path(path) as tmp:
                buf.tofile(tmp)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}; choose a writable output path") from None
    return path
