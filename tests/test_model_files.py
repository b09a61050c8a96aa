"""``--model``: run folders, exported models and backbones, official checkpoints, and the files it must refuse."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import torch

from tami import backbones
from tami.adapter import TAMI
from tami.adapter.io import save_adapter, save_model
from tami.cli.main import main
from tami.train import checkpoint as ckpt

ADAPTER = dict(key_dim=8, value_dim=8, hidden_dim=8, illu_dim=8, igfe_blocks=1, igfe_dim=16, heads=2, igfe_pool=2)




def _model(seed: int) -> TAMI:
    torch.manual_seed(seed)
    # The default configuration, so that the official-format copy is recognised by its shapes like a release.
    model = TAMI.from_preset(backbones.create("retinexformer"), **ADAPTER)
    with torch.no_grad():
        model.igfe.gamma.normal_(0.0, 2.0)  # a fresh adapter is the identity; make it matter
    return model.eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    clip = root / "clip"
    clip.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        cv2.imwrite(str(clip / f"{i:04d}.png"), (rng.random((16, 24, 3)) * 60).astype(np.uint8))
    run = root / "run"
    final, best = _model(1), _model(2)
    save_model(final, run / "export" / "model.safetensors")
    save_adapter(final, run / "export" / "adapter.safetensors")
    save_model(best, run / "export" / "best" / "model.safetensors")
    ckpt.save_checkpoint({"step": 3, "stage": "video", "model": final.adapter_state_dict()},
                         run / "checkpoints" / "last.pt")
    image_run = root / "image_run"
    backbones.save(final.backbone, image_run / "export" / "backbone.safetensors")
    official = root / "official.pth"
    torch.save({"params": {f"module.{k}": v for k, v in final.backbone.state_dict().items()}}, official)
    return {"clip": clip, "run": run, "image_run": image_run, "official": official}


def _enhance(files: dict[str, Path], model: Path | str, out: Path, *extra: str) -> dict[str, np.ndarray]:
    assert main(["-q", "enhance", str(files["clip"]), "--model", str(model), "-o", str(out), *extra]) == 0
    return {p.name: cv2.imread(str(p)) for p in sorted(out.iterdir())}


def test_a_run_folder_runs_its_best_export_else_its_final_one(files: dict[str, Path], tmp_path: Path) -> None:
    run = files["run"]
    from_run = _enhance(files, run, tmp_path / "a")
    best = _enhance(files, run / "export" / "best" / "model.safetensors", tmp_path / "b")
    final = _enhance(files, run / "export" / "model.safetensors", tmp_path / "c")
    assert all(np.array_equal(from_run[k], best[k]) for k in best)
    assert any(not np.array_equal(final[k], best[k]) for k in best)
    assert all(np.array_equal(v, final[k]) for k, v in _enhance(files, run / "export", tmp_path / "d").items())


def test_backbone_files_and_official_checkpoints_run_backbone_only(files: dict[str, Path], tmp_path: Path) -> None:
    reference = _enhance(files, files["run"] / "export" / "model.safetensors", tmp_path / "ref", "--backbone-only")
    for name, model in (("export", files["image_run"] / "export" / "backbone.safetensors"),
                        ("run", files["image_run"]), ("official", files["official"])):
        out = _enhance(files, model, tmp_path / name)
        assert out.keys() == reference.keys() and all(np.array_equal(out[k], reference[k]) for k in out), name
    # Without -o, the output is named for what ran.
    assert main(["-q", "enhance", str(files["clip"]), "--model", str(files["official"])]) == 0
    assert (files["clip"].parent / "clip_backbone").is_dir()


@pytest.mark.parametrize(
    "which, message",
    [
        ("run/checkpoints/last.pt", "is a tami training checkpoint (the state tami train --resume continues), not "
                                    "weights; use {root}/run/export/model.safetensors"),
        ("run/export/adapter.safetensors", "is an adapter alone, without its backbone; pass the model file exported "
                                           "beside it ({root}/run/export/model.safetensors)"),
        ("nowhere", "no bundled model 'nowhere' (bundled: demo, demo_control)"),
        ("clip", "folder {root}/clip is not a training run"),
    ],
)
def test_files_that_are_not_models_are_named(files: dict[str, Path], which: str, message: str,
                                             capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = files["run"].parent
    assert main(["-q", "enhance", str(files["clip"]), "--model", str(root / which) if "/" in which or which == "clip"
                 else which, "-o", str(tmp_path / "out")]) == 1
    assert message.format(root=root) in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unfinished_run_says_how_to_finish_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 files: dict[str, Path]) -> None:
    run = tmp_path / "stopped"
    (run / "checkpoints").mkdir(parents=True)
    assert main(["-q", "enhance", str(files["clip"]), "--model", str(run), "-o", str(tmp_path / "o")]) == 1
    assert f"has no export yet (its training has not finished); finish it with tami train {run} --resume auto" in \
        capsys.readouterr().err


def test_official_weights_of_no_preset_say_how_to_convert_them(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                files: dict[str, Path]) -> None:
    narrow = tmp_path / "narrow.pth"
    torch.save(backbones.create("retinexformer", n_feat=16).state_dict(), narrow)
    assert main(["-q", "enhance", str(files["clip"]), "--model", str(narrow), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "match none of its presets" in err and f"tami convert {narrow} OUT.safetensors --arch retinexformer" in err


def test_demo_takes_a_run_folder_and_refuses_weights_without_an_adapter(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("av")
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--model", str(files["run"]), "--frames", "3", "--size", "32", "32", "--device", "cpu",
                 "-o", str(out)]) == 0
    assert (out / "tami.mp4").is_file()
    assert main(["-q", "demo", "--model", str(files["image_run"]), "-o", str(tmp_path / "d2")]) == 2
    assert "holds no TAMI adapter; the demo compares the backbone alone with TAMI" in capsys.readouterr().err
