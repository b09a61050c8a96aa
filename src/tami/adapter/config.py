"""The adapter's hyper-parameters (:class:`TAMIConfig`), apart from the model so that the presets and the model both
import it without importing each other."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import InputError


#: Similarity rules of the memory match (``TAMIConfig.retrieval``).
RETRIEVALS = ("distance", "cosine", "centred")
#: Versions of the illumination encoder IEnc (``TAMIConfig.illumination``).
ILLUMINATIONS = ("learned", "luma")
#: How the brightness anchor compares the prior with the output (:mod:`tami.adapter.anchor`).
ANCHOR_MODES = ("cells", "global", "exposure", "carry")
#: The anchor modes that read per-frame numbers kept in the memory instead of the prior.
EXPOSURE_ANCHOR_MODES = ("exposure", "carry")
#: Cap on the learned scale of the cosine match (a softmax this sharp already picks one entry).
MAX_RETRIEVAL_SCALE = 100.0


@dataclass(frozen=True)
class TAMIConfig:
    """Hyper-parameters of the adapter (independent of the backbone's width ``C``).

    Attributes:
        key_dim: ``Ck``, memory key width. value_dim: ``Cv``. hidden_dim: ``Ch``, recurrent state width.
        illu_dim: ``Ci``, width of ``F_en`` and of the illumination encoder.
        igfe_blocks: IGFE blocks ``L`` (the paper figure shows 3). igfe_dim: embedding width ``E`` (``None``: ``C``);
            a multiple of ``2 * heads``. heads: attention heads. ffn_expansion: IGFE FFN ratio (gated, 8/3).
        igfe_pool: token cell size on the injection map (paper: 2 at H/8). igfe_max_tokens: token cap; above it the
            cells grow (``None``: no cap).
        prior_alpha: photometric bias scale (200). heads_range: head decay spread (4).
        temperature_init: initial per-head attention temperature (persisted; ``1/ln(1024)``: a 32x32 map).
        memory_frames: ``k``, frames in the FIFO. 0: no temporal context at all - every frame reads an empty
            memory and a zero hidden state and nothing is written (the same-size no-memory control of
            ``benchmarks/memory.py``). pin_first: also keep the video's first frame (counted apart).
        top_m: memory entries kept per query in the softmax (``None``: full softmax).
        retrieval: similarity of the memory match: ``"distance"`` (the reference: negative squared distance over
            ``sqrt(D)``) or ``"cosine"`` (a deviation: cosine times a learned scale per stage, which keeps the read
            selective when the keys are small) or ``"centred"`` (the same cosine of tokens centred per frame, so
            tokens that share one direction still differ; :mod:`tami.adapter.memory`).
        retrieval_scale: initial scale of the cosine similarities (learned, capped at 100).
        illumination: the illumination map stored in memory and read back as the prior: ``"learned"`` (the paper's
            IEnc, trained by L_IM only) or ``"luma"`` (the reference code's parameter-free ``brightness`` version,
            Rec. 709 luma: a gain on the written frame reaches the prior in full).
        recurrent: carry the hidden state from frame to frame (the reference). False (a deviation): every frame
            starts from a zero hidden state, so the memory read is the adapter's only path from earlier frames (the
            hidden state is a position-locked recurrence with no motion compensation; ``benchmarks/memory.py``,
            Tier A round 7).
        brightness_anchor: also apply the prior to the output relative to the output's own brightness (a
            deviation: :mod:`tami.adapter.anchor`, ``benchmarks/memory.py`` Tier A rounds 8-11); the modes that read
            the prior need ``illumination "luma"``, whose prior is in the output's luma units.
        anchor_mode: ``"cells"`` (round 8: a log gain per cell from per-cell log ratios) or ``"global"`` (round 9:
            one log gain per frame from the log ratio of the prior's and the output's mean luma, free of the cell
            mode's contrast bias; :class:`tami.adapter.anchor.GlobalBrightnessAnchor`) or ``"exposure"`` (round 10:
            one log gain per frame from brightness numbers each memory frame keeps, the correction it implies and
            its raw level; :class:`tami.adapter.anchor.ExposureAnchor`) or ``"carry"`` (round 11: the same, but an
            output frame writes back the correction it read rather than the gain it applied, so the correction a
            ground-truth frame gave does not fade).
        memory_scale: working-grid scale of the memory side relative to the injection map (1: same grid).
        memory_max_tokens: cap on working-grid cells per frame (``None``: no cap).
        query_chunk: queries per retrieval/attention chunk (bounds temporary memory).
    """

    key_dim: int = 32
    value_dim: int = 128
    hidden_dim: int = 32
    illu_dim: int = 64
    igfe_blocks: int = 3
    igfe_dim: int | None = None
    heads: int = 4
    ffn_expansion: float = 8 / 3
    igfe_pool: int = 2
    igfe_max_tokens: int | None = 4096
    prior_alpha: float = 200.0
    heads_range: float = 4.0
    temperature_init: float = 1.0 / math.log(1024)
    memory_frames: int = 4
    pin_first: bool = False
    top_m: int | None = 16
    retrieval: str = "distance"
    retrieval_scale: float = 10.0
    illumination: str = "learned"
    recurrent: bool = True
    brightness_anchor: bool = False
    anchor_mode: str = "cells"
    memory_scale: float = 1.0
    memory_max_tokens: int | None = 4096
    query_chunk: int = 1024

    def __post_init__(self) -> None:
        positive = ["key_dim", "value_dim", "hidden_dim", "illu_dim", "igfe_blocks", "heads", "igfe_pool",
                    "query_chunk"]
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"TAMIConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        for name in ("igfe_max_tokens", "memory_max_tokens", "top_m", "igfe_dim"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"TAMIConfig.{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.memory_frames, int) or self.memory_frames < 0:
            raise InputError(f"TAMIConfig.memory_frames must be 0 (no memory) or a positive integer, "
                             f"got {self.memory_frames!r}")
        if self.igfe_dim is not None and self.igfe_dim % (2 * self.heads):
            raise InputError(
                f"TAMIConfig.igfe_dim must be a multiple of 2 * heads = {2 * self.heads}, got {self.igfe_dim}"
            )
        if self.retrieval not in RETRIEVALS:
            raise InputError(f"TAMIConfig.retrieval must be one of {', '.join(RETRIEVALS)}, got {self.retrieval!r}")
        if self.illumination not in ILLUMINATIONS:
            raise InputError(f"TAMIConfig.illumination must be one of {', '.join(ILLUMINATIONS)}, "
                             f"got {self.illumination!r}")
        if self.brightness_anchor and self.anchor_mode not in EXPOSURE_ANCHOR_MODES and self.illumination != "luma":
            raise InputError("TAMIConfig.brightness_anchor compares the prior with the output's luma and needs "
                             f"illumination 'luma', got {self.illumination!r}; set illumination: luma")
        if self.anchor_mode not in ANCHOR_MODES:
            raise InputError(f"TAMIConfig.anchor_mode must be one of {', '.join(ANCHOR_MODES)}, "
                             f"got {self.anchor_mode!r}")
        if not 0 < self.retrieval_scale <= MAX_RETRIEVAL_SCALE:
            raise InputError(f"TAMIConfig.retrieval_scale must be in (0, {MAX_RETRIEVAL_SCALE:g}], "
                             f"got {self.retrieval_scale}")
        if not 0 < self.memory_scale <= 1:
            raise InputError(f"TAMIConfig.memory_scale must be in (0, 1], got {self.memory_scale}")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TAMIConfig":
        """Build from a dict; unknown keys raise :class:`InputError` naming the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown TAMI option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
