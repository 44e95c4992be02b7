#!/usr/bin/env bash
# Set up an environment for mmps in the active Python (a venv / conda env of your choice).
#
#   1. keeps an installed torch; installs torch when none (TORCH_SPEC, TORCH_INDEX_URL);
#   2. mmcv 2.1.0 with compiled ops: keeps a working install, else installs a wheel that
#      matches this torch from the local wheelhouse (or MMPS_MMCV_FIND_LINKS), else builds
#      one from the PyPI source (MMCV_WITH_OPS=1, setuptools<80, --no-build-isolation)
#      and keeps it in the wheelhouse for the next time;
#   3. mmengine, mmdet and mmps (editable, with the `tests` extra), under the pinned
#      constraints of requirements/constraints.txt;
#   4. verifies the result (mmcv.ops kernels run, mmdet and mmps import).
#
# Environment variables:
#   PYTHON                 interpreter to install into (default: python3)
#   TORCH_SPEC             torch requirement when torch is missing (default: torch==2.13.0)
#   TORCH_INDEX_URL        index for torch, e.g. https://download.pytorch.org/whl/cpu
#   MMPS_WHEELHOUSE        where built mmcv wheels are kept (default: <repo>/.wheelhouse)
#   MMPS_MMCV_FIND_LINKS   extra folder with prebuilt mmcv wheels (a cache, never required)
#   MMCV_MAX_JOBS          parallel compile jobs for the mmcv build (default: nproc)
#   FORCE_CUDA=1           build mmcv's CUDA ops (CUDA machines; needs nvcc / CUDA_HOME)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
MMCV_VERSION=2.1.0
WHEELHOUSE="${MMPS_WHEELHOUSE:-$REPO/.wheelhouse}"
PIP=("$PY" -m pip)

say() { printf '[mmps install] %s\n' "$*"; }
die() { printf '[mmps install] ERROR: %s\n' "$*" >&2; exit 1; }
t0=$(date +%s)

"$PY" -c 'import sys; assert sys.version_info >= (3, 8)' 2>/dev/null \
  || die "'$PY' is not a Python >= 3.8 interpreter (set PYTHON=...)"

# 1. torch ---------------------------------------------------------------------------------
if "$PY" -c 'import torch' 2>/dev/null; then
  say "keeping installed torch $("$PY" -c 'import torch; print(torch.__version__)')"
else
  spec="${TORCH_SPEC:-torch==2.13.0}"
  say "no torch found: installing $spec"
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${PIP[@]}" install "$spec" --index-url "$TORCH_INDEX_URL"
  else
    "${PIP[@]}" install "$spec"
  fi
  "$PY" -c 'import torch' || die "torch was installed but does not import"
fi

# The wheelhouse is keyed by what an mmcv binary depends on: torch build, CUDA, Python.
key=$("$PY" -c 'import sys, torch; cu = torch.version.cuda or "none"; print(f"torch{torch.__version__}-cu{cu}-cp{sys.version_info[0]}{sys.version_info[1]}".replace("+", "_"))')
house="$WHEELHOUSE/$key"
mkdir -p "$house"

mmcv_ok() {
  "$PY" - <<'PY' 2>/dev/null
import mmcv, torch
from mmcv.ops import nms
assert mmcv.__version__ == '2.1.0', mmcv.__version__
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.]])
nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
PY
}

install_wheel_from() {  # $1: folder; installs mmcv from a wheel there, returns 1 if none fits
  local dir="$1"
  ls "$dir"/mmcv-"$MMCV_VERSION"-*.whl >/dev/null 2>&1 || return 1
  say "trying the mmcv wheel in $dir"
  "${PIP[@]}" install --only-binary mmcv --find-links "$dir" "mmcv==$MMCV_VERSION" \
    -c "$REPO/requirements/constraints.txt" || return 1
  if mmcv_ok; then return 0; fi
  say "the wheel in $dir does not work with this torch: removing it from the environment"
  "${PIP[@]}" uninstall -y mmcv >/dev/null
  return 1
}

# 2. mmcv ----------------------------------------------------------------------------------
if mmcv_ok; then
  say "keeping installed mmcv $MMCV_VERSION (ops load)"
elif install_wheel_from "$house"; then
  say "mmcv installed from the wheelhouse $house"
elif [ -n "${MMPS_MMCV_FIND_LINKS:-}" ] && install_wheel_from "$MMPS_MMCV_FIND_LINKS"; then
  say "mmcv installed from $MMPS_MMCV_FIND_LINKS; keeping a copy in $house"
  cp "$MMPS_MMCV_FIND_LINKS"/mmcv-"$MMCV_VERSION"-*.whl "$house"/ 2>/dev/null || true
else
  say "building mmcv $MMCV_VERSION with ops from source (30-45 min on 2 CPU cores; done once)"
  tb=$(date +%s)
  # mmcv's setup.py imports pkg_resources (setuptools<80) and torch (no build isolation, or
  # pip would download another, multi-GB torch into the build environment).
  "${PIP[@]}" install "setuptools<80" wheel ninja
  build=$(mktemp -d)
  MMCV_WITH_OPS=1 MAX_JOBS="${MMCV_MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" wheel --no-build-isolation --no-deps --no-binary mmcv \
    "mmcv==$MMCV_VERSION" -w "$build" || die "the mmcv build failed (see above)"
  cp "$build"/mmcv-"$MMCV_VERSION"-*.whl "$house"/
  rm -rf "$build"
  say "built mmcv in $(( $(date +%s) - tb )) s; wheel kept in $house"
  install_wheel_from "$house" || die "the freshly built mmcv wheel does not load its ops"
fi

# 3. mmengine, mmdet, mmps -----------------------------------------------------------------
say "installing mmps (editable) with mmengine, mmdet and the test tools"
"${PIP[@]}" install -c "$REPO/requirements/constraints.txt" -e "$REPO[tests]"

# 4. verify --------------------------------------------------------------------------------
"$PY" - <<'PY' || die "verification failed: see the traceback above"
import torch
import mmcv, mmcv.ops, mmdet, mmengine
from mmcv.ops import DeformConv2dPack, nms, roi_align
import mmps
from mmps.utils import register_all_modules
register_all_modules()
x = torch.rand(1, 4, 8, 8)
DeformConv2dPack(4, 4, 3, padding=1)(x)
roi_align(x, torch.tensor([[0., 1., 1., 6., 6.]]), (2, 2), 1.0, 0, 'avg', True)
print(f'torch {torch.__version__} | mmcv {mmcv.__version__} | mmengine '
      f'{mmengine.__version__} | mmdet {mmdet.__version__} | mmps {mmps.__version__}'
      f' | CUDA available: {torch.cuda.is_available()}')
PY
say "done in $(( $(date +%s) - t0 )) s"
