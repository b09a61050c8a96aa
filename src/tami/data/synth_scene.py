"""The scene side of the synthetic generator: camera paths over a photograph and objects that cross the view.

Motion strata (:data:`STRATA`):

* ``static`` — a fixed view (no pan, zoom or rotation);
* ``pan`` — a smooth random path: a pan (smoothstep from start to end plus a slow sinusoidal wobble), a zoom ramp
  and a small rotation ramp;
* ``content`` — a fixed view that objects (:class:`Sprite`) enter and leave: soft-edged patches cut from other
  photographs, made much brighter (lamps, lit windows) or much darker (silhouettes) than the scene, crossing on
  straight lines. They swing the global statistics that a per-frame enhancer normalises, which a memory of the
  clip can hold steady.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .synth_sensor import linear_to_srgb, log_uniform, srgb_to_linear

STRATA: tuple[str, ...] = ("static", "pan", "content")


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def camera_path(rng: np.random.Generator, image_hw: tuple[int, int], size: tuple[int, int], frames: int, *,
                motion: float, zoom: tuple[float, float], rotation: float
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (T, 2) in source pixels, scales (T,) and angles (T,) of a smooth path inside the photograph."""
    (H0, W0), (h, w) = image_hw, size
    theta = math.radians(abs(rotation))
    c, s = math.cos(theta), math.sin(theta)
    box = np.array([w * c + h * s, h * c + w * s])  # bounding box of the most rotated view, output pixels
    fit = min(W0 / box[0], H0 / box[1])  # scale at which that view exactly fills the photograph
    t = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    ramp = _smoothstep(t)
    z0, z1 = rng.uniform(zoom[0], zoom[1], size=2)
    a0, a1 = rng.uniform(-abs(rotation), abs(rotation), size=2)
    scales = 0.85 * fit * zoom[0] / (z0 + (z1 - z0) * ramp)  # the widest possible view keeps 15% spare
    angles = a0 + (a1 - a0) * ramp
    # Pan: travel of 10-30% of the output size (times ``motion``) plus a slow wobble, kept inside the margin.
    direction = rng.uniform(0, 2 * math.pi)
    travel = motion * rng.uniform(0.1, 0.3) * min(h, w) * scales.mean()
    wobble_amp = motion * 0.02 * min(h, w) * scales.mean() * rng.uniform(0.0, 1.0, size=2)
    phase = rng.uniform(0, 2 * math.pi, size=2)
    freq = rng.uniform(0.5, 1.5, size=2)
    margin = np.maximum((np.array([W0, H0]) - box * scales.max()) / 2 - wobble_amp, 0)
    span = np.clip(travel * np.array([math.cos(direction), math.sin(direction)]), -2 * margin, 2 * margin)
    wobble = wobble_amp * np.sin(2 * math.pi * freq * t[:, None] + phase)
    centre = np.array([(W0 - 1) / 2, (H0 - 1) / 2])
    return centre + span * (ramp[:, None] - 0.5) + wobble, scales, angles


def warp_matrix(center: np.ndarray, scale: float, angle_deg: float, size: tuple[int, int]) -> np.ndarray:
    """``(2, 3)`` affine map from output pixel ``(x, y, 1)`` to source-photograph coordinates."""
    h, w = size
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out_centre = np.array([(w - 1) / 2, (h - 1) / 2])
    return np.concatenate([rot, (center - rot @ out_centre)[:, None]], axis=1)


@dataclass
class Sprite:
    """An object crossing the view on a straight line.

    Attributes:
        texture: ``(h, w, 3)`` float32 sRGB patch (brightness gain already applied); alpha: ``(h, w)`` soft mask.
        start, end: ``(x, y)`` centre in output pixels when it enters (``t_in``) and leaves (``t_out``); both lie
            outside the frame, so the object comes in and goes out.
        t_in, t_out: frame times (fractional, may lie outside the clip).
        gain: linear-light brightness factor of the patch against its photograph (> 1: bright object).
    """

    texture: np.ndarray
    alpha: np.ndarray
    start: np.ndarray
    end: np.ndarray
    t_in: float
    t_out: float
    gain: float

    def centre(self, t: float) -> np.ndarray | None:
        """Centre at frame ``t``, or ``None`` while the object is out of view."""
        if not self.t_in <= t <= self.t_out:
            return None
        u = (t - self.t_in) / (self.t_out - self.t_in)
        return self.start + (self.end - self.start) * u

    def summary(self) -> dict[str, object]:
        return {"size": list(self.alpha.shape), "gain": round(self.gain, 4), "t_in": round(self.t_in, 3),
                "t_out": round(self.t_out, 3), "start": self.start.round(2).tolist(), "end": self.end.round(2).tolist()}


