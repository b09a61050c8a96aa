"""Training diagnostics of the memory (tami.train.diagnostics) and the val.memory_stop rule, on tiny models."""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path

import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import torch

from tami import backbones
from tami.adapter.memory import KVMemory
from tami.data.synthetic import generate_dataset
from tami.errors import InputError
from tami.train import checkpoint as ckpt
from tami.train import from_dict, train
from tami.train.config import apply_overrides
from tami.train.loader import build_dataset
from tami.train.diagnostics import (
    MEMORY_MODULES,
    PRIOR_SHIFT,
    ShiftedMemory,
    mean_token_cosine,
    memory_diagnostics,
    run_stream,
)
from tami.train.distributed import DistInfo
from tami.train.logs import read_log
from tami.train.stages import VideoStage

SMALL = {"n_feat": 8, "num_blocks": [1, 1, 1]}
# Finer memory and IGFE cells than the preset, so the 40-px test frames get a 5x5 working grid.
ADAPTER = {"memory_frames": 2, "memory_scale": 0.5, "igfe_pool": 2}




@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("diag_data")
    out = {
        "train": generate_dataset(root / "train", videos=3, frames=5, size=(40, 40), seed=1, sources="builtin:train",
                                  flicker=0.1),
        "val": generate_dataset(root / "val", videos=2, frames=4, size=(40, 40), seed=5, sources="builtin:train",
                                flicker=0.1),
    }
    torch.manual_seed(3)
    out["backbone"] = backbones.save(backbones.create("retinexformer", **SMALL), root / "backbone.safetensors")
    return out


def config(data: dict[str, Path], *overrides: str):
    raw = {
        "stage": "video",
        "device": "cpu",
        "model": {"backbone": "retinexformer", "backbone_weights": str(data["backbone"]), "adapter_options": ADAPTER},
        "data": {"root": str(data["train"]), "clip_len": 3, "crop": 32},
        "loss": {"charbonnier": 1.0},
        "optim": {"lr": 3e-3, "warmup": 2},
        "train": {"iterations": 6, "batch_size": 2, "teacher_forcing": 1.0, "log_every": 3,
                  "checkpoint_every": None},
        "val": {"every": 3, "data": {"root": str(data["val"]), "clip_len": 4}},
    }
    return from_dict(apply_overrides(raw, list(overrides)))


def diagnose(data: dict[str, Path], stage: VideoStage, cfg) -> dict[str, float]:
    val = build_dataset(cfg.val.data, data["val"], seed=0, train=False)
    info = DistInfo(device=torch.device("cpu"))
    return memory_diagnostics(stage, val, info, crop=None, max_videos=None, autocast=contextlib.nullcontext,
                              step=0, seed=0, policy=cfg.train.recurrence(),
                              grad_frames=cfg.data.clip_len, grad_crop=cfg.data.crop)


