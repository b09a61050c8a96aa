"""tami.enhance and ``tami enhance``: same numbers as the model, outputs mirroring inputs, scene cuts, flat memory,
sharding, clear errors and no partial outputs. A tiny model is built here; the bundled weights are not needed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from silent_audio import write_silent_aac

from tami.adapter import TAMI
from tami.adapter.io import load_model, save_adapter, save_model
from tami.backbones import create, crop_to, pad_to_multiple
from tami.cli.main import main
from tami.data.video import open_video, open_writer
from tami.bundled import load_enhancement_model
from tami.enhance import EnhanceOptions, Enhancer
from tami.scene_cuts import SceneCutDetector
from tami.errors import CheckpointError, InputError

# A small adapter on a small Retinexformer: the code paths of the real model at a fraction of the cost.
_ADAPTER = dict(key_dim=8, value_dim=8, hidden_dim=8, illu_dim=8, igfe_blocks=1, igfe_dim=16, heads=2, igfe_pool=2,
                memory_scale=0.5)
# With random weights the earlier frames change a frame by about 1e-4: far above float noise (1e-7), below this.
_MEMORY_EFFECT = 2e-5



def _tiny_model(seed: int = 0, **backbone: object) -> TAMI:
    torch.manual_seed(seed)
    bb = create("retinexformer", n_feat=8, num_blocks=[1, 1, 1], **backbone)
    model = TAMI.from_preset(bb, **_ADAPTER)
    with torch.no_grad():  # gamma starts at 0 (identity adapter); make the adapter matter
        model.igfe.gamma.normal_(0.0, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(_tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def _frames(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Dark moving texture with per-frame exposure flicker, float32 (H, W, 3) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    out = []
    for t in range(count):
        luma = 0.5 + 0.3 * np.sin((xx + 2 * t) / 4.0) * np.cos((yy - t) / 5.0)
        tint = np.stack([np.ones_like(luma), 0.9 + 0.1 * np.sin(yy / 9.0), 0.8 + 0.2 * np.cos(xx / 7.0)], -1)
        out.append(np.clip(0.2 * rng.uniform(0.8, 1.2) * luma[..., None] * tint, 0, 1).astype(np.float32))
    return out


def _write_video(path: Path, frames: list[np.ndarray], fps: float, audio: Path | None = None) -> Path:
    with open_writer(path, fps=fps, audio_from=audio) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _decoded(path: Path) -> list[np.ndarray]:
    return list(open_video(path))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(1e-12, np.mean((a.astype(np.float64) - b) ** 2))))


def _everything(folder: Path) -> list[str]:
    """Every entry below ``folder``, hidden temporary files included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _cpu(**options: object) -> EnhanceOptions:
    return EnhanceOptions(device="cpu", **options)


# -- numbers ------------------------------------------------------------------------------------------------------

def test_enhancer_equals_stepping_the_model(model_file: Path) -> None:
    frames = _frames(5, 20, 28)
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu(scene_cut=None))
    got = list(enhancer.enhance_frames(frames))
    model = load_model(model_file)
    state = model.init_state()
    with torch.inference_mode():
        for frame, out in zip(frames, got):
            x = torch.from_numpy(frame).permute(2, 0, 1)[None]
            ref, state, _ = model.step(x, state)
            assert out.shape == frame.shape and out.dtype == np.float32
            np.testing.assert_allclose(out, ref[0].clamp(0, 1).permute(1, 2, 0).numpy(), atol=1e-6)
    # The memory is used: a later frame depends on earlier ones (random weights: a small but real effect).
    alone = list(Enhancer(load_enhancement_model(model_file), _cpu(scene_cut=None)).enhance_frames(frames[3:4]))[0]
    assert np.abs(alone - got[3]).max() > _MEMORY_EFFECT
    # A second video starts from an empty memory: same first outputs as the first run.
    np.testing.assert_array_equal(list(enhancer.enhance_frames(frames[:2]))[1], got[1])