def _soft_ellipse(h: int, w: int, edge: float = 0.15) -> np.ndarray:
    y = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / (h / 2)
    x = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / (w / 2)
    r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    return np.clip((1.0 - r) / edge, 0.0, 1.0).astype(np.float32)


def make_sprites(rng: np.random.Generator, sources: list[np.ndarray], size: tuple[int, int], frames: int, *,
                 count: tuple[int, int] = (1, 2), extent: tuple[float, float] = (0.3, 0.55),
                 bright_gain: tuple[float, float] = (2.0, 5.0), dark_gain: tuple[float, float] = (0.03, 0.25)
                 ) -> list[Sprite]:
    """Objects for a ``content`` clip of ``frames`` frames of ``size`` ``(h, w)``.

    Each object is a soft ellipse cut from one of ``sources`` (``(H, W, 3)`` sRGB photographs), ``extent`` of the
    frame's short side across, bright or dark with equal odds, crossing on a line near the centre; it enters
    between 30 % before and 40 % into the clip and takes 0.6-1.2 clip lengths to cross.
    """
    if not sources:
        raise InputError("content clips need at least one photograph to cut objects from")
    h, w = size
    sprites = []
    for _ in range(int(rng.integers(count[0], count[1] + 1))):
        side = rng.uniform(*extent) * min(h, w)
        aspect = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
        sh, sw = max(4, round(side / math.sqrt(aspect))), max(4, round(side * math.sqrt(aspect)))
        source = sources[int(rng.integers(len(sources)))]
        scale = 2.0 * max(sh, sw) / min(source.shape[:2])
        if scale < 1.0:  # shrink large photographs so a patch holds a recognisable part of them
            source = cv2.resize(source, (max(sw, round(source.shape[1] * scale)), max(sh, round(source.shape[0] * scale))),
                                interpolation=cv2.INTER_AREA)
        if source.shape[0] < sh or source.shape[1] < sw:
            source = cv2.resize(source, (max(sw, source.shape[1]), max(sh, source.shape[0])),
                                interpolation=cv2.INTER_LINEAR)
        top = int(rng.integers(source.shape[0] - sh + 1))
        left = int(rng.integers(source.shape[1] - sw + 1))
        patch = source[top:top + sh, left:left + sw]
        gain = log_uniform(rng, bright_gain if rng.uniform() < 0.5 else dark_gain)
        texture = linear_to_srgb(srgb_to_linear(patch) * np.float32(gain))
        theta = rng.uniform(0, 2 * math.pi)
        direction = np.array([math.cos(theta), math.sin(theta)])
        through = np.array([(w - 1) / 2, (h - 1) / 2]) + rng.uniform(-0.25, 0.25, size=2) * np.array([w, h])
        reach = math.hypot(w, h) / 2 + math.hypot(sw, sh) / 2 + 1
        t_in = rng.uniform(-0.3, 0.4) * frames
        t_out = t_in + rng.uniform(0.6, 1.2) * max(frames, 2)
        sprites.append(Sprite(texture, _soft_ellipse(sh, sw), through - reach * direction,
                              through + reach * direction, float(t_in), float(t_out), float(gain)))
    return sprites


def composite(frame: np.ndarray, sprites: list[Sprite], t: int) -> np.ndarray:
    """``frame`` ``(h, w, 3)`` sRGB with the sprites visible at frame ``t`` drawn over it (sub-pixel, bilinear)."""
    h, w = frame.shape[:2]
    out = frame
    for sprite in sprites:
        centre = sprite.centre(t)
        if centre is None:
            continue
        sh, sw = sprite.alpha.shape
        shift = np.float32([[1, 0, centre[0] - (sw - 1) / 2], [0, 1, centre[1] - (sh - 1) / 2]])
        alpha = cv2.warpAffine(sprite.alpha, shift, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
        if not alpha.any():
            continue
        texture = cv2.warpAffine(sprite.texture, shift, (w, h), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        out = out * (1 - alpha[..., None]) + texture * alpha[..., None]
    return out.astype(np.float32)
