"""tami.metrics: PSNR/SSIM against scikit-image, MABD closed forms, E_warp on known motion, the registry."""

from __future__ import annotations

import importlib.util
import math

import cv2
import numpy as np
import pytest
import torch

from tami.errors import InputError, OptionError, UnknownNameError
from tami.metrics import (
    FlowCache,
    Reference,
    create_flow,
    create_metric,
    ewarp,
    jitter,
    list_metrics,
    mabd,
    mabd_vector,
    psnr,
    ssim,
)
from tami.metrics.flow import PairFlows, non_occlusion_mask, pair_flows, sample_maps
from tami.metrics.frames import quantize
from tami.metrics.temporal import ewarp_pairs_u8


def _skimage(module: str):
    """A scikit-image module (the reference implementation and its photographs): without the optional package
    only the tests that call this skip."""
    return pytest.importorskip(module)


def _quantised(x: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(x, 0, 1) * 255) / 255


def _pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, pred, gt) as (H, W, 3) float64 in [0, 1]: random and natural images with realistic degradations."""
    skdata = _skimage("skimage.data")
    rng = np.random.default_rng(0)
    rand_gt = rng.random((40, 56, 3))
    rand_pred = np.clip(rand_gt + 0.1 * rng.standard_normal(rand_gt.shape), 0, 1)
    out = [("random", rand_pred, rand_gt)]
    for name in ("astronaut", "coffee", "chelsea"):
        gt = cv2.resize(getattr(skdata, name)(), (160, 120), interpolation=cv2.INTER_AREA) / 255.0
        pred = np.clip(0.85 * gt + 0.03 + 0.02 * rng.standard_normal(gt.shape), 0, 1)
        out.append((name, pred, gt))
    return out


@pytest.mark.parametrize("name", ["random", "astronaut", "coffee", "chelsea"])
def test_psnr_ssim_match_skimage(name: str) -> None:
    sk = _skimage("skimage.metrics")
    pred, gt = {n: (p, g) for n, p, g in _pairs()}[name]
    qp, qg = _quantised(pred), _quantised(gt)
    chw = (pred.transpose(2, 0, 1), gt.transpose(2, 0, 1))
    assert psnr(*chw) == pytest.approx(sk.peak_signal_noise_ratio(qg, qp, data_range=1), abs=1e-4)
    ref = sk.structural_similarity(qp, qg, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                   data_range=1, channel_axis=2)
    assert ssim(*chw) == pytest.approx(ref, abs=1e-4)
    ref_uniform = sk.structural_similarity(qp, qg, data_range=1, channel_axis=2)
    assert ssim(*chw, window="uniform") == pytest.approx(ref_uniform, abs=1e-4)
    assert abs(ref - ref_uniform) > 1e-4  # the two conventions really differ on these images


def test_video_score_is_mean_of_frames_and_torch_equals_numpy() -> None:
    rng = np.random.default_rng(1)
    gt = rng.random((3, 3, 32, 40)).astype(np.float32)
    pred = np.clip(gt + rng.normal(0, 0.05 * np.arange(1, 4)[:, None, None, None], gt.shape), 0, 1).astype(np.float32)
    per_frame = [psnr(pred[t], gt[t]) for t in range(3)]
    assert len(set(np.round(per_frame, 3))) == 3
    assert psnr(pred, gt) == pytest.approx(np.mean(per_frame), abs=1e-9)
    assert ssim(pred, gt) == pytest.approx(np.mean([ssim(pred[t], gt[t]) for t in range(3)]), abs=1e-9)
    assert psnr(torch.from_numpy(pred), torch.from_numpy(gt)) == pytest.approx(psnr(pred, gt), abs=1e-12)
    assert ssim(torch.from_numpy(pred).double(), torch.from_numpy(gt)) == pytest.approx(ssim(pred, gt), abs=1e-12)


def test_quantisation_happens_before_scoring() -> None:
    gt = np.full((3, 16, 16), 100 / 255)
    assert psnr(gt + 0.4 / 255, gt) == math.inf  # rounds to the same level
    assert psnr(gt + 0.6 / 255, gt) == pytest.approx(20 * math.log10(255), abs=1e-9)  # one level everywhere
    assert psnr(np.full((3, 16, 16), 1.2), np.ones((3, 16, 16))) == math.inf  # clipped to 1


def test_y_channel_and_crop_border() -> None:
    sk = _skimage("skimage.metrics")
    rng = np.random.default_rng(2)
    gt = rng.random((3, 24, 24))
    pred = gt.copy()
    pred[:, :2] = 0  # damage only the top border
    assert psnr(pred, gt, crop_border=2) == math.inf
    assert psnr(pred, gt) < 30
    q = _quantised(gt).transpose(1, 2, 0)
    qp = _quantised(pred).transpose(1, 2, 0)
    w = np.array([65.481, 128.553, 24.966]) / 255
    y_ref = sk.peak_signal_noise_ratio(q @ w + 16 / 255, qp @ w + 16 / 255, data_range=1)
    assert psnr(pred, gt, channel="y") == pytest.approx(y_ref, abs=1e-6)
    ssim_y = sk.structural_similarity(qp @ w + 16 / 255, q @ w + 16 / 255, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1)
    assert ssim(pred, gt, channel="y") == pytest.approx(ssim_y, abs=1e-4)


def test_bad_inputs_are_one_line_errors() -> None:
    x = np.zeros((2, 3, 16, 16))
    with pytest.raises(InputError, match="shapes differ"):
        psnr(x, np.zeros((3, 3, 16, 16)))
    with pytest.raises(InputError, match="channels-last"):
        psnr(np.zeros((2, 16, 16, 3)), np.zeros((2, 16, 16, 3)))
    with pytest.raises(InputError, match="divide 0-255"):
        ssim(x + 200, x)
    with pytest.raises(InputError, match="NaN"):
        psnr(x * np.nan, x)
    with pytest.raises(InputError, match="at least 2 frames"):
        mabd(x[:1], x[:1])


def test_mabd_closed_forms() -> None:
    rng = np.random.default_rng(3)
    base = np.rint(rng.uniform(0.2, 0.7, (3, 20, 24)) * 255) / 255
    gt = np.stack([base] * 6)
    assert mabd(gt, gt) == 0.0
    moving = np.stack([np.roll(base, t, axis=2) for t in range(6)])
    assert mabd(moving + 30 / 255, moving) == pytest.approx(0.0, abs=1e-15)  # constant offset: same changes
    pred = gt.copy()
    delta = 12 / 255
    pred[3] += delta  # one frame brighter: m_2 = m_3 = delta, all other changes 0
    np.testing.assert_allclose(mabd_vector(pred), [0, 0, delta, delta, 0], atol=1e-12)
    assert mabd(pred, gt) == pytest.approx(2 * delta**2 / 5, rel=1e-9)


def _uniform_video(levels: list[tuple[int, int, int]]) -> np.ndarray:
    """(T, 3, 4, 5) float frames, each one uniform 8-bit RGB level."""
    return np.stack([np.broadcast_to(np.array(rgb, float)[:, None, None] / 255, (3, 4, 5)) for rgb in levels])


def test_jitter_hand_computed() -> None:
    gt = _uniform_video([(100, 100, 100)] * 3)
    # one frame 10 % brighter: r = (0, ln 1.1, 0), changes (ln 1.1, -ln 1.1), population std ln 1.1
    assert jitter(_uniform_video([(100, 100, 100), (110, 110, 110), (100, 100, 100)]), gt) == pytest.approx(
        math.log(1.1), rel=1e-12)
    # a constant gain and a steady exponential drift are not jitter
    assert jitter(_uniform_video([(200, 200, 200)] * 3), gt) == 0.0
    assert jitter(_uniform_video([(100, 100, 100), (110, 110, 110), (121, 121, 121)]), gt) == pytest.approx(
        0.0, abs=1e-12)
    # Rec. 709 luma weights: pure green 100 has luma 71.52, pure red 100 has 21.26
    colour = _uniform_video([(0, 100, 0), (100, 0, 0), (0, 100, 0), (100, 0, 0)])
    step = math.log(0.2126 / 0.7152)  # changes (s, -s, s): mean s/3, population std |s| sqrt(8/9)
    assert jitter(colour, _uniform_video([(0, 100, 0)] * 4)) == pytest.approx(abs(step) * math.sqrt(8 / 9),
                                                                              rel=1e-12)
    # black frames stay finite (floored at half an 8-bit level)
    assert math.isfinite(jitter(_uniform_video([(0, 0, 0), (50, 50, 50)]), _uniform_video([(50, 50, 50)] * 2)))
    metric = create_metric("jitter")
    assert metric.info.lower_better and metric.info.temporal and "jitter" in list_metrics()
    pred = _uniform_video([(100, 100, 100), (110, 110, 110), (100, 100, 100)])
    assert metric(pred, gt) == pytest.approx(math.log(1.1), rel=1e-12)
    with pytest.raises(InputError, match="at least 2 frames"):
        jitter(pred[:1], gt[:1])


def _translated(frames: int, dx: float, dy: float, size: tuple[int, int] = (128, 96)) -> np.ndarray:
    """(T, 3, H, W) float32 crops of a smooth natural image moved by (dx, dy) px per frame (bilinear)."""
    img = cv2.GaussianBlur(_skimage("skimage.data").astronaut(), (0, 0), 1.0).astype(np.float32) / 255
    out = []
    for t in range(frames):
        m = np.float32([[1, 0, -(150 + dx * t)], [0, 1, -(100 + dy * t)]])
        out.append(cv2.warpAffine(img, m, size, flags=cv2.INTER_LINEAR))
    return np.stack(out).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("dx,dy", [(2.0, 1.0), (0.6, 0.35)])
def test_ewarp_translation_and_flicker(dx: float, dy: float) -> None:
    gt = _translated(6, dx, dy)
    q = _quantised(gt)
    unwarped = np.mean([((q[t] - q[t - 1]) ** 2).mean() for t in range(1, 6)])
    clean = ewarp(gt, gt)
    assert clean < 0.05 * unwarped
    # With the true flow, only bilinear interpolation error remains (zero for integer shifts): DIS gets as close.
    true_flow = np.broadcast_to(np.float32([dx, dy]), (5, 96, 128, 2)).copy()
    exact = PairFlows(true_flow, np.stack([sample_maps(f)[2] for f in true_flow]))
    floor = float(np.mean(ewarp_pairs_u8(quantize(gt), exact)))
    assert clean <= 1.2 * floor + 3e-6
    gains = np.array([1.0, 0.9, 1.0, 0.85, 1.0, 0.9])
    flicker = ewarp(gt * gains[:, None, None, None], gt)
    closed = np.mean([(gains[t] - gains[t - 1]) ** 2 * (q[t] ** 2).mean() for t in range(1, 6)])
    assert flicker - clean == pytest.approx(closed, rel=0.1)


def test_occlusion_mask_with_exact_flows() -> None:
    h, w, x = 40, 64, 30
    backward = np.zeros((h, w, 2), np.float32)
    forward = np.zeros((h, w, 2), np.float32)
    backward[10:30, x:x + 16, 0] = -6  # object pixels of frame t came from 6 px to the left
    forward[10:30, x - 6:x + 10, 0] = 6
    mask = non_occlusion_mask(backward, forward)
    assert not mask[10:30, x - 6:x].any()  # background revealed behind the object: no match in t-1
    assert mask[10:30, x:x + 16].all() and mask[:10].all() and mask[30:].all()
    shifted = np.zeros((h, w, 2), np.float32)
    shifted[..., 0] = 3.0  # matches right of the frame edge do not exist
    assert not non_occlusion_mask(shifted, -shifted)[:, -3:].any()


def test_ewarp_masks_an_object_moving_over_background() -> None:
    skdata = _skimage("skimage.data")
    bg = cv2.GaussianBlur(cv2.resize(skdata.astronaut(), (256, 192)), (0, 0), 1.0).astype(np.float32) / 255
    obj = cv2.GaussianBlur(cv2.resize(skdata.coffee(), (64, 64)), (0, 0), 0.7).astype(np.float32) / 255
    frames = []
    for t in range(5):
        f = bg.copy()
        f[64:128, 40 + 8 * t:104 + 8 * t] = obj
        frames.append(f)
    gt = np.stack(frames).transpose(0, 3, 1, 2)
    flows = pair_flows(quantize(gt), create_flow("dis"))
    x = 40 + 8 * 3
    assert flows.masks[2][66:126, x - 7:x - 1].mean() < 0.3  # revealed strip mostly excluded
    assert flows.masks[2][:56].mean() > 0.95  # static background kept
    masked, unmasked = ewarp(gt, gt), ewarp(gt, gt, occlusion=False)
    assert masked < 0.4 * unmasked


def test_flow_cache_computes_each_reference_once(tmp_path) -> None:
    gt = quantize(_translated(4, 1.0, 0.5, size=(64, 48)))
    est = create_flow("dis", preset="fast")
    cache = FlowCache(tmp_path)
    first = cache.get(gt, est)
    assert cache.get(gt, est) is first and (cache.hits, cache.misses) == (1, 1)
    fresh = FlowCache(tmp_path).get(gt, est)  # from disk: identical values
    np.testing.assert_array_equal(fresh.flows, first.flows)
    np.testing.assert_array_equal(fresh.masks, first.masks)
    ref = Reference(gt, cache=FlowCache())
    metric = create_metric("ewarp", preset="fast")
    a = metric.values(gt, ref)
    b = metric.values(np.ascontiguousarray(gt[:, :, :, ::-1]), ref)
    assert ref.cache.misses == 1 and ref.cache.hits == 1 and a.shape == b.shape == (3,)


def test_registry_defaults_ranges_and_errors() -> None:
    assert list_metrics() == ["ewarp", "jitter", "mabd", "psnr", "ssim"]
    for name in list_metrics():
        metric = create_metric(name)
        lo, hi = metric.info.score_range
        assert lo < hi
    assert create_metric("psnr").options() == {"channel": "rgb", "crop_border": 0}
    assert create_metric("ssim").options() == {"window": "gaussian", "channel": "rgb", "crop_border": 0}
    assert "dis(preset=medium" in create_metric("ewarp").describe()
    assert create_metric("ewarp").info.lower_better and not create_metric("psnr").info.lower_better
    with pytest.raises(UnknownNameError, match="did you mean psnr"):
        create_metric("psrn")
    with pytest.raises(OptionError, match="metric 'ssim' has no option 'win_size'; its options are window, channel, "
                                          "crop_border"):
        create_metric("ssim", win_size=7)
    with pytest.raises(InputError, match="window must be"):
        create_metric("ssim", window="box")
    with pytest.raises(InputError, match="source must be"):
        create_metric("ewarp", source="lq")


def test_raft_without_torchvision_says_how_to_fix() -> None:
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: the missing-dependency message cannot be tested")
    with pytest.raises(InputError, match="needs torchvision"):
        create_flow("raft", weights="raft.pth")


def test_raft_with_torchvision_loads_local_weights(tmp_path) -> None:
    tv = pytest.importorskip("torchvision")
    model = tv.models.optical_flow.raft_small(weights=None)
    path = tmp_path / "raft_small.pth"
    torch.save(model.state_dict(), path)
    est = create_flow("raft", weights=str(path), variant="small", iters=2, device="cpu")
    frames = quantize(_translated(2, 1.0, 0.0, size=(64, 48)))
    flow = est(frames[:1], frames[1:])
    assert flow.shape == (1, 48, 64, 2) and np.isfinite(flow).all()
    assert est.settings()["variant"] == "small"


def test_flow_sources_and_input_requirement() -> None:
    gt = _translated(4, 1.0, 0.5, size=(64, 48))
    pred = gt * np.array([1.0, 0.9, 1.0, 0.9])[:, None, None, None]
    on_gt = ewarp(pred, gt)
    assert ewarp(pred, gt, source="input", inp=gt) == pytest.approx(on_gt, abs=1e-12)
    assert ewarp(gt, gt, source="output") == pytest.approx(ewarp(gt, gt), abs=1e-12)
    with pytest.raises(InputError, match="inp=LQ"):
        ewarp(pred, gt, source="input")
    ref = Reference(quantize(gt))
    with pytest.raises(InputError, match="--input DIR"):
        create_metric("ewarp", source="input").values(quantize(pred), ref)


def test_frames_in_the_readers_layout_are_scored_without_a_transpose():
    from tami.metrics.frames import quantize, quantize_frames

    video = np.random.default_rng(3).random((2, 5, 7, 3), dtype=np.float32)
    assert np.array_equal(quantize_frames(video, name="pred"), quantize(video.transpose(0, 3, 1, 2)))
    with pytest.raises(InputError, match=r"pred must be \(T, H, W, 3\) RGB frames, got shape \(2, 3, 5, 7\)"):
        quantize_frames(video.transpose(0, 3, 1, 2), name="pred")
    with pytest.raises(InputError, match="pred is empty: 0 frames of 7x5 pixels"):
        quantize_frames(video[:0], name="pred")