def test_backbone_only_is_the_backbone_per_frame(model_file: Path) -> None:
    frames = _frames(3, 21, 30)  # not a multiple of 4: padded and cropped back
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu(backbone_only=True))
    got = list(enhancer.enhance_frames(frames))
    backbone = load_model(model_file).backbone
    with torch.inference_mode():
        for frame, out in zip(frames, got):
            x, size = pad_to_multiple(torch.from_numpy(frame).permute(2, 0, 1)[None], backbone.multiple_of)
            ref = crop_to(backbone(x), size)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            np.testing.assert_allclose(out, ref, atol=1e-6)
    assert enhancer.state is None
    with_adapter = list(Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames(frames))
    assert np.abs(with_adapter[2] - got[2]).max() > 1e-2  # the adapter is not the identity here


def test_memory_option_bounds_the_memory(model_file: Path) -> None:
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu(memory=2, scene_cut=None))
    frames = _frames(6, 16, 16)
    sizes = []
    for frame in frames:
        enhancer.step(frame)
        sizes.append((len(enhancer.state.memory), enhancer.state.memory.nbytes()))
    assert [n for n, _ in sizes] == [1, 2, 2, 2, 2, 2]
    assert len({b for _, b in sizes}) == 1  # buffers allocated once, at capacity 2
    assert enhancer.state.memory.keys.shape[1] == 2
    assert enhancer.model.config.memory_frames == load_enhancement_model(model_file).config.memory_frames != 2
    with pytest.raises(InputError, match="--memory must be 0"):
        Enhancer(load_enhancement_model(model_file), _cpu(memory=-1))


def test_memory_zero_enhances_every_frame_as_if_it_were_the_first(model_file: Path) -> None:
    frames = _frames(4, 16, 16)
    stateless = list(Enhancer(load_enhancement_model(model_file), _cpu(memory=0, scene_cut=None))
                     .enhance_frames(frames))
    first_frame = [next(Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames([f])) for f in frames]
    np.testing.assert_array_equal(np.stack(stateless), np.stack(first_frame))
    streamed = list(Enhancer(load_enhancement_model(model_file), _cpu(scene_cut=None)).enhance_frames(frames))
    assert np.abs(streamed[3] - stateless[3]).max() > 1e-6  # with memory, later frames do see the earlier ones


def test_max_side_runs_small_and_returns_the_input_size(model_file: Path) -> None:
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu(max_side=32))
    seen = []
    step = enhancer.model.step

    def spy(x, state, **options):  # noqa: ANN001, ANN003, ANN202
        seen.append(tuple(x.shape[-2:]))
        return step(x, state, **options)

    enhancer.model.step = spy
    frame = _frames(1, 41, 67)[0]
    out = enhancer.step(frame)
    assert seen == [(20, 32)] and out.shape == frame.shape
    assert 0.0 <= out.min() and out.max() <= 1.0
    with pytest.raises(InputError, match="max-side"):
        Enhancer(load_enhancement_model(model_file), _cpu(max_side=2))


# -- outputs mirror inputs ----------------------------------------------------------------------------------------

def test_video_to_video_keeps_fps_audio_size_and_numbers(tmp_path: Path, model_file: Path, av) -> None:
    frames = _frames(6, 24, 33)  # odd width: written as yuv444p at the exact size
    source = _write_video(tmp_path / "dark.mp4", frames, fps=12.5, audio=write_silent_aac(tmp_path / "sound.m4a"))
    assert main(["-q", "enhance", str(source), "--model", str(model_file), "--compare"]) == 0
    out, side = tmp_path / "dark_tami.mp4", tmp_path / "dark_tami_compare.mp4"
    with av.open(str(out)) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
        assert container.streams.video[0].average_rate == 12.5
    decoded_in, decoded_out, decoded_side = _decoded(source), _decoded(out), _decoded(side)
    assert open_video(out).info.fps == pytest.approx(12.5)
    assert len(decoded_out) == len(decoded_side) == 6 and decoded_out[0].shape == (24, 33, 3)
    expected = list(Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames(decoded_in))
    # H.264 at CRF 18 on random-weight textures: a sanity bound; exact numbers are checked on png outputs.
    assert min(_psnr(a, b) for a, b in zip(decoded_out, expected)) > 32
    assert decoded_side[0].shape == (24, 66, 3)
    assert _psnr(decoded_side[2][:, :33], decoded_in[2]) > 35 and _psnr(decoded_side[2][:, 33:], expected[2]) > 32


