"""Temporal consistency: MABD and the warping error E_warp, on 8-bit-quantised sRGB videos.

**MABD** (mean absolute brightness difference; Chen et al., "Learning to See Moving Objects in the Dark", ICCV 2019):
luma ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` of the gamma-encoded frames in ``[0, 1]``; the brightness-change
vector ``m_t = mean_p |Y_{t+1}(p) - Y_t(p)|`` (``T - 1`` values); ``MABD = mean_t (m_t^pred - m_t^gt)^2``.
Tables report it x10^3.

**E_warp** (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): for every pair ``(t-1, t)``, the
previous *output* frame is warped to ``t`` with the backward flow estimated on the reference video (GT by default)
and ``E_t = sum_p M_t(p) |O_t(p) - W(O_{t-1})(p)|^2 / (3 sum_p M_t(p))`` (mean over the scored pixels and the three
channels, values in ``[0, 1]``), with ``M_t`` the forward-backward non-occlusion mask
(:func:`tami.metrics.flow.non_occlusion_mask`). ``E_warp = mean_t E_t`` over the pairs with at least one scored pixel
(a pair with none, e.g. a scene cut, is left out and logged). Tables report it x10^3 with the flow method named.

**J** (global brightness jitter; not in the paper): with ``r_t = ln(mean_p Y^pred_t(p) / mean_p Y^gt_t(p))`` the
log ratio of mean luma, ``J = std_t (r_t - r_{t-1})`` over the ``T - 1`` pairs (population std). A constant
brightness bias and a steady drift of the ratio score 0; frame-to-frame brightness jumps that the reference does
not have score their spread. Frame means are floored at half an 8-bit level (``0.5 / 255``) so black frames stay
finite. It isolates the global exposure flicker that MABD mixes with noise and E_warp with local error.
"""

from __future__ import annotations

import logging
from typing import Literal

import cv2
import numpy as np

from ..errors import InputError
from ..frames import LUMA_709
from .flow import FlowCache, FlowEstimator, PairFlows, create_flow, sample_maps, video_key
from .frames import ArrayLike, quantize, quantize_pair

logger = logging.getLogger(__name__)

FlowSource = Literal["gt", "output", "input"]
FLOW_SOURCES: tuple[str, ...] = ("gt", "output", "input")

_LUMA = np.array([LUMA_709], dtype=np.float64) / 255.0
#: Floor of a frame's mean luma in J (half an 8-bit level).
JITTER_FLOOR = 0.5 / 255.0


def brightness_changes_u8(frames: np.ndarray) -> np.ndarray:
    """MABD vector of one video.

    Args:
        frames: ``(T, H, W, 3) uint8``, ``T >= 2``.

    Returns:
        ``(T-1,) float64``: ``m_t = mean |Y_{t+1} - Y_t|`` in ``[0, 1]``.
    """
    if frames.shape[0] < 2:
        raise InputError(f"MABD needs at least 2 frames, got {frames.shape[0]}")
    out = np.empty(frames.shape[0] - 1, dtype=np.float64)
    prev = cv2.transform(frames[0].astype(np.float64), _LUMA)
    for t in range(1, frames.shape[0]):
        cur = cv2.transform(frames[t].astype(np.float64), _LUMA)
        out[t - 1] = cv2.norm(cur, prev, cv2.NORM_L1) / cur.size
        prev = cur
    return out


def luma_means_u8(frames: np.ndarray) -> np.ndarray:
    """Mean Rec. 709 luma of every frame.

    Args:
        frames: ``(T, H, W, 3) uint8``.

    Returns:
        ``(T,) float64`` in ``[0.5 / 255, 1]`` (floored at half an 8-bit level, see the module docstring).
    """
    weights = _LUMA[0] * 255.0
    means = frames.reshape(frames.shape[0], -1, 3).mean(axis=1, dtype=np.float64) @ weights / 255.0
    return np.maximum(means, JITTER_FLOOR)


