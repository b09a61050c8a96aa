"""Optical flow for the warping error: estimators, backward warping, occlusion masks and a per-video flow cache.

Conventions: a flow ``w`` from frame ``a`` to frame ``b`` is an ``(H, W, 2) float32`` field of ``(dx, dy)`` pixel
offsets with ``a(p) ~ b(p + w(p))``. Warping ``b`` to ``a`` samples ``b`` bilinearly at ``p + w(p)``.

Estimators (``create_flow(name, **options)``):

* ``"dis"`` (default): OpenCV's DIS optical flow (Kroeger et al., ECCV 2016) on the BT.601 gray image; no weights
  needed. Default preset ``"medium"``, chosen by measurement (``benchmarks/metrics.py``, results in
  ``benchmarks/RESULTS.md``): on 960x512 natural frames moved by a smooth known flow its mean end-point error is
  0.12 px (``"fast"`` 0.27, ``"ultrafast"`` 0.40) and the warping error it leaves on a perfect output is 4.5x
  smaller than with ``"fast"`` (0.0095e-3 vs 0.043e-3, against published E_warp values of ~0.2e-3), for about
  20 ms per flow instead of 4 ms: the GT flow is computed once per video and cached.
* ``"raft"``: RAFT (Teed and Deng, ECCV 2020) through torchvision, only when torchvision is installed and a local
  weights file is given (torchvision's ``raft_large``/``raft_small`` state dict); nothing is downloaded.

For E_warp only the backward flow of each frame pair and its non-occlusion mask are kept (:class:`PairFlows`).
:class:`FlowCache` stores them per reference video, keyed by the video's content and the estimator's settings, in
memory (bounded) and optionally on disk, so scoring many methods against one GT video estimates its flow once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Protocol

import cv2
import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import CheckpointError, InputError
from ..registry import Registry

logger = logging.getLogger(__name__)

DIS_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_DIS_PRESET = "medium"

# Forward-backward consistency test of Lai et al. (ECCV 2018), pinned in docs/metrics.md.
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5


class FlowEstimator(Protocol):
    """What E_warp needs from an optical flow method."""

    name: str

    def settings(self) -> dict[str, Any]:
        """Everything that determines the flow (method, preset/weights, library version); stored with results."""

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Flow from each ``src`` frame to the matching ``dst`` frame.

        Args:
            src, dst: ``(N, H, W, 3) uint8`` RGB.

        Returns:
            ``(N, H, W, 2) float32`` pixel offsets ``(dx, dy)`` with ``src(p) ~ dst(p + flow(p))``.
        """


FLOWS: Registry[Callable[..., FlowEstimator]] = Registry("flow method")


def describe(settings: dict[str, Any]) -> str:
    """One-line description of flow settings, e.g. ``dis(preset=medium, opencv=5.0.0)``."""
    rest = ", ".join(f"{k}={v}" for k, v in settings.items() if k != "method")
    return f"{settings['method']}({rest})"


@FLOWS.register("dis")
class DISFlow:
    """OpenCV DIS optical flow on gray frames.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (default; see the module docstring).
    """

    name = "dis"

    def __init__(self, preset: str = DEFAULT_DIS_PRESET) -> None:
        if preset not in DIS_PRESETS:
            raise InputError(f"DIS preset must be one of {', '.join(DIS_PRESETS)}, got {preset!r}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def settings(self) -> dict[str, Any]:
        return {"method": "dis", "preset": self.preset, "opencv": cv2.__version__}

    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        out = np.empty(src.shape[:3] + (2,), dtype=np.float32)
        for i, (a, b) in enumerate(zip(src, dst)):
            ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
            gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
            out[i] = self._dis.calc(ga, gb, None)
        return out


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"RAFT weights not found: {path}; give a local torchvision RAFT state dict file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read RAFT weights {path}: {exc}") from exc
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, expected a RAFT state dict")
    return state


