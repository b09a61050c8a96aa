"""tami.train end to end on tiny synthetic clips: both stages, exact resume, crash safety, torchrun, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import torch

from tami import backbones
from tami.cli.main import main
from tami.data.synthetic import generate_dataset
from tami.errors import TamiError
from tami.train import checkpoint as ckpt
from tami.train import from_dict, train
from tami.train.config import ModelConfig, apply_overrides
from tami.train.logs import read_log
from tami.train.stages import build_backbone

SMALL = {"n_feat": 8, "num_blocks": [1, 1, 1]}
ADAPTER = {"memory_frames": 2}




@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_data")
    out = {
        "train": generate_dataset(root / "train", videos=4, frames=6, size=(40, 40), seed=1, sources="builtin:train",
                                  flicker=0.1),
        "val": generate_dataset(root / "val", videos=2, frames=4, size=(40, 40), seed=5, sources="builtin:train"),
    }
    torch.manual_seed(3)
    out["backbone"] = backbones.save(backbones.create("retinexformer", **SMALL), root / "backbone.safetensors")
    return out


def video_config(data: dict[str, Path], *overrides: str):
    raw = {
        "stage": "video",
        "device": "cpu",
        "model": {"backbone": "retinexformer", "backbone_weights": str(data["backbone"]), "adapter_options": ADAPTER},
        "data": {"root": str(data["train"]), "clip_len": 3, "crop": 32, "flip": True},
        "loss": {"charbonnier": 1.0, "l_sm": 1.0, "l_i3a": 1.0, "l_im": 1.0},
        "optim": {"lr": 3e-3, "warmup": 2},
        "train": {"iterations": 10, "batch_size": 2, "teacher_forcing": 0.5, "log_every": 5, "checkpoint_every": 4},
        "val": {"every": 5, "data": {"root": str(data["val"]), "clip_len": 4}},
    }
    return from_dict(apply_overrides(raw, list(overrides)))


def test_image_stage_trains_on_generated_clips_and_exports_a_backbone(tmp_path: Path) -> None:
    config = from_dict({
        "stage": "image",
        "device": "cpu",
        "model": {"backbone": "retinexformer", "backbone_options": SMALL},
        "data": {"synthetic": {"videos": 4, "frames": 4, "size": [40, 40], "seed": 1}, "clip_len": 2, "crop": 32},
        "loss": {"charbonnier": 1.0},
        "optim": {"lr": 3e-3, "warmup": 3},
        "train": {"iterations": 30, "batch_size": 2, "log_every": 10},
        "val": {"every": 15, "metrics": ["psnr", "mabd"], "best": "mabd",
                "data": {"synthetic": {"videos": 1, "frames": 3, "size": [40, 40], "seed": 9}, "clip_len": 3}},
    })
    run = tmp_path / "run"
    result = train(config, run)
    assert result.finished and result.step == 30
    losses = [e["loss/total"] for e in read_log(run / "log.jsonl") if "loss/total" in e]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    entries = read_log(run / "log.jsonl")
    assert all(k in ("step", "lr", "grad_norm") or k.split("/")[0] in ("loss", "metric", "time") for e in entries for k in e)
    assert [e["step"] for e in entries if "metric/psnr" in e] == [0, 15, 30]  # 0: before training
    assert result.best is not None and result.best["metric"] == "mabd"
    assert (run / "data" / "train" / "synth.json").is_file()
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "checkpoints" / "best.pt").is_file()
    # The export is a tami backbone file; a stage-video config can name the run folder as its backbone.
    assert result.exports == [run / "export" / "backbone.safetensors"]
    loaded = build_backbone(ModelConfig(backbone="retinexformer", backbone_weights=str(run)))
    trained = result.model.state_dict()
    assert all(torch.equal(v, trained[k]) for k, v in loaded.state_dict().items())


def test_video_stage_trains_only_the_adapter(tmp_path: Path, data: dict[str, Path]) -> None:
    from tami.adapter import TAMI
    from tami.adapter.io import load_adapter
    from tami.losses import build_loss

    config = video_config(data, "train.iterations=15", "val.every=null", "train.checkpoint_every=null")
    frozen = backbones.load(data["backbone"]).state_dict()
    result = train(config, tmp_path / "run")
    model = result.model
    # Every backbone tensor is bitwise unchanged; the adapter moved.
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in frozen.items())
    fresh = TAMI.from_preset(backbones.load(data["backbone"]), **ADAPTER)
    moved = [k for k, v in model.adapter_state_dict().items() if not torch.equal(v, fresh.adapter_state_dict()[k])]
    assert moved
    # The trained adapter lowers the loss on a fixed batch (the fresh adapter is the backbone's identity).
    from tami.data.datasets import build_dataset

    clips = build_dataset("generic", data["train"], clip_len=3, crop=32, seed=0)
    lq = torch.stack([clips[(v, 0)]["lq"] for v in range(4)])
    gt = torch.stack([clips[(v, 0)]["gt"] for v in range(4)])
    loss = build_loss(dict(config.loss))
    with torch.no_grad():
        teach = torch.ones(lq.shape[:2], dtype=torch.bool)
        out, aux = fresh.eval().forward_clip(lq, gt, teacher_mask=teach, loss_terms=True)
        before = loss(out, gt, aux)[0]
        out, aux = model.eval().forward_clip(lq, gt, teacher_mask=teach, loss_terms=True)
        after = loss(out, gt, aux)[0]
    assert after < before
    # Exports: the adapter file loads back onto the same frozen backbone.
    adapter_file, model_file = result.exports
    assert model_file.is_file()
    reloaded = load_adapter(TAMI.from_preset(backbones.load(data["backbone"]), **ADAPTER), adapter_file)
    assert all(torch.equal(v, model.adapter_state_dict()[k]) for k, v in reloaded.adapter_state_dict().items())


class _RecordedProgress:
    """A :class:`tami.train.logs.TrainProgress` that records what the trainer reports."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, total: int, done: int) -> None:
        self.events.append(("start", total, done))

    def update(self, values: dict[str, float] | None) -> None:
        self.events.append(("update",))

    def write(self, text: str) -> None:
        self.events.append(("write", text))

    def close(self) -> None:
        self.events.append(("close",))


