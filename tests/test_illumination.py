"""The illumination encoder's versions (``TAMIConfig.illumination``): the learned IEnc and the parameter-free luma."""

from __future__ import annotations

import copy

import pytest
import torch
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami.adapter import TAMI, TAMIConfig
from tami.adapter.icmem import IlluminationEncoder
from tami.adapter.io import load_adapter, save_adapter
from tami.errors import InputError
from tami.losses import build_loss


def test_luma_is_the_rec709_luma_of_the_area_resized_image():
    image = torch.zeros(1, 3, 4, 4)
    image[:, 0, :2] = 0.8  # red on the top half
    image[:, 2] = 0.4  # blue everywhere
    illu = IlluminationEncoder(8, "luma")(image, (2, 1))
    top = 0.2126 * 0.8 + 0.0722 * 0.4
    bottom = 0.0722 * 0.4
    assert torch.allclose(illu.flatten(), torch.tensor([top, bottom]), atol=1e-7)


def test_luma_follows_a_gain_exactly_and_has_no_weights():
    encoder = IlluminationEncoder(8, "luma")
    assert not list(encoder.parameters())
    image = torch.rand(2, 3, 16, 16) * 0.6
    ratio = encoder(image * 1.25, (4, 4)) / encoder(image, (4, 4))
    assert torch.allclose(ratio, torch.full_like(ratio, 1.25), atol=1e-5)


def test_unknown_illumination_is_a_one_line_error():
    with pytest.raises(InputError, match="illumination must be one of learned, luma"):
        TAMIConfig(illumination="mean")


def test_luma_model_trains_without_iencoder_weights_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = TAMI(ToyBackbone(), small_config(illumination="luma"))
    assert not any(k.startswith("icmem.illu_encoder.") for k in model.state_dict())
    loss_fn = build_loss({"charbonnier": 1.0, "l_im": 1.0, "l_sm": 1.0, "l_i3a": 1.0})
    lq = torch.rand(2, 3, 3, 32, 32) * 0.3
    gt = (lq * 3).clamp(0, 1)
    optimizer = torch.optim.Adam(model.adapter_parameters(), lr=1e-2)
    model.train()
    for _ in range(3):  # the IGFE starts as the identity, so the refiner's gradient appears after a step
        optimizer.zero_grad()
        out, aux = model.forward_clip(lq, gt, teacher_mask=torch.ones(2, 3, dtype=torch.bool), loss_terms=True)
        loss, _ = loss_fn(out, gt, aux)
        loss.backward()
        optimizer.step()
    refiner_grad = sum(p.grad.abs().sum() for p in model.icmem.illu_refiner.parameters() if p.grad is not None)
    assert refiner_grad > 0
    # what the memory stores is the written frame's luma
    stored = IlluminationEncoder(8, "luma")(gt[:, 0], tuple(aux[0].illu.shape[-2:]))
    assert torch.allclose(aux[0].illu, stored, atol=1e-6)
    model.eval()
    path = save_adapter(model, tmp_path / "luma.safetensors")
    again = load_adapter(TAMI(copy.deepcopy(model.backbone), small_config(illumination="luma")), path).eval()
    with torch.no_grad():
        assert torch.equal(again.forward_clip(lq)[0], model.forward_clip(lq)[0])
