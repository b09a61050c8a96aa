"""Named evaluation protocols: which videos of a dataset are scored and on which frames (docs/metrics.md).

The splits and frame ranges come from the data layer's table (:data:`tami.data.layouts.DATASET_SPLITS`), so training,
enhancement and evaluation agree on them; this module adds what evaluation needs (subset choice, descriptions).

* ``sdsd-dynamic``: SDSD (Wang et al., ICCV 2021), original dynamic release; test videos indoor
  pair13,15,21,23,31,33,50,52,58,60,68,70 and outdoor pair1,5,14,36,46,48,49,60,62,63,66,75,76; first 30 frames.
* ``sdsd-static``: the split of SNR-Aware and Retinexformer; test videos indoor pair1,4,9,11,19,21 and outdoor
  MVI_0898,0906,0928,0975,0997,1001,1003,1026,1030,1032; first 30 frames (as SNR-Aware evaluates).

SDSD indoor and outdoor reuse names (``pair1`` exists in both), so a protocol is applied to one subset: given, or
read from the GT path (a path component containing ``indoor`` or ``outdoor``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..data.layouts import DATASET_SPLITS, DatasetSplit
from ..data.video import natural_key
from ..errors import InputError


@dataclass(frozen=True)
class EvalProtocol:
    """A named evaluation protocol: the videos scored per subset and the frame range, described for reports.

    Attributes:
        name: protocol name (``"sdsd-dynamic"``).
        description: one line for reports.
        videos: test video names per subset (``{"indoor": (...), "outdoor": (...)}``).
        frames: frames scored per video (``slice(0, 30)``: the first 30); None scores all frames.
    """

    name: str
    description: str
    videos: dict[str, tuple[str, ...]]
    frames: slice | None

    def subset_of(self, gt_root: str | Path, subset: str | None = None) -> str:
        """The subset to use: ``subset`` when given, else the one named in ``gt_root``'s path.

        Raises:
            InputError: unknown subset, or the path names none or several subsets.
        """
        if subset is not None:
            if subset not in self.videos:
                raise InputError(f"protocol {self.name} has subsets {', '.join(self.videos)}, got {subset!r}")
            return subset
        parts = [p.lower() for p in Path(gt_root).resolve().parts]
        found = {s for s in self.videos for p in parts if s in p}
        if len(found) != 1:
            raise InputError(
                f"cannot tell which {self.name} subset {gt_root} holds ({', '.join(self.videos)}); "
                "pass --subset " + "|".join(self.videos)
            )
        return found.pop()

    def to_dict(self, subset: str) -> dict[str, object]:
        return {"name": self.name, "subset": subset, "description": self.description,
                "videos": list(self.videos[subset]), "frames": describe_span(self.frames)}


def describe_span(frames: slice | None) -> str:
    """``"first 30 frames"``, ``"all frames"`` or the slice, for reports."""
    if frames is None:
        return "all frames"
    if (frames.start or 0) == 0 and frames.step in (None, 1) and frames.stop is not None:
        return f"first {frames.stop} frames"
    return f"frames [{frames.start}:{frames.stop}:{frames.step}]"


def _from_split(proto: DatasetSplit) -> EvalProtocol:
    return EvalProtocol(proto.name, f"{_DESCRIPTIONS.get(proto.name, proto.name)}, {describe_span(proto.test_frames)}",
                        {scene: tuple(sorted(names, key=natural_key)) for scene, names in proto.test.items()},
                        proto.test_frames)


_DESCRIPTIONS = {
    "sdsd-dynamic": "SDSD dynamic test split (Wang et al. 2021)",
    "sdsd-static": "SDSD static test split of SNR-Aware/Retinexformer",
}

# One source of truth for splits and frame ranges: the data layer's split table (tami.data.layouts).
EVAL_PROTOCOLS: dict[str, EvalProtocol] = {name: _from_split(p) for name, p in DATASET_SPLITS.items()}


def get_protocol(name: str) -> EvalProtocol:
    """The protocol called ``name``.

    Raises:
        InputError: unknown name, listing the known ones.
    """
    try:
        return EVAL_PROTOCOLS[name]
    except KeyError:
        raise InputError(f"unknown protocol {name!r}; known: {', '.join(EVAL_PROTOCOLS)}") from None