def jitter_pairs_u8(pred: np.ndarray, gt_means: np.ndarray) -> np.ndarray:
    """Per-pair changes of the log luma ratio, ``r_t - r_{t-1}``; their population std is the video's J.

    Args:
        pred: ``(T, H, W, 3) uint8``, ``T >= 2``.
        gt_means: ``(T,)`` mean luma of the reference (:func:`luma_means_u8`).

    Returns:
        ``(T-1,) float64``.
    """
    if pred.shape[0] < 2:
        raise InputError(f"J needs at least 2 frames, got {pred.shape[0]}")
    means = luma_means_u8(pred)
    if means.shape != gt_means.shape:
        raise InputError(f"pred has {pred.shape[0]} frames, the reference {gt_means.shape[0]}")
    return np.diff(np.log(means) - np.log(gt_means))


def mabd_pairs_u8(pred: np.ndarray, gt_changes: np.ndarray) -> np.ndarray:
    """Per-pair MABD terms ``(m_t^pred - m_t^gt)^2``.

    Args:
        pred: ``(T, H, W, 3) uint8``.
        gt_changes: ``(T-1,)`` brightness changes of the reference (:func:`brightness_changes_u8`).

    Returns:
        ``(T-1,) float64``; their mean is the video's MABD.
    """
    changes = brightness_changes_u8(pred)
    if changes.shape != gt_changes.shape:
        raise InputError(f"pred has {pred.shape[0]} frames, the reference {gt_changes.shape[0] + 1}")
    return (changes - gt_changes) ** 2


