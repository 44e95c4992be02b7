#!/usr/bin/env bash
# Copyright (c) OpenMMLab. All rights reserved.
#
# The GPU path of mmps, checked in a few minutes on one GPU:
#   1. the CUDA tests (tests/test_cuda, marker `cuda`): DeformRoIPoolPack and
#      the DCNs forward and backward, one training iteration of the reference
#      config at reference scale (batch 2, fp32 and AMP), gallery and query
#      prediction;
#   2. training speed of the reference config at batch 4 on synthetic
#      PRW-format 1920x1080 frames (fp32 and AMP) with the peak GPU memory;
#   3. inference speed at the reference test scale 1500x900 for the re-id
#      modes plain / scene / fused / fused_all_proposals.
# Prints one `name: value` line per figure (as every benchmark of
# tools/analysis_tools), optionally also into a JSON file; exits non-zero
# when a CUDA test failed. Nothing is downloaded: the ResNet-50 starts from
# its random init (speed does not depend on the weights).
#
# Usage:
#   bash tools/analysis_tools/gpu_check.sh [--json FILE] [--config CONFIG]
#       [--device DEVICE] [--frame-size W H] [--scale W H]
#       [--train-iters N] [--infer-images N] [--work-dir DIR]
# Defaults: configs/dicl_prw.py on cuda, 1920 1080 frames, test scale
# 1500 900, 10 timed training iterations, 10 inference images.
# `--device cpu --config configs/dicl_synthetic_prw.py --frame-size 200 120`
# runs the same steps on a CPU (the CUDA tests are then skipped, AMP too).
set -euo pipefail

CONFIG=configs/dicl_prw.py
DEVICE=cuda
FRAME_W=1920
FRAME_H=1080
SCALE_W=1500
SCALE_H=900
TRAIN_ITERS=10
INFER_IMAGES=10
JSON=
WORK=
while [ $# -gt 0 ]; do
  case "$1" in
    --json) JSON="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --device) DEVICE="$2"; shift 2 ;;
    --frame-size) FRAME_W="$2"; FRAME_H="$3"; shift 3 ;;
    --scale) SCALE_W="$2"; SCALE_H="$3"; shift 3 ;;
    --train-iters) TRAIN_ITERS="$2"; shift 2 ;;
    --infer-images) INFER_IMAGES="$2"; shift 2 ;;
    --work-dir) WORK="$2"; shift 2 ;;
    -h|--help) sed -n '3,27p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
if [ -z "$WORK" ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
mkdir -p "$WORK"
case "$DEVICE" in
  cuda*)
    "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' || {
      echo "gpu_check.sh: CUDA is not available here (torch" \
        "$("$PYTHON" -c 'import torch; print(torch.__version__)')); on a CPU" \
        "run: --device cpu --config configs/dicl_synthetic_prw.py" \
        "--frame-size 200 120" >&2
      exit 1
    } ;;
esac
export PYTHONUNBUFFERED=1
# nothing is downloaded or needed: the backbone starts from its random init
NO_CKPT=model.backbone.init_cfg=None
log() { echo "[gpu_check $(date +%T)] $*" >&2; }

# 1. the CUDA tests (their own 1920x1080 set)
log "CUDA tests (tests/test_cuda) ..."
tests_rc=0
"$PYTHON" -m pytest tests/test_cuda -m cuda -q -p no:cacheprovider \
  --junitxml="$WORK/cuda_tests.xml" >"$WORK/cuda_tests.log" 2>&1 || tests_rc=$?
tail -n 3 "$WORK/cuda_tests.log" >&2
if [ "$tests_rc" -ne 0 ] && [ "$tests_rc" -ne 5 ]; then
  # 5: nothing collected (every test skipped or deselected)
  grep -E '^(FAILED|ERROR)' "$WORK/cuda_tests.log" >&2 || true
fi

# 2./3. one synthetic PRW-format set for both benchmarks
log "synthetic PRW-format set, ${FRAME_W}x${FRAME_H} frames ..."
"$PYTHON" - "$WORK/prw" "$FRAME_W" "$FRAME_H" "$INFER_IMAGES" <<'EOF'
import sys
from mmps.datasets.synthetic import make_synthetic_prw
root, w, h, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
# about half of the frames are test frames: enough gallery images for n
make_synthetic_prw(root, seed=0, num_images=max(16, 2 * n + 8), num_ids=12,
                   image_size=(h, w))
