"""``tami convert --arch NAME --set key=value`` for weights of no preset, and tami's own files in the wrong slot."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tami import backbones
from tami.adapter import TAMI
from tami.adapter.io import save_model
from tami.cli.main import main
from tami.errors import CheckpointError
from tami.train import checkpoint as ckpt
from tami.train.config import ModelConfig
from tami.train.stages import build_backbone


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    state = backbones.create("retinexformer", n_feat=16, num_blocks=[1, 2, 2]).state_dict()
    path = tmp_path_factory.mktemp("narrow") / "narrow.pth"
    torch.save({"params": state}, path)
    return path, state


def test_convert_takes_the_constructor_arguments_of_weights_matching_no_preset(
    narrow: tuple[Path, dict[str, torch.Tensor]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, state = narrow
    out = tmp_path / "narrow.safetensors"
    assert main(["-q", "convert", str(path), str(out)]) == 1
    err = capsys.readouterr().err
    assert "match none of its presets; the closest, retinexformer" in err
    assert "is (16, 4, 1, 1), not (40, 4, 1, 1)" in err and "--arch retinexformer --set in_channels=3" in err
    assert not out.exists()
    assert main(["-q", "convert", str(path), str(out), "--arch", "retinexformer", "--set", "n_feat=16"]) == 0
    model = backbones.load(out)
    assert model.config["n_feat"] == 16
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    # Usage errors exit 2: --set without --arch, an option the architecture lacks, a bad value.
    assert main(["-q", "convert", str(path), str(out), "--set", "n_feat=16"]) == 2
    assert "--set needs --arch NAME" in capsys.readouterr().err
    assert main(["-q", "convert", str(path), str(out), "--arch", "retinexformer", "--set", "n_feet=16"]) == 2
    assert "n_feet" in capsys.readouterr().err
    assert main(["-q", "convert", str(path), str(out), "--arch", "retinexformer", "--set", "n_feat"]) == 2


def test_training_points_to_backbone_options_for_weights_matching_no_preset(
    narrow: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, _ = narrow
    with pytest.raises(CheckpointError, match=r"--set model.backbone_options='\{in_channels: 3, .*n_feat: 40"):
        build_backbone(ModelConfig(backbone="retinexformer", backbone_weights=str(path)))
    built = build_backbone(ModelConfig(backbone="retinexformer", backbone_weights=str(path),
                                       backbone_options={"n_feat": 16}))
    assert built.config["n_feat"] == 16


def test_tami_files_in_the_backbone_slot_say_what_they_are(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = TAMI.from_preset(backbones.create("retinexformer", n_feat=8, num_blocks=[1, 1, 1]))
    run = tmp_path / "run"
    save_model(model, run / "export" / "model.safetensors")
    ckpt.save_checkpoint({"step": 2, "stage": "image", "model": model.backbone.state_dict()},
                         run / "checkpoints" / "last.pt")
    out = tmp_path / "o.safetensors"
    assert main(["-q", "convert", str(run / "checkpoints" / "last.pt"), str(out)]) == 1
    assert f"is a tami training checkpoint (the state tami train --resume continues), not weights; use " \
           f"{run / 'export' / 'backbone.safetensors'}" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="is a tami model file .backbone \\+ adapter"):
        build_backbone(ModelConfig(backbone="retinexformer", backbone_weights=str(run / "export" / "model.safetensors")))


def test_adapter_weights_take_a_video_run_folder(tmp_path: Path) -> None:
    from tami.train.stages import adapter_weights_path

    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "adapter.safetensors").write_bytes(b"")
    assert adapter_weights_path(str(run)) == run / "export" / "adapter.safetensors"
    with pytest.raises(CheckpointError, match="is a folder without export/adapter.safetensors; finish the stage-video"):
        adapter_weights_path(str(tmp_path))
    with pytest.raises(CheckpointError, match="does not exist; set it to an adapter file"):
        adapter_weights_path(str(tmp_path / "nope.safetensors"))
