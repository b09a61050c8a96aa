"""The two training stages: what is trained, how a batch becomes a loss, how validation predicts, what is exported.

* ``image``: the backbone itself is trained on the frames of each clip as independent images (no TAMI terms);
  the export is a tami backbone file usable as the frozen backbone of a ``video`` run.
* ``video``: the backbone is frozen (official checkpoint, tami backbone file, or a stage-``image`` run) and only the
  TAMI adapter is trained on clips through ``TAMI.forward_clip``, with teacher forcing and truncated
  back-propagation as :class:`tami.train.recurrence.RecurrencePolicy` decides; the export is the adapter file and
  a single-file model (backbone + adapter).
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .. import backbones
from ..backbones import Backbone
from ..backbones.checkpoints import UnknownConfiguration
from ..adapter.frame_aux import FrameAux
from ..errors import CheckpointError, InputError
from .config import ModelConfig, TrainConfig
from .recurrence import RecurrencePolicy

logger = logging.getLogger(__name__)

BACKBONE_FILE = "backbone.safetensors"
ADAPTER_FILE = "adapter.safetensors"
MODEL_FILE = "model.safetensors"


def backbone_weights_path(spec: str) -> Path:
    """Resolve ``model.backbone_weights``: a weights file, or a stage-``image`` run folder (its export)."""
    path = Path(spec)
    if path.is_dir():
        for candidate in (path / "export" / BACKBONE_FILE, path / BACKBONE_FILE):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"model.backbone_weights={spec} is a folder without export/{BACKBONE_FILE}; finish the stage-image run "
            "there first, or point at a weights file"
        )
    if not path.is_file():
        raise CheckpointError(f"model.backbone_weights={spec} does not exist; set it to an official checkpoint, a "
                              "tami backbone file or a stage-image run folder")
    return path


def adapter_weights_path(spec: str) -> Path:
    """Resolve ``model.adapter_weights``: an adapter file, or a stage-``video`` run folder (its final export)."""
    path = Path(spec)
    if path.is_dir():
        for candidate in (path / "export" / ADAPTER_FILE, path / ADAPTER_FILE):
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"model.adapter_weights={spec} is a folder without export/{ADAPTER_FILE}; finish the stage-video run "
            "there first, or point at an adapter file"
        )
    if not path.is_file():
        raise CheckpointError(f"model.adapter_weights={spec} does not exist; set it to an adapter file "
                              f"(RUN/export/{ADAPTER_FILE}) or a stage-video run folder")
    return path


def _tami_backbone_metadata(path: Path) -> dict[str, str]:
    if path.suffix != ".safetensors":
        return {}
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as safetensors: {exc}") from None
    return metadata if metadata.get("format") == backbones.checkpoints.FORMAT else {}


def build_backbone(cfg: ModelConfig) -> Backbone:
    """The backbone of ``cfg``: random (no weights), an official checkpoint, or a tami backbone file/run export.

    tami backbone files carry their own arch and configuration; a different ``model.backbone`` arch is an error.
    """
    if cfg.backbone_weights is None:
        return backbones.create(cfg.backbone, **cfg.backbone_options)
    path = backbone_weights_path(cfg.backbone_weights)
    metadata = _tami_backbone_metadata(path)
    if metadata:
        arch = metadata["arch"]
        if arch != cfg.backbone.partition(".")[0]:
            raise CheckpointError(
                f"{path} holds a {arch} backbone but model.backbone is {cfg.backbone!r}; set model.backbone: {arch}"
            )
        stored = json.loads(metadata["config"])
        differing = {k: v for k, v in cfg.backbone_options.items() if stored.get(k) != v}
        if differing:
            raise CheckpointError(
                f"{path} was trained with {arch} options {stored}, which differ from model.backbone_options "
                f"{differing}; drop model.backbone_options or make them match"
            )
        model = backbones.load(path)
    else:
        try:
            model = backbones.load(path, cfg.backbone, **cfg.backbone_options)
        except UnknownConfiguration as exc:
            example = ", ".join(f"{k}: {json.dumps(v)}" for k, v in exc.closest.items())
            raise CheckpointError(
                f"{path}: {exc.detail}; set the constructor arguments it was trained with, e.g. "
                f"--set model.backbone_options='{{{example}}}' (the closest preset's, to adapt)"
            ) from None
    logger.info("backbone %s loaded from %s", model.arch, path)
    return model


def state_digest(state: dict[str, Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state_dict (detects a changed frozen backbone)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class ImageStage:
    """Stage ``image``: train the backbone on frames as images.

    Args:
        config: the training recipe.
        device: where to compute.
    """

    name = "image"

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from ..losses import build_loss

        self.backbone = build_backbone(config.model).to(device)
        for p in self.backbone.parameters():
            p.requires_grad_(True)
        self.model: nn.Module = self.backbone
        self.loss = build_loss(dict(config.loss)).to(device)
        self.device = device

    def trained(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of every trained weight."""
        return [(n, p) for n, p in self.backbone.named_parameters() if p.requires_grad]

    def trained_state(self) -> dict[str, Tensor]:
        """State of the trained part (the whole backbone)."""
        return {k: v.detach().clone() for k, v in self.backbone.state_dict().items()}

    def load_trained_state(self, state: dict[str, Tensor]) -> None:
        backbones.load_state_dict(self.backbone, state)

    def frozen_digest(self) -> str | None:
        return None

    def train_mode(self) -> None:
        self.backbone.train()

    def _run(self, frames: Tensor) -> Tensor:
        return self.backbone(frames)

    def compute_loss(self, lq: Tensor, gt: Tensor, *, step: int, seed: int,
                     policy: RecurrencePolicy) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of a batch of clips ``(B, T, 3, H, W)`` treated as ``B*T`` images (``policy`` does not apply)."""
        out = self._run(lq.flatten(0, 1))
        return self.loss(out.float(), gt.flatten(0, 1).float(), None)

    @torch.no_grad()
    def predict(self, lq: Tensor) -> Tensor:
        """Enhance a clip ``(1, T, 3, H, W)`` frame by frame; returns ``(1, T, 3, H, W)`` float in [0, 1]."""
        frames = [self._run(lq[:, i]).float().clamp(0, 1) for i in range(lq.shape[1])]
        return torch.stack(frames, dim=1)

    def export(self, out_dir: Path) -> list[Path]:
        """Write the trained backbone as ``OUT/backbone.safetensors``."""
        return [backbones.save(self.backbone, out_dir / BACKBONE_FILE, {"trained_by": "tami train (stage image)"})]


class VideoStage:
    """Stage ``video``: freeze the backbone, train the TAMI adapter on clips.

    Args:
        config: the training recipe.
        device: where to compute.
    """

    name = "video"

    def __init__(self, config: TrainConfig, device: torch.device) -> None:
        from ..adapter import TAMI
        from ..adapter.io import load_adapter
        from ..losses import build_loss

        if config.model.backbone_weights is None:
            logger.warning(
                "model.backbone_weights is not set: the adapter is trained on a randomly initialised backbone; "
                "set it to an official checkpoint or a stage-image run for a useful model"
            )
        backbone = build_backbone(config.model)
        try:
            self.model = TAMI.from_preset(backbone, **config.model.adapter_options)
        except TypeError as exc:
            raise InputError(f"model.adapter_options: {exc}") from None
        if config.model.adapter_weights is not None:
            path = adapter_weights_path(config.model.adapter_weights)
            load_adapter(self.model, path)
            logger.info("adapter initialised from %s", path)
        self.model.to(device)
        self.backbone = self.model.backbone
        self.loss = build_loss(dict(config.loss)).to(device)
        self.device = device
        self._backbone_ids = {id(p) for p in self.backbone.parameters()}
        prefix = self._module_prefix(self.backbone)
        self._backbone_keys = {f"{prefix}{k}" for k in self.backbone.state_dict()}

    def _module_prefix(self, module: nn.Module) -> str:
        for name, child in self.model.named_modules():
            if child is module:
                return f"{name}." if name else ""
        raise InputError("the adapter does not hold its backbone as a sub-module")

    def trained(self) -> list[tuple[str, nn.Parameter]]:
        """``(name, parameter)`` of the adapter's weights (never the backbone's)."""
        adapter_ids = {id(p) for p in self.model.adapter_parameters()}
        return [
            (n, p) for n, p in self.model.named_parameters()
            if id(p) in adapter_ids and id(p) not in self._backbone_ids and p.requires_grad
        ]

    def trained_state(self) -> dict[str, Tensor]:
        """The model's state without the frozen backbone's entries."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items() if k not in self._backbone_keys}

    def load_trained_state(self, state: dict[str, Tensor]) -> None:
        own = {k for k in self.model.state_dict() if k not in self._backbone_keys}
        missing, unexpected = sorted(own - set(state)), sorted(set(state) - own)
        if missing or unexpected:
            raise CheckpointError(
                f"checkpoint does not fit this adapter (missing {missing[:5]}, unexpected {unexpected[:5]}); "
                "resume with the config the run was started with"
            )
        self.model.load_state_dict(state, strict=False)

    def frozen_digest(self) -> str | None:
        """Digest of the frozen backbone's weights (stored in checkpoints to catch a swapped backbone on resume)."""
        return state_digest(self.backbone.state_dict())

    def train_mode(self) -> None:
        self.model.train()

    def compute_loss(self, lq: Tensor, gt: Tensor, *, step: int, seed: int,
                     policy: RecurrencePolicy) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of a batch of clips ``(B, T, 3, H, W)`` through ``forward_clip`` under ``policy`` (teacher
        forcing, truncated BPTT).

        The teacher-forcing draws come from a generator seeded by ``(seed, step)`` (the trainer folds the process
        rank into ``seed``), so a resumed run draws exactly what an uninterrupted one would.
        """
        out, aux = self._forward(lq, gt, step=step, seed=seed, policy=policy)
        return self.loss(out.float(), gt.float(), aux)

    def loss_parts(self, lq: Tensor, gt: Tensor, *, step: int, seed: int,
                   policy: RecurrencePolicy) -> tuple[Tensor, Tensor]:
        """The training loss of :meth:`compute_loss` and its reconstruction part alone (the terms that compare
        the output with the ground truth, no TAMI terms), from one forward pass (for the diagnostics)."""
        out, aux = self._forward(lq, gt, step=step, seed=seed, policy=policy)
        total, _ = self.loss(out.float(), gt.float(), aux)
        reconstruction, _ = self.loss(out.float(), gt.float(), None)
        return total, reconstruction

    def _forward(self, lq: Tensor, gt: Tensor, *, step: int, seed: int,
                 policy: RecurrencePolicy) -> tuple[Tensor, list[FrameAux]]:
        generator = torch.Generator(device="cpu").manual_seed(seed * 1_000_003 + step)
        mask = policy.teacher_mask(lq.shape[0], lq.shape[1], generator)
        return self.model.forward_clip(lq, gt, teacher_mask=mask, detach_every=policy.detach_every, loss_terms=True)

    @torch.no_grad()
    def predict(self, lq: Tensor) -> Tensor:
        """Enhance a clip ``(1, T, 3, H, W)`` causally (no ground truth); returns it clamped to [0, 1]."""
        out, _ = self.model.forward_clip(lq)
        return out.float().clamp(0, 1)

    def export(self, out_dir: Path) -> list[Path]:
        """Write ``OUT/adapter.safetensors`` and the single-file ``OUT/model.safetensors`` (backbone + adapter)."""
        from ..adapter.io import save_adapter, save_model

        adapter, model = out_dir / ADAPTER_FILE, out_dir / MODEL_FILE
        save_adapter(self.model, adapter)
        save_model(self.model, model)
        return [adapter, model]


Stage = ImageStage | VideoStage


def build_stage(config: TrainConfig, device: torch.device) -> Stage:
    """The stage object of ``config.stage``."""
    return ImageStage(config, device) if config.stage == "image" else VideoStage(config, device)


def describe(stage: Stage) -> dict[str, Any]:
    """Parameter counts of the stage's model (trained / total)."""
    trained = sum(p.numel() for _, p in stage.trained())
    total = sum(p.numel() for p in stage.model.parameters())
    return {"trained": trained, "total": total}