EOF

log "training speed, batch 4, fp32 ..."
"$PYTHON" tools/analysis_tools/benchmark_train.py "$CONFIG" \
  --data-root "$WORK/prw" --device "$DEVICE" --batch-size 4 --models dicl \
  --num-iters "$TRAIN_ITERS" --warmup 2 --cfg-options $NO_CKPT --json "$WORK/train_fp32.json" \
  >"$WORK/train_fp32.log" 2>&1 || { tail -n 20 "$WORK/train_fp32.log" >&2; exit 1; }
case "$DEVICE" in
  cuda*)
    log "training speed, batch 4, AMP ..."
    "$PYTHON" tools/analysis_tools/benchmark_train.py "$CONFIG" \
      --data-root "$WORK/prw" --device "$DEVICE" --batch-size 4 --models dicl \
      --num-iters "$TRAIN_ITERS" --warmup 2 --amp --cfg-options $NO_CKPT --json "$WORK/train_amp.json" \
      >"$WORK/train_amp.log" 2>&1 || { tail -n 20 "$WORK/train_amp.log" >&2; exit 1; } ;;
  *) log "AMP needs CUDA: not timed on $DEVICE" ;;
esac

log "inference speed at ${SCALE_W}x${SCALE_H} ..."
"$PYTHON" tools/analysis_tools/benchmark_inference.py "$CONFIG" \
  --data-root "$WORK/prw" --device "$DEVICE" --scale "$SCALE_W" "$SCALE_H" \
  --num-images "$INFER_IMAGES" --repeats 2 --cfg-options $NO_CKPT --json "$WORK/inference.json" \
  >"$WORK/inference.log" 2>&1 || { tail -n 20 "$WORK/inference.log" >&2; exit 1; }

# the figures: one `name: value` line each
"$PYTHON" - "$WORK" "$CONFIG" "$DEVICE" "$JSON" <<'EOF'
import json
import os.path as osp
import sys
import xml.etree.ElementTree as ET

import torch

from mmps.utils import report_figures

work, config, device, json_file = sys.argv[1:5]
figures = {'config': config, 'device': device, 'torch': torch.__version__}
if torch.cuda.is_available() and device.startswith('cuda'):
    figures['gpu'] = torch.cuda.get_device_name(device)
    figures['cuda'] = torch.version.cuda
xml = osp.join(work, 'cuda_tests.xml')
suite = ET.parse(xml).getroot() if osp.isfile(xml) else None
if suite is not None and suite.tag == 'testsuites':
    suite = suite[0]
counts = {k: int(suite.get(k, 0)) if suite is not None else 0
          for k in ('tests', 'failures', 'errors', 'skipped')}
figures['cuda_tests_passed'] = (counts['tests'] - counts['failures'] -
                                counts['errors'] - counts['skipped'])
figures['cuda_tests_failed'] = counts['failures'] + counts['errors']
figures['cuda_tests_skipped'] = counts['skipped']
for tag in ('fp32', 'amp'):
    path = osp.join(work, f'train_{tag}.json')
    if not osp.isfile(path):
        continue
    train = json.load(open(path))
    figures['train_batch_size'] = train['batch_size']
    figures['train_input_pixels'] = train['input_pixels']
    figures[f'train_{tag}_step_s'] = train['dicl_step_s']
    figures[f'train_{tag}_it_per_s'] = train['dicl_it_per_s']
    if 'dicl_peak_mem_gib' in train:
        figures[f'train_{tag}_peak_mem_gib'] = train['dicl_peak_mem_gib']
infer = json.load(open(osp.join(work, 'inference.json')))
figures['infer_input_pixels'] = infer['input_pixels']
for mode in ('plain', 'scene', 'fused', 'fused_all_proposals'):
    figures[f'infer_{mode}_img_per_s'] = infer[f'{mode}_img_per_s']
if 'peak_mem_gib' in infer:
    figures['infer_peak_mem_gib'] = infer['peak_mem_gib']
report_figures(figures, json_file or None)
sys.exit(1 if figures['cuda_tests_failed'] else 0)
EOF
