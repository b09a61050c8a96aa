"""Paired low-light/ground-truth video clips for training and evaluation, and the sampler that picks them.

A clip is ``T`` consecutive frames of one video with its ground truth, returned as ``(T, 3, H, W)`` float tensors
in ``[0, 1]``. One random crop and flip, drawn from ``(seed, epoch, video, start)``, is shared by every frame of a
clip and its GT, so the same index always gives the same clip. Only the frames of the requested clip are read;
``.npy`` frames are memory-mapped and only the cropped window is loaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import InputError
from .layouts import VideoPair, find_pairs
from .video import decode_raw, to_float_rgb

logger = logging.getLogger(__name__)


class ClipIndex(NamedTuple):
    """Address of one clip: video number, first frame (within the selected frame range) and epoch."""

    video: int
    start: int
    epoch: int = 0


class _Window(NamedTuple):
    top: int
    left: int
    height: int
    width: int


def _load(path: Path, *, bgr_npy: bool, window: _Window | None, resize: tuple[int, int] | None) -> np.ndarray:
    """One frame as (h, w, 3) float32 RGB; ``window`` is applied before conversion (memory-mapped for .npy)."""
    if path.suffix.lower() == ".npy" and resize is None:
        try:
            raw = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read frame {path}: {exc}; check the file is complete") from exc
        bgr = bgr_npy
    else:
        raw = decode_raw(path)
        bgr = bgr_npy if path.suffix.lower() == ".npy" else raw.ndim == 3
        if resize is not None and raw.shape[:2] != resize:
            shrink = resize[0] < raw.shape[0]
            raw = cv2.resize(raw, (resize[1], resize[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if window is not None:
        t, l, h, w = window
        if t + h > raw.shape[0] or l + w > raw.shape[1]:
            raise InputError(f"frame {path} is {raw.shape[1]}x{raw.shape[0]}, smaller than the crop window "
                             f"{w}x{h} at ({l}, {t}); the frames of a video must have one size")
        raw = raw[t:t + h, l:l + w]
    return to_float_rgb(np.asarray(raw), bgr=bgr, source=path)


def _first_frame(path: Path, *, bgr_npy: bool, resize: tuple[int, int] | None) -> tuple[int, int, np.ndarray | None]:
    """Size of a clip's first frame; the decoded frame too when getting the size needed decoding it."""
    if path.suffix.lower() == ".npy" and resize is None:
        try:
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read frame {path}: {exc}; check the file is complete") from exc
        return int(shape[0]), int(shape[1]), None
    frame = _load(path, bgr_npy=bgr_npy, window=None, resize=resize)
    return frame.shape[0], frame.shape[1], frame


