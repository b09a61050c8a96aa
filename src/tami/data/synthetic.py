"""Synthetic paired low-light videos from normal-light photographs.

A clip is made in five steps, all driven by one seed:

1. **Scene** (:mod:`tami.data.synth_scene`) — a motion stratum: a ``static`` view, a ``pan`` (a smooth random camera
   path: pan, zoom, small rotation), or ``content`` (a static view that bright and dark objects enter and leave).
   The clean frames are the ground truth.
2. **Target brightness** — optionally a per-clip gain ``g`` on the ground truth in linear light, drawn
   independently of everything the input shows: the input is darkened from the un-gained frames, so no single
   input frame reveals ``g``; only a memory of an earlier ground-truth frame does (the mechanism probe of
   ``benchmarks/memory.py``).
3. **Darkening in linear light** (:mod:`tami.data.synth_sensor`) — inverse sRGB, times the per-frame exposure
   ``e_t`` (a clip exposure with AR(1) drift, auto-exposure steps and i.i.d. jitter) and a per-clip colour cast.
4. **Noise** — heteroscedastic Gaussian, variance ``a * I + b``, with the read/shot relation of Brooks et al.
   ("Unprocessing Images for Learned Raw Denoising", CVPR 2019).
5. **sRGB and 8-bit** — back through the sRGB curve, clipped and quantised to 8 bits (the GT too).

Two named presets (:data:`SYNTH_PRESETS`) fix every option; keyword arguments override single options:

* ``v2`` (default) — calibrated to real low-light video. Noise: Brooks et al.'s read/shot line over the
  shot range ``a`` in [1e-4, 2e-3], the low-gain end of the [1e-4, 1.2e-2] they fitted to calibrated sensors
  (the upper end, SNR below 1 at mid-grey after darkening, is extreme stills-class low light and made our first
  generator's backbone flicker ~7x (E_warp) to ~90x (MABD) more than the paper's SDSD backbones); exposure
  0.05-0.3. Exposure over time: AR(1) drift (rho 0.9, stationary std 0.2 in log exposure), i.i.d. jitter 0.1,
  auto-exposure steps (3 % of frames, |log step| 0.15-0.4). All three motion strata, colour cast 0.05.
* ``v1`` — the first-generation generator, bit for bit: Brooks et al.'s full shot range, exposure 0.03-0.3,
  i.i.d. flicker only, the ``pan`` stratum only; no flicker or cast unless asked for. The bundled demo model and
  its held-out clips were made with it.

Built-in photographs are read straight from the files that ship inside scikit-image (``skimage/data``) and
matplotlib (``grace_hopper.jpg``): nothing is downloaded and neither package is imported. They are split into a
training set and a held-out set (:data:`BUILTIN_SPLITS`) so a model trained on synthetic data can be evaluated on
photographs it never saw. For more photographs, fetch the photo pool (``docs/PHOTOS.md``) and give its folders.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import InputError
from ..frames import encode_image
from .synth_scene import STRATA, Sprite, camera_path, composite, make_sprites, warp_matrix
from .synth_sensor import (add_noise, draw_noise_levels, drift_series, linear_to_srgb, log_uniform, quantize8,
                           srgb_to_linear, step_series)
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


# -- presets -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SynthOptions:
    """Every option of the generator (module docstring); :data:`SYNTH_PRESETS` names complete sets.

    Attributes:
        exposure: range of the clip exposure factor (log-uniform); ``(x, x)`` fixes it.
        shot_noise: range of the shot term ``a`` (log-uniform).
        read_noise: range of the read term ``b`` (log-uniform); ``None`` ties it to ``a`` (Brooks et al.).
        flicker: std of the i.i.d. per-frame log-exposure jitter.
        drift: stationary std of the AR(1) log-exposure drift; drift_rho: its lag-1 correlation.
        ae_rate: probability per frame of an auto-exposure step; ae_step: range of ``|log step|``.
        color_cast: std of the per-channel log-gains of a clip-level colour cast (geometric mean 1).
        target_gain: range of the per-clip ground-truth gain ``g`` (log-uniform); ``None``: no gain.
        strata: motion strata to draw from (:data:`tami.data.synth_scene.STRATA`); a dataset cycles through them.
        motion: pan scale of the ``pan`` stratum; zoom: its zoom range; rotation: its largest rotation (degrees).
        sprites: ``(min, max)`` objects in a ``content`` clip.
    """

    exposure: tuple[float, float] = (0.05, 0.3)
    shot_noise: tuple[float, float] = (1e-4, 2e-3)
    read_noise: tuple[float, float] | None = None
    flicker: float = 0.1
    drift: float = 0.2
    drift_rho: float = 0.9
    ae_rate: float = 0.03
    ae_step: tuple[float, float] = (0.15, 0.4)
    color_cast: float = 0.05
    target_gain: tuple[float, float] | None = None
    strata: tuple[str, ...] = STRATA
    motion: float = 1.0
    zoom: tuple[float, float] = (1.0, 1.2)
    rotation: float = 3.0
    sprites: tuple[int, int] = (1, 2)

    def __post_init__(self) -> None:
        unknown = [s for s in self.strata if s not in STRATA]
        if unknown or not self.strata:
            raise InputError(f"strata must be among {', '.join(STRATA)}, got {list(self.strata)}")
        if not 0 < self.zoom[0] <= self.zoom[1]:
            raise InputError(f"zoom must satisfy 0 < low <= high, got {self.zoom}")
        for name in ("flicker", "drift", "color_cast", "motion"):
            if getattr(self, name) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.sprites[0] <= self.sprites[1]:
            raise InputError(f"sprites must be (min, max) with 0 <= min <= max, got {self.sprites}")

    def replace(self, **overrides: Any) -> "SynthOptions":
        """A copy with ``overrides``; unknown names raise :class:`InputError` naming the known ones."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(f"unknown synthetic option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
        return dataclasses.replace(self, **tuples)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (tuples as lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


SYNTH_PRESETS: dict[str, SynthOptions] = {
    "v2": SynthOptions(),
    "v1": SynthOptions(exposure=(0.03, 0.3), shot_noise=(1e-4, 1.2e-2), flicker=0.0, drift=0.0, ae_rate=0.0,
                       color_cast=0.0, strata=("pan",)),
}
DEFAULT_PRESET = "v2"


def synth_options(preset: str = DEFAULT_PRESET, **overrides: Any) -> SynthOptions:
    """The options of ``preset`` with ``overrides`` applied.

    Raises:
        InputError: unknown preset or option.
    """
    if preset not in SYNTH_PRESETS:
        raise InputError(f"unknown synthetic preset {preset!r}; presets: {', '.join(SYNTH_PRESETS)}")
    return SYNTH_PRESETS[preset].replace(**overrides)


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
        gt: ``(T, H, W, 3) float32`` clean frames (times the target gain), 8-bit levels in [0, 1].
        warps: ``(T, 2, 3)`` affine maps from output pixel ``(x, y, 1)`` to source-photograph pixel coordinates.
        centers: ``(T, 2)`` path of the view centre in source pixels (x, y).
        scales: ``(T,)`` source pixels per output pixel; angles: ``(T,)`` rotation in degrees.
        exposure: the clip's exposure factor; exposures: ``(T,)`` per frame (drift, steps and jitter included).
        gains: ``(3,)`` colour-cast gains; shot, read: the noise variance terms ``a``, ``b``.
        stratum: motion stratum; target_gain: the ground-truth gain ``g`` (1 when off); sprites: crossing objects.
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
    stratum: str = "pan"
    target_gain: float = 1.0
    sprites: list[Sprite] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-friendly parameters of the clip (no pixels)."""
        return {"stratum": self.stratum, "target_gain": round(self.target_gain, 6),
                "exposure": round(self.exposure, 6), "shot": self.shot, "read": self.read,
                "exposures": self.exposures.round(5).tolist(),
                "gains": self.gains.round(5).tolist(), "scales": self.scales.round(5).tolist(),
                "angles": self.angles.round(4).tolist(), "centers": self.centers.round(3).tolist(),
                "sprites": [sp.summary() for sp in self.sprites]}


def synthesize(image: np.ndarray, *, frames: int, size: tuple[int, int], seed: int, preset: str = DEFAULT_PRESET,
               stratum: str | None = None, sprite_sources: list[np.ndarray] | None = None,
               **options: Any) -> SynthClip:
    """Make one paired low-light clip from a photograph (see the module docstring for the model).

    Args:
        image: ``(H, W, 3)`` float RGB in [0, 1] (sRGB), e.g. from :func:`builtin_images`.
        frames: clip length ``T``.
        size: output frame size ``(h, w)``.
        seed: everything (path, exposure, noise) follows from it.
        preset: ``v2`` (default) or ``v1`` (:data:`SYNTH_PRESETS`).
        stratum: ``static``, ``pan`` or ``content``; ``None`` draws one of the preset's ``strata``.
        sprite_sources: photographs to cut the objects of a ``content`` clip from (default: ``image`` itself).
        **options: single :class:`SynthOptions` overrides (``flicker=0.2``, ``target_gain=(0.8, 1.25)``, ...).

    Returns:
        A :class:`SynthClip` with ``lq``/``gt`` ``(T, h, w, 3)`` and every parameter that made it.

    Raises:
        InputError: bad image, option or stratum.
    """
    opts = synth_options(preset, **options)
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"source image must be (H, W, 3) RGB, got shape {image.shape}")
    if frames < 1 or size[0] < 1 or size[1] < 1:
        raise InputError(f"frames and size must be positive, got frames={frames}, size={size}")
    if stratum is not None and stratum not in STRATA:
        raise InputError(f"unknown stratum {stratum!r}; strata: {', '.join(STRATA)}")
    rng = np.random.default_rng(seed)
    # Everything the first generator did not have draws from a second stream, so v1 stays bit for bit.
    extra = np.random.default_rng([seed, 2])
    if stratum is None:
        stratum = opts.strata[0] if len(opts.strata) == 1 else opts.strata[int(extra.integers(len(opts.strata)))]
    moving = stratum == "pan"
    centers, scales, angles = camera_path(
        rng, image.shape[:2], size, frames, motion=opts.motion if moving else 0.0,
        zoom=opts.zoom if moving else (opts.zoom[0], opts.zoom[0]), rotation=opts.rotation if moving else 0.0)
    # Views much larger than the output would alias under bilinear warping: shrink the photograph first.
    shrink = float(scales.min()) / 1.2
    if shrink > 1.0:
        image = cv2.resize(image, (max(1, round(image.shape[1] / shrink)), max(1, round(image.shape[0] / shrink))),
                           interpolation=cv2.INTER_AREA)
        centers = (centers + 0.5) / shrink - 0.5
        scales = scales / shrink
    h, w = size
    warps = np.stack([warp_matrix(centers[i], float(scales[i]), float(angles[i]), size) for i in range(frames)])
    clean = np.stack([cv2.warpAffine(image, warps[i], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                     borderMode=cv2.BORDER_REFLECT101) for i in range(frames)])
    sprites: list[Sprite] = []
    if stratum == "content":
        sprites = make_sprites(extra, sprite_sources or [image], size, frames, count=opts.sprites)
        clean = np.stack([composite(clean[t], sprites, t) for t in range(frames)])
    clean = quantize8(clean)

    base_exposure = log_uniform(rng, opts.exposure)
    offset = np.zeros(frames)  # log exposure relative to the clip's
    if opts.flicker > 0:
        offset = offset + opts.flicker * rng.standard_normal(frames)
    if opts.drift > 0:
        offset = offset + drift_series(extra, frames, opts.drift, opts.drift_rho)
    if opts.ae_rate > 0:
        offset = offset + step_series(extra, frames, opts.ae_rate, opts.ae_step)
    exposures = base_exposure * np.exp(offset)
    gains = np.exp(opts.color_cast * rng.standard_normal(3)) if opts.color_cast > 0 else np.ones(3)
    gains = gains / np.exp(np.log(gains).mean())
    shot, read = draw_noise_levels(rng, opts.shot_noise, opts.read_noise)

    linear = srgb_to_linear(clean)
    dark = linear * exposures[:, None, None, None].astype(np.float32) * gains.astype(np.float32)
    lq = quantize8(linear_to_srgb(add_noise(rng, dark, shot, read)))
    target_gain = 1.0
    gt = clean
    if opts.target_gain is not None:
        target_gain = log_uniform(extra, opts.target_gain)
        gt = quantize8(linear_to_srgb(linear * np.float32(target_gain)))
    return SynthClip(lq=lq, gt=gt, warps=warps, centers=centers, scales=scales, angles=angles,
                     exposure=base_exposure, exposures=exposures, gains=gains, shot=shot, read=read,
                     stratum=stratum, target_gain=target_gain, sprites=sprites)


def synthesize_clip(image: np.ndarray, *, frames: int, size: tuple[int, int], seed: int,
                    **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """Paired low-light and clean clips ``(T, h, w, 3) float32`` in [0, 1] from one photograph.

    Args:
        image: ``(H, W, 3)`` float RGB in [0, 1].
        frames, size, seed: clip length, ``(h, w)`` and seed.
        **options: any option of :func:`synthesize` (``preset``, ``stratum``, ``flicker``, ...).

    Returns:
        ``(lq, gt)``.
    """
    clip = synthesize(image, frames=frames, size=size, seed=seed, **options)
    return clip.lq, clip.gt


# -- datasets ----------------------------------------------------------------------------------------------------

def _write_png(path: Path, frame: np.ndarray) -> None:
    encode_image(frame, ".png").tofile(path)  # inside the dataset's atomic folder


def generate_dataset(out_dir: str | os.PathLike[str], *, videos: int, frames: int, size: tuple[int, int],
                     seed: int, sources: str | os.PathLike[str] = "builtin", preset: str = DEFAULT_PRESET,
                     overwrite: bool = False, on_video: Callable[[str], None] | None = None,
                     **options: Any) -> Path:
    """Write a synthetic paired dataset in the generic layout ``OUT/{input,GT}/<video>/<frame>.png``.

    Video ``i`` uses source photograph ``i mod n`` (``n`` photographs), the seed ``(seed, i)`` and the motion
    stratum ``strata[(i mod n + i // n) mod len(strata)]`` (so every photograph meets every stratum as the videos
    wrap around); the objects of ``content`` clips are cut from the next photographs. ``OUT/synth.json`` records the
    preset, every resolved option and each clip's parameters. The folder appears only when everything is written.

    Args:
        out_dir: output folder (must not exist unless ``overwrite``).
        videos: number of videos; frames: frames per video; size: frame size ``(h, w)``.
        seed: dataset seed; the same seed and options give the same files.
        sources: ``"builtin"``, ``"builtin:train"``, ``"builtin:test"`` or a folder of images.
        preset: ``v2`` (default) or ``v1`` (:data:`SYNTH_PRESETS`); options: single :class:`SynthOptions` overrides.
        overwrite: replace an existing ``out_dir``.
        on_video: called with each video's name after it is written (progress reporting).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        InputError: ``out_dir`` exists, no sources, bad options.
    """
    opts = synth_options(preset, **options)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; choose a new folder or pass overwrite=True (CLI: --overwrite)")
    if videos < 1:
        raise InputError(f"videos must be >= 1, got {videos}")
    images = load_sources(sources)
    count = len(images)
    records = []
    with atomic_path(out, directory=True) as tmp:
        for i in range(videos):
            name, image = images[i % count]
            video = f"{i:04d}_{name}"
            clip_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
            stratum = opts.strata[(i % count + i // count) % len(opts.strata)]
            others = [images[(i + k) % count][1] for k in range(1, min(count, 4))] or [image]
            clip = synthesize(image, frames=frames, size=size, seed=clip_seed, preset=preset, stratum=stratum,
                              sprite_sources=others, **options)
            for sub, data in (("input", clip.lq), ("GT", clip.gt)):
                folder = tmp / sub / video
                folder.mkdir(parents=True)
                for t in range(frames):
                    _write_png(folder / f"{t:04d}.png", data[t])
            records.append({"video": video, "source": name, **clip.summary()})
            if on_video is not None:
                on_video(video)
        config = {"videos": videos, "frames": frames, "size": list(size), "seed": seed, "sources": str(sources),
                  "preset": preset, **opts.to_dict()}
        (tmp / "synth.json").write_text(json.dumps({"config": config, "videos": records}, indent=1))
    logger.debug("wrote %d synthetic videos to %s", videos, out)
    return out
