#!/usr/bin/env bash
# Train the bundled demo model with the committed recipe and install it as src/tami/weights/demo.safetensors.
#
#   tools/train_bundled.sh                 # both stages, then the held-out evaluation
#   TAMI="python -m tami.cli.main" RUNS=/tmp/runs tools/train_bundled.sh
#
# Stage image (configs/demo_image.yaml) trains a Retinexformer on synthetic low-light frames; stage video
# (configs/demo_video.yaml) trains the TAMI adapter on clips with that backbone frozen. IMAGE_LIMIT/VIDEO_LIMIT
# (seconds) stop a stage early with SIGTERM on slow machines; the best validated export is then used.
set -euo pipefail
TAMI=${TAMI:-tami}
RUNS=${RUNS:-runs}
IMAGE_LIMIT=${IMAGE_LIMIT:-0}
VIDEO_LIMIT=${VIDEO_LIMIT:-0}

limit() { if [ "$1" -gt 0 ]; then echo "timeout -s TERM $1"; fi; }
export_of() {  # final export if the stage finished, else the best validated one
  if [ -f "$1/export/$2" ]; then echo "$1/export/$2"; else echo "$1/export/best/$2"; fi
}

$(limit "$IMAGE_LIMIT") $TAMI train configs/demo_image.yaml -o "$RUNS/demo_image" || [ $? -eq 124 ]
backbone=$(export_of "$RUNS/demo_image" backbone.safetensors)
$(limit "$VIDEO_LIMIT") $TAMI train configs/demo_video.yaml -o "$RUNS/demo_video" \
  --set "model.backbone_weights=$backbone" || [ $? -eq 124 ]
model=$(export_of "$RUNS/demo_video" model.safetensors)
mkdir -p src/tami/weights
cp "$model" src/tami/weights/demo.safetensors
echo "installed $model as src/tami/weights/demo.safetensors"