def ewarp_pairs_u8(pred: np.ndarray, flows: PairFlows, *, occlusion: bool = True) -> np.ndarray:
    """Per-pair warping errors of a video.

    Args:
        pred: ``(T, H, W, 3) uint8`` output video.
        flows: backward flows and masks of the reference (:func:`tami.metrics.flow.pair_flows`).
        occlusion: use the non-occlusion masks (default); False scores every pixel whose match is in the frame.

    Returns:
        ``(T-1,) float64`` errors in ``[0, 1]``; NaN for a pair without any scored pixel.
    """
    if flows.flows.shape[:3] != (pred.shape[0] - 1,) + pred.shape[1:3]:
        raise InputError(
            f"flows cover {flows.flows.shape[0] + 1} frames of {flows.flows.shape[2]}x{flows.flows.shape[1]}, "
            f"the video has {pred.shape[0]} frames of {pred.shape[2]}x{pred.shape[1]}"
        )
    out = np.empty(pred.shape[0] - 1, dtype=np.float64)
    scale = np.float32(1.0 / 255.0)
    for t in range(1, pred.shape[0]):
        map_x, map_y, inside = sample_maps(flows.flows[t - 1])
        mask = flows.masks[t - 1] if occlusion else inside
        count = int(np.count_nonzero(mask))
        if count == 0:
            out[t - 1] = np.nan
            continue
        prev = pred[t - 1].astype(np.float32)
        warped = cv2.remap(prev, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        diff = cv2.subtract(warped, pred[t].astype(np.float32))
        err = cv2.norm(diff, cv2.NORM_L2SQR, mask=mask.view(np.uint8))
        out[t - 1] = err * float(scale) ** 2 / (3.0 * count)
    return out


def mean_valid(values: np.ndarray, *, what: str = "E_warp") -> float:
    """Mean over the non-NaN entries (NaN when there are none); logs how many were left out."""
    valid = ~np.isnan(values)
    if not valid.all():
        logger.info("%s: %d of %d frame pairs have no non-occluded pixel and are left out", what,
                    int((~valid).sum()), values.size)
    return float(values[valid].mean()) if valid.any() else float("nan")


def mabd_vector(video: ArrayLike) -> np.ndarray:
    """Brightness-change vector of a video (the MABD curve).

    Args:
        video: ``(T, 3, H, W)`` float in ``[0, 1]`` (or uint8), tensor or array; ``T >= 2``.

    Returns:
        ``(T-1,) float64`` ``m_t = mean |Y_{t+1} - Y_t|`` after 8-bit quantisation.
    """
    return brightness_changes_u8(quantize(video, name="video"))


def mabd(pred: ArrayLike, gt: ArrayLike) -> float:
    """MABD of a video against its reference, after 8-bit quantisation (natural units; tables show x10^3).

    Args:
        pred, gt: ``(T, 3, H, W)`` float in ``[0, 1]`` (or uint8), tensors or arrays, ``T >= 2``.

    Returns:
        ``mean_t (m_t^pred - m_t^gt)^2``, in ``[0, 1]``; 0 for identical videos.
    """
    p, g = quantize_pair(pred, gt)
    return float(mabd_pairs_u8(p, brightness_changes_u8(g)).mean())


def jitter(pred: ArrayLike, gt: ArrayLike) -> float:
    """Global brightness jitter J of a video against its reference, after 8-bit quantisation (log units).

    Args:
        pred, gt: ``(T, 3, H, W)`` float in ``[0, 1]`` (or uint8), tensors or arrays, ``T >= 2``.

    Returns:
        ``std_t (r_t - r_{t-1})`` with ``r_t`` the log ratio of mean luma (module docstring); 0 when ``pred`` is
        ``gt`` times any constant or drift that changes by the same step every frame.
    """
    p, g = quantize_pair(pred, gt)
    return float(jitter_pairs_u8(p, luma_means_u8(g)).std())


def resolve_flow(flow: str | FlowEstimator) -> FlowEstimator:
    """A flow estimator from a registered name (default options) or an estimator instance."""
    return create_flow(flow) if isinstance(flow, str) else flow


def ewarp(pred: ArrayLike, gt: ArrayLike, *, flow: str | FlowEstimator = "dis", source: FlowSource = "gt",
          inp: ArrayLike | None = None, occlusion: bool = True, cache: FlowCache | None = None) -> float:
    """Warping error E_warp of a video (Lai et al. 2018), after 8-bit quantisation (natural units).

    Args:
        pred: ``(T, 3, H, W)`` float in ``[0, 1]`` (or uint8) output video, ``T >= 2``.
        gt: reference video of the same shape.
        flow: flow method name (``"dis"``, default, or ``"raft"`` which needs options: pass
            ``create_flow("raft", weights=...)``) or a :class:`~tami.metrics.flow.FlowEstimator`.
        source: video the flow is estimated on: ``"gt"`` (default), ``"output"`` (``pred``) or ``"input"``
            (``inp``, the low-light input).
        inp: the input video, required with ``source="input"``.
        occlusion: mask occluded pixels (default True).
        cache: a :class:`~tami.metrics.flow.FlowCache` to reuse flows across calls with the same reference.

    Returns:
        Mean over frame pairs of the masked mean squared error, in ``[0, 1]``.

    Raises:
        InputError: malformed inputs, fewer than 2 frames, unknown source, missing ``inp``.
    """
    p, g = quantize_pair(pred, gt)
    if source not in FLOW_SOURCES:
        raise InputError(f"flow source must be one of {', '.join(FLOW_SOURCES)}, got {source!r}")
    if source == "input":
        if inp is None:
            raise InputError("source='input' needs the input video: ewarp(pred, gt, source='input', inp=LQ)")
        ref = quantize(inp, name="inp")
        if ref.shape != g.shape:
            raise InputError(f"inp shape {ref.shape} differs from gt shape {g.shape} (both (T, H, W, 3) here)")
    else:
        ref = g if source == "gt" else p
    estimator = resolve_flow(flow)
    store = cache if cache is not None else FlowCache()
    flows = store.get(ref, estimator, digest=video_key(ref))
    return mean_valid(ewarp_pairs_u8(p, flows, occlusion=occlusion))
