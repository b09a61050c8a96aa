"""tami.data.synthetic: determinism, exposure, the a*I + b noise model, motion that follows the path, datasets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.data import synthetic
from tami.data.datasets import build_dataset
from tami.data.synthetic import (BUILTIN_SPLITS, builtin_images, builtin_names, generate_dataset, srgb_to_linear,
                                 synthesize, synthesize_clip)
from tami.errors import InputError


def texture(height: int = 240, width: int = 320, seed: int = 0) -> np.ndarray:
    """Smooth random colour texture (well-conditioned for flow and phase correlation)."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0.1, 0.9, (height // 8, width // 8, 3)).astype(np.float32)
    return cv2.GaussianBlur(cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)


def test_same_seed_same_video_and_different_seed_differs() -> None:
    image = texture()
    a = synthesize_clip(image, frames=4, size=(48, 64), seed=5, flicker=0.1, color_cast=0.1)
    b = synthesize_clip(image, frames=4, size=(48, 64), seed=5, flicker=0.1, color_cast=0.1)
    c = synthesize_clip(image, frames=4, size=(48, 64), seed=6, flicker=0.1, color_cast=0.1)
    assert a[0].shape == a[1].shape == (4, 48, 64, 3) and a[0].dtype == np.float32
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert np.array_equal(np.rint(a[0] * 255) / 255, a[0])  # 8-bit levels


def test_mean_brightness_follows_the_exposure_range() -> None:
    image = texture()
    ratios = []
    for seed in range(6):
        clip = synthesize(image, frames=2, size=(64, 80), seed=seed, preset="v1", shot_noise=(1e-4, 1e-4))
        ratio = srgb_to_linear(clip.lq).mean() / srgb_to_linear(clip.gt).mean()
        assert ratio == pytest.approx(clip.exposures[0], rel=0.05)
        ratios.append(ratio)
    assert 0.03 * 0.95 <= min(ratios) and max(ratios) <= 0.3 * 1.05 and max(ratios) > 2 * min(ratios)
    fixed = synthesize(image, frames=3, size=(64, 80), seed=1, preset="v1", exposure=(0.1, 0.1),
                       shot_noise=(1e-4, 1e-4),
                       flicker=0.2, color_cast=0.2)
    per_frame = srgb_to_linear(fixed.lq).mean(axis=(1, 2)) / srgb_to_linear(fixed.gt).mean(axis=(1, 2))
    expected = fixed.exposures[:, None] * fixed.gains[None, :]
    np.testing.assert_allclose(per_frame, expected, rtol=0.05)
    assert np.ptp(fixed.exposures) > 0.01 and np.ptp(fixed.gains) > 0.01  # flicker and cast did something


def test_noise_variance_follows_shot_plus_read_model() -> None:
    flat = np.full((200, 200, 3), 0.8, np.float32)
    a, b = 4e-3, 1e-4
    levels, variances = [], []
    for exposure in (0.15, 0.3):
        clip = synthesize(flat, frames=4, size=(64, 64), seed=2, preset="v1", exposure=(exposure, exposure),
                          shot_noise=(a, a), read_noise=(b, b), motion=0.0, zoom=(1.0, 1.0), rotation=0.0)
        signal = float(srgb_to_linear(clip.gt).mean()) * exposure
        variance = float(srgb_to_linear(clip.lq).var())
        assert variance == pytest.approx(a * signal + b, rel=0.05)
        levels.append(signal)
        variances.append(variance)
    slope = (variances[1] - variances[0]) / (levels[1] - levels[0])
    intercept = variances[0] - slope * levels[0]
    assert slope == pytest.approx(a, rel=0.1)
    assert intercept == pytest.approx(b, rel=0.3)


def test_pure_pan_moves_content_by_the_path_shift() -> None:
    clip = synthesize(texture(), frames=5, size=(96, 128), seed=3, stratum="pan", zoom=(1.0, 1.0), rotation=0.0,
                      shot_noise=(1e-4, 1e-4))
    assert np.allclose(clip.angles, 0) and np.allclose(clip.scales, clip.scales[0])
    moved, window = 0.0, cv2.createHanningWindow((128, 96), cv2.CV_64F)
    for k in range(4):
        expected = -(clip.centers[k + 1] - clip.centers[k]) / clip.scales[k]
        gray = [cv2.cvtColor(clip.gt[i], cv2.COLOR_RGB2GRAY).astype(np.float64) for i in (k, k + 1)]
        (dx, dy), _ = cv2.phaseCorrelate(gray[0], gray[1], window)
        assert abs(dx - expected[0]) < 0.3 and abs(dy - expected[1]) < 0.3
        moved += float(np.hypot(*expected))
    assert moved > 3.0  # the camera actually moved


