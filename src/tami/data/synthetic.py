"""Synthetic paired low-light videos from normal-light photographs.

A clip is made in four steps, all driven by one seed:

1. **Camera path** — a smooth random path over the photograph: a pan (smoothstep from start to end plus a slow
   sinusoidal wobble), a zoom ramp and a small rotation ramp. Each frame is an affine warp of the photograph; the
   clean warps are the ground truth.
2. **Darkening in linear light** — inverse sRGB gamma, then scaling by an exposure factor drawn log-uniformly from
   ``exposure`` (default 0.03–0.3), optionally times a per-frame flicker ``exp(flicker * N(0, 1))`` and a per-clip
   colour cast (per-channel gains ``exp(color_cast * N(0, 1))``, geometric mean 1).
3. **Noise** — heteroscedastic Gaussian noise of variance ``a * I + b`` on the darkened linear intensity ``I``
   (shot term ``a``, read term ``b``). As in Brooks et al., "Unprocessing Images for Learned Raw Denoising"
   (CVPR 2019): ``a`` is log-uniform in ``[1e-4, 1.2e-2]`` and ``log b = 2.18 log a + 1.20 + N(0, 0.26)``.
4. **sRGB and 8-bit** — back through the sRGB curve, clipped and quantised to 8 bits (the GT is quantised too, so
   written PNGs equal the in-memory arrays).

Built-in photographs are read straight from the files that ship inside scikit-image (``skimage/data``) and
matplotlib (``grace_hopper.jpg``): nothing is downloaded and neither package is imported. They are split into a
training set and a held-out set (:data:`BUILTIN_SPLITS`) so a model trained on synthetic data can be evaluated on
photographs it never saw.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import InputError
from .video import IMAGE_SUFFIXES, natural_key, read_image

logger = logging.getLogger(__name__)

# name -> (package, path inside the package)
BUILTIN_FILES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "ihc": ("skimage", "data/ihc.png"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
BUILTIN_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "chelsea", "hubble_deep_field", "ihc", "retina", "rocket", "motorcycle_left"),
    "test": ("coffee", "grace_hopper"),
}

SHOT_NOISE = (1e-4, 1.2e-2)


# -- colour ------------------------------------------------------------------------------------------------------

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


# -- sources -----------------------------------------------------------------------------------------------------

def _package_file(package: str, relative: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def builtin_names(split: str = "all") -> list[str]:
    """Names of the built-in photographs present on disk in ``split`` (``train``, ``test`` or ``all``)."""
    if split not in ("train", "test", "all"):
        raise InputError(f"unknown built-in split {split!r}; expected train, test or all")
    wanted = BUILTIN_FILES if split == "all" else BUILTIN_SPLITS[split]
    return [n for n in wanted if _package_file(*BUILTIN_FILES[n]) is not None]


def builtin_images(split: str = "all") -> list[tuple[str, np.ndarray]]:
    """The photographs shipped with scikit-image and matplotlib, as ``(name, (H, W, 3) float32 RGB in [0, 1])``.

    Args:
        split: ``train`` (for training), ``test`` (held out, never used to train the bundled model) or ``all``.

    Raises:
        InputError: neither scikit-image nor matplotlib is installed (install ``tami[synth]``).
    """
    names = builtin_names(split)
    if not names:
        raise InputError('no built-in photographs found: install scikit-image (pip install "tami[synth]") and/or '
                         'matplotlib (pip install "tami[plot]"), or pass a folder of your own images')
    return [(n, read_image(_package_file(*BUILTIN_FILES[n]))) for n in names]  # type: ignore[arg-type]


def load_sources(sources: str | os.PathLike[str] = "builtin") -> list[tuple[str, np.ndarray]]:
    """Source photographs: ``"builtin"``, ``"builtin:train"``, ``"builtin:test"`` or a folder of images.

    Raises:
        InputError: an empty or missing folder, or no built-in photographs available.
    """
    text = str(sources)
    if text == "builtin" or text.startswith("builtin:"):
        return builtin_images(text.partition(":")[2] or "all")
    folder = Path(sources)
    if not folder.is_dir():
        raise InputError(f"image source {folder} is not a folder; give a folder of images or 'builtin'")
    files = sorted((p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".")), key=lambda p: natural_key(str(p.relative_to(folder))))
    if not files:
        raise InputError(f"no images in {folder} (expected {', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(p.stem, read_image(p)) for p in files]


# -- clip synthesis ----------------------------------------------------------------------------------------------

@dataclass
class SynthClip:
    """A synthetic clip and the parameters that made it.

    Attributes:
        lq: ``(T, H, W, 3) float32`` low-light frames, 8-bit levels in [0, 1].
        gt: ``(T, H, W, 3) float32`` clean frames, 8-bit levels in [0, 1].
        warps: ``(T, 2, 3)`` affine maps from output pixel ``(x, y, 1)`` to source-photograph pixel coordinates.
        centers: ``(T, 2)`` path of the view centre in source pixels (x, y).
        scales: ``(T,)`` source pixels per output pixel; angles: ``(T,)`` rotation in degrees.
        exposure: the clip's exposure factor; exposures: ``(T,)`` per frame (flicker included).
        gains: ``(3,)`` colour-cast gains; shot, read: the noise variance terms ``a``, ``b``.
    """

    lq: np.ndarray
    gt: np.ndarray
    warps: np.ndarray
    centers: np.ndarray
    scales: np.ndarray
    angles: np.ndarray
    exposures: np.ndarray
    gains: np.ndarray
    exposure: float
    shot: float
    read: float

    def summary(self) -> dict[str, object]:
        """JSON-friendly parameters of the clip (no pixels)."""
        return {"exposure": round(self.exposure, 6), "shot": self.shot, "read": self.read,
                "exposures": self.exposures.round(5).tolist(),
                "gains": self.gains.round(5).tolist(), "scales": self.scales.round(5).tolist(),
                "angles": self.angles.round(4).tolist(), "centers": self.centers.round(3).tolist()}


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    if not 0 < lo <= hi:
        raise InputError(f"range must satisfy 0 < low <= high, got {bounds}")
    return lo if lo == hi else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3 - 2 * t)


def _camera_path(rng: np.random.Generator, image_hw: tuple[int, int], size: tuple[int, int], frames: int, *,
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


def _warp_matrix(center: np.ndarray, scale: float, angle_deg: float, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    a = math.radians(angle_deg)
    rot = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    out_centre = np.array([(w - 1) / 2, (h - 1) / 2])
    return np.concatenate([rot, (center - rot @ out_centre)[:, None]], axis=1)


def synthesize(image: np.ndarray, *, frames: int, size: tuple[int, int], seed: int,
               exposure: tuple[float, float] = (0.03, 0.3), flicker: float = 0.0, color_cast: float = 0.0,
               shot_noise: tuple[float, float] = SHOT_NOISE, read_noise: tuple[float, float] | None = None,
               motion: float = 1.0, zoom: tuple[float, float] = (1.0, 1.2), rotation: float = 3.0) -> SynthClip:
    """Make one paired low-light clip from a photograph (see the module docstring for the model).

    Args:
        image: ``(H, W, 3)`` float RGB in [0, 1] (sRGB), e.g. from :func:`builtin_images`.
        frames: clip length ``T``.
        size: output frame size ``(h, w)``.
        seed: everything (path, exposure, noise) follows from it.
        exposure: range of the exposure factor (log-uniform); ``(x, x)`` fixes it.
        flicker: std of the per-frame log-exposure jitter (0: none).
        color_cast: std of the per-channel log-gains of a clip-level colour cast (0: none).
        shot_noise: range of the shot term ``a`` (log-uniform).
        read_noise: range of the read term ``b`` (log-uniform); None ties it to ``a`` as Brooks et al. do.
        motion: scale of the pan (0: static camera apart from zoom/rotation).
        zoom: zoom range; the path ramps between two values drawn from it. ``(1, 1)``: no zoom.
        rotation: largest rotation in degrees (0: none).

    Returns:
        A :class:`SynthClip` with ``lq``/``gt`` ``(T, h, w, 3)`` and the path and noise parameters.

    Raises:
        InputError: bad image or option.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"source image must be (H, W, 3) RGB, got shape {image.shape}")
    if frames < 1 or size[0] < 1 or size[1] < 1:
        raise InputError(f"frames and size must be positive, got frames={frames}, size={size}")
    if not 0 < zoom[0] <= zoom[1]:
        raise InputError(f"zoom must satisfy 0 < low <= high, got {zoom}")
    rng = np.random.default_rng(seed)
    centers, scales, angles = _camera_path(rng, image.shape[:2], size, frames, motion=motion, zoom=zoom,
                                           rotation=rotation)
    # Views much larger than the output would alias under bilinear warping: shrink the photograph first.
    shrink = float(scales.min()) / 1.2
    if shrink > 1.0:
        image = cv2.resize(image, (max(1, round(image.shape[1] / shrink)), max(1, round(image.shape[0] / shrink))),
                           interpolation=cv2.INTER_AREA)
        centers = (centers + 0.5) / shrink - 0.5
        scales = scales / shrink
    h, w = size
    warps = np.stack([_warp_matrix(centers[i], float(scales[i]), float(angles[i]), size) for i in range(frames)])
    gt = np.stack([cv2.warpAffine(image, warps[i], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT101) for i in range(frames)])
    gt = quantize8(gt)

    base_exposure = _log_uniform(rng, exposure)
    exposures = base_exposure * np.exp(flicker * rng.standard_normal(frames)) if flicker > 0 \
        else np.full(frames, base_exposure)
    gains = np.exp(color_cast * rng.standard_normal(3)) if color_cast > 0 else np.ones(3)
    gains = gains / np.exp(np.log(gains).mean())
    shot = _log_uniform(rng, shot_noise)
    if read_noise is None:
        read = float(math.exp(2.18 * math.log(shot) + 1.20 + rng.normal(0.0, 0.26)))
    else:
        read = _log_uniform(rng, read_noise)

    dark = srgb_to_linear(gt) * exposures[:, None, None, None].astype(np.float32) * gains.astype(np.float32)
    sigma = np.sqrt(shot * dark + read)
    noisy = dark + sigma * rng.standard_normal(dark.shape, dtype=np.float32)
    lq = quantize8(linear_to_srgb(noisy))
    return SynthClip(lq=lq, gt=gt, warps=warps, centers=centers, scales=scales, angles=angles,
                     exposure=base_exposure, exposures=exposures, gains=gains, shot=shot, read=read)


