"""Validation-only diagnostic: does the bundled TAMI (EMA at its latest checkpoint) score better when frame 0 is
written from the ground truth (as in training) than from its own output (as at inference)?"""
import sys, numpy as np, torch
sys.path.insert(0, "benchmarks")
from memory import run_arm
from tami.adapter.io import load_model
from tami.data.synthetic import load_sources, synthesize
from tami.metrics import psnr
torch.set_num_threads(1)
run = sys.argv[1]
model = load_model(f"{run}/export/best/model.safetensors")
ck = torch.load(f"{run}/checkpoints/last.pt", weights_only=True, map_location="cpu")
model.load_state_dict(ck["ema"]["shadow"], strict=False); model.eval()
print("step", ck["step"])
images = load_sources("/work/photo-pool/val")
rows = []
for i in range(6):
    name, img = images[i % len(images)]
    clip = synthesize(img, frames=16, size=(128, 128), seed=50_000 + i, preset="v2", stratum=("static", "pan", "content")[i % 3])
    chw = lambda v: np.ascontiguousarray(v.transpose(0, 3, 1, 2))
    own = run_arm(model, clip.lq, "tami"); gt0 = run_arm(model, clip.lq, "tami", gt0=clip.gt[0])
    st = run_arm(model, clip.lq, "stateless"); bb = run_arm(model, clip.lq, "backbone")
    r = [psnr(chw(o[1:]), chw(clip.gt[1:])) for o in (bb, st, own, gt0)]
    rows.append(r); print(name, "backbone %.2f stateless %.2f memory(own frame 0) %.2f memory(GT frame 0) %.2f" % tuple(r), flush=True)
print("mean", np.mean(rows, 0).round(2))
