#!/usr/bin/env bash
# Train the bundled models and install them as src/tami/weights/demo.safetensors (TAMI) and
# demo_control.safetensors (the same adapter trained without memory), as docs/MODEL_CARD.md describes.
#
#   tools/train_bundled.sh                                     # the whole recipe (about a day on a 2-core CPU)
#   PHOTOS=~/tami-photos RUNS=/tmp/runs tools/train_bundled.sh
#   EXTRA_IMAGE="--set train.iterations=20" EXTRA_VIDEO="--set train.iterations=10" RUNS=/tmp/r WEIGHTS=/tmp/w \
#       tools/train_bundled.sh                                 # a smoke run that installs nothing
#
# 1. Fetch the photo pool (tools/fetch_photos.py) into $PHOTOS unless it is there.
# 2. Stage image, both backbone candidates side by side (one thread each): configs/bundled_image.yaml.
# 3. Choose the backbone by the registered rule (tools/choose_backbone.py: final validation PSNR, HVI-CIDNet
#    within 0.3 dB).
# 4. Stage video, TAMI and its no-memory control side by side on the chosen backbone: configs/bundled_video.yaml.
# 5. Install both final exports.
#
# Every stage resumes where it stopped: run the script again after an interruption (finished runs are skipped).
set -euo pipefail
TAMI=${TAMI:-tami}
PYTHON=${PYTHON:-python}
RUNS=${RUNS:-runs}
PHOTOS=${PHOTOS:-$RUNS/photo-pool}
WEIGHTS=${WEIGHTS:-src/tami/weights}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-1}

SOURCES=(--set "data.synthetic.sources=$PHOTOS/train" --set "val.data.synthetic.sources=$PHOTOS/val")
backbone_args() {  # the stage-image options of candidate $1, into ARGS
  case $1 in
    retinexformer) ARGS=(--set model.backbone=retinexformer --set "model.backbone_options={n_feat: 16, num_blocks: [1, 1, 1]}") ;;
    hvi_cidnet) ARGS=(--set model.backbone=hvi_cidnet --set "model.backbone_options={channels: [16, 16, 32, 64]}") ;;
  esac
}
cell_args() {  # 8-pixel memory and IGFE cells on the injection map of $1 (H/4 Retinexformer, H/8 HVI-CIDNet)
  case $1 in
    retinexformer) ARGS=(--set model.adapter_options.memory_scale=0.5 --set model.adapter_options.igfe_pool=2) ;;
    hvi_cidnet) ARGS=(--set model.adapter_options.memory_scale=1.0 --set model.adapter_options.igfe_pool=1) ;;
  esac
}
wait_all() { local pid; for pid in "$@"; do wait "$pid"; done; }  # fails (set -e) if any run failed

finished() { [ -f "$1/export/$2" ]; }
train() {  # train CONFIG OUT ARGS...: start, resume, or skip a finished run
  local config=$1 out=$2 file=$3
  shift 3
  if finished "$out" "$file"; then echo "$out: finished"; return; fi
  if [ -d "$out" ]; then $TAMI train "$out" --resume auto; else $TAMI train "$config" -o "$out" "$@"; fi
}

[ -d "$PHOTOS/train" ] && [ -d "$PHOTOS/val" ] || $PYTHON tools/fetch_photos.py "$PHOTOS" --split train --split val

pids=()
for arch in retinexformer hvi_cidnet; do
  backbone_args "$arch"
  # shellcheck disable=SC2086  # EXTRA_IMAGE is meant to be split into words
  train configs/bundled_image.yaml "$RUNS/bundled_image_$arch" backbone.safetensors "${SOURCES[@]}" \
    "${ARGS[@]}" ${EXTRA_IMAGE:-} &
  pids+=($!)
done
wait_all "${pids[@]}"

chosen=$($PYTHON tools/choose_backbone.py "$RUNS/bundled_image_retinexformer" "$RUNS/bundled_image_hvi_cidnet" \
  --prefer "$RUNS/bundled_image_hvi_cidnet")
arch=${chosen##*bundled_image_}
echo "bundled backbone: $arch"

cell_args "$arch"
pids=()
for variant in tami control; do
  frames=$([ "$variant" = control ] && echo 0 || echo 5)
  # shellcheck disable=SC2086
  train configs/bundled_video.yaml "$RUNS/bundled_video_$variant" model.safetensors "${SOURCES[@]}" \
    --set "model.backbone=$arch" --set "model.backbone_weights=$chosen/export/backbone.safetensors" "${ARGS[@]}" \
    --set "model.adapter_options.memory_frames=$frames" ${EXTRA_VIDEO:-} &
  pids+=($!)
done
wait_all "${pids[@]}"

mkdir -p "$WEIGHTS"
cp "$RUNS/bundled_video_tami/export/model.safetensors" "$WEIGHTS/demo.safetensors"
cp "$RUNS/bundled_video_control/export/model.safetensors" "$WEIGHTS/demo_control.safetensors"
echo "installed $WEIGHTS/demo.safetensors and $WEIGHTS/demo_control.safetensors"