def synthesize_clip(image: np.ndarray, *, frames: int, size: tuple[int, int], seed: int,
                    **options: object) -> tuple[np.ndarray, np.ndarray]:
    """Paired low-light and clean clips ``(T, h, w, 3) float32`` in [0, 1] from one photograph.

    Args:
        image: ``(H, W, 3)`` float RGB in [0, 1].
        frames, size, seed: clip length, ``(h, w)`` and seed.
        **options: any option of :func:`synthesize` (``exposure``, ``flicker``, ``color_cast``, ``motion``, ...).

    Returns:
        ``(lq, gt)``.
    """
    clip = synthesize(image, frames=frames, size=size, seed=seed, **options)  # type: ignore[arg-type]
    return clip.lq, clip.gt


# -- datasets ----------------------------------------------------------------------------------------------------

def _write_png(path: Path, frame: np.ndarray) -> None:
    data = np.rint(frame * 255.0).astype(np.uint8)[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(data))
    if not ok:
        raise InputError(f"cannot encode {path}")
    buf.tofile(path)


def generate_dataset(out_dir: str | os.PathLike[str], *, videos: int, frames: int, size: tuple[int, int],
                     seed: int, sources: str | os.PathLike[str] = "builtin",
                     exposure: tuple[float, float] = (0.03, 0.3), flicker: float = 0.0, color_cast: float = 0.0,
                     overwrite: bool = False, on_video: Callable[[str], None] | None = None,
                     **options: object) -> Path:
    """Write a synthetic paired dataset in the generic layout ``OUT/{input,GT}/<video>/<frame>.png``.

    Video ``i`` uses source photograph ``i mod len(sources)`` and the seed ``(seed, i)``; ``OUT/synth.json``
    records every option and each clip's parameters. The folder appears only when everything is written.

    Args:
        out_dir: output folder (must not exist unless ``overwrite``).
        videos: number of videos; frames: frames per video; size: frame size ``(h, w)``.
        seed: dataset seed; the same seed and options give the same files.
        sources: ``"builtin"``, ``"builtin:train"``, ``"builtin:test"`` or a folder of images.
        exposure, flicker, color_cast, **options: passed to :func:`synthesize`.
        overwrite: replace an existing ``out_dir``.
        on_video: called with each video's name after it is written (progress reporting).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: ``out_dir`` exists, no sources, bad options.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; choose a new folder or pass overwrite=True (CLI: --overwrite)")
    if videos < 1:
        raise InputError(f"videos must be >= 1, got {videos}")
    images = load_sources(sources)
    records = []
    with atomic_path(out, directory=True) as tmp:
        for i in range(videos):
            name, image = images[i % len(images)]
            video = f"{i:04d}_{name}"
            clip_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            clip = synthesize(image, frames=frames, size=size, seed=clip_seed, exposure=exposure,
                              flicker=flicker, color_cast=color_cast, **options)  # type: ignore[arg-type]
            for sub, data in (("input", clip.lq), ("GT", clip.gt)):
                folder = tmp / sub / video
                folder.mkdir(parents=True)
                for t in range(frames):
                    _write_png(folder / f"{t:04d}.png", data[t])
            records.append({"video": video, "source": name, **clip.summary()})
            if on_video is not None:
                on_video(video)
        config = {"videos": videos, "frames": frames, "size": list(size), "seed": seed, "sources": str(sources),
                  "exposure": list(exposure), "flicker": flicker, "color_cast": color_cast,
                  **{k: (list(v) if isinstance(v, tuple) else v) for k, v in options.items()}}
        (tmp / "synth.json").write_text(json.dumps({"config": config, "videos": records}, indent=1))
    logger.debug("wrote %d synthetic videos to %s", videos, out)
    return out
