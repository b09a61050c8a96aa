"""Y'CbCr <-> RGB conversion as video players do it: the matrix and range come from the stream's tags.

Decoders hand out Y'CbCr planes; turning them into RGB needs the matrix (BT.601, BT.709 or BT.2020) and the range
(limited: Y' in 16..235 and C in 16..240 at 8 bits; full: 0..255). Streams tag both; for untagged streams the
range is limited and the matrix follows the frame size as players assume: BT.709 for HD (wider than 1279 or
taller than 576 pixels), BT.601 below. Conversion is done in float32 from the stored integers, so 10- and 12-bit
video keeps its precision. Chroma planes are upsampled by repeating each sample over the luma pixels it covers
and smoothing bilinearly, then cropped, so odd sizes come out at their exact size.

:func:`rgb_to_yuv` is the inverse, used by the video writer, which tags what it writes (BT.709, limited range).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

Matrix = Literal["bt601", "bt709", "bt2020"]

# (Kr, Kb) luma weights of red and blue; green is 1 - Kr - Kb.
MATRICES: dict[str, tuple[float, float]] = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
}

# AVColorSpace codes (as in FFmpeg's pixfmt.h and the H.264/HEVC "matrix_coefficients" VUI field).
_TAGGED: dict[int, Matrix] = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}


@dataclass(frozen=True)
class ColourSpec:
    """How a stream's Y'CbCr samples map to RGB.

    Attributes:
        matrix: ``bt601``, ``bt709`` or ``bt2020``.
        full_range: samples use the whole integer range (JPEG style) rather than 16..235/240 (scaled for depth).
        bits: bits per stored sample (8, 10, 12 or 16).
    """

    matrix: Matrix
    full_range: bool
    bits: int

    def describe(self) -> str:
        """Short human form, e.g. ``BT.709 limited 10-bit``."""
        name = {"bt601": "BT.601", "bt709": "BT.709", "bt2020": "BT.2020"}[self.matrix]
        return f"{name} {'full' if self.full_range else 'limited'} {self.bits}-bit"


def guess_matrix(colorspace: int | None, width: int, height: int) -> Matrix:
    """The matrix of a stream tagged ``colorspace`` (AVColorSpace code; None/unknown: untagged) and size.

    Untagged streams follow the player convention: BT.709 for HD (width >= 1280 or height > 576), else BT.601.
    """
    if colorspace in _TAGGED:
        return _TAGGED[colorspace]  # type: ignore[index]
    return "bt709" if width >= 1280 or height > 576 else "bt601"


def _scale(bits: int, full_range: bool) -> tuple[float, float, float, float]:
    """``(y_offset, y_span, c_offset, c_span)`` in stored integer units."""
    if full_range:
        top = float(2 ** bits - 1)
        return 0.0, top, float(2 ** (bits - 1)), top
    unit = float(2 ** (bits - 8))
    return 16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit


def upsample_chroma(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A subsampled chroma plane at luma size ``(height, width)``: each sample spread over its pixels, smoothed."""
    ch, cw = plane.shape
    if (ch, cw) == (height, width):
        return plane.astype(np.float32, copy=False)
    fy, fx = -(-height // ch), -(-width // cw)  # the subsampling factors (ceil: odd sizes round the plane up)
    big = cv2.resize(plane.astype(np.float32, copy=False), (cw * fx, ch * fy), interpolation=cv2.INTER_LINEAR)
    return big[:height, :width]


def _yuv_matrix(spec: ColourSpec) -> np.ndarray:
    """The 3x4 affine map from stored ``(Y, Cb, Cr, 1)`` to RGB, normalisation folded in."""
    y_off, y_span, c_off, c_span = _scale(spec.bits, spec.full_range)
    kr, kb = MATRICES[spec.matrix]
    kg = 1.0 - kr - kb
    to_rgb = np.array([[1.0, 0.0, 2.0 * (1.0 - kr)],
                       [1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg],
                       [1.0, 2.0 * (1.0 - kb), 0.0]])
    scale = np.diag([1.0 / y_span, 1.0 / c_span, 1.0 / c_span])
    offset = np.array([y_off / y_span, c_off / c_span, c_off / c_span])
    return np.hstack([to_rgb @ scale, -(to_rgb @ offset)[:, None]])


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, spec: ColourSpec) -> np.ndarray:
    """Stored Y'CbCr planes (integers; chroma possibly subsampled) to ``(H, W, 3) float32`` RGB in ``[0, 1]``."""
    height, width = y.shape
    planes = cv2.merge([y.astype(np.float32), upsample_chroma(u, height, width), upsample_chroma(v, height, width)])
    rgb = cv2.transform(planes, _yuv_matrix(spec))
    np.clip(rgb, 0.0, 1.0, out=rgb)
    return rgb


def gray_to_rgb(y: np.ndarray, spec: ColourSpec) -> np.ndarray:
    """A luma-only plane to ``(H, W, 3) float32`` gray RGB in ``[0, 1]``."""
    y_off, y_span, _, _ = _scale(spec.bits, spec.full_range)
    luma = np.clip((y.astype(np.float32) - np.float32(y_off)) * np.float32(1.0 / y_span), 0.0, 1.0)
    return np.repeat(luma[:, :, None], 3, axis=2)


def rgb_to_yuv(rgb: np.ndarray, spec: ColourSpec, *, subsample: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H, W, 3)`` uint8 or float RGB to stored Y'CbCr planes (uint8/uint16 by ``spec.bits``).

    Args:
        rgb: uint8 RGB, or float in ``[0, 1]``.
        spec: matrix, range and depth to write.
        subsample: halve the chroma planes in both directions (4:2:0; needs even sizes), averaging 2x2 blocks.
    """
    data = rgb.astype(np.float32) / np.float32(255.0) if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    kr, kb = MATRICES[spec.matrix]
    kg = 1.0 - kr - kb
    y_off, y_span, c_off, c_span = _scale(spec.bits, spec.full_range)
    to_yuv = np.array([[kr, kg, kb],
                       [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
                       [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))]])
    matrix = np.hstack([np.diag([y_span, c_span, c_span]) @ to_yuv, [[y_off], [c_off], [c_off]]])
    stored = cv2.transform(np.ascontiguousarray(data), matrix)
    luma, cb, cr = cv2.split(stored)
    if subsample:
        h, w = luma.shape
        cb = cv2.resize(cb, (w // 2, h // 2), interpolation=cv2.INTER_AREA)  # the mean of each 2x2 block
        cr = cv2.resize(cr, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    dtype = np.uint8 if spec.bits == 8 else np.uint16
    top = 2 ** spec.bits - 1
    return tuple(np.clip(np.rint(p), 0, top).astype(dtype) for p in (luma, cb, cr))  # type: ignore[return-value]