class PairedVideoDataset(Dataset):
    """Clips of paired videos; build it with :func:`build_dataset`.

    Indexing: ``dataset[ClipIndex(video, start, epoch)]`` (or ``(video, start)``) gives that clip; ``dataset[i]``
    gives the ``i``-th evaluation clip (see :meth:`clips`), so ``len(dataset)`` counts evaluation clips.

    Returns (per item) a dict with ``lq`` and ``gt`` ``(T, 3, H, W) float32`` in ``[0, 1]``, ``video`` (name),
    ``start`` (first frame within the selected range) and ``names`` (frame stems).

    Attributes:
        videos: video names, in index order.
        pairs: the frame files of each video (already cut to the selected frame range).
        clip_len: frames per clip; None gives each whole video as one clip.
        clip_key: how the caller names ``clip_len`` in messages (a training config says ``val.data.clip_len``).
    """

    def __init__(self, pairs: Sequence[VideoPair], *, clip_len: int | None = 5, crop: int | None = None,
                 flip: bool = False, seed: int = 0, resize: tuple[int, int] | None = None,
                 clip_key: str = "clip_len") -> None:
        if clip_len is not None and clip_len < 1:
            raise InputError(f"clip_len must be >= 1 or None (whole videos), got {clip_len}")
        if crop is not None and crop < 1:
            raise InputError(f"crop must be a positive size in pixels or None, got {crop}")
        kept = [p for p in pairs if clip_len is None or len(p) >= clip_len]
        short = [p.name for p in pairs if p not in kept]
        if short:
            logger.warning("%d video%s shorter than %s frames skipped (%s)", len(short), "" if len(short) == 1 else "s",
                           clip_len, ", ".join(short[:5]))
        if not kept:
            longest = max((len(p) for p in pairs), default=0)
            raise InputError(f"no video has {clip_len} frames (the longest has {longest}); lower {clip_key} or widen "
                             "the frame range")
        self.pairs: list[VideoPair] = kept
        self.videos: list[str] = [p.name for p in kept]
        self.clip_len = clip_len
        self.crop = crop
        self.flip = flip
        self.seed = seed
        self.resize = resize
        self._clips = self._eval_clips()

    def num_frames(self, video: int) -> int:
        """Number of frames of video ``video`` in the selected range."""
        return len(self.pairs[video])

    def max_start(self, video: int) -> int:
        """Largest valid clip start of ``video``."""
        return 0 if self.clip_len is None else self.num_frames(video) - self.clip_len

    def _eval_clips(self) -> list[ClipIndex]:
        clips = []
        for v in range(len(self.pairs)):
            last = self.max_start(v)
            step = self.clip_len or 1
            starts = list(range(0, last + 1, step))
            if starts[-1] != last:
                starts.append(last)  # the last clip ends on the last frame, so every frame is covered
            clips += [ClipIndex(v, s) for s in starts]
        return clips

    def clips(self) -> list[ClipIndex]:
        """Evaluation clips: consecutive non-overlapping clips covering every frame (the last one may overlap)."""
        return list(self._clips)

    def __len__(self) -> int:
        return len(self._clips)

    def _augment(self, index: ClipIndex, height: int, width: int) -> tuple[_Window | None, bool, bool]:
        rng = np.random.default_rng([self.seed, index.epoch, index.video, index.start])
        window = None
        if self.crop is not None:
            if self.crop > height or self.crop > width:
                raise InputError(f"crop {self.crop} is larger than the frames of {self.videos[index.video]} "
                                 f"({width}x{height}); use a smaller crop")
            top = int(rng.integers(0, height - self.crop + 1))
            left = int(rng.integers(0, width - self.crop + 1))
            window = _Window(top, left, self.crop, self.crop)
        hflip = vflip = False
        if self.flip:
            hflip, vflip = (bool(b) for b in rng.integers(0, 2, size=2))
        return window, hflip, vflip

    def __getitem__(self, index: ClipIndex | tuple[int, ...] | int) -> dict[str, Any]:
        if isinstance(index, (int, np.integer)):
            index = self._clips[int(index)]
        index = ClipIndex(*(int(i) for i in index))
        if not 0 <= index.video < len(self.pairs):
            raise IndexError(f"video {index.video} out of range (dataset has {len(self.pairs)} videos)")
        pair = self.pairs[index.video]
        if not 0 <= index.start <= self.max_start(index.video):
            raise IndexError(f"clip start {index.start} out of range for {pair.name} "
                             f"(0..{self.max_start(index.video)})")
        stop = len(pair) if self.clip_len is None else index.start + self.clip_len
        height, width, first = _first_frame(pair.lq[index.start], bgr_npy=pair.bgr_npy, resize=self.resize)
        window, hflip, vflip = self._augment(index, height, width)
        full = window or _Window(0, 0, height, width)

        def load(path: Path) -> np.ndarray:
            if first is not None and path == pair.lq[index.start]:
                frame = first[full.top:full.top + full.height, full.left:full.left + full.width]
            else:
                frame = _load(path, bgr_npy=pair.bgr_npy, window=window, resize=self.resize)
            if frame.shape[:2] != (full.height, full.width):
                raise InputError(f"{pair.name}: frame {path.name} is {frame.shape[1]}x{frame.shape[0]}, expected "
                                 f"{full.width}x{full.height}; all frames of a video and its GT must have one size")
            return frame

        lq = np.stack([load(p) for p in pair.lq[index.start:stop]])
        if len(pair.gt) == 1:
            gt = np.repeat(load(pair.gt[0])[None], len(lq), axis=0)
        else:
            gt = np.stack([load(p) for p in pair.gt[index.start:stop]])
        if hflip:
            lq, gt = lq[:, :, ::-1], gt[:, :, ::-1]
        if vflip:
            lq, gt = lq[:, ::-1], gt[:, ::-1]
        return {
            "lq": torch.from_numpy(np.ascontiguousarray(lq.transpose(0, 3, 1, 2))),
            "gt": torch.from_numpy(np.ascontiguousarray(gt.transpose(0, 3, 1, 2))),
            "video": pair.name,
            "start": index.start,
            "names": list(pair.frame_names[index.start:stop]),
        }


