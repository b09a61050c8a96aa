"""The per-frame auxiliary outputs of :meth:`tami.adapter.TAMI.step`: what the TAMI losses and diagnostics read.

All maps are on the memory's working grid ``(hm, wm)``. The loss-only tensors (``lq_small``, ``illu_lq``,
``hq_small``, ``illu_hq``) exist only when the caller asked for them (``loss_terms=True``, the training stage);
the write tensors only when the frame was written to the memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class FrameAux:
    """One frame's intermediate tensors.

    Attributes:
        f_ls: ``(B, C, hm, wm)`` ``F_ls``, the low-quality feature. key: ``(B, key_dim, hm, wm)`` memory key ``K``.
        prior: ``(B, 1, hm, wm)`` retrieved illumination prior ``I_ip`` (zeros when the memory was empty).
        memory_frames: frames in the memory when this frame read it.
        f_hs: ``F_hs`` of the written image. value: memory value ``V``. illu: ``(B, 1, hm, wm)`` ``I = IEnc(hq)``
            with frozen weights (gradient reaches the output). teacher: ``(B,)`` bool, samples written from ``gt``.
            All four ``None`` when the frame was not written.
        lq_small: ``(B, 3, hm, wm)`` the input area-downscaled. illu_lq: ``IEnc(lq_small)`` with trainable weights
            and detached input (``L_lq`` of ``L_IM``). hq_small: the written image downscaled, detached. illu_hq:
            ``IEnc(hq_small)`` with trainable weights (``L_hq``). Loss-only: ``None`` unless asked for.
    """

    f_ls: Tensor
    key: Tensor
    prior: Tensor
    memory_frames: int
    f_hs: Tensor | None = None
    value: Tensor | None = None
    illu: Tensor | None = None
    teacher: Tensor | None = None
    lq_small: Tensor | None = None
    illu_lq: Tensor | None = None
    hq_small: Tensor | None = None
    illu_hq: Tensor | None = None

    @property
    def written(self) -> bool:
        """Whether this frame was stored in the memory."""
        return self.f_hs is not None
