"""Find the paired videos of a dataset on disk: SDSD, SMID, DID and generic ``ROOT/{input,GT}/<video>/`` folders.

Each layout function turns a root folder and a split into a list of :class:`VideoPair` (frame file paths, no pixels
read). Layouts and their official splits are described in ``docs/datasets.md``; the named SDSD protocols are
``sdsd-dynamic`` (the original release and its test split) and ``sdsd-static`` (the SNR-Aware / Retinexformer
split). Test splits default to the frame range their protocol evaluates (the first 30 frames, as SNR-Aware does);
Retinexformer's way of scoring ``sdsd-static`` (all frames, resized to 960x512) is
``build_dataset("sdsd", root, split="test", protocol="sdsd-static", frames=slice(None), resize=(512, 960))``.
The common SMID loaders also resize to 960x512: pass ``resize=(512, 960)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..registry import Registry
from ..wording import count
from .video import IMAGE_SUFFIXES, natural_key

logger = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
_SPLIT_FOLDERS = {"train": ("train", "Train"), "test": ("test", "eval", "Test", "val")}


@dataclass(frozen=True)
class VideoPair:
    """One paired video: low-light frames and their ground truth.

    Attributes:
        name: video name, prefixed by the scene when a dataset has several (``indoor/pair13``).
        lq: low-light frame files in temporal order.
        gt: ground-truth files, one per ``lq`` frame, or a single file shared by all frames (SMID).
        frame_names: stems of the ``lq`` files.
        bgr_npy: ``.npy`` frames hold BGR channels.
    """

    name: str
    lq: tuple[Path, ...]
    gt: tuple[Path, ...]
    frame_names: tuple[str, ...]
    bgr_npy: bool = False

    def __len__(self) -> int:
        return len(self.lq)


@dataclass(frozen=True)
class DatasetSplit:
    """A named split of a dataset release: the folders that hold it, its test videos, and the frames evaluated.

    The data side of an evaluation protocol: :class:`tami.evaluation.EvalProtocol` is built from it (adding the
    subset choice and the report wording), so training, conversion and evaluation agree on one table.

    Attributes:
        name: the protocol's name (``sdsd-dynamic``).
        folders: scene-folder suffixes holding this protocol's data, in order of preference.
        test: test-video names per scene.
        test_frames: frames evaluated on each test video (``slice(0, 30)``: the first 30).
    """

    name: str
    folders: tuple[str, ...]
    test: dict[str, frozenset[str]]
    test_frames: slice | None


def _pairs(prefix: str, numbers: str) -> frozenset[str]:
    return frozenset(f"{prefix}{n}" for n in numbers.split())


DATASET_SPLITS: dict[str, DatasetSplit] = {
    "sdsd-dynamic": DatasetSplit(
        "sdsd-dynamic", ("_np", "_png"),
        {"indoor": _pairs("pair", "13 15 21 23 31 33 50 52 58 60 68 70"),
         "outdoor": _pairs("pair", "1 5 14 36 46 48 49 60 62 63 66 75 76")},
        slice(0, 30)),
    "sdsd-static": DatasetSplit(
        "sdsd-static", ("_static_np",),
        {"indoor": _pairs("pair", "1 4 9 11 19 21"),
         "outdoor": _pairs("MVI_", "0898 0906 0928 0975 0997 1001 1003 1026 1030 1032")},
        slice(0, 30)),
}

# The 49 test scenes of SMID (DRV test_list.txt, as used by SNR-Aware and Retinexformer).
SMID_TEST = frozenset(
    "0013 0009 0020 0007 0010 0012 0154 0036 0037 0039 0047 0048 0049 0050 0051 0052 0065 0066 0075 0076 0078 "
    "0088 0092 0099 0091 0103 0104 0105 0106 0107 0151 0145 0147 0139 0129 0083 0153 0157 0180 0175 0181 0196 "
    "0170 0166 0172 0177 0167 0169 0191".split()
)
SMID_TEST_FRAMES = slice(0, 30)

LayoutFn = Callable[..., tuple[list[VideoPair], slice | None]]
LAYOUTS: Registry[LayoutFn] = Registry("dataset layout")


def frame_files(folder: Path) -> list[Path]:
    """Frame files of one video folder in natural order (empty when there are none)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def _subdirs(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")} \
        if folder.is_dir() else {}


def pair_frames(name: str, lq_dir: Path, gt_dir: Path, *, bgr_npy: bool) -> VideoPair | None:
    """Pair the frames of one video by file stem; None (with a warning) when no frame pairs.

    When no stems match but both folders hold the same number of frames, they are paired in natural order.
    """
    lq, gt = frame_files(lq_dir), frame_files(gt_dir)
    gt_by_stem = {p.stem: p for p in gt}
    matched = [(p, gt_by_stem[p.stem]) for p in lq if p.stem in gt_by_stem]
    if not matched and lq and len(lq) == len(gt):
        matched = list(zip(lq, gt))
    elif len(matched) < max(len(lq), len(gt)):
        logger.warning("%s: %d input and %d GT frames, %d pairs used (run `tami data check` for details)",
                       name, len(lq), len(gt), len(matched))
    if not matched:
        logger.warning("%s: no frame pairs, video skipped", name)
        return None
    return VideoPair(name, tuple(p for p, _ in matched), tuple(g for _, g in matched),
                     tuple(p.stem for p, _ in matched), bgr_npy)


def _paired_videos(input_dir: Path, gt_dir: Path, *, prefix: str, keep: Callable[[str], bool],
                   bgr_npy: bool) -> list[VideoPair]:
    inputs, gts = _subdirs(input_dir), _subdirs(gt_dir)
    missing = sorted(set(inputs) ^ set(gts))
    if missing:
        logger.warning("%s: %s without a partner skipped (%s)", input_dir.parent, count(len(missing), "video"),
                       ", ".join(missing[:5]))
    pairs = []
    for name in sorted(set(inputs) & set(gts), key=natural_key):
        if keep(name):
            pair = pair_frames(prefix + name, inputs[name], gts[name], bgr_npy=bgr_npy)
            if pair is not None:
                pairs.append(pair)
    return pairs


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def _gt_dir(folder: Path) -> Path | None:
    for name in ("GT", "gt"):
        if (folder / name).is_dir():
            return folder / name
    return None


def _split_folder(root: Path, split: str) -> Path | None:
    for name in _SPLIT_FOLDERS.get(split, ()):
        if (root / name / "input").is_dir():
            return root / name
    return None


@LAYOUTS.register("generic")
def generic(root: Path, *, split: str = "all", bgr_npy: bool = False, **_: object) -> tuple[list[VideoPair], None]:
    """``ROOT/{input,GT}/<video>/<frame>`` or, split into folders, ``ROOT/{train,test|eval}/{input,GT}/...``.

    Without split folders every video belongs to every split. Frames pair by file stem.
    """
    _check_split(split)
    folders = [root] if (root / "input").is_dir() else []
    if not folders:
        wanted = ["train", "test"] if split == "all" else [split]
        folders = [f for s in wanted if (f := _split_folder(root, s)) is not None]
    if not folders:
        raise InputError(
            f"{root}: no input/ and GT/ folders for split {split!r}; expected ROOT/input/<video>/ and ROOT/GT/<video>/ "
            "(or ROOT/train/input/..., ROOT/test/input/...)"
        )
    pairs: list[VideoPair] = []
    for folder in folders:
        gt = _gt_dir(folder)
        if gt is None:
            raise InputError(f"{folder}: has input/ but no GT/ folder; put the ground truth in {folder / 'GT'}")
        prefix = f"{folder.name}/" if split == "all" and folder != root else ""
        pairs += _paired_videos(folder / "input", gt, prefix=prefix, keep=lambda _: True, bgr_npy=bgr_npy)
    return pairs, None


def _scene_of(folder: Path, scene: str | None) -> str:
    if scene is not None:
        return scene
    for name in ("indoor", "outdoor"):
        if name in folder.name.lower():
            return name
    raise InputError(f"cannot tell whether {folder} is SDSD indoor or outdoor; pass scene='indoor' or 'outdoor' "
                     "(CLI: --scene)")


@LAYOUTS.register("sdsd")
def sdsd(root: Path, *, split: str = "train", protocol: str | None = None, scene: str | None = None,
         bgr_npy: bool | None = None, **_: object) -> tuple[list[VideoPair], slice | None]:
    """SDSD: ``ROOT/{indoor,outdoor}_{np,png,static_np}/{input,GT}/<video>/`` or one such scene folder as ROOT.

    ``ROOT/{train,eval}/{input,GT}/`` (the TAMI release's PNG layout) is read as already split. ``.npy`` frames are
    BGR (they were written from ``cv2.imread``) unless ``bgr_npy=False``.
    """
    _check_split(split)
    name = protocol or "sdsd-dynamic"
    if name not in DATASET_SPLITS:
        raise InputError(f"unknown SDSD protocol {name!r}; expected one of {', '.join(DATASET_SPLITS)}")
    proto = DATASET_SPLITS[name]
    if scene is not None and scene not in proto.test:
        raise InputError(f"unknown SDSD scene {scene!r}; expected indoor or outdoor")
    if _split_folder(root, "train") or _split_folder(root, "test"):
        pairs, _ = generic(root, split=split, bgr_npy=True if bgr_npy is None else bgr_npy)
        return pairs, proto.test_frames if split == "test" else None
    if (root / "input").is_dir():
        scenes = {_scene_of(root, scene): root}
    else:
        dirs = _subdirs(root)
        scenes = {}
        for s in [scene] if scene else list(proto.test):
            found = [dirs[f"{s}{suffix}"] for suffix in proto.folders if f"{s}{suffix}" in dirs]
            if found:
                scenes[s] = found[0]
        if not scenes:
            wanted = ", ".join(f"{s}{x}" for s in ([scene] if scene else proto.test) for x in proto.folders)
            raise InputError(f"{root}: no SDSD folders for protocol {name} (expected one of {wanted})")
    pairs: list[VideoPair] = []
    for s, folder in scenes.items():
        gt = _gt_dir(folder)
        if gt is None or not (folder / "input").is_dir():
            raise InputError(f"{folder}: expected input/ and GT/ sub-folders (SDSD layout)")
        test = proto.test[s]
        keep = {"train": lambda v, t=test: v not in t, "test": lambda v, t=test: v in t,
                "all": lambda v: True}[split]
        prefix = f"{s}/" if len(scenes) > 1 else ""
        pairs += _paired_videos(folder / "input", gt, prefix=prefix, keep=keep,
                                bgr_npy=True if bgr_npy is None else bgr_npy)
    return pairs, proto.test_frames if split == "test" else None


@LAYOUTS.register("smid")
def smid(root: Path, *, split: str = "train", bgr_npy: bool | None = None,
         **_: object) -> tuple[list[VideoPair], slice | None]:
    """SMID: ``ROOT/SMID_LQ_np/<seq>/*.npy`` and one long-exposure GT per sequence in ``ROOT/SMID_Long_np/<seq>/``.

    The GT is the first ``.npy`` of the sequence's long-exposure folder (``*half*`` files skipped); the 49 DRV test
    scenes form the test split.
    """
    _check_split(split)
    lq_root, gt_root = root / "SMID_LQ_np", root / "SMID_Long_np"
    if not lq_root.is_dir() or not gt_root.is_dir():
        raise InputError(f"{root}: expected SMID_LQ_np/ and SMID_Long_np/ folders (SMID layout)")
    lqs, gts = _subdirs(lq_root), _subdirs(gt_root)
    pairs = []
    for seq in sorted(set(lqs) & set(gts), key=natural_key):
        if (split == "test") != (seq in SMID_TEST) and split != "all":
            continue
        lq = frame_files(lqs[seq])
        gt = [p for p in frame_files(gts[seq]) if "half" not in p.name]
        if not lq or not gt:
            logger.warning("%s: %s frames missing, sequence skipped", seq, "input" if not lq else "GT")
            continue
        pairs.append(VideoPair(seq, tuple(lq), (gt[0],), tuple(p.stem for p in lq),
                               True if bgr_npy is None else bgr_npy))
    return pairs, SMID_TEST_FRAMES if split == "test" else None


@LAYOUTS.register("did")
def did(root: Path, *, split: str = "train", **_: object) -> tuple[list[VideoPair], None]:
    """DID ("Dancing in the Dark"): ``ROOT/{train,test}/{low,high}/<video>/<frame>.jpg``."""
    _check_split(split)
    splits = ["train", "test"] if split == "all" else [split]
    pairs: list[VideoPair] = []
    for s in splits:
        folder = root / s
        if not (folder / "low").is_dir() or not (folder / "high").is_dir():
            raise InputError(f"{folder}: expected low/ and high/ sub-folders "
                             "(DID layout ROOT/{train,test}/{low,high})")
        prefix = f"{s}/" if split == "all" else ""
        pairs += _paired_videos(folder / "low", folder / "high", prefix=prefix, keep=lambda _: True, bgr_npy=False)
    return pairs, None


@dataclass(frozen=True)
class VideoFolders:
    """The folders of one video as found on disk, before any pairing (for checks and conversion).

    Attributes:
        name: video name (scene/split-prefixed when the dataset has several).
        lq, gt: input and ground-truth folders; None when that side is missing.
        one_gt: the GT folder holds one reference for the whole sequence (SMID).
        bgr_npy: ``.npy`` frames hold BGR channels.
        group: the scene or split folder the video belongs to (``indoor_np``, ``train``, ...).
    """

    name: str
    lq: Path | None
    gt: Path | None
    one_gt: bool = False
    bgr_npy: bool = False
    group: str = ""


def _scan_pair(input_dir: Path, gt_dir: Path | None, prefix: str, *, one_gt: bool = False, bgr_npy: bool,
               group: str) -> list[VideoFolders]:
    inputs = _subdirs(input_dir)
    gts = _subdirs(gt_dir) if gt_dir is not None else {}
    return [VideoFolders(prefix + n, inputs.get(n), gts.get(n), one_gt, bgr_npy, group)
            for n in sorted(set(inputs) | set(gts), key=natural_key)]


def scan(layout: str, root: str | Path, *, protocol: str | None = None,
         scene: str | None = None) -> list[VideoFolders]:
    """Every video folder of a dataset, paired or not, across all splits.

    SDSD roots are scanned for every variant present (``*_np``, ``*_png``, ``*_static_np``) unless
    ``protocol`` or ``scene`` narrows them.

    Raises:
        InputError: the root does not look like ``layout``.
        UnknownNameError: unknown layout, with close matches.
    """
    root = Path(root)
    LAYOUTS.get(layout)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    found: list[VideoFolders] = []
    if layout == "smid":
        if not (root / "SMID_LQ_np").is_dir():
            raise InputError(f"{root}: expected SMID_LQ_np/ and SMID_Long_np/ folders (SMID layout)")
        gt = root / "SMID_Long_np"
        return _scan_pair(root / "SMID_LQ_np", gt if gt.is_dir() else None, "", one_gt=True, bgr_npy=True,
                          group="SMID")
    if layout == "did":
        for s in ("train", "test"):
            if (root / s / "low").is_dir() or (root / s / "high").is_dir():
                found += _scan_pair(root / s / "low", root / s / "high", f"{s}/", bgr_npy=False, group=s)
        if not found:
            raise InputError(f"{root}: expected train/ or test/ with low/ and high/ sub-folders (DID layout)")
        return found
    bgr = layout == "sdsd"
    groups: list[tuple[str, Path]] = []
    if (root / "input").is_dir() or _gt_dir(root) is not None:
        groups = [("", root)]
    else:
        for s in ("train", "Train", "test", "eval", "Test", "val"):
            if (root / s / "input").is_dir() or _gt_dir(root / s) is not None:
                groups.append((s, root / s))
    if not groups and layout == "sdsd":
        suffixes = DATASET_SPLITS[protocol].folders if protocol in DATASET_SPLITS else ("_np", "_png", "_static_np")
        for name, folder in sorted(_subdirs(root).items()):
            if any(name == f"{sc}{x}" for sc in ([scene] if scene else ("indoor", "outdoor")) for x in suffixes):
                groups.append((name, folder))
    if not groups:
        raise InputError(f"{root}: no input/ and GT/ folders found for the {layout} layout")
    for group, folder in groups:
        prefix = f"{group}/" if len(groups) > 1 else ""
        found += _scan_pair(folder / "input", _gt_dir(folder), prefix, bgr_npy=bgr, group=group or folder.name)
    return found


def find_pairs(layout: str, root: str | Path, *, split: str = "train", protocol: str | None = None,
               scene: str | None = None, bgr_npy: bool | None = None) -> tuple[list[VideoPair], slice | None]:
    """The paired videos of ``split`` and the protocol's default frame range for it.

    Args:
        layout: ``generic``, ``sdsd``, ``smid`` or ``did``.
        root: dataset root folder.
        split: ``train``, ``test`` or ``all``.
        protocol: SDSD protocol (``sdsd-dynamic`` default, ``sdsd-static``).
        scene: SDSD ``indoor`` or ``outdoor`` (default: every scene found).
        bgr_npy: override the layout's channel order for ``.npy`` frames.

    Raises:
        InputError: missing folders, unknown split/protocol, no videos.
        UnknownNameError: unknown layout, with close matches.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"dataset root {root} is not a folder")
    fn = LAYOUTS.get(layout)
    kwargs: dict[str, object] = {"split": split, "protocol": protocol, "scene": scene}
    if bgr_npy is not None:
        kwargs["bgr_npy"] = bgr_npy
    pairs, frames = fn(root, **kwargs)
    if not pairs:
        raise InputError(f"{root}: no paired videos for split {split!r} in the {layout} layout; "
                         f"run `tami data check {root} --layout {layout}`")
    return pairs, frames
