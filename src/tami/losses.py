"""Training losses: image reconstruction terms, a temporal-difference term and the TAMI terms L_IM, L_SM, L_I3A.

``build_loss({"charbonnier": 1.0, "l_im": 1.0, "l_sm": 1.0, "l_i3a": 1.0})`` (or ``l_sm_centred`` in place of
``l_sm``) returns a :class:`Loss` whose
``forward(out, gt, frames)`` gives the weighted total and every term under ``loss/<name>``. Reconstruction terms
work on ``(B, T, 3, H, W)`` clips or ``(B, 3, H, W)`` images; the TAMI terms read the per-frame
:class:`tami.adapter.frame_aux.FrameAux` of :meth:`tami.adapter.TAMI.forward_clip` (run with ``loss_terms=True``)
and are skipped when ``frames`` is ``None`` (image-stage training). ``tdiff`` (:func:`temporal_difference`) needs ``(B, T, 3, H, W)`` clips with
``T >= 2`` and is skipped on images.

Notation: ``MSE(a, b)`` = mean of ``(a - b)^2`` over all elements; a clip has ``T`` frames; each TAMI term is
``(1 / T) * sum_t term_t``, where frames for which a term is undefined contribute 0 (as the research code adds
each term to its frame's loss and averages the frames).

Deliberate deviation from the reference: ``l_sm_centred`` (:func:`l_sm_centred`). ``L_SM`` only asks that the
token cosine matrices be symmetric with a unit diagonal, which every frame satisfies trivially when all tokens of
``F_ls`` and ``F_hs`` point the same way (every cosine is 1); trained models collapse towards it (mean off-diagonal
token cosine 0.98 against about 0.5 for the raw encoder features), which strips the memory's keys and values of
position information. ``l_sm_centred`` computes the same formula on tokens centred by their per-frame mean over the
grid: identical tokens centre to zero and leave the unit diagonal unmet, so that collapse is no longer a minimum.
It does not forbid every low-rank configuration (tokens along one line with varied magnitudes centre to +/- one
direction and still satisfy it); the training diagnostics (``tami.train.diagnostics``) log the token cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .adapter.frame_aux import FrameAux
from .errors import InputError, UsageError


def charbonnier(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """``mean(sqrt((pred - target)^2 + eps^2))``."""
    return torch.sqrt((pred - target).pow(2) + eps * eps).mean()


def temporal_difference(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Charbonnier distance between consecutive-frame differences of ``pred`` and ``target`` ``(B, T, 3, H, W)``.

    ``mean(rho((p_t - p_{t-1}) - (g_t - g_{t-1})))``: penalises the part of the error that changes from frame to
    frame (flicker, fresh noise) and leaves an error that is constant in time alone, which per-frame terms cannot
    tell apart. Flow-free, so it suits paired clips with small motion (our synthetic clips, SDSD). Not in the paper.
    """
    if pred.shape != target.shape or pred.dim() != 5:
        raise InputError(f"tdiff expects clips (B, T, 3, H, W) of equal shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    return charbonnier(pred.diff(dim=1), target.diff(dim=1), eps)


def _gaussian_window(size: int, sigma: float, channels: int, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(pred: Tensor, target: Tensor, window: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM of ``(N, C, H, W)`` images in [0, 1] (Gaussian window, per channel, valid region).

    ``C1 = 0.01^2``, ``C2 = 0.03^2``; the window shrinks (odd) for images smaller than ``window``.
    """
    size = min(window, pred.shape[-2], pred.shape[-1])
    size -= 1 - size % 2
    channels = pred.shape[1]
    w = _gaussian_window(size, sigma, channels, pred)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, w, groups=channels)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(pred * target) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean()


def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    """``1 - SSIM(pred, target)``."""
    return 1 - ssim(pred, target)


def _tokens(x: Tensor, centred: bool) -> Tensor:
    """``(B, C, N)`` L2-normalised tokens of a feature map; ``centred`` first subtracts the mean token of the map."""
    flat = x.flatten(2)
    if centred:
        flat = flat - flat.mean(dim=2, keepdim=True)
    return F.normalize(flat, dim=1)


def _cosine(x: Tensor, y: Tensor, centred: bool = False) -> Tensor:
    """``S[b, i, j] = <y_i / |y_i|, x_j / |x_j|>`` for feature maps ``(B, C, h, w)`` (tokens = pixels).

    ``centred``: tokens minus their map's mean token before normalising (a zero token has cosine 0 with anything).
    """
    return torch.bmm(_tokens(y, centred).transpose(1, 2), _tokens(x, centred))


def _symmetry(s: Tensor) -> Tensor:
    return F.mse_loss(s, s.transpose(1, 2))


def l_sm(frames: list[FrameAux], generator: torch.Generator | None = None, *,
         centred: bool = False) -> Tensor:
    """Symmetric matching loss.

    For frame ``t`` with ``S = S(F_ls^t, F_hs^t)``: ``MSE(S, S^T) + MSE(diag S, 1)``; if an earlier frame ``j``
    exists (drawn uniformly from ``0..t-1``), plus ``MSE(S1, S1^T)`` with ``S1 = S(F_ls^j, F_hs^t)`` and
    ``MSE(S2, S2^T)`` with ``S2 = S(F_hs^j, F_ls^t)``. Cosine matrices over the tokens of the working grid.
    Zero when every frame's ``F_ls`` and ``F_hs`` are one and the same feature map - and, trivially, when all
    tokens are parallel (see :func:`l_sm_centred`). ``centred``: the cosines of mean-centred tokens.
    """
    written = [f for f in frames if f.written]
    total = frames[0].f_ls.new_zeros(())
    for t, frame in enumerate(written):
        s = _cosine(frame.f_ls, frame.f_hs, centred)
        diag = torch.diagonal(s, dim1=1, dim2=2)
        total = total + _symmetry(s) + F.mse_loss(diag, torch.ones_like(diag))
        if t > 0:
            j = int(torch.randint(t, (1,), generator=generator))
            earlier = written[j]
            total = total + _symmetry(_cosine(earlier.f_ls, frame.f_hs, centred))
            total = total + _symmetry(_cosine(earlier.f_hs, frame.f_ls, centred))
    return total / len(frames)


def l_sm_centred(frames: list[FrameAux], generator: torch.Generator | None = None) -> Tensor:
    """``L_SM`` on tokens centred by their per-frame mean over the grid (not in the paper; module docstring).

    Removes the collapsed minimum of :func:`l_sm`: a map of identical tokens centres to zero, its diagonal cosines
    are 0 and each such frame costs ``MSE(diag S, 1) = 1``. Still zero when ``F_ls`` and ``F_hs`` are the same map.
    """
    return l_sm(frames, generator, centred=True)


def l_i3a(frames: list[FrameAux]) -> Tensor:
    """Intra- and inter-frame illumination alignment.

    Frames that read a non-empty memory: ``MSE(I_ip^t, I^t)``; if frame ``t-1`` did too, plus
    ``MSE(I^t - I^{t-1}, I_ip^t - I_ip^{t-1})``. ``I^t`` = illumination of the written frame (``FrameAux.illu``),
    ``I_ip^t`` = retrieved prior (``FrameAux.prior``). Zero when every prior equals its frame's illumination.
    """
    total = frames[0].prior.new_zeros(())
    previous: FrameAux | None = None
    for frame in frames:
        usable = frame.illu is not None and frame.memory_frames > 0
        if usable:
            total = total + F.mse_loss(frame.prior, frame.illu)
            if previous is not None:
                total = total + F.mse_loss(
                    frame.illu - previous.illu, frame.prior - previous.prior
                )
        previous = frame if usable else None
    return total / len(frames)


def l_im(frames: list[FrameAux]) -> Tensor:
    """Illumination map (Retinex) loss; the one term that trains the illumination encoder's weights.

    With ``lq``, ``hq`` the downscaled input and written frame and ``L_lq = IEnc(lq)``, ``L_hq = IEnc(hq)``
    (inputs detached): ``MSE(lq * L_hq - hq * L_lq, 0) + MSE(mean(lq) + mean(L_hq), mean(L_lq) + mean(hq))``,
    i.e. equal reflectance ``lq / L_lq = hq / L_hq`` plus a global offset constraint. Zero when each map equals
    the (grey) image it encodes.
    """
    first = frames[0]
    total = (first.lq_small if first.lq_small is not None else first.prior).new_zeros(())
    for frame in frames:
        if not frame.written:
            continue
        if frame.illu_hq is None or frame.illu_lq is None:
            raise InputError("l_im needs the loss-only tensors of each frame; run the model with loss_terms=True")
        lq, hq = frame.lq_small.detach(), frame.hq_small.detach()
        l_lq, l_hq = frame.illu_lq, frame.illu_hq
        reflect = lq * l_hq - hq * l_lq
        total = total + reflect.pow(2).mean()
        total = total + (lq.mean() + l_hq.mean() - l_lq.mean() - hq.mean()).pow(2)
    return total / len(frames)


RECONSTRUCTION = {
    "charbonnier": charbonnier,
    "l1": F.l1_loss,
    "mse": F.mse_loss,
    "ssim": ssim_loss,
}
CLIP = {"tdiff": temporal_difference}
TEMPORAL = {"l_im": l_im, "l_sm": l_sm, "l_sm_centred": l_sm_centred, "l_i3a": l_i3a}


class Loss(nn.Module):
    """Weighted sum of reconstruction and TAMI terms (terms with weight 0 are not computed).

    Args:
        weights: term name -> weight; names in ``RECONSTRUCTION``, ``CLIP`` and ``TEMPORAL``.
    """

    def __init__(self, weights: dict[str, float]) -> None:
        super().__init__()
        self.weights = {k: float(v) for k, v in weights.items() if float(v) != 0.0}

    def forward(self, out: Tensor, gt: Tensor, frames: list[FrameAux] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its terms.

        Args:
            out, gt: ``(B, T, 3, H, W)`` or ``(B, 3, H, W)``, float in [0, 1].
            frames: the per-frame outputs of ``forward_clip(..., loss_terms=True)``; ``None`` skips the TAMI terms.

        Returns:
            ``(total, {"loss/<term>": detached value, ..., "loss/total": ...})``.
        """
        if out.shape != gt.shape or out.dim() not in (4, 5):
            raise InputError(
                f"loss expects out and gt of equal shape (B, T, 3, H, W) or (B, 3, H, W), got {tuple(out.shape)} "
                f"and {tuple(gt.shape)}"
            )
        flat_out, flat_gt = out.reshape(-1, *out.shape[-3:]), gt.reshape(-1, *gt.shape[-3:])
        total = out.new_zeros(())
        logs: dict[str, Tensor] = {}
        for name, weight in self.weights.items():
            if name in RECONSTRUCTION:
                value = RECONSTRUCTION[name](flat_out, flat_gt)
            elif name in CLIP:
                if out.dim() != 5 or out.shape[1] < 2:
                    continue
                value = CLIP[name](out, gt)
            elif frames:
                value = TEMPORAL[name](frames)
            else:
                continue
            total = total + weight * value
            logs[f"loss/{name}"] = value.detach()
        logs["loss/total"] = total.detach()
        return total, logs


def build_loss(config: dict[str, float]) -> Loss:
    """Build a :class:`Loss` from ``{"term": weight}``; unknown terms raise :class:`UsageError` (a config error)."""
    known = {*RECONSTRUCTION, *CLIP, *TEMPORAL}
    unknown = sorted(set(config) - known)
    if unknown:
        raise UsageError(f"unknown loss term(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name, weight in config.items():
        if not isinstance(weight, (int, float)) or weight < 0:
            raise UsageError(f"loss weight of {name!r} must be a non-negative number, got {weight!r}")
    return Loss(dict(config))
