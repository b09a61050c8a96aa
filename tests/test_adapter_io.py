"""Adapter presets (paper parameter overheads) and safetensors saving/loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami import backbones
from tami.adapter import (
    TAMI,
    adapter_config,
    adapter_parameter_count,
    load_adapter,
    load_model,
    preset_config,
    save_adapter,
    save_model,
)
from tami.adapter.presets import ADAPTER_PRESETS, PAPER_OVERHEAD
from tami.errors import CheckpointError, InputError


@pytest.mark.parametrize("arch", sorted(PAPER_OVERHEAD))
def test_preset_parameter_count_matches_paper(arch):
    target, channels = PAPER_OVERHEAD[arch]
    count = adapter_parameter_count(preset_config(arch), channels)
    assert abs(count / target - 1) <= 0.05, f"{arch}: {count} parameters vs paper {target}"


def test_parameter_count_matches_built_adapter():
    model = TAMI(ToyBackbone(), small_config())
    assert adapter_parameter_count(model.config, 16) == sum(p.numel() for p in model.adapter_parameters())


@pytest.mark.parametrize("arch", [a for a in backbones.names() if a in ADAPTER_PRESETS])
def test_from_preset_picks_the_backbone_preset(arch):
    with torch.device("meta"):
        backbone = backbones.create(arch)
        model = TAMI.from_preset(backbone, memory_frames=7)
    assert model.config == preset_config(arch, memory_frames=7)
    assert model.config.igfe_pool * model.config.memory_scale == 1.0
    assert model.config.igfe_pool * backbone.inject_stride == 32  # one token per 32x32 pixel cell


def test_unknown_preset_and_option_raise():
    with pytest.raises(InputError, match="no TAMI preset"):
        preset_config("nonexistent")
    with pytest.raises(InputError, match="unknown TAMI option"):
        preset_config("retinexformer", memory_size=3)


def test_adapter_round_trip(tmp_path):
    model = TAMI(ToyBackbone(), small_config())
    torch.nn.init.normal_(model.igfe.gamma)
    with torch.no_grad():
        model.igfe.blocks[0].attn.temperature.fill_(0.3)
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert not any(k.startswith("backbone.") for k in f.keys())
    assert meta["backbone_arch"] == "toy" and json.loads(meta["tami_config"])["key_dim"] == 8
    fresh = TAMI(model.backbone, small_config())
    loaded = load_adapter(fresh, path)
    for k, v in model.adapter_state_dict().items():
        assert torch.equal(loaded.adapter_state_dict()[k], v), k
    with pytest.raises(CheckpointError, match=r"igfe_blocks=2 \(model: 1\)"):
        load_adapter(TAMI(model.backbone, small_config(igfe_blocks=1)), path)
    assert adapter_config(path) == model.config
    other = load_adapter(TAMI(model.backbone, adapter_config(path)), path)
    lq = torch.rand(1, 3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(other.forward_clip(lq)[0], model.forward_clip(lq)[0], atol=0, rtol=0)


def test_adapter_on_wrong_backbone_names_both(tmp_path):
    path = save_adapter(TAMI(ToyBackbone(width=8), small_config()), tmp_path / "a.safetensors")
    with pytest.raises(CheckpointError, match=r"toy \(width=8\).*toy \(width=4\)"):
        load_adapter(TAMI(ToyBackbone(width=4), small_config()), path)
    with pytest.raises(CheckpointError, match="not a tami.model"):
        load_model(path)


def test_whole_model_round_trip(tmp_path):
    arch = "retinexformer"
    backbone = backbones.create(arch, n_feat=16, num_blocks=[1, 1, 1])
    model = TAMI.from_preset(backbone)
    torch.nn.init.normal_(model.igfe.gamma)
    path = save_model(model, tmp_path / "model.safetensors")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.backbone.config == backbone.config
    lq = torch.rand(1, 2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_clip(lq)[0], model.forward_clip(lq)[0], atol=0, rtol=0)
    assert not list(tmp_path.glob(".*partial*"))


def test_model_file_whose_configuration_does_not_match_its_tensors_fails_in_one_line(tmp_path):
    from safetensors.torch import load_file, save_file

    backbone = backbones.create("retinexformer", n_feat=16, num_blocks=[1, 1, 1])
    path = save_model(TAMI.from_preset(backbone), tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata())
    config = json.loads(meta["backbone_config"])
    meta["backbone_config"] = json.dumps({**config, "n_feat": 8})
    save_file(load_file(str(path)), str(tmp_path / "edited.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "edited.safetensors")
    message = str(err.value)
    assert "\n" not in message and "mis-shaped ['backbone." in message
