#!/usr/bin/env bash
# Train the bundled demo model and install it as src/tami/weights/demo.safetensors.
#
#   tools/train_bundled.sh                                   # the recipe that made the bundled weights
#   TAMI="python -m tami.cli.main" RUNS=/tmp/runs tools/train_bundled.sh
#   EXTRA_IMAGE="--set train.iterations=20" EXTRA_VIDEO="--set train.iterations=10" tools/train_bundled.sh  # smoke
#
# Recipe = configs/demo_image.yaml and configs/demo_video.yaml plus the overrides below. Stage image trains the Retinexformer on synthetic
# low-light frames; stage video trains the TAMI adapter on clips with that backbone frozen. IMAGE_LIMIT and
# VIDEO_LIMIT (seconds, 0 = none) stop a stage with SIGTERM; the best validated export is then used.
set -euo pipefail
TAMI=${TAMI:-tami}
RUNS=${RUNS:-runs}
IMAGE_LIMIT=${IMAGE_LIMIT:-0}
VIDEO_LIMIT=${VIDEO_LIMIT:-0}
WORKERS=${WORKERS:-0}

# CPU-sized (the bundled model was trained on a shared 2-core CPU): a narrow Retinexformer (n_feat 16,
# num_blocks [1, 1, 1]) and its adapter preset, small crops, short runs.
IMAGE_RECIPE=(
  --set "model.backbone_options={n_feat: 16, num_blocks: [1, 1, 1]}"
  --set "data.synthetic.videos=56" --set "data.synthetic.frames=4" --set data.crop=96
  --set train.batch_size=4 --set train.iterations=2000 --set optim.lr=1.0e-3 --set val.every=250
  --set train.checkpoint_every=250 --set "train.workers=$WORKERS"
  --set "val.data.synthetic.videos=2" --set "val.data.synthetic.frames=8" --set val.data.clip_len=8
)
VIDEO_RECIPE=(
  --set "data.synthetic.videos=28" --set "data.synthetic.frames=12" --set data.crop=96 --set data.clip_len=4
  --set data.synthetic.flicker=0.2 --set train.batch_size=2 --set train.iterations=2500 --set optim.lr=2.0e-3
  --set optim.warmup=50 --set val.every=250 --set train.checkpoint_every=250 --set "train.workers=$WORKERS"
  --set "loss={charbonnier: 1.0, l_sm: 0.1, l_i3a: 1.0, l_im: 0.1}"
  --set "val.data.synthetic.videos=2" --set "val.data.synthetic.frames=12" --set val.data.clip_len=12
)

limit() { if [ "$1" -gt 0 ]; then echo "timeout -s TERM $1"; fi; }
export_of() {  # the final export if the stage finished, else the best validated one
  if [ -f "$1/export/$2" ]; then echo "$1/export/$2"; else echo "$1/export/best/$2"; fi
}

# shellcheck disable=SC2086  # EXTRA_* are meant to be split into words
$(limit "$IMAGE_LIMIT") $TAMI train configs/demo_image.yaml -o "$RUNS/demo_image" "${IMAGE_RECIPE[@]}" \
  ${EXTRA_IMAGE:-} || [ $? -eq 124 ]
backbone=$(export_of "$RUNS/demo_image" backbone.safetensors)
# shellcheck disable=SC2086
$(limit "$VIDEO_LIMIT") $TAMI train configs/demo_video.yaml -o "$RUNS/demo_video" "${VIDEO_RECIPE[@]}" \
  --set "model.backbone_weights=$backbone" ${EXTRA_VIDEO:-} || [ $? -eq 124 ]
model=$(export_of "$RUNS/demo_video" model.safetensors)
mkdir -p src/tami/weights
cp "$model" src/tami/weights/demo.safetensors
echo "installed $model as src/tami/weights/demo.safetensors"