def build_dataset(layout: str, root: str | Path, *, split: str = "train", clip_len: int | None = 5,
                  crop: int | None = None, flip: bool = False, seed: int = 0, frames: slice | None = None,
                  protocol: str | None = None, scene: str | None = None, resize: tuple[int, int] | None = None,
                  bgr_npy: bool | None = None, clip_key: str = "clip_len") -> PairedVideoDataset:
    """Paired video clips of a dataset on disk.

    Args:
        layout: ``generic`` (``ROOT/{input,GT}/<video>/``), ``sdsd``, ``smid`` or ``did``.
        root: dataset root.
        split: ``train``, ``test`` or ``all``.
        clip_len: frames per clip (None: each whole video is one clip).
        crop: square random crop size in pixels, shared by a clip and its GT (None: full frames).
        flip: random horizontal and vertical flips, shared by a clip and its GT.
        seed: seed of the crops/flips; a clip depends only on ``(seed, epoch, video, start)``.
        frames: frame range of every video (default: the protocol's evaluated frames for a test split, e.g. the
            first 30 for SDSD and SMID; all frames otherwise). ``slice(None)`` forces all frames.
        protocol: SDSD protocol, ``sdsd-dynamic`` (default) or ``sdsd-static``.
        scene: SDSD ``indoor`` or ``outdoor`` (default: all scenes found).
        resize: resize frames to ``(H, W)`` before cropping (e.g. ``(512, 960)`` as common SMID loaders do).
        bgr_npy: override the channel order of ``.npy`` frames (SDSD/SMID default BGR, generic RGB).
        clip_key: the name of ``clip_len`` in error messages.

    Raises:
        InputError: missing folders, no videos, bad options.
    """
    pairs, default_frames = find_pairs(layout, root, split=split, protocol=protocol, scene=scene, bgr_npy=bgr_npy)
    cut = frames if frames is not None else default_frames
    if cut is not None:
        pairs = [VideoPair(p.name, p.lq[cut], p.gt if len(p.gt) == 1 else p.gt[cut], p.frame_names[cut], p.bgr_npy)
                 for p in pairs]
        pairs = [p for p in pairs if len(p)]
    return PairedVideoDataset(pairs, clip_len=clip_len, crop=crop, flip=flip, seed=seed, resize=resize,
                              clip_key=clip_key)


class ClipSampler(Sampler[ClipIndex]):
    """Yields :class:`ClipIndex` values for a :class:`PairedVideoDataset`, resumable exactly.

    ``mode="random"``: one clip per video per epoch, at a random start; ``mode="all"``: every evaluation clip.
    The order of an epoch depends only on ``(seed, epoch)``. Each full pass advances the epoch; :meth:`state_dict`
    and :meth:`load_state_dict` resume in the middle of an epoch at the same clip.

    Args:
        dataset: the dataset to sample.
        mode: ``"random"`` or ``"all"``.
        seed: sampling seed.
        shuffle: shuffle the order within an epoch.
        num_replicas, rank: split each epoch between distributed processes (every rank gets the same count).
    """

    def __init__(self, dataset: PairedVideoDataset, mode: Literal["random", "all"] = "random", seed: int = 0,
                 shuffle: bool = True, *, num_replicas: int = 1, rank: int = 0) -> None:
        if mode not in ("random", "all"):
            raise InputError(f"sampler mode must be 'random' or 'all', got {mode!r}")
        if not 0 <= rank < num_replicas:
            raise InputError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.dataset = dataset
        self.mode = mode
        self.seed = seed
        self.shuffle = shuffle
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.position = 0
        self._iter_epoch = 0

    def _total(self) -> int:
        return len(self.dataset.videos) if self.mode == "random" else len(self.dataset)

    def __len__(self) -> int:
        return math.ceil(self._total() / self.num_replicas)

    def order(self, epoch: int) -> list[ClipIndex]:
        """The clips this rank yields in ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.mode == "random":
            clips = [ClipIndex(v, int(rng.integers(0, self.dataset.max_start(v) + 1)), epoch)
                     for v in range(len(self.dataset.videos))]
        else:
            clips = [ClipIndex(c.video, c.start, epoch) for c in self.dataset.clips()]
        if self.shuffle:
            clips = [clips[i] for i in rng.permutation(len(clips))]
        per_rank = len(self)
        padded = (clips * math.ceil(per_rank * self.num_replicas / len(clips)))[: per_rank * self.num_replicas]
        return padded[self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[ClipIndex]:
        epoch, order = self.epoch, self.order(self.epoch)
        self._iter_epoch = epoch
        while self.position < len(order):
            index = order[self.position]
            self.position += 1
            yield index
        self.epoch, self.position = epoch + 1, 0

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where sampling stands, to resume at the same clip.

        Args:
            consumed: clips the training loop has actually used in the current epoch. Give it when a
                ``DataLoader`` with workers prefetches indices ahead of the loop; by default the position is the
                number of indices this sampler has handed out.
        """
        if consumed is None:
            epoch, position = self.epoch, self.position
        elif consumed >= len(self):
            epoch, position = self._iter_epoch + 1, 0
        else:
            epoch, position = self._iter_epoch, int(consumed)
        return {"epoch": epoch, "position": position, "seed": self.seed, "mode": self.mode,
                "shuffle": self.shuffle, "total": self._total()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict` (same dataset and settings).

        Raises:
            InputError: the state was saved with another dataset size, mode, seed or shuffle setting.
        """
        for key in ("mode", "seed", "shuffle", "total"):
            mine = self._total() if key == "total" else getattr(self, key)
            if key in state and state[key] != mine:
                raise InputError(f"sampler state was saved with {key}={state[key]!r} but this sampler has "
                                 f"{key}={mine!r}; resume with the same dataset and options")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        self._iter_epoch = self.epoch