def test_folder_to_folder_keeps_frame_names(tmp_path: Path, model_file: Path) -> None:
    frames = _frames(3, 19, 27)
    folder = tmp_path / "clip"
    folder.mkdir()
    names = ["f2", "f10", "f1"]  # natural order: f1, f2, f10
    for name, frame in zip(names, frames):
        cv2.imwrite(str(folder / f"{name}.jpg"), np.rint(frame[:, :, ::-1] * 255).astype(np.uint8))
    assert main(["-q", "enhance", str(folder), "-o", str(tmp_path / "out"), "--model", str(model_file)]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f1.png", "f10.png", "f2.png"]
    expected = Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames(open_video(folder))
    for name, ref in zip(["f1", "f2", "f10"], expected):
        got = open_video(tmp_path / "out" / f"{name}.png")
        np.testing.assert_allclose(next(iter(got)), ref, atol=0.5 / 255 + 1e-6)


@pytest.mark.parametrize("suffix", [".png", ".npy"])
def test_image_to_image_with_compare(tmp_path: Path, model_file: Path, suffix: str) -> None:
    frame = _frames(1, 17, 23)[0]
    source = tmp_path / f"photo{suffix}"
    if suffix == ".npy":
        np.save(source, frame)
    else:
        cv2.imwrite(str(source), np.rint(frame[:, :, ::-1] * 255).astype(np.uint8))
    assert main(["-q", "enhance", str(source), "--model", str(model_file), "--compare", "--max-side", "16"]) == 0
    out, side = tmp_path / f"photo_tami{suffix}", tmp_path / f"photo_tami_compare{suffix}"
    enhanced, pair = next(iter(open_video(out))), next(iter(open_video(side)))
    assert enhanced.shape == (17, 23, 3) and pair.shape == (17, 46, 3)
    np.testing.assert_allclose(pair[:, :23], next(iter(open_video(source))), atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(pair[:, 23:], enhanced, atol=0.5 / 255 + 1e-6)


def test_sixteen_bit_input_stays_sixteen_bit_where_the_output_can_hold_it(tmp_path: Path, model_file: Path) -> None:
    frames = _frames(2, 17, 23)
    deep = [np.rint(f[:, :, ::-1] * 65535).astype(np.uint16) for f in frames]  # BGR for OpenCV
    cv2.imwrite(str(tmp_path / "photo.png"), deep[0])
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(deep):
        cv2.imwrite(str(folder / f"{i}.tif"), frame)
    common = ["--model", str(model_file)]
    assert main(["-q", "enhance", str(tmp_path / "photo.png"), *common]) == 0
    assert main(["-q", "enhance", str(tmp_path / "photo.png"), "-o", str(tmp_path / "photo8.jpg"), *common]) == 0
    assert main(["-q", "enhance", str(folder), "-o", str(tmp_path / "out"), *common]) == 0
    assert main(["-q", "enhance", str(folder), "-o", str(tmp_path / "out.mp4"), *common]) == 0

    expected = list(Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames(open_video(folder)))
    image = cv2.imread(str(tmp_path / "photo_tami.png"), cv2.IMREAD_UNCHANGED)
    assert image.dtype == np.uint16
    np.testing.assert_allclose(image[:, :, ::-1] / 65535.0, expected[0], atol=0.5 / 65535 + 1e-6)
    assert cv2.imread(str(tmp_path / "photo8.jpg"), cv2.IMREAD_UNCHANGED).dtype == np.uint8
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["0.png", "1.png"]
    for path, ref in zip(written, expected):
        frame = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert frame.dtype == np.uint16
        np.testing.assert_allclose(frame[:, :, ::-1] / 65535.0, ref, atol=0.5 / 65535 + 1e-6)
    assert sum(1 for _ in open_video(tmp_path / "out.mp4")) == 2  # video files are 8-bit


# -- scene cuts ---------------------------------------------------------------------------------------------------

def _dark_views(count: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """The built-in photographs, 60x80, darkened to 15 %, with read noise (one view each)."""
    from tami.data.synthetic import builtin_images

    pytest.importorskip("skimage")  # the photographs ship with scikit-image (the synth extra)

    rng = np.random.default_rng(seed)
    out = []
    for name, image in builtin_images()[:count]:
        small = cv2.resize(image, (80, 60), interpolation=cv2.INTER_AREA) * 0.15
        out.append((name, np.clip(small + rng.normal(0, 0.005, small.shape), 0, 1).astype(np.float32)))
    return out


def test_scene_cut_fires_on_a_new_scene_not_on_flicker() -> None:
    detector = SceneCutDetector(EnhanceOptions.scene_cut)
    views = _dark_views(9, seed=0)
    assert len(views) >= 2
    rng = np.random.default_rng(1)
    for name, view in views:
        flicker = [np.clip(view * rng.uniform(0.7, 1.3), 0, 1) for _ in range(8)]
        detector.reset()
        assert not any(detector.is_cut(f) for f in flicker), name
    for a, view_a in views:
        for b, view_b in views:
            if a != b:
                assert detector.distance(view_a, view_b) > detector.threshold, (a, b)


def test_scene_cut_resets_the_memory_once(model_file: Path) -> None:
    (_, first), (_, second) = _dark_views(2, seed=2)
    rng = np.random.default_rng(3)
    clip = [np.clip(img * rng.uniform(0.7, 1.3), 0, 1).astype(np.float32) for img in [first] * 4 + [second] * 4]
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu())
    got = list(enhancer.enhance_frames(clip))
    assert enhancer.scene_cuts == 1
    fresh = list(Enhancer(load_enhancement_model(model_file), _cpu()).enhance_frames(clip[4:]))
    np.testing.assert_allclose(got[4:], fresh, atol=1e-6)  # after the cut: as if the video started there
    no_cut = list(Enhancer(load_enhancement_model(model_file), _cpu(scene_cut=None)).enhance_frames(clip))
    assert np.abs(no_cut[4] - got[4]).max() > _MEMORY_EFFECT
    with pytest.raises(InputError, match="scene-cut threshold"):
        Enhancer(load_enhancement_model(model_file), _cpu(scene_cut=1.5))


# -- collections ----------------------------------------------------------------------------------------------------

def test_shard_and_skip_existing_select_the_right_inputs(tmp_path: Path, model_file: Path) -> None:
    inputs = []
    for i, frame in enumerate(_frames(5, 8, 8)):
        path = tmp_path / f"in{i}.png"
        cv2.imwrite(str(path), np.rint(frame * 255).astype(np.uint8))
        inputs.append(str(path))
    out = tmp_path / "out"
    common = ["-q", "enhance", *reversed(inputs), "-o", str(out), "--model", str(model_file)]
    assert main([*common, "--shard", "1/2"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in1.png", "in3.png"]
    (out / "in0.png").write_bytes(b"kept")
    assert main([*common, "--shard", "0/2", "--skip-existing"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["in0.png", "in1.png", "in2.png", "in3.png", "in4.png"]
    assert (out / "in0.png").read_bytes() == b"kept"
    stamp = (out / "in1.png").stat().st_mtime_ns
    assert main([*common, "--skip-existing"]) == 0
    assert (out / "in1.png").stat().st_mtime_ns == stamp


# -- flat memory over a long video --------------------------------------------------------------------------------

def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS is read from /proc (Linux only)")
def test_thousand_frames_stream_with_flat_memory(tmp_path: Path, model_file: Path) -> None:
    # 32x32 keeps this within the test budget; benchmarks/enhance.py runs the same at 320x240.
    base = _frames(1, 32, 32)[0]
    source = _write_video(tmp_path / "long.mp4", [np.roll(base, t, axis=1) for t in range(1000)], fps=24)
    rss: list[int] = []
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu())
    stats = enhancer.enhance_video(source, tmp_path / "long_tami.mp4", on_frame=lambda _: rss.append(_rss_kib()))
    assert stats.frames == len(rss) == 1000
    # Largest reading over frames 51-100 vs over the last 50: single readings jitter by whatever freed buffer the
    # allocator happens to keep (see benchmarks/enhance.py); growth shows in the envelope.
    early, late = max(rss[50:100]), max(rss[-50:])
    assert abs(late - early) <= 0.05 * early
    assert late - early < 4096  # KiB: keeping even one 32x32 float frame per step would add 11 MiB
    written = open_video(tmp_path / "long_tami.mp4")
    assert written.info.fps == pytest.approx(24) and sum(1 for _ in written) == 1000


# -- errors: one line each, nothing partial left ------------------------------------------------------------------

def _run_error(argv: list[str], capsys: pytest.CaptureFixture[str], code: int = 1) -> str:
    capsys.readouterr()
    assert main(["-q", "enhance", *argv]) == code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_errors_are_one_line_and_leave_no_output(tmp_path: Path, model_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    good = _write_video(tmp_path / "good.mp4", _frames(8, 32, 32), fps=10)
    data = good.read_bytes()
    (tmp_path / "trunc.mp4").write_bytes(data[: len(data) // 2])  # the header claims 8 frames; fewer decode
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video" * 50)
    (tmp_path / "a_file").write_text("x")
    out = tmp_path / "out"
    out.mkdir()
    model = ["--model", str(model_file)]
    cases = [
        (["trunc.mp4", "-o", "out/o.mp4", "--compare", "--strict"], "truncated"),
        (["corrupt.mp4", "-o", "out/o.mp4"], "corrupt"),
        (["good.mp4", "-o", "a_file/o.mp4"], "cannot write"),
        (["good.mp4", "-o", "out/o.mp4", "--precision", "fp16"], "not supported on the CPU"),
        (["good.mp4", "-o", "out/o.mp4", "--shard", "2/2"], "--shard"),  # usage errors: exit code 2
        (["good.mp4", "-o", "out/o.mp4", "--shard", "one/two"], "--shard"),
    ]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for argv, words in cases:
            assert words in _run_error([*argv, *model], capsys, code=2 if "--shard" in argv else 1)
            assert _everything(out) == []
        assert (tmp_path / "a_file").read_text() == "x"
    finally:
        os.chdir(cwd)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder_is_one_error(tmp_path: Path, model_file: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    good = _write_video(tmp_path / "good.mp4", _frames(2, 16, 16), fps=10)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert "cannot write" in _run_error([str(good), "-o", str(locked / "o.mp4"), "--model", str(model_file)],
                                            capsys)
        assert _everything(locked) == []
    finally:
        locked.chmod(0o755)


def test_bad_model_files_are_one_error(tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = _write_video(tmp_path / "good.mp4", _frames(2, 16, 16), fps=10)
    with safe_open(str(model_file), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, str(tmp_path / "urwkv.safetensors"), metadata={**meta, "backbone_arch": "urwkv",
                                                                       "backbone_config": "{}"})
    save_adapter(_tiny_model(), tmp_path / "adapter.safetensors")
    (tmp_path / "notes.safetensors").write_text("not weights")
    out = tmp_path / "out"
    out.mkdir()
    cases = {"urwkv.safetensors": "do not fit urwkv", "adapter.safetensors": "is an adapter alone, without its backbone",
             "notes.safetensors": "cannot read", "missing.safetensors": "does not exist", "nope/x": "does not exist"}
    for name, words in cases.items():
        line = _run_error([str(good), "-o", str(out / "o.mp4"), "--model", str(tmp_path / name)], capsys)
        assert words in line, line
        assert _everything(out) == []
    assert "no bundled model 'nope'" in _run_error([str(good), "-o", str(out / "o.mp4"), "--model", "nope"], capsys)
    # Same arch, other configuration: refused before any frame is written.
    config = json.loads(meta["backbone_config"])
    save_file(tensors, str(tmp_path / "wide.safetensors"),
              metadata={**meta, "backbone_config": json.dumps({**config, "n_feat": 16})})
    with pytest.raises(CheckpointError, match="do not fit"):
        load_enhancement_model(tmp_path / "wide.safetensors")


def test_ctrl_c_leaves_no_output(tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    source = _write_video(tmp_path / "in.mp4", _frames(6, 16, 16), fps=10)
    out = tmp_path / "out"
    out.mkdir()
    enhancer = Enhancer(load_enhancement_model(model_file), _cpu())

    def interrupt(done: int) -> None:
        if done == 3:
            raise KeyboardInterrupt

    for target in ("o.mp4", "frames"):
        with pytest.raises(KeyboardInterrupt):
            enhancer.enhance_video(source, out / target, compare=out / f"c_{target}", on_frame=interrupt)
        assert _everything(out) == []
    calls = []

    def step(self: Enhancer, frame: np.ndarray) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return frame

    monkeypatch.setattr(Enhancer, "step", step)
    capsys.readouterr()
    assert main(["-q", "enhance", str(source), "-o", str(out / "o.mp4"), "--model", str(model_file)]) == 1
    assert "Stopped" in capsys.readouterr().err and _everything(out) == []
