#!/usr/bin/env bash
# Train the bundled demo model and install it as src/tami/weights/demo.safetensors.
#
#   tools/train_bundled.sh                                   # the recipe that made the bundled weights (GPU)
#   TAMI="python -m tami.cli.main" RUNS=/tmp/runs tools/train_bundled.sh
#   EXTRA_IMAGE="--set train.iterations=20" EXTRA_VIDEO="--set train.iterations=10" tools/train_bundled.sh  # smoke
#
# Recipe = configs/demo_image.yaml and configs/demo_video.yaml plus the GPU-sized overrides below (released
# Retinexformer width, more synthetic data, longer runs). Stage image trains the Retinexformer on synthetic
# low-light frames; stage video trains the TAMI adapter on clips with that backbone frozen. IMAGE_LIMIT and
# VIDEO_LIMIT (seconds, 0 = none) stop a stage with SIGTERM; the best validated export is then used.
set -euo pipefail
TAMI=${TAMI:-tami}
RUNS=${RUNS:-runs}
IMAGE_LIMIT=${IMAGE_LIMIT:-0}
VIDEO_LIMIT=${VIDEO_LIMIT:-0}
WORKERS=${WORKERS:-4}

IMAGE_RECIPE=(
  --set "model.backbone_options={n_feat: 40, num_blocks: [1, 2, 2]}"
  --set "data.synthetic.videos=112" --set "data.synthetic.size=[160, 160]" --set data.crop=128
  --set train.batch_size=8 --set train.iterations=5000 --set optim.warmup=200 --set val.every=500
  --set train.checkpoint_every=500 --set "train.workers=$WORKERS"
)
VIDEO_RECIPE=(
  --set "data.synthetic.videos=64" --set "data.synthetic.size=[160, 160]" --set data.crop=128
  --set train.batch_size=4 --set train.iterations=2500 --set val.every=250 --set train.checkpoint_every=250
  --set "loss={charbonnier: 1.0, l_sm: 0.1, l_i3a: 1.0, l_im: 0.1}" --set "train.workers=$WORKERS"
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
