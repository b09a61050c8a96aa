"""Does TAMI's memory do its job? A pre-registered benchmark in two tiers (issue 14).

Everything in ``PROTOCOL`` below — clips, seeds, arms, metrics, statistics and pass marks — was committed before
any training run it judges, and is not to be changed afterwards. A bug fix to this file is allowed; it is
recorded in ``benchmarks/RESULTS.md`` with what it changed.

Tier A — mechanism probe: can information flow from the memory to the output at all?
    Each clip's ground truth carries a gain g in [0.8, 1.25] (log-uniform) that no input frame reveals (the input
    is darkened from the un-gained frames; ``tami.data.synthetic``, ``target_gain``). Frame 0 is written into the
    memory from its ground truth (``TAMI.step(lq_0, state, gt=gt_0)``), every later frame from the output. A
    memory that works carries g forward; a stateless model cannot know it.
    Model: ``configs/memory_probe.yaml`` (the bundled architecture: the bundled Retinexformer backbone frozen,
    8-px memory and IGFE cells, 8-frame clips, 128-px crops, reference loss weights, teacher forcing 1.0), trained
    for 2,000 steps in two variants that differ only in the symmetric-matching term: ``l_sm`` (reference) and
    ``l_sm_centred`` (the collapse guard). The final EMA weights of each are judged; no checkpoint is selected.
    Pass (each variant): PSNR(memory) - PSNR(stateless) >= 1 dB on frames 5-29 (mean over clips of the per-clip
    mean per-frame PSNR), and slope >= 0.5 of the OLS regression over clips of
    y = mean_{t=5..29} [ln L(out_t) - ln L(clean_t)] on x = ln g, with L the mean linear-light Rec. 709 luminance
    and clean_t the un-gained ground truth (a perfect model has slope 1, a memory-blind one 0).
    Guard default (decided from validation only): if the reference run's final validation token cosine
    (diag/token_cosine_ls or _hs) exceeds 0.9 and the guarded run's does not, ``l_sm_centred`` becomes the
    bundled recipe's default; otherwise ``l_sm`` stays.

Tier A, round 2 (registered 2026-12-01 after round 1 failed, before any round-2 run): the same clips, seeds,
    scoring and pass marks; the training policy matched to the probe. Round 1 trained with the ground truth in
    memory on every frame, which the probe (and every real use) never provides after frame 0; its validation PSNR
    fell from 24.3 dB to 18.5 dB while its training loss fell. Model: ``configs/memory_probe_r2.yaml`` = round 1's
    ``l_sm_centred`` variant with ``teacher_first: 1`` and ``teacher_forcing: 0.0`` (frame 0 of each training clip
    writes the ground truth, later frames their outputs), 2,000 steps, in two variants that differ only in the
    retrieval similarity: ``distance`` (reference) and ``cosine`` (learned scale, initial 10). Final EMA weights;
    no checkpoint is selected. Each variant passes or fails on its own; both are reported.
    Recipe selection (validation only, never the test clips): Tier A's procedure run on the validation photographs
    (``--photos PHOTOS/val``) for round 1 ``l_sm_centred`` and both round-2 variants; the bundled recipe takes the
    teacher-forcing policy and retrieval of the one with the largest PSNR(memory) - PSNR(stateless) there.

Tier A, round 3 (registered 2026-12-01 while round 2 trained, before any Tier A result of round 2): round 2's
    recipe with ``retrieval: centred`` (cosine of tokens centred per frame), 2,000 steps, final EMA weights, judged
    like rounds 1 and 2. Why: on a 30-step toy run the value tokens that stage 2 matches against share one
    direction (mean cosine 0.999), so stage 2 reads uniformly and the prior is flat over the grid (spatial std 1e-8
    with ``distance``, 7e-5 with ``cosine``, 0.017 with ``centred``, against 0.03 in the stored illumination).
    The recipe selection of round 2 extends to this variant (largest Tier A PSNR gain on the validation photos).

Tier A, round 4 (registered 2026-12-01 before any round-4 run, while round 3 still trained): round 2's
    ``distance`` recipe (the best validation gain of the variants judged so far) with ``pin_first: true``, in two
    variants: ``teacher_forcing: 0.0`` (``probe_r4_pin``) and ``0.5`` (``probe_r4_pin_tf50``); 2,000 steps, final
    EMA weights, judged like rounds 1-3 (``configs/memory_probe_r4.yaml``). Why: round 2 met the PSNR mark on the
    test clips (+1.14 dB) but not the slope (-0.22); its 5-frame FIFO evicts the ground-truth frame 0 before the
    judged frames 5-29, and in training only frame 1 of each 8-frame clip read the gain from a ground-truth entry
    (per-frame validation slope 0.13 on frame 1). Pinning keeps that entry readable on every frame, in training and
    in the probe; the 0.5 arm adds ground-truth entries in training. The recipe selection extends to both variants
    (largest Tier A PSNR gain on the validation photos; ``pin_first`` is then part of the selected recipe).

Tier A, round 5 (registered 2026-12-01 after round 4 was judged, before any round-5 run): round 4's
    ``probe_r4_pin`` recipe (``teacher_forcing: 0.0``) with ``illumination: luma``, the parameter-free Rec. 709 luma
    in place of the learned IEnc (``configs/memory_probe_r5.yaml``, run ``probe_r5_luma``); 2,000 steps, final EMA
    weights, judged like rounds 1-4. Why (validation clips only, ``benchmarks/memory_runs/causal_slope.py``):
    scaling round 4's pinned ground-truth frame by g moved the output's log luminance with slope 0.24 and the
    retrieved prior's with 0.24; the learned IEnc passes on a quarter of the gain, the rest of the path follows it.
    The recipe selection extends to this variant (largest Tier A PSNR gain on the validation photos).

Tier A, round 6 (registered 2026-12-02 after round 5 was judged, before any round-6 run and before the retrained
    bundled backbone was chosen): round 5's recipe unchanged (``configs/memory_probe_r5.yaml``) on the retrained
    bundled backbone, the stage-image export that ``tools/choose_backbone.py`` picks for ``tools/train_bundled.sh``,
    frozen, with that backbone's 8-pixel cells (Retinexformer: ``memory_scale 0.5, igfe_pool 2``; HVI-CIDNet:
    ``memory_scale 1, igfe_pool 1``); run ``probe_r6``; 2,000 steps, final EMA weights, judged like rounds 1-5.
    Why: Tier A judges "a model with the bundled architecture and recipe"; rounds 1-5 froze the backbone of the
    model shipped before issue 14 (Retinexformer n_feat 16 trained on v1 data), which the retrained bundled model
    replaces. Nothing is selected by this round: the bundled recipe stays round 5's whatever it scores.

Tier A, round 7 (registered 2026-12-02 after round 6 was judged, before any round-7 run): round 6 with
    ``recurrent: false`` (``configs/memory_probe_r7.yaml``, run ``probe_r7``): every frame starts from a zero hidden
    state, so the memory read is the adapter's only path from earlier frames; same backbone and cells, 2,000
    steps, final EMA weights, judged like rounds 1-6. Why (validation clips only, inference-time ablations of
    round 6's model and of the bundled TAMI at step 2,400): zeroing only the carried hidden state gives the
    stateless result and emptying only the memory read gives the memory result, so the whole temporal effect runs
    through the hidden state, a position-locked recurrence without motion compensation, which costs 1-2 dB on
    moving clips. Selection: when ``probe_r7`` has finished, Tier A runs on the validation photographs for rounds 6
    and 7 (``--photos PHOTOS/val``); if round 7's PSNR gain there is the larger, ``configs/bundled_video.yaml`` takes
    ``recurrent: false`` and the bundled TAMI's video stage is trained again (its control, ``memory_frames 0``,
    carries no hidden state either way and stays); otherwise the bundled recipe stays round 5's.

Bundled recipe, revision 2 (registered 2026-12-02 after Tier B judged recipe 1's pair and round 7 was judged and
    selected, before any revision-2 run). Outcomes so far: Tier B of recipe 1's pair failed every mark (TAMI below
    both the control and the backbone); round 7 failed Tier A on test (-0.06 dB, slope 0.47) and won the selection
    on validation (+0.03 dB against round 6's -0.39), so ``recurrent: false`` enters the recipe. Change: on top of
    that, ``data.synthetic.videos`` 78 -> 1,248 (32 clips per training photograph, same generator, seed and
    sizes). Why (training and validation clips only): recipe 1's control and TAMI beat the backbone by 1.9 and
    0.8 dB on 12 of their training videos and fell 0.5 and 0.8 dB below it on the validation videos; the
    control's validation PSNR peaked at step 1,500 and fell after. Both TAMI and the control are trained again
    with the revised ``configs/bundled_video.yaml`` by ``tools/train_bundled.sh`` (4,000 steps, final EMA
    weights, installed whatever they score), and Tier B runs again, unchanged, on the new pair
    (``--out benchmarks/memory_results/bundled_r2``). Recipe 1's result stays in ``memory_results/tier_b.json``.

Bundled recipe, revision 2 stopped; auxiliary-loss ablation (registered 2026-12-02 before the ablation runs).
    Revision 2's TAMI was stopped at step 629 (record kept): at step 500 its validation PSNR was again 1.2 dB under
    the control's (26.51 against 27.68) and its training Charbonnier rose from 0.034 (steps 1-200) to 0.046
    (401-600) while the auxiliary terms fell from 0.97 to 0.38, the control's staying at 0.036, as in recipe 1.
    The auxiliary terms (L_SM centred, L_I3A, L_IM), at the reference weight 1, are 10-25 times the reconstruction
    term and only TAMI has them. Ablation: revision 2's TAMI recipe with the three auxiliary weights all 0.1
    (``abl_aux01``) and all 0 (``abl_aux0``), same seed and 4,000-step schedule, stopped after the step-500
    validation; revision 2's own run is the weight-1 arm. Rule: revision 3 takes the weight with the highest
    step-500 validation PSNR, the larger weight when within 0.1 dB. The control is unaffected (no memory, no
    auxiliary terms) and keeps training; revision 3's TAMI then trains 4,000 steps and Tier B runs unchanged.
    Outcome (validation, step 500): weights 1 26.51 dB, 0.1 27.74 dB, 0 27.68 dB (control 27.68); revision 3
    takes 0.1 (``configs/bundled_video.yaml``). Its TAMI run is the ``abl_aux01`` arm continued to 4,000 steps
    (the same configuration, seed and schedule from step 0; renamed ``bundled_video_tami``); the control is
    revision 2's; Tier B on the pair with ``--out benchmarks/memory_results/bundled_r3``. The pair is installed
    whatever it scores.

Tier A, round 8 (registered 2026-12-02 after round 7 was judged and diagnosed on validation and training clips,
    before any round-8 run): the bundled recipe as it stands (revision 3: round 7's architecture, 1,248 training
    videos, auxiliary weights 0.1) on Tier A's gained training clips with the brightness anchor
    (``brightness_anchor: true``, ``tami.adapter.anchor``: the retrieved prior also scales the output relative to
    the output's own luma, ``out * exp(head(ln P - ln L(out)))``, the head zero at first);
    ``configs/memory_probe_r8.yaml``, run ``probe_r8_anchor``; and the same without the anchor
    (``--set model.adapter_options.brightness_anchor=false``, run ``probe_r8_plain``), which attributes the
    result. Same backbone and cells as rounds 6-7, 2,000 steps, final EMA weights, each arm judged like rounds 1-7.
    Why: fine-tuned with a perfect prior (the frame's ground-truth luma), round 7's model did not learn to follow
    it, nor did a direct linear path from the log prior, though an injection map optimised per frame carries 95 %
    of a gain; in absolute terms the log prior is ln g under the scene's log luminance, relative to the output it
    is ln g plus the output's own error. Selection (validation photographs only): if ``probe_r8_anchor``'s Tier A
    PSNR gain there exceeds both round 7's (+0.03 dB) and ``probe_r8_plain``'s, the bundled recipe takes the
    anchor (revision 4: the bundled TAMI's video stage trained again, 4,000 steps, the control unchanged, Tier B
    again with ``--out benchmarks/memory_results/bundled_r4``); otherwise it stays revision 3.

Tier A, round 9 (registered 2026-12-02 after ``probe_r8_anchor`` was judged on the test and validation
    photographs and diagnosed on validation clips, before any round-9 run and before ``probe_r8_plain`` finished):
    ``probe_r8_anchor``'s recipe with ``anchor_mode: global`` (``configs/memory_probe_r9.yaml``, run
    ``probe_r9_global``): one log gain per frame from ln(mean P + eps) - ln(mean L(out) + eps) in place of a gain
    per cell from the mean of per-cell log ratios; same backbone, cells, data and seed, 2,000 steps, final EMA
    weights, judged like rounds 1-8. Why (validation only, ``benchmarks/memory_runs/anchor_diag.py``): the
    retrieved prior is spatially flat (std about 1e-3 of a level about 0.5), so round 8's mean(d) compares the log
    of a mean luma with the mean of the output's log luma; that Jensen gap is positive and grows with the frame's
    contrast (+0.36 on a contrasty validation frame, +0.04 on a flat one), so the cell anchor brightens contrasty
    frames, writes them back and drifts (a static validation clip: brightness error +0.11 stateless, +0.19 on frame
    1 and +0.32 from frame 12 with memory). Selection (validation photographs only; it replaces round 8's, which
    had not been applied): when ``probe_r8_plain`` and ``probe_r9_global`` have finished, the bundled recipe takes
    the anchor mode (cells, round 8, or global, round 9) with the larger validation Tier A gain, if that gain
    exceeds both round 7's (+0.03 dB) and ``probe_r8_plain``'s (revision 4 as round 8 describes); otherwise it
    stays revision 3.
    Outcome (validation Tier A gains): round 9 global +0.70 dB, round 8 cells +0.37, round 8 plain -0.00, round 7
    +0.03; revision 4 of ``configs/bundled_video.yaml`` takes the global anchor (and the issue's stopping rule as
    ``val.memory_stop``), its Tier B with ``--out benchmarks/memory_results/bundled_r4``.

Tier A, round 10 (registered 2026-12-02 after round 9 was judged on the test and validation photographs and
    diagnosed on validation clips, before any round-10 run; revision 4's TAMI, paused, had trained 56 steps):
    round 9's recipe with ``anchor_mode: exposure`` (``configs/memory_probe_r10.yaml``, run ``probe_r10_exposure``):
    each memory frame keeps its raw log brightness and the log brightness it was written with (the ground truth's,
    or the raw level plus the log gain applied), and the anchor's gain is a head of the memory frames' mean
    correction and the raw level over the memory's mean raw level; same backbone, cells, data and seed, 2,000
    steps, final EMA weights, judged like rounds 1-9. Why (validation only): round 9's head followed about 0.4 of a
    retrieved mean that mixes the pinned ground-truth frame with output-written frames, so the pinned frame's
    correction faded within a few frames (0.85 log units of overexposure corrected to 0.49 on frame 1, back to 0.74
    by frame 12), and the read biased that mean by -0.05 to +0.03. Selection (validation photographs only): if
    round 10's Tier A gain there exceeds round 9's (+0.70 dB), the bundled recipe takes ``anchor_mode: exposure``
    (revision 5: the bundled TAMI trained again, 4,000 steps, the control unchanged, Tier B with ``--out
    benchmarks/memory_results/bundled_r5``; revision 4's TAMI, paused meanwhile, is then superseded); otherwise
    revision 4's TAMI resumes and stays the candidate.
    Outcome: validation gain +0.58 dB (round 9: +0.70); revision 4 stays and its TAMI resumes.

Tier A, round 11 (registered 2026-12-02 after round 10 was judged and diagnosed on validation clips, before any
    round-11 run and before any test-photograph run of a carry model; revision 4's TAMI is training, step 800):
    round 10's recipe with ``anchor_mode: carry`` (``configs/memory_probe_r11.yaml``, run ``probe_r11_carry``): the
    same head, but an output frame writes back its raw level plus the mean correction it *read*, not plus the gain
    it applied; same backbone, cells, data and seed, 2,000 steps, final EMA weights, judged like rounds 1-10. Why
    (validation only, ``benchmarks/memory_runs/exposure_carry_diag.py``): round 10's head applies about 0.34 of the
    memory's correction and -0.12 of the raw level offset; written back, that shrunk gain dilutes the pinned frame's
    correction to about 0.08 of itself once the five-frame ring has filled. Changing only the write rule of round
    10's trained weights at inference raised its validation gain from +0.58 to +1.50 dB (static +1.99, pan +1.49,
    content +1.01) and its slope from -0.11 to 0.27 (stateless -0.22). Also reported, for information only and not
    judged (its weights were trained under the other write rule): round 10's weights with ``anchor_mode: carry``
    (``benchmarks/memory_runs/probe_r11_r10_as_carry``, made by ``exposure_carry_diag.py --export``). Selection
    (validation photographs only): if ``probe_r11_carry``'s Tier A gain there exceeds round 9's (+0.70 dB), the
    bundled recipe takes ``anchor_mode: carry`` (revision 5: the bundled TAMI trained again, 4,000 steps, the control
    unchanged, Tier B with ``--out benchmarks/memory_results/bundled_r5``); revision 4 finishes and is judged by
    Tier B whatever round 11 gives.

Tier B — benchmark on realistic clips (no target gain).
    Arms: 1 the backbone alone; 2 TAMI; 3 TAMI stateless (empty memory and hidden state on every frame); 4 the
    control: an adapter of the same size (``memory_frames: 0``) trained with the same recipe, data and steps;
    5 TAMI reading a foreign memory: primed with all frames of clip (k + 1) mod N, then run over clip k with
    memory writes off.
    Metrics per clip: PSNR, SSIM, E_warp (DIS on the ground truth, x1e-3), MABD (x1e-3), J (global brightness
    jitter, ``tami.metrics.jitter``). Paired bootstrap over clips: 10,000 resamples, ``numpy.random.default_rng(0)``,
    95 % percentile intervals.
    Pass marks:
      B1 E_warp: 1 - mean(E_2) / mean(E_4) >= 0.03, interval lower bound > 0;
      B2 J:      1 - mean(J_2) / mean(J_4) >= 0.25, interval lower bound > 0;
      B3 PSNR:   mean(PSNR_2 - PSNR_4) >= -0.1 dB;
      B4 foreign memory hurts: mean(PSNR_5 - PSNR_2) < 0 with the interval's upper bound < 0;
      B5 no stratum worse than the backbone: per stratum PSNR_2 - PSNR_1 >= -0.1 dB, E_warp_2 <= E_warp_1,
         MABD_2 <= MABD_1 (means over the stratum's clips).
    Calibration check of the synthetic data (reported with Tier B): the backbone arm's mean E_warp and MABD each
    within a factor 10 of the geometric mean of the paper's SDSD-indoor and -outdoor values for the same
    backbone (``PAPER_SDSD``).

Clips come from the photo pool's test split (``docs/PHOTOS.md``; photographs never used for training or model
selection), preset v2, 256x256, 30 frames, the strata cycled over the clips as ``tami.data.synthetic`` does.

    python benchmarks/memory.py bundled-backbone runs/bundled_backbone.safetensors   # Tier A's frozen backbone
    python benchmarks/memory.py tier-a --photos PHOTOS/test --model RUN/export/model.safetensors --name ref
    python benchmarks/memory.py tier-b --photos PHOTOS/test --tami MODEL --control CONTROL_MODEL
    python benchmarks/memory.py tier-b-table benchmarks/memory_results/tier_b.json   # the result as Markdown
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tami.adapter import TAMI
from tami.adapter.io import load_model
from tami.data.synthetic import load_sources, srgb_to_linear, synthesize
from tami.metrics import FlowCache, ewarp, jitter, mabd, psnr, ssim

PROTOCOL: dict[str, Any] = {
    "tier_a": {
        "clips": 24, "frames": 30, "size": [256, 256], "seed": 20_000, "preset": "v2",
        "target_gain": [0.8, 1.25], "scored_frames": [5, 29],
        "pass": {"psnr_gain_db": 1.0, "slope": 0.5},
        "training": {"config": "configs/memory_probe.yaml", "iterations": 2000, "variants": ["l_sm", "l_sm_centred"],
                     "weights": "final EMA", "guard_rule": "token cosine > 0.9 on the reference run only"},
    },
    "tier_a_round2": {
        "training": {"config": "configs/memory_probe_r2.yaml", "iterations": 2000, "variants": ["distance", "cosine"],
                     "weights": "final EMA"},
        "selection": "largest PSNR(memory) - PSNR(stateless) of Tier A run on the validation photographs",
    },
    "tier_a_round3": {
        "training": {"config": "configs/memory_probe_r2.yaml", "iterations": 2000, "variants": ["centred"],
                     "weights": "final EMA"},
        "selection": "round 2's rule over round 1 l_sm_centred, round 2 distance and cosine, and round 3 centred",
    },
    "tier_a_round6": {
        "training": {"config": "configs/memory_probe_r5.yaml", "iterations": 2000, "variants": ["r6"],
                     "backbone": "the retrained bundled backbone (tools/choose_backbone.py), its 8-pixel cells",
                     "weights": "final EMA"},
        "selection": "none: the bundled recipe stays round 5's",
    },
    "tier_a_round7": {
        "training": {"config": "configs/memory_probe_r7.yaml", "iterations": 2000, "variants": ["r7"],
                     "backbone": "as round 6", "weights": "final EMA"},
        "selection": "validation Tier A gain of round 7 > round 6's: bundled TAMI retrained with recurrent: false",
    },
    "bundled_r2": {
        "training": {"config": "configs/bundled_video.yaml", "changes": {"recurrent": False, "videos": [78, 1248]},
                     "runs": ["tami", "control"], "iterations": 4000, "weights": "final EMA, installed"},
        "judged_by": "tier_b, unchanged",
    },
    "bundled_r3": {
        "training": {"config": "configs/bundled_video.yaml", "changes": {"auxiliary_weights": [1.0, 0.1]},
                     "selection": "highest step-500 validation PSNR of weights 1 / 0.1 / 0, larger within 0.1 dB",
                     "runs": ["tami (abl_aux01 continued)", "control (revision 2's)"], "iterations": 4000,
                     "weights": "final EMA, installed"},
        "judged_by": "tier_b, unchanged",
    },
    "tier_a_round8": {
        "training": {"config": "configs/memory_probe_r8.yaml", "iterations": 2000,
                     "variants": ["anchor", "plain (brightness_anchor false)"], "backbone": "as round 6",
                     "weights": "final EMA"},
        "selection": "validation Tier A gain of anchor > round 7's and > plain's: bundled revision 4 takes the anchor",
    },
    "tier_a_round9": {
        "training": {"config": "configs/memory_probe_r9.yaml", "iterations": 2000, "variants": ["global"],
                     "backbone": "as round 6", "weights": "final EMA"},
        "selection": "replaces round 8's: the anchor mode (cells or global) with the larger validation Tier A gain, "
                     "if > round 7's and > round 8 plain's, enters bundled revision 4",
    },
    "tier_a_round10": {
        "training": {"config": "configs/memory_probe_r10.yaml", "iterations": 2000, "variants": ["exposure"],
                     "backbone": "as round 6", "weights": "final EMA"},
        "selection": "validation Tier A gain > round 9's (+0.70 dB): bundled revision 5 takes anchor_mode exposure",
    },
    "tier_a_round11": {
        "training": {"config": "configs/memory_probe_r11.yaml", "iterations": 2000, "variants": ["carry"],
                     "backbone": "as round 6", "weights": "final EMA"},
        "reported_not_judged": "round 10's weights with anchor_mode carry (inference-time write rule only)",
        "selection": "validation Tier A gain > round 9's (+0.70 dB): bundled revision 5 takes anchor_mode carry",
    },
    "tier_b": {
        "clips": 36, "frames": 30, "size": [256, 256], "seed": 30_000, "preset": "v2",
        "arms": ["backbone", "tami", "stateless", "control", "foreign"],
        "bootstrap": {"resamples": 10_000, "seed": 0, "level": 0.95},
        "pass": {"ewarp_reduction": 0.03, "jitter_reduction": 0.25, "psnr_drop_db": 0.1, "stratum_psnr_drop_db": 0.1},
        "calibration_factor": 10.0,
    },
}

#: (E_warp, MABD) x1e-3 of the backbones on SDSD (indoor, outdoor), PAPER.md Tables I and II.
PAPER_SDSD: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "retinexformer": ((0.214, 0.0025), (0.151, 0.0234)),
    "hvi_cidnet": ((0.204, 0.0043), (0.223, 0.0244)),
    "restormer": ((0.220, 0.0082), (0.337, 0.0657)),
    "snr_aware": ((0.254, 0.0087), (0.421, 0.1506)),
    "llformer": ((0.256, 0.0020), (0.419, 0.0738)),
    "urwkv": ((0.210, 0.0034), (0.366, 0.0584)),
}

_LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float64)


# -- clips -----------------------------------------------------------------------------------------------------------

def make_clips(tier: str, photos: Path) -> list[dict[str, Any]]:
    """The tier's clips: ``{"name", "stratum", "lq", "gt", "clean", "gain"}`` with ``(T, H, W, 3)`` float32 frames."""
    spec = PROTOCOL[tier]
    images = load_sources(photos)
    count = len(images)
    strata = ("static", "pan", "content")
    clips = []
    for i in range(spec["clips"]):
        name, image = images[i % count]
        others = [images[(i + k) % count][1] for k in range(1, min(count, 4))] or [image]
        common = dict(frames=spec["frames"], size=tuple(spec["size"]), seed=spec["seed"] + i, preset=spec["preset"],
                      stratum=strata[(i % count + i // count) % 3], sprite_sources=others)
        if tier == "tier_a":
            clip = synthesize(image, target_gain=tuple(spec["target_gain"]), **common)
            clean = synthesize(image, **common).gt  # the same clip without the gain (identical input)
        else:
            clip = synthesize(image, **common)
            clean = clip.gt
        clips.append({"name": f"{i:02d}_{name}", "stratum": clip.stratum, "lq": clip.lq, "gt": clip.gt,
                      "clean": clean, "gain": clip.target_gain})
    return clips


# -- running the arms ---------------------------------------------------------------------------------------------

def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1)[None]


def _array(out: torch.Tensor) -> np.ndarray:
    return out[0].clamp(0, 1).permute(1, 2, 0).numpy()


@torch.inference_mode()
def run_arm(model: TAMI, lq: np.ndarray, arm: str, *, gt0: np.ndarray | None = None,
            prime: np.ndarray | None = None) -> np.ndarray:
    """Enhance one clip ``(T, H, W, 3)`` under ``arm``: backbone, tami, stateless, control or foreign."""
    outs = []
    if arm == "backbone":
        return np.stack([_array(model.backbone(_tensor(frame))) for frame in lq])  # pads and crops itself
    state = model.init_state(1)
    if arm == "foreign":
        for frame in prime:
            _, state, _ = model.step(_tensor(frame), state)
    for t, frame in enumerate(lq):
        if arm == "stateless":
            state = model.init_state(1)
        gt = _tensor(gt0) if (gt0 is not None and t == 0 and arm != "stateless") else None
        out, state, _ = model.step(_tensor(frame), state, gt=gt, write=arm not in ("stateless", "foreign"))
        outs.append(_array(out))
    return np.stack(outs)


def _chw(video: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(video.transpose(0, 3, 1, 2))


def linear_luminance(video: np.ndarray) -> np.ndarray:
    """``(T,)`` mean linear-light Rec. 709 luminance of 8-bit-quantised frames."""
    quantised = np.rint(np.clip(video, 0, 1) * 255) / 255
    return (srgb_to_linear(quantised).reshape(video.shape[0], -1, 3).mean(1) @ _LUMA).astype(np.float64)


def scores(pred: np.ndarray, gt: np.ndarray, cache: FlowCache) -> dict[str, float]:
    p, g = _chw(pred), _chw(gt)
    return {"psnr": psnr(p, g), "ssim": ssim(p, g), "ewarp": ewarp(p, g, cache=cache), "mabd": mabd(p, g),
            "jitter": jitter(p, g)}


# -- statistics ----------------------------------------------------------------------------------------------------

def bootstrap(statistic: Callable[[np.ndarray], float], clips: int) -> tuple[float, float]:
    """Percentile interval of ``statistic(indices)`` over paired resamples of the clips (PROTOCOL's settings)."""
    spec = PROTOCOL["tier_b"]["bootstrap"]
    rng = np.random.default_rng(spec["seed"])
    draws = np.array([statistic(rng.integers(0, clips, clips)) for _ in range(spec["resamples"])])
    tail = (1 - spec["level"]) / 2 * 100
    return float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))


def ols_slope(x: np.ndarray, y: np.ndarray) -> float:
    x = x - x.mean()
    return float((x * (y - y.mean())).sum() / (x * x).sum())


# -- tiers ---------------------------------------------------------------------------------------------------------

def tier_a(model: TAMI, photos: Path) -> dict[str, Any]:
    spec = PROTOCOL["tier_a"]
    first, last = spec["scored_frames"]
    rows = []
    for clip in make_clips("tier_a", photos):
        memory = run_arm(model, clip["lq"], "tami", gt0=clip["gt"][0])
        stateless = run_arm(model, clip["lq"], "stateless")
        window = slice(first, last + 1)
        gain = {arm: psnr(_chw(out[window]), _chw(clip["gt"][window])) for arm, out in
                (("memory", memory), ("stateless", stateless))}
        clean_lum = np.log(linear_luminance(clip["clean"][window]))
        rows.append({"clip": clip["name"], "stratum": clip["stratum"], "gain": clip["gain"],
                     "psnr_memory": gain["memory"], "psnr_stateless": gain["stateless"],
                     "y_memory": float(np.mean(np.log(linear_luminance(memory[window])) - clean_lum)),
                     "y_stateless": float(np.mean(np.log(linear_luminance(stateless[window])) - clean_lum))})
        print(f"{clip['name']} g {clip['gain']:.3f}: PSNR memory {gain['memory']:.2f} stateless "
              f"{gain['stateless']:.2f}", flush=True)
    x = np.log([r["gain"] for r in rows])
    psnr_gain = float(np.mean([r["psnr_memory"] - r["psnr_stateless"] for r in rows]))
    slope = ols_slope(x, np.array([r["y_memory"] for r in rows]))
    summary = {"psnr_gain_db": psnr_gain, "slope": slope,
               "slope_stateless": ols_slope(x, np.array([r["y_stateless"] for r in rows])),
               "pass": {"psnr_gain": bool(psnr_gain >= spec["pass"]["psnr_gain_db"]),
                 "slope": bool(slope >= spec["pass"]["slope"])}}
    summary["passed"] = all(summary["pass"].values())
    return {"summary": summary, "clips": rows}


def tier_b(model: TAMI, control: TAMI, photos: Path) -> dict[str, Any]:
    spec = PROTOCOL["tier_b"]
    clips = make_clips("tier_b", photos)
    per_clip: list[dict[str, Any]] = []
    for k, clip in enumerate(clips):
        cache = FlowCache()
        outs = {
            "backbone": run_arm(model, clip["lq"], "backbone"),
            "tami": run_arm(model, clip["lq"], "tami"),
            "stateless": run_arm(model, clip["lq"], "stateless"),
            "control": run_arm(control, clip["lq"], "control"),
            "foreign": run_arm(model, clip["lq"], "foreign", prime=clips[(k + 1) % len(clips)]["lq"]),
        }
        row = {"clip": clip["name"], "stratum": clip["stratum"],
               "input": scores(clip["lq"], clip["gt"], cache),
               **{arm: scores(out, clip["gt"], cache) for arm, out in outs.items()}}
        per_clip.append(row)
        print(f"{clip['name']} ({clip['stratum']}): " + ", ".join(
            f"{arm} {row[arm]['psnr']:.2f} dB E_warp {row[arm]['ewarp'] * 1e3:.3f} J {row[arm]['jitter']:.4f}"
            for arm in spec["arms"]), flush=True)
    arms = ["input", *spec["arms"]]
    metric_names = ("psnr", "ssim", "ewarp", "mabd", "jitter")
    table = {arm: {m: np.array([r[arm][m] for r in per_clip]) for m in metric_names} for arm in arms}
    mean = {arm: {m: float(v.mean()) for m, v in table[arm].items()} for arm in arms}
    n = len(per_clip)
    t, c, f = table["tami"], table["control"], table["foreign"]

    def reduction(metric: str) -> Callable[[np.ndarray], float]:
        return lambda idx: 1 - t[metric][idx].mean() / c[metric][idx].mean()

    checks: dict[str, Any] = {
        "ewarp_reduction": {"value": float(reduction("ewarp")(np.arange(n))), "interval": bootstrap(reduction("ewarp"), n)},
        "jitter_reduction": {"value": float(reduction("jitter")(np.arange(n))),
                             "interval": bootstrap(reduction("jitter"), n)},
        "psnr_vs_control_db": {"value": float((t["psnr"] - c["psnr"]).mean()),
                               "interval": bootstrap(lambda i: float((t["psnr"][i] - c["psnr"][i]).mean()), n)},
        "foreign_psnr_db": {"value": float((f["psnr"] - t["psnr"]).mean()),
                            "interval": bootstrap(lambda i: float((f["psnr"][i] - t["psnr"][i]).mean()), n)},
    }
    marks = spec["pass"]
    strata = {}
    for stratum in ("static", "pan", "content"):
        idx = np.array([i for i, r in enumerate(per_clip) if r["stratum"] == stratum])
        if idx.size == 0:
            continue
        b = {m: float(table["backbone"][m][idx].mean()) for m in metric_names}
        s = {m: float(t[m][idx].mean()) for m in metric_names}
        strata[stratum] = {"clips": int(idx.size), "backbone": b, "tami": s,
                           "ok": bool(s["psnr"] - b["psnr"] >= -marks["stratum_psnr_drop_db"]
                                      and s["ewarp"] <= b["ewarp"] and s["mabd"] <= b["mabd"])}
    passed = {
        "B1_ewarp": checks["ewarp_reduction"]["value"] >= marks["ewarp_reduction"]
        and checks["ewarp_reduction"]["interval"][0] > 0,
        "B2_jitter": checks["jitter_reduction"]["value"] >= marks["jitter_reduction"]
        and checks["jitter_reduction"]["interval"][0] > 0,
        "B3_psnr": checks["psnr_vs_control_db"]["value"] >= -marks["psnr_drop_db"],
        "B4_foreign": checks["foreign_psnr_db"]["value"] < 0 and checks["foreign_psnr_db"]["interval"][1] < 0,
        "B5_strata": all(s["ok"] for s in strata.values()),
    }
    passed = {k: bool(v) for k, v in passed.items()}
    arch = model.backbone.arch
    calibration = None
    if arch in PAPER_SDSD:
        (e_in, m_in), (e_out, m_out) = PAPER_SDSD[arch]
        ref = {"ewarp": math.sqrt(e_in * e_out) * 1e-3, "mabd": math.sqrt(m_in * m_out) * 1e-3}
        factor = spec["calibration_factor"]
        calibration = {m: {"backbone": mean["backbone"][m], "paper_geomean": ref[m],
                           "ratio": mean["backbone"][m] / ref[m],
                           "ok": bool(1 / factor <= mean["backbone"][m] / ref[m] <= factor)} for m in ref}
    return {"mean": mean, "checks": checks, "strata": strata, "pass": passed, "passed": all(passed.values()),
            "calibration": calibration, "clips": per_clip}


def tier_b_markdown(result: dict[str, Any]) -> str:
    """Tier B as Markdown: every arm's means, the pass marks with their intervals, and the strata."""
    labels = {"input": "dark input", "backbone": "1 backbone alone", "tami": "2 TAMI", "stateless": "3 TAMI stateless",
              "control": "4 no-memory control", "foreign": "5 TAMI, foreign memory"}
    lines = ["| arm | PSNR | SSIM | E_warp ×10⁻³ | MABD ×10⁻³ | J |", "|---|---:|---:|---:|---:|---:|"]
    for arm, label in labels.items():
        m = result["mean"][arm]
        lines.append(f"| {label} | {m['psnr']:.2f} | {m['ssim']:.4f} | {m['ewarp'] * 1e3:.4f} | {m['mabd'] * 1e3:.4f} "
                     f"| {m['jitter']:.4f} |")
    c, ok = result["checks"], result["pass"]
    verdict = {True: "pass", False: "**fail**"}

    def interval(check: dict[str, Any], fmt: str = "{:+.1%}") -> str:
        low, high = check["interval"]
        return f"{fmt.format(check['value'])} [{fmt.format(low)}, {fmt.format(high)}]"

    db = "{:+.2f}"
    marks = [("B1 E_warp reduction vs control", interval(c["ewarp_reduction"]), "≥ 3 %, interval > 0", "B1_ewarp"),
             ("B2 J reduction vs control", interval(c["jitter_reduction"]), "≥ 25 %, interval > 0", "B2_jitter"),
             ("B3 PSNR, TAMI − control", interval(c["psnr_vs_control_db"], db) + " dB", "≥ −0.1 dB", "B3_psnr"),
             ("B4 PSNR, foreign memory − TAMI", interval(c["foreign_psnr_db"], db) + " dB", "< 0, interval < 0",
              "B4_foreign"),
             ("B5 no stratum worse than the backbone", "see below", "PSNR ≥ −0.1 dB, E_warp and MABD not higher",
              "B5_strata")]
    lines += ["", "| mark | value [95 % interval] | needed | result |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {needed} | {verdict[ok[key]]} |" for name, value, needed, key in marks]
    lines += ["", "| stratum | clips | PSNR TAMI − backbone | E_warp TAMI / backbone | MABD TAMI / backbone | ok |",
              "|---|---:|---:|---:|---:|---|"]
    for name, st in result["strata"].items():
        b, t = st["backbone"], st["tami"]
        lines.append(f"| {name} | {st['clips']} | {t['psnr'] - b['psnr']:+.2f} dB | {t['ewarp'] / b['ewarp'] - 1:+.1%} "
                     f"| {t['mabd'] / b['mabd'] - 1:+.1%} | {'yes' if st['ok'] else '**no**'} |")
    if result.get("calibration"):
        ratios = ", ".join(f"{m} {v['ratio']:.1f}× ({'ok' if v['ok'] else 'outside'})"
                           for m, v in result["calibration"].items())
        lines += ["", "Calibration (backbone arm against the paper's SDSD geometric mean, within a factor 10): "
                  + ratios]
    lines += ["", f"Tier B: **{'passed' if result['passed'] else 'failed'}**."]
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------------------------------

def _environment(started: float) -> dict[str, Any]:
    return {"machine": f"{platform.machine()} {platform.processor()}", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "seconds": round(time.perf_counter() - started, 1),
            "command": " ".join(sys.argv)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    bb = sub.add_parser("bundled-backbone", help="write the bundled model's backbone (Tier A's frozen backbone)")
    bb.add_argument("out", type=Path)
    a = sub.add_parser("tier-a", help="mechanism probe of one model")
    a.add_argument("--photos", type=Path, required=True, help="the photo pool's test folder")
    a.add_argument("--model", type=Path, required=True, help="exported model.safetensors (final EMA weights)")
    a.add_argument("--name", required=True, help="variant name for the result file (e.g. ref, centred)")
    b = sub.add_parser("tier-b", help="benchmark: five arms")
    b.add_argument("--photos", type=Path, required=True, help="the photo pool's test folder")
    b.add_argument("--tami", type=Path, required=True, help="TAMI model.safetensors")
    b.add_argument("--control", type=Path, required=True, help="no-memory control model.safetensors")
    table = sub.add_parser("tier-b-table", help="print a tier_b.json as Markdown")
    table.add_argument("result", type=Path)
    for p in (a, b):
        p.add_argument("--out", type=Path, default=Path(__file__).with_name("memory_results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    started = time.perf_counter()
    if args.command == "bundled-backbone":
        from tami.backbones import save
        from tami.bundled import load_enhancement_model

        save(load_enhancement_model().backbone, args.out, {"source": "tami bundled demo model"})
        print(f"wrote {args.out}")
        return
    if args.command == "tier-b-table":
        print(tier_b_markdown(json.loads(args.result.read_text())))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "tier-a":
        result = tier_a(load_model(args.model), args.photos)
        result.update(model=str(args.model), protocol=PROTOCOL["tier_a"], **_environment(started))
        path = args.out / f"tier_a_{args.name}.json"
        print(json.dumps(result["summary"], indent=2))
    else:
        control = load_model(args.control)
        if control.config.memory_frames != 0:
            raise SystemExit(f"{args.control} has memory_frames {control.config.memory_frames}; the control must be "
                             "trained with model.adapter_options.memory_frames=0")
        result = tier_b(load_model(args.tami), control, args.photos)
        result.update(model=str(args.tami), control=str(args.control), protocol=PROTOCOL["tier_b"],
                      **_environment(started))
        path = args.out / "tier_b.json"
        print(tier_b_markdown(result))
    path.write_text(json.dumps(result, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