def test_token_cosine_on_hand_cases() -> None:
    same = torch.tensor([1.0, 2.0, -1.0]).view(1, 3, 1, 1).expand(2, 3, 2, 3)
    assert torch.allclose(mean_token_cosine(same), torch.ones(2))
    # Two tokens (1, 0) and (1, 1): the one off-diagonal pair has cosine 1/sqrt(2).
    pair = torch.tensor([[1.0, 1.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    assert mean_token_cosine(pair).item() == pytest.approx(1 / math.sqrt(2))
    orthogonal = torch.eye(4).view(1, 4, 2, 2)
    assert mean_token_cosine(orthogonal).item() == pytest.approx(0.0)
    assert mean_token_cosine(torch.ones(1, 3, 1, 1)) is None  # a single cell has no pair


def test_shifted_memory_raises_the_prior_and_nothing_else() -> None:
    g = torch.Generator().manual_seed(0)
    for low, high in ((0.0, 0.5), (0.95, 1.0)):
        plain, shifted = KVMemory(2), ShiftedMemory(2)
        for _ in range(2):
            kv = torch.randn(1, 4, 3, 3, generator=g), torch.randn(1, 5, 3, 3, generator=g)
            illu = low + (high - low) * torch.rand(1, 1, 3, 3, generator=g)
            plain.write(*kv, illu)
            shifted.write(*kv, illu)
        query = torch.randn(1, 4, 3, 3, generator=g)
        f_plain, i_plain = plain.read(query, None, 64)
        f_shift, i_shift = shifted.read(query, None, 64)
        assert torch.equal(f_plain, f_shift)
        assert torch.equal(i_shift, (i_plain + PRIOR_SHIFT).clamp(0, 1))
        if high == 1.0:
            assert torch.equal(i_shift, torch.ones_like(i_shift))  # clamped to 1
        else:
            assert torch.allclose(i_shift - i_plain, torch.full_like(i_plain, PRIOR_SHIFT))


def test_fresh_adapter_is_exactly_memory_free(data: dict[str, Path]) -> None:
    cfg = config(data)
    stage = VideoStage(cfg, torch.device("cpu"))
    diag = diagnose(data, stage, cfg)
    # gamma = 0: the output is the backbone's whatever the memory holds.
    assert diag["diag/stateless_gap"] == 0.0
    assert diag["diag/prior_sensitivity"] == 0.0
    assert 0.0 < diag["diag/token_cosine_ls"] < 1.0 and 0.0 < diag["diag/token_cosine_hs"] < 1.0
    # Reconstruction loss only: nothing reaches the memory side through gamma = 0.
    assert diag["diag/grad_ratio"] == 0.0 and diag["diag/grad_ratio_recon"] == 0.0
    assert diag["diag/grad_norm_igfe"] > 0.0
    assert {f"diag/grad/{m}" for m in MEMORY_MODULES} <= set(diag)
    assert all(p.grad is None for p in stage.model.parameters())
    # With L_SM in the training loss, LEnc and HEnc get its gradient directly; the reconstruction part still none.
    cfg = config(data, "loss.l_sm=1.0")
    diag = diagnose(data, VideoStage(cfg, torch.device("cpu")), cfg)
    assert diag["diag/grad_ratio"] > 0.0 and diag["diag/grad_ratio_recon"] == 0.0
    assert diag["diag/grad/lq_encoder"] > 0.0 and diag["diag/grad/key_projector"] == 0.0


def test_active_igfe_makes_the_output_depend_on_the_memory(data: dict[str, Path]) -> None:
    cfg = config(data)
    stage = VideoStage(cfg, torch.device("cpu"))
    torch.nn.init.normal_(stage.model.igfe.gamma, std=0.5, generator=torch.Generator().manual_seed(1))
    model = stage.model.eval()
    val = build_dataset(cfg.val.data, data["val"], seed=0, train=False)
    lq = val[(0, 0)]["lq"]
    memory, auxes = run_stream(model, lq, "memory")
    stateless, _ = run_stream(model, lq, "stateless")
    shifted, _ = run_stream(model, lq, "shifted")
    assert torch.equal(memory[0], stateless[0]) and torch.equal(memory[0], shifted[0])  # frame 0: empty memory
    assert not torch.equal(memory[1:], stateless[1:]) and not torch.equal(memory[1:], shifted[1:])
    assert [a.memory_frames for a in auxes] == [0, 1, 2, 2]

    rng = torch.get_rng_state()
    diag = diagnose(data, stage, cfg)
    assert torch.equal(torch.get_rng_state(), rng)  # the global random stream is left as it was
    assert diag["diag/prior_sensitivity"] > 0.0
    assert diag["diag/stateless_gap"] != 0.0 and math.isfinite(diag["diag/stateless_gap"])
    assert 0.0 < diag["diag/grad_ratio"] < math.inf
    assert all(diag[f"diag/grad/{m}"] > 0.0 for m in MEMORY_MODULES)
    squares = sum(diag[f"diag/grad/{m}"] ** 2 for m in MEMORY_MODULES)
    assert diag["diag/grad_ratio"] == pytest.approx(math.sqrt(squares))
    assert diag["diag/grad_ratio_recon"] == diag["diag/grad_ratio"]  # the loss is reconstruction only
    assert all(p.grad is None for p in stage.model.parameters())


def test_no_memory_control_has_no_gap_and_no_prior(data: dict[str, Path]) -> None:
    cfg = config(data, "model.adapter_options.memory_frames=0")
    stage = VideoStage(cfg, torch.device("cpu"))
    torch.nn.init.normal_(stage.model.igfe.gamma, std=0.5, generator=torch.Generator().manual_seed(1))
    diag = diagnose(data, stage, cfg)
    assert diag["diag/stateless_gap"] == 0.0  # the stream is stateless by construction
    assert "diag/prior_sensitivity" not in diag and "diag/token_cosine_hs" not in diag  # never read, never written
    assert "diag/token_cosine_ls" in diag and diag["diag/grad_ratio"] > 0.0


def test_diagnostics_do_not_change_training_and_are_logged(tmp_path: Path, data: dict[str, Path]) -> None:
    on = train(config(data, "optim.ema=0.9", "loss.l_sm=1.0", "train.teacher_forcing=0.5"), tmp_path / "on")
    off = train(config(data, "optim.ema=0.9", "loss.l_sm=1.0", "train.teacher_forcing=0.5", "val.diagnostics=false"),
                tmp_path / "off")
    a = ckpt.load_checkpoint(on.run_dir / "checkpoints/last.pt")
    b = ckpt.load_checkpoint(off.run_dir / "checkpoints/last.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["ema"]["shadow"])
    logged = [e for e in read_log(on.run_dir / "log.jsonl") if "diag/grad_ratio" in e]
    assert [e["step"] for e in logged] == [0, 3, 6]
    assert logged[0]["diag/stateless_gap"] == 0.0 and logged[0]["diag/prior_sensitivity"] == 0.0
    assert {"diag/token_cosine_ls", "diag/token_cosine_hs", "time/diag"} <= set(logged[-1])
    assert not any(k.startswith("diag/") for e in read_log(off.run_dir / "log.jsonl") for k in e)


def test_memory_stop_halts_an_unlearned_run_with_a_checkpoint(
    tmp_path: Path, data: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Thresholds no model meets: the first validation at step >= after stops the run.
    cfg = config(data, "train.iterations=12", "val.at_start=false",
                 "val.memory_stop={after: 4, min_gap: 1.0e9, min_sensitivity: 1.0e9}")
    with caplog.at_level(logging.WARNING, logger="tami"):
        result = train(cfg, tmp_path / "run")
    assert not result.finished and result.step == 6 and result.exports == []
    assert result.stop_reason is not None and "memory was not learned" in result.stop_reason
    assert ckpt.load_checkpoint(tmp_path / "run" / "checkpoints/last.pt")["step"] == 6
    assert any("val.memory_stop" in r.getMessage() and "log.jsonl" in r.getMessage() for r in caplog.records)
    assert [e["step"] for e in read_log(tmp_path / "run" / "log.jsonl") if "diag/stateless_gap" in e] == [3, 6]

    # Met thresholds (a gap and a sensitivity are never below 0): the run finishes.
    cfg = config(data, "val.at_start=false", "val.memory_stop={after: 0, min_gap: 0.0, min_sensitivity: 0.0}")
    result = train(cfg, tmp_path / "met")
    assert result.finished and result.stop_reason is None


def test_diagnostics_config_errors(data: dict[str, Path]) -> None:
    with pytest.raises(InputError, match="val.memory_stop needs"):
        config(data, "val.diagnostics=false", "val.memory_stop={}")
    with pytest.raises(InputError, match="val.memory_stop needs"):
        config(data, "stage=image", "val.memory_stop={}")
    with pytest.raises(InputError, match="at least 2 frames"):
        config(data, "val.data.clip_len=1")
    assert config(data, "val.memory_stop={}").val.memory_stop.after == 3000
    assert config(data, "stage=image", "val.data.clip_len=1").val.diagnostics  # ignored in stage image
