"""tami.data.datasets / layouts: pairs, splits, frame ranges, shapes, shared crops, sampler resume."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tami.data.datasets import ClipIndex, ClipSampler, build_dataset
from tami.errors import InputError

H, W = 12, 16


def frame_pixels(video: int, index: int, gt: bool) -> np.ndarray:
    """RGB uint8 frame: R = 10 * column, G = 10 * row (a crop/flip is visible), B = frame + 3 * video (+100 for GT)."""
    rows, cols = np.mgrid[0:H, 0:W]
    blue = np.full((H, W), index + (100 if gt else 0) + 3 * video)
    return np.stack([cols * 10, rows * 10, blue], -1).astype(np.uint8)


def write_frame(path: Path, rgb: np.ndarray, *, bgr_npy: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, rgb[:, :, ::-1] if bgr_npy else rgb)
    else:
        cv2.imwrite(str(path), rgb[:, :, ::-1].copy())


def make_video(root: Path, lq_dir: str, gt_dir: str, name: str, video: int, frames: int, ext: str,
               *, one_gt: bool = False, bgr_npy: bool = True) -> None:
    for i in range(frames):
        write_frame(root / lq_dir / name / f"{i:04d}{ext}", frame_pixels(video, i, False), bgr_npy=bgr_npy)
        if not one_gt or i == 0:
            write_frame(root / gt_dir / name / f"{i:04d}{ext}", frame_pixels(video, i, True), bgr_npy=bgr_npy)


def blue(t: torch.Tensor) -> list[int]:
    """Frame ids stored in the blue channel of (T, 3, H, W) clips."""
    return [round(float(v) * 255) for v in t[:, 2, 0, 0]]


def test_generic_layout_pairs_frames_and_shapes(tmp_path: Path) -> None:
    make_video(tmp_path, "input", "GT", "b_video", 0, 6, ".png")
    make_video(tmp_path, "input", "GT", "a_video", 1, 7, ".png")
    make_video(tmp_path, "input", "GT", "only_input", 2, 6, ".png")
    for p in (tmp_path / "GT" / "only_input").iterdir():
        p.unlink()
    (tmp_path / "GT" / "only_input").rmdir()
    ds = build_dataset("generic", tmp_path, split="all", clip_len=3)
    assert ds.videos == ["a_video", "b_video"]
    item = ds[ClipIndex(0, 2)]
    assert item["lq"].shape == (3, 3, H, W) and item["lq"].dtype == torch.float32
    assert item["video"] == "a_video" and item["start"] == 2 and item["names"] == ["0002", "0003", "0004"]
    assert blue(item["lq"]) == [5, 6, 7]  # frame id + 3 * video(1)
    assert blue(item["gt"]) == [105, 106, 107]
    assert float(item["lq"][0, 0, 0, 1]) == pytest.approx(10 / 255)  # R = column
    # evaluation clips cover all frames: a_video 7 frames -> starts 0, 3, 4; b_video 6 -> 0, 3
    assert [(c.video, c.start) for c in ds.clips()] == [(0, 0), (0, 3), (0, 4), (1, 0), (1, 3)]
    assert len(ds) == 5
    whole = build_dataset("generic", tmp_path, clip_len=None, frames=slice(1, 5))
    assert blue(whole[0]["lq"]) == [4, 5, 6, 7] and len(whole) == 2


def test_generic_split_folders(tmp_path: Path) -> None:
    make_video(tmp_path / "train", "input", "GT", "v1", 0, 4, ".png")
    make_video(tmp_path / "eval", "input", "GT", "v2", 1, 4, ".png")
    assert build_dataset("generic", tmp_path, split="train", clip_len=2).videos == ["v1"]
    assert build_dataset("generic", tmp_path, split="test", clip_len=2).videos == ["v2"]
    assert build_dataset("generic", tmp_path, split="all", clip_len=2).videos == ["train/v1", "eval/v2"]
    with pytest.raises(InputError, match="no input/ and GT/"):
        build_dataset("generic", tmp_path / "train" / "input")


@pytest.fixture(scope="module")
def sdsd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sdsd")
    for i, name in enumerate(["pair1", "pair13", "pair15", "pair2"]):
        make_video(root, "indoor_np/input", "indoor_np/GT", name, i, 32 if name == "pair13" else 4, ".npy")
    for i, name in enumerate(["pair1", "pair3"]):
        make_video(root, "outdoor_np/input", "outdoor_np/GT", name, i, 4, ".npy")
    for i, name in enumerate(["pair4", "pair5"]):
        make_video(root, "indoor_static_np/input", "indoor_static_np/GT", name, i, 4, ".npy")
    for i, name in enumerate(["MVI_0898", "MVI_0001"]):
        make_video(root, "outdoor_static_np/input", "outdoor_static_np/GT", name, i, 4, ".npy")
    make_video(root, "indoor_png/input", "indoor_png/GT", "pair13", 0, 4, ".png")
    return root


def test_sdsd_dynamic_protocol_splits_and_first_30_frames(sdsd_root: Path) -> None:
    train = build_dataset("sdsd", sdsd_root, split="train", clip_len=2)
    assert train.videos == ["indoor/pair1", "indoor/pair2", "outdoor/pair3"]
    test = build_dataset("sdsd", sdsd_root, split="test", clip_len=None)
    assert test.videos == ["indoor/pair13", "indoor/pair15", "outdoor/pair1"]
    assert test[0]["lq"].shape == (30, 3, H, W)  # pair13 has 32 frames; the protocol evaluates 30
    assert blue(test[0]["lq"])[-1] == 29 + 3 * 1
    allframes = build_dataset("sdsd", sdsd_root, split="test", clip_len=None, frames=slice(None), scene="indoor")
    assert allframes.videos == ["pair13", "pair15"] and allframes[0]["lq"].shape[0] == 32
    # npy frames are BGR on disk and come out RGB
    item = train[ClipIndex(0, 0)]
    assert float(item["lq"][0, 0, 0, 1]) == pytest.approx(10 / 255)
    # a scene folder given as root
    one = build_dataset("sdsd", sdsd_root / "outdoor_np", split="test", clip_len=2)
    assert one.videos == ["pair1"]
    with pytest.raises(InputError, match="unknown SDSD protocol"):
        build_dataset("sdsd", sdsd_root, protocol="sdsd-nope")


def test_sdsd_static_protocol(sdsd_root: Path) -> None:
    test = build_dataset("sdsd", sdsd_root, split="test", protocol="sdsd-static", clip_len=2)
    assert test.videos == ["indoor/pair4", "outdoor/MVI_0898"]
    train = build_dataset("sdsd", sdsd_root, split="train", protocol="sdsd-static", clip_len=2)
    assert train.videos == ["indoor/pair5", "outdoor/MVI_0001"]


def test_sdsd_png_variant_and_release_layout(tmp_path: Path) -> None:
    make_video(tmp_path / "png", "indoor_png/input", "indoor_png/GT", "pair13", 0, 3, ".png")
    ds = build_dataset("sdsd", tmp_path / "png", split="test", clip_len=3)
    assert ds.videos == ["pair13"] and blue(ds[0]["lq"]) == [0, 1, 2]
    make_video(tmp_path / "rel", "train/input", "train/GT", "pair01", 0, 3, ".png")
    make_video(tmp_path / "rel", "eval/input", "eval/GT", "pair13", 1, 3, ".png")
    assert build_dataset("sdsd", tmp_path / "rel", split="test", clip_len=3).videos == ["pair13"]


def test_smid_one_gt_per_sequence(tmp_path: Path) -> None:
    make_video(tmp_path, "SMID_LQ_np", "SMID_Long_np", "0013", 0, 5, ".npy", one_gt=True)
    make_video(tmp_path, "SMID_LQ_np", "SMID_Long_np", "0001", 1, 5, ".npy", one_gt=True)
    write_frame(tmp_path / "SMID_Long_np" / "0001" / "0000_half.npy", np.zeros((H, W, 3), np.uint8))
    test = build_dataset("smid", tmp_path, split="test", clip_len=3)
    assert test.videos == ["0013"]
    train = build_dataset("smid", tmp_path, split="train", clip_len=3)
    assert train.videos == ["0001"]
    item = train[ClipIndex(0, 1)]
    assert blue(item["lq"]) == [4, 5, 6] and blue(item["gt"]) == [103, 103, 103]


def test_did_layout(tmp_path: Path) -> None:
    make_video(tmp_path / "train", "low", "high", "video001", 0, 3, ".jpg")
    make_video(tmp_path / "test", "low", "high", "video101", 1, 3, ".jpg")
    ds = build_dataset("did", tmp_path, split="test", clip_len=2)
    assert ds.videos == ["video101"] and ds[0]["gt"].shape == (2, 3, H, W)


def test_shared_crop_and_flip_are_identical_across_clip_and_gt(tmp_path: Path) -> None:
    make_video(tmp_path, "input", "GT", "v", 0, 6, ".png")
    ds = build_dataset("generic", tmp_path, clip_len=4, crop=5, flip=True, seed=3)
    seen = set()
    for epoch in range(6):
        item = ds[ClipIndex(0, 1, epoch)]
        lq, gt = item["lq"], item["gt"]
        assert lq.shape == gt.shape == (4, 3, 5, 5)
        spatial = lq[:, :2]
        assert torch.equal(spatial, spatial[:1].expand_as(spatial)) and torch.equal(spatial, gt[:, :2])
        cols = (lq[0, 0, 0] * 25.5).round().long().tolist()
        rows = (lq[0, 1, :, 0] * 25.5).round().long().tolist()
        assert cols in (list(range(cols[0], cols[0] + 5)), list(range(cols[0], cols[0] - 5, -1)))
        assert rows in (list(range(rows[0], rows[0] + 5)), list(range(rows[0], rows[0] - 5, -1)))
        seen.add((cols[0], rows[0]))
        assert torch.equal(ds[ClipIndex(0, 1, epoch)]["lq"], lq)  # deterministic per (seed, epoch, index)
    assert len(seen) > 1
    with pytest.raises(InputError, match="larger than the frames"):
        build_dataset("generic", tmp_path, clip_len=2, crop=64)[0]


def _sampler_dataset(tmp_path: Path):
    for v in range(5):
        make_video(tmp_path, "input", "GT", f"v{v}", v, 6, ".npy", bgr_npy=False)
    return build_dataset("generic", tmp_path, clip_len=2)


def test_sampler_random_all_and_exact_resume(tmp_path: Path) -> None:
    ds = _sampler_dataset(tmp_path)
    sampler = ClipSampler(ds, mode="random", seed=7)
    epoch0, epoch1 = list(sampler), list(sampler)
    assert sorted(c.video for c in epoch0) == list(range(5)) and {c.epoch for c in epoch1} == {1}
    assert all(0 <= c.start <= 4 for c in epoch0) and epoch0 != epoch1
    assert list(ClipSampler(ds, mode="random", seed=7)) == epoch0

    fresh = ClipSampler(ds, mode="random", seed=7)
    it = iter(fresh)
    first = [next(it) for _ in range(3)]
    state = fresh.state_dict()
    resumed = ClipSampler(ds, mode="random", seed=7)
    resumed.load_state_dict(state)
    assert first + list(resumed) == epoch0
    assert list(resumed) == epoch1

    lagging = ClipSampler(ds, mode="random", seed=7)
    it = iter(lagging)
    [next(it) for _ in range(4)]  # a DataLoader prefetched 4, the loop used 2
    again = ClipSampler(ds, mode="random", seed=7)
    again.load_state_dict(lagging.state_dict(consumed=2))
    assert list(again) == epoch0[2:]
    with pytest.raises(InputError, match="seed"):
        ClipSampler(ds, seed=8).load_state_dict(state)

    every = list(ClipSampler(ds, mode="all", shuffle=False))
    assert len(every) == len(ds) == 15 and [c.start for c in every[:3]] == [0, 2, 4]
    ranks = [list(ClipSampler(ds, mode="all", num_replicas=2, rank=r, seed=1)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 8
    assert {(c.video, c.start) for c in ranks[0] + ranks[1]} == {(c.video, c.start) for c in every}


def test_dataloader_batches_clips(tmp_path: Path) -> None:
    ds = _sampler_dataset(tmp_path)
    loader = DataLoader(ds, batch_size=2, sampler=ClipSampler(ds, seed=0))
    batches = list(loader)
    assert [b["lq"].shape[0] for b in batches] == [2, 2, 1]
    assert batches[0]["lq"].shape == (2, 2, 3, H, W)


def test_dataset_splits_agree_with_the_evaluation_protocols() -> None:
    from tami.data.layouts import DATASET_SPLITS
    from tami.evaluation.protocols import EVAL_PROTOCOLS as EVAL

    for name, proto in DATASET_SPLITS.items():
        assert {k: set(v) for k, v in proto.test.items()} == {k: set(v) for k, v in EVAL[name].videos.items()}
        frames = EVAL[name].frames  # a count of first frames, or a slice
        assert proto.test_frames == (frames if isinstance(frames, slice) else slice(0, frames))