def test_flow_between_frames_matches_the_path_with_zoom_and_rotation() -> None:
    from tami.metrics.flow import create_flow

    clip = synthesize(texture(seed=1), frames=3, size=(96, 128), seed=4, stratum="pan", zoom=(1.0, 1.3),
                      rotation=4.0,
                      shot_noise=(1e-4, 1e-4))
    ys, xs = np.mgrid[0:96, 0:128].astype(np.float64)
    pts = np.stack([xs, ys, np.ones_like(xs)], -1)
    gt8 = np.rint(clip.gt * 255).astype(np.uint8)
    flows = create_flow("dis")(gt8[:-1], gt8[1:])
    for k in range(2):
        src = pts @ clip.warps[k].T  # where frame k's pixels come from in the photograph
        target = (src - clip.warps[k + 1][:, 2]) @ np.linalg.inv(clip.warps[k + 1][:, :2]).T  # same spot in k+1
        expected = target - pts[..., :2]
        err = np.linalg.norm(flows[k] - expected, axis=-1)[12:-12, 12:-12]
        assert np.median(err) < 0.3
        assert np.median(np.linalg.norm(expected, axis=-1)) > 0.3  # real motion to check against


def test_builtin_images_split_and_missing_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("skimage")
    assert not set(BUILTIN_SPLITS["train"]) & set(BUILTIN_SPLITS["test"])
    names = builtin_names()
    assert set(builtin_names("train")) <= set(BUILTIN_SPLITS["train"]) and "astronaut" in names
    held_out = builtin_images("test")
    assert {n for n, _ in held_out} == set(builtin_names("test")) and held_out
    assert all(img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.float32 for _, img in held_out)
    monkeypatch.setattr(synthetic, "_package_file", lambda *_: None)
    with pytest.raises(InputError, match=r'pip install "tami\[synth\]"'):
        builtin_images()