@FLOWS.register("raft")
class RAFTFlow:
    """RAFT through torchvision with a local weights file (optional; torchvision is not a dependency).

    Args:
        weights: torchvision ``raft_large``/``raft_small`` state dict (``.pth``/``.pt`` or ``.safetensors``).
        variant: ``"large"`` (default) or ``"small"``.
        iters: recurrent refinement steps (default 12, torchvision's default).
        device: ``"auto"`` (default: CUDA when available, else CPU) or a torch device string.
        batch: frame pairs per forward pass (default 4).

    Raises:
        InputError: torchvision is not installed or options are invalid.
        CheckpointError: the weights are missing, unreadable or do not fit the variant.
    """

    name = "raft"

    def __init__(self, weights: str | os.PathLike[str] | None = None, variant: Literal["large", "small"] = "large",
                 iters: int = 12, device: str = "auto", batch: int = 4) -> None:
        if importlib.util.find_spec("torchvision") is None:
            raise InputError("RAFT flow needs torchvision (pip install torchvision); or use the default flow 'dis'")
        if weights is None:
            raise InputError("RAFT flow needs a local weights file: create_flow('raft', weights=PATH)")
        if variant not in ("large", "small"):
            raise InputError(f"RAFT variant must be 'large' or 'small', got {variant!r}")
        if iters < 1 or batch < 1:
            raise InputError(f"RAFT iters and batch must be >= 1, got iters={iters}, batch={batch}")
        from torchvision.models import optical_flow

        self.weights = Path(weights)
        self.variant, self.iters, self.batch = variant, iters, batch
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available()
                                   else ("cpu" if device == "auto" else device))
        build = optical_flow.raft_large if variant == "large" else optical_flow.raft_small
        model = build(weights=None, progress=False)
        try:
            model.load_state_dict(_load_state_dict(self.weights), strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{self.weights} does not fit RAFT-{variant}: {exc}") from exc
        self.model = model.eval().to(self.device)
        self._digest = hashlib.blake2b(self.weights.read_bytes(), digest_size=8).hexdigest()

    def settings(self) -> dict[str, Any]:
        return {"method": "raft", "variant": self.variant, "iters": self.iters, "weights": self.weights.name,
                "weights_blake2b": self._digest}

    def _prepare(self, frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        h, w = x.shape[-2:]
        return torch.nn.functional.pad(x, (0, (-w) % 8, 0, (-h) % 8), mode="replicate")

    @torch.inference_mode()
    def __call__(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        h, w = src.shape[1:3]
        out = np.empty(src.shape[:3] + (2,), dtype=np.float32)
        for i in range(0, src.shape[0], self.batch):
            a = self._prepare(src[i:i + self.batch])
            b = self._prepare(dst[i:i + self.batch])
            flow = self.model(a, b, num_flow_updates=self.iters)[-1][:, :, :h, :w]
            out[i:i + self.batch] = flow.permute(0, 2, 3, 1).float().cpu().numpy()
        return out


def create_flow(name: str = "dis", **options: Any) -> FlowEstimator:
    """Build a flow estimator by name (``"dis"`` or ``"raft"``) with its options (see the classes).

    Raises:
        UnknownNameError: unknown method, with close matches.
        OptionError: unknown option, naming the valid ones.
    """
    estimator: FlowEstimator = FLOWS.create(name, **options)
    return estimator


def list_flows(pattern: str | None = None) -> list[str]:
    """Names of the registered flow methods."""
    return FLOWS.names(pattern)


# ---------------------------------------------------------------------------------------------------------------
# Warping and occlusion
# ---------------------------------------------------------------------------------------------------------------

def sample_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampling positions ``p + flow(p)`` and whether they fall inside the frame.

    Args:
        flow: ``(H, W, 2) float32``.

    Returns:
        ``map_x, map_y`` ``(H, W) float32`` and ``inside`` ``(H, W) bool``.
    """
    h, w = flow.shape[:2]
    map_x = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    map_y = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return map_x, map_y, inside


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``image`` with ``flow``: ``out(p) = image(p + flow(p))``, bilinear, borders replicated.

    Args:
        image: ``(H, W, C) float32``.
        flow: ``(H, W, 2) float32``.

    Returns:
        ``(H, W, C) float32``.
    """
    map_x, map_y, _ = sample_maps(flow)
    out = cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out.reshape(image.shape)


def non_occlusion_mask(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Pixels of frame ``t`` that have a reliable match in frame ``t-1`` (Lai et al. 2018).

    ``backward`` (``t -> t-1``) and ``forward`` (``t-1 -> t``) must be consistent:
    ``|b + f'|^2 < 0.01 (|b|^2 + |f'|^2) + 0.5`` with ``f'`` the forward flow sampled at ``p + b(p)``; pixels whose
    match falls outside frame ``t-1`` are excluded as well (their warped value does not exist).

    Args:
        backward: ``(H, W, 2) float32`` flow from frame ``t`` to ``t-1``.
        forward: ``(H, W, 2) float32`` flow from frame ``t-1`` to ``t``.

    Returns:
        ``(H, W) bool``, True where the pixel is scored.
    """
    _, _, inside = sample_maps(backward)
    fwd = warp(forward, backward)
    total = backward + fwd
    err = np.einsum("hwc,hwc->hw", total, total)
    mag = np.einsum("hwc,hwc->hw", backward, backward) + np.einsum("hwc,hwc->hw", fwd, fwd)
    return (err < OCCLUSION_ALPHA * mag + OCCLUSION_BETA) & inside


@dataclass(frozen=True)
class PairFlows:
    """Backward flows and non-occlusion masks of the consecutive pairs of one reference video.

    Attributes:
        flows: ``(T-1, H, W, 2) float32``; ``flows[t-1]`` maps frame ``t`` to frame ``t-1``.
        masks: ``(T-1, H, W) bool``; True where pixel ``p`` of frame ``t`` is scored.
        settings: the flow estimator's settings.
    """

    flows: np.ndarray
    masks: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return int(self.flows.nbytes + self.masks.nbytes)


def pair_flows(frames: np.ndarray, estimator: FlowEstimator) -> PairFlows:
    """Estimate both flow directions of every consecutive pair and the non-occlusion masks.

    Args:
        frames: ``(T, H, W, 3) uint8`` reference video, ``T >= 2``.
        estimator: a :class:`FlowEstimator`.
    """
    if frames.shape[0] < 2:
        raise InputError(f"optical flow needs at least 2 frames, got {frames.shape[0]}")
    backward = estimator(frames[1:], frames[:-1])
    forward = estimator(frames[:-1], frames[1:])
    masks = np.stack([non_occlusion_mask(b, f) for b, f in zip(backward, forward)])
    return PairFlows(backward, masks, estimator.settings())


def video_key(frames: np.ndarray) -> str:
    """Content digest of a quantised video (shape and pixels), used as its identity in caches."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(frames.shape).encode())
    h.update(memoryview(np.ascontiguousarray(frames)).cast("B"))
    return h.hexdigest()


class FlowCache:
    """Per-video :class:`PairFlows`, in memory (least recently used first out) and optionally on disk.

    Keys combine the reference video's content digest and the estimator's settings, so a cached entry is only
    reused for the same frames and the same flow method. A 30-frame 960x512 video takes about 128 MB (in memory
    and on disk; flows are stored as float32 so cached and fresh results are identical).

    Args:
        directory: folder for ``<key>.npz`` files; None (default) keeps flows in memory only.
        max_bytes: memory budget (default 1 GiB); the oldest entries are dropped beyond it.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, max_bytes: int = 1 << 30) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_bytes = max_bytes
        self._memory: OrderedDict[str, PairFlows] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(frames: np.ndarray, estimator: FlowEstimator, *, digest: str | None = None) -> str:
        """Cache key of ``frames`` under ``estimator``: content digest, method name, settings digest."""
        tag = hashlib.blake2b(json.dumps(estimator.settings(), sort_keys=True).encode(), digest_size=6).hexdigest()
        return f"{digest or video_key(frames)}-{estimator.name}-{tag}"

    def _remember(self, key: str, value: PairFlows) -> None:
        self._memory[key] = value
        self._memory.move_to_end(key)
        while len(self._memory) > 1 and sum(v.nbytes for v in self._memory.values()) > self.max_bytes:
            self._memory.popitem(last=False)

    def _load(self, path: Path, frames: np.ndarray) -> PairFlows | None:
        try:
            with np.load(path, allow_pickle=False) as data:
                value = PairFlows(data["flows"], data["masks"], json.loads(str(data["settings"])))
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("ignoring unreadable flow cache file %s (%s)", path, exc)
            return None
        t, h, w = frames.shape[:3]
        if value.flows.shape != (t - 1, h, w, 2) or value.masks.shape != (t - 1, h, w):
            logger.warning("ignoring flow cache file %s: shapes do not fit the video", path)
            return None
        return value

    def get(self, frames: np.ndarray, estimator: FlowEstimator, *, digest: str | None = None) -> PairFlows:
        """The pair flows of ``frames`` (``(T, H, W, 3) uint8``), computed at most once per cache.

        Args:
            frames: the reference video.
            estimator: the flow method.
            digest: ``video_key(frames)`` when the caller already has it (saves hashing the video again).
        """
        key = self.key(frames, estimator, digest=digest)
        if key in self._memory:
            self.hits += 1
            self._memory.move_to_end(key)
            return self._memory[key]
        path = self.directory / f"{key}.npz" if self.directory is not None else None
        value = self._load(path, frames) if path is not None and path.is_file() else None
        if value is None:
            self.misses += 1
            value = pair_flows(frames, estimator)
            if path is not None:
                with atomic_path(path) as tmp:
                    with open(tmp, "wb") as fh:
                        np.savez(fh, flows=value.flows, masks=value.masks,
                                 settings=np.array(json.dumps(value.settings)))
        else:
            self.hits += 1
        self._remember(key, value)
        return value

    def __len__(self) -> int:
        return len(self._memory)