def test_resume_is_bitwise_exact_even_after_a_crash_while_checkpointing(
    tmp_path: Path, data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = video_config(data, "optim.ema=0.9", "train.detach_every=2")
    straight = tmp_path / "straight"
    train(config, straight)

    # The interrupted run loads with prefetching worker processes: the same clips must arrive in the same order.
    config = video_config(data, "optim.ema=0.9", "train.detach_every=2", "train.workers=2")
    run = tmp_path / "interrupted"
    stopped = train(config, run, stop_at=5)
    assert not stopped.finished and stopped.exports == [] and ckpt.load_checkpoint(run / "checkpoints/last.pt")["step"] == 5

    real_write = ckpt._write

    def crash_at_step_8(state, stream):
        if state["step"] == 8:
            stream.write(b"PK\x03\x04 a partial checkpoint")
            raise KeyboardInterrupt  # the process dies in the middle of writing last.pt
        real_write(state, stream)

    monkeypatch.setattr(ckpt, "_write", crash_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        train(config, run, resume="auto")
    monkeypatch.setattr(ckpt, "_write", real_write)
    assert ckpt.load_checkpoint(run / "checkpoints/last.pt")["step"] == 5  # the previous one, intact

    with pytest.raises(TamiError, match="already holds a run"):
        train(config, run)
    progress = _RecordedProgress()
    resumed = train(config, run, resume="auto", progress=progress)
    assert resumed.finished and resumed.step == 10
    # The library reports progress through the callback only (the command line draws the bar).
    assert progress.events[0] == ("start", 10, 5) and progress.events[-1] == ("close",)
    assert sum(e[0] == "update" for e in progress.events) == 5

    a = ckpt.load_checkpoint(straight / "checkpoints/last.pt")
    b = ckpt.load_checkpoint(run / "checkpoints/last.pt")
    for part in ("model",):
        assert a[part].keys() == b[part].keys()
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["ema"]["shadow"])
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"]) for i in sa)
    assert a["best"] == b["best"]

    def losses(path: Path) -> list[tuple[int, float]]:
        return [(e["step"], e["loss/total"]) for e in read_log(path / "log.jsonl") if "loss/total" in e]

    assert losses(straight) == losses(run)


def test_sigterm_stops_after_the_current_iteration_with_a_checkpoint(
    tmp_path: Path, data: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tami.train.stages import ImageStage

    original = ImageStage.compute_loss

    def preempted_at_step_3(self, lq, gt, *, step, **kwargs):
        if step == 2:  # 0-based: the third iteration
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, lq, gt, step=step, **kwargs)

    monkeypatch.setattr(ImageStage, "compute_loss", preempted_at_step_3)
    before = signal.getsignal(signal.SIGTERM)
    config = from_dict({
        "stage": "image", "device": "cpu", "model": {"backbone": "retinexformer", "backbone_options": SMALL},
        "data": {"root": str(data["train"]), "clip_len": 1, "crop": 32}, "val": {"data": None},
        "train": {"iterations": 50, "batch_size": 2, "log_every": 10, "checkpoint_every": None},
    })
    result = train(config, tmp_path / "run")
    assert not result.finished and result.step == 3 and result.exports == []
    assert ckpt.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is before


def test_synthetic_data_is_reused_only_when_its_settings_match(data: dict[str, Path]) -> None:
    from tami.errors import InputError
    from tami.train.config import DataConfig, SyntheticConfig
    from tami.train.loader import prepare_root
    from tami.train.distributed import DistInfo

    same = SyntheticConfig(videos=4, frames=6, size=(40, 40), seed=1, sources="builtin:train", flicker=0.1)
    root = prepare_root(DataConfig(root=str(data["train"]), synthetic=same), "unused", "train", DistInfo())
    assert root == data["train"]
    other = SyntheticConfig(videos=5, frames=6, size=(40, 40), seed=1, sources="builtin:train", flicker=0.1)
    with pytest.raises(InputError, match="videos: 4 there vs 5 asked"):
        prepare_root(DataConfig(root=str(data["train"]), synthetic=other), "unused", "train", DistInfo())


def test_batch_stream_resumes_at_the_consumed_batch_despite_prefetching(data: dict[str, Path]) -> None:
    from tami.data.datasets import ClipSampler, build_dataset
    from tami.train.loader import BatchStream
    from tami.train.distributed import DistInfo

    clips = build_dataset("generic", data["train"], clip_len=2, crop=8, flip=True, seed=0)

    def stream(workers: int) -> BatchStream:
        return BatchStream(clips, ClipSampler(clips, seed=3), batch_size=1, info=DistInfo(), workers=workers)

    def take(s: BatchStream, n: int) -> list[tuple[str, int, float]]:
        return [(b["video"][0], b["start"][0], float(b["lq"].sum())) for b in (next(s) for _ in range(n))]

    reference = take(stream(0), 10)  # 4 videos per epoch: crosses two epoch boundaries
    prefetching = stream(2)
    first = take(prefetching, 3)
    state = prefetching.state_dict()
    prefetching.close()  # workers had planned batches ahead; the position is where consumption stopped
    assert first + take(prefetching, 3) == reference[:6]
    prefetching.close()
    resumed = stream(2)
    resumed.load_state_dict(state)
    assert take(resumed, 7) == reference[3:]
    resumed.close()


WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from tami.train import from_dict, train
    config = from_dict(json.loads(sys.argv[1]))
    result = train(config, sys.argv[2])
    rank = int(os.environ.get("RANK", "0"))
    torch.save({k: v.detach().cpu() for k, v in result.model.adapter_state_dict().items()},
               os.path.join(sys.argv[2], f"rank{rank}.pt"))
    """
)


def test_torchrun_two_processes_match_one_process_with_the_global_batch(tmp_path: Path, data: dict[str, Path]) -> None:
    from tami.train.config import to_dict

    # Teacher forcing 1.0 makes the per-sample draws irrelevant, so both layouts compute the same thing; the loss
    # terms are means over samples (L_IM's squared global means and L_SM's random frame draw are left out).
    common = ("train.iterations=4", "train.teacher_forcing=1.0", "val.data=null", "train.checkpoint_every=null",
              "optim.name=adam", "optim.lr=1e-3", "loss={charbonnier: 1.0, l_i3a: 1.0}")
    single = train(video_config(data, *common, "train.batch_size=2"), tmp_path / "single")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    config = json.dumps(to_dict(video_config(data, *common, "train.batch_size=1")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), config,
         str(tmp_path / "ddp")],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(r0[k], r1[k]) for k in r0)
    ref = single.model.adapter_state_dict()
    assert max(float((r0[k] - ref[k]).abs().max()) for k in r0) < 1e-5
    assert _adapter_moved(ref, data)


def _adapter_moved(state: dict[str, torch.Tensor], data: dict[str, Path]) -> bool:
    from tami.adapter import TAMI

    fresh = TAMI.from_preset(backbones.load(data["backbone"]), **ADAPTER).adapter_state_dict()
    return any(not torch.equal(v, fresh[k]) for k, v in state.items())


def test_cli_records_the_run_and_refuses_to_overwrite_it(
    tmp_path: Path, data: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config_file = tmp_path / "recipe.yaml"
    config_file.write_text(json.dumps({
        "stage": "video", "device": "cpu",
        "model": {"backbone": "retinexformer", "backbone_weights": str(data["backbone"]), "adapter_options": ADAPTER},
        "data": {"root": str(data["train"]), "clip_len": 2, "crop": 32},
        "loss": {"charbonnier": 1.0},
        "train": {"iterations": 5, "batch_size": 2, "log_every": 1},
        "val": {"data": None},
    }))
    run = tmp_path / "run"
    assert main(["train", str(config_file), "--set", "train.iterations=2", "-o", str(run)]) == 0
    assert "Trained 2 iterations" in capsys.readouterr().out
    recorded = (run / "config.yaml").read_text()
    assert "command:" in recorded and "--set train.iterations=2" in recorded and "iterations: 2" in recorded
    assert len((run / "commands.txt").read_text().splitlines()) == 1
    assert main(["-q", "train", str(config_file), "-o", str(run)]) == 2
    assert f"continue it with: tami train {run} --resume auto" in capsys.readouterr().err
    # -q prints nothing on success, not even the summary.
    assert main(["-q", "train", str(config_file), "--set", "train.iterations=3", "--resume", "auto", "-o", str(run)]) == 0
    assert capsys.readouterr() == ("", "")
    assert [e["step"] for e in read_log(run / "log.jsonl")] == [1, 2, 3]
    assert main(["-q", "train", str(config_file), "--set", "optim.lrr=1", "-o", str(tmp_path / "x")]) == 2
    assert "did you mean lr" in capsys.readouterr().err