def test_generate_dataset_writes_the_generic_layout_deterministically(tmp_path: Path) -> None:
    sources = tmp_path / "photos"
    sources.mkdir()
    for i in range(2):
        cv2.imwrite(str(sources / f"p{i}.png"), np.rint(texture(seed=i) * 255).astype(np.uint8))
    kwargs = {"videos": 3, "frames": 3, "size": (32, 40), "sources": sources, "preset": "v1"}
    out = generate_dataset(tmp_path / "a", seed=9, **kwargs)
    generate_dataset(tmp_path / "b", seed=9, **kwargs)
    generate_dataset(tmp_path / "c", seed=10, **kwargs)
    files = sorted(p.relative_to(out) for p in out.rglob("*.png"))
    assert len(files) == 2 * 3 * 3 and Path("input/0002_p0/0002.png") in files
    assert all((out / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    assert any((out / f).read_bytes() != (tmp_path / "c" / f).read_bytes() for f in files)
    meta = json.loads((out / "synth.json").read_text())
    assert meta["config"]["seed"] == 9 and [v["source"] for v in meta["videos"]] == ["p0", "p1", "p0"]
    ds = build_dataset("generic", out, clip_len=3)
    assert ds.videos == ["0000_p0", "0001_p1", "0002_p0"] and ds[0]["lq"].shape == (3, 3, 32, 40)
    assert float(ds[0]["lq"].mean()) < float(ds[0]["gt"].mean())
    with pytest.raises(InputError, match="already exists"):
        generate_dataset(out, seed=9, **kwargs)


# -- second generation (preset v2) ---------------------------------------------------------------------------------

def test_v1_preset_reproduces_the_first_generator_bit_for_bit() -> None:
    import hashlib

    pytest.importorskip("skimage")
    image = builtin_images("train")[0][1]  # astronaut
    clip = synthesize(image, frames=5, size=(48, 64), seed=3, preset="v1", flicker=0.2, color_cast=0.1)
    digest = hashlib.sha256(np.rint(clip.lq * 255).astype(np.uint8).tobytes()).hexdigest()
    # recorded from the first-generation synthesize() (main at 7c9eaae) with the same arguments
    assert digest == "a21b421ade1d90b55f8d5461bb03e73f2b788ee65925e2923e6ee38aa448ece7"


def test_drift_and_auto_exposure_steps_have_their_statistics() -> None:
    from tami.data.synth_sensor import drift_series, step_series

    rng = np.random.default_rng(0)
    drift = np.concatenate([drift_series(rng, 400, 0.2, 0.9) for _ in range(50)]).reshape(50, 400)
    assert drift.std() == pytest.approx(0.2, rel=0.05)
    lag1 = np.mean([np.corrcoef(d[:-1], d[1:])[0, 1] for d in drift])
    assert lag1 == pytest.approx(0.9, abs=0.02)
    steps = step_series(np.random.default_rng(1), 3000, 0.03, (0.15, 0.4))
    jumps = np.abs(np.diff(steps))[np.abs(np.diff(steps)) > 0]
    assert steps[0] == 0 and 60 <= jumps.size <= 120  # ~3 % of 2999 frames
    assert jumps.min() >= 0.15 - 1e-12 and jumps.max() <= 0.4 + 1e-12
    with pytest.raises(InputError, match="drift_rho"):
        drift_series(rng, 5, 0.2, 1.0)


def test_v2_exposure_over_time_reaches_the_input_and_not_the_ground_truth() -> None:
    flat = np.full((120, 160, 3), 0.6, np.float32)
    clip = synthesize(flat, frames=30, size=(48, 64), seed=7, stratum="static", shot_noise=(1e-5, 1e-5),
                      read_noise=(1e-9, 1e-9), color_cast=0.0)
    ratio = srgb_to_linear(clip.lq).mean(axis=(1, 2, 3)) / srgb_to_linear(clip.gt).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(ratio, clip.exposures, rtol=0.03)
    assert np.ptp(np.log(clip.exposures)) > 0.2  # drift + jitter moved the exposure
    assert np.ptp(clip.gt.mean(axis=(1, 2, 3))) == 0  # the ground truth stays put


def test_target_gain_scales_the_ground_truth_only() -> None:
    image = texture(seed=2)
    dim = synthesize(image, frames=4, size=(48, 64), seed=5, target_gain=(0.8, 0.8))
    bright = synthesize(image, frames=4, size=(48, 64), seed=5, target_gain=(1.25, 1.25))
    plain = synthesize(image, frames=4, size=(48, 64), seed=5)
    assert np.array_equal(dim.lq, bright.lq) and np.array_equal(dim.lq, plain.lq)  # no input frame shows g
    assert (dim.target_gain, bright.target_gain, plain.target_gain) == (0.8, 1.25, 1.0)
    ratio = srgb_to_linear(bright.gt).mean() / srgb_to_linear(dim.gt).mean()
    assert ratio == pytest.approx(1.25 / 0.8, rel=0.02)
    drawn = [synthesize(image, frames=1, size=(8, 8), seed=s, target_gain=(0.8, 1.25)).target_gain for s in range(40)]
    assert 0.8 <= min(drawn) < 0.9 and 1.15 < max(drawn) <= 1.25


def test_strata_static_pan_and_content() -> None:
    image = texture(seed=3)
    others = [np.full((200, 200, 3), 0.9, np.float32)]
    static = synthesize(image, frames=12, size=(64, 64), seed=1, stratum="static")
    assert static.stratum == "static" and all(np.array_equal(static.gt[0], f) for f in static.gt)
    pan = synthesize(image, frames=12, size=(64, 64), seed=1, stratum="pan")
    assert not np.array_equal(pan.gt[0], pan.gt[-1])
    content = synthesize(image, frames=12, size=(64, 64), seed=1, stratum="content", sprite_sources=others,
                         sprites=(2, 2))
    assert content.stratum == "content" and len(content.sprites) == 2
    background = synthesize(image, frames=12, size=(64, 64), seed=1, stratum="static")
    changed = [not np.array_equal(content.gt[t], background.gt[t]) for t in range(12)]
    visible = [any(sp.centre(t) is not None for sp in content.sprites) for t in range(12)]
    assert any(changed) and all(v for c, v in zip(changed, visible) if c)  # objects only where they are in view
    spread = np.ptp(content.gt.mean(axis=(1, 2, 3)))
    assert spread > 0.02  # an object entering swings the frame's global statistics
    with pytest.raises(InputError, match="unknown stratum"):
        synthesize(image, frames=2, size=(8, 8), seed=0, stratum="orbit")


def test_presets_and_options_fail_in_one_line() -> None:
    image = texture()
    with pytest.raises(InputError, match="unknown synthetic preset 'v3'; presets: v2, v1"):
        synthesize(image, frames=2, size=(8, 8), seed=0, preset="v3")
    with pytest.raises(InputError, match="unknown synthetic option"):
        synthesize(image, frames=2, size=(8, 8), seed=0, flickr=0.1)
    with pytest.raises(InputError, match="strata must be among"):
        synthesize(image, frames=2, size=(8, 8), seed=0, strata=("orbit",))


def test_generate_dataset_cycles_strata_over_photographs(tmp_path: Path) -> None:
    sources = tmp_path / "photos"
    sources.mkdir()
    for i in range(2):
        cv2.imwrite(str(sources / f"p{i}.png"), np.rint(texture(seed=i) * 255).astype(np.uint8))
    out = generate_dataset(tmp_path / "d", videos=6, frames=3, size=(32, 40), seed=1, sources=sources,
                           target_gain=(0.8, 1.25))
    meta = json.loads((out / "synth.json").read_text())
    assert meta["config"]["preset"] == "v2" and meta["config"]["target_gain"] == [0.8, 1.25]
    pairs = [(v["source"], v["stratum"]) for v in meta["videos"]]
    assert pairs == [("p0", "static"), ("p1", "pan"), ("p0", "pan"), ("p1", "content"), ("p0", "content"),
                     ("p1", "static")]  # each photograph meets every stratum
    assert all(0.8 <= v["target_gain"] <= 1.25 for v in meta["videos"])
