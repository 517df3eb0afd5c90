#!/usr/bin/env bash
# Install the pinned CPU build of torch into a virtual environment, or refuse with a clear message
# instead of downloading gigabytes by surprise. scripts/test.sh calls it; the README's demo needs no torch.
#   scripts/install_torch.sh [--check] [PYTHON]     PYTHON: default .venv/bin/python
#
# On Linux, PyPI's torch wheel is the CUDA build (about 20 nvidia-*/triton packages, several GB). The
# CPU build is the one with a "+cpu" local version, from PyTorch's CPU wheel index or from whatever
# index pip is already configured with:
#   EDGETALLY_TORCH_INDEX=https://download.pytorch.org/whl/cpu scripts/test.sh
# `torch==2.13.0` picks 2.13.0+cpu whenever an index offers it, so this asks the indexes which
# versions they have (`pip index versions`: index pages only) and, on Linux, refuses when no +cpu
# build is among them. (`pip install --dry-run --report` would name the nvidia packages, but it
# downloads every wheel to do so: 2.5 GB in 105 s here with pip 26.3.)
# EDGETALLY_ALLOW_CUDA_TORCH=1 installs whatever resolves (you do want CUDA).
# --check: only look and judge (exit 0 = a CPU build would come, 1 = the CUDA build would).
set -euo pipefail
mode=install
if [ "${1:-}" = "--check" ]; then mode=check; shift; fi
PY=${1:-.venv/bin/python}
VERSION=2.13.0

if [ "$mode" = install ] && "$PY" -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '$VERSION')" 2>/dev/null; then
  exit 0  # already there
fi
index=()
if [ -n "${EDGETALLY_TORCH_INDEX:-}" ]; then index=(--extra-index-url "$EDGETALLY_TORCH_INDEX"); fi

if [ -z "${EDGETALLY_ALLOW_CUDA_TORCH:-}" ] || [ "$mode" = check ]; then
  versions=$("$PY" -m pip index versions torch ${index[@]+"${index[@]}"} 2>/dev/null | grep -i "^Available versions:" || true)
  if [[ " ${versions//,/ } " == *" $VERSION+cpu "* ]]; then
    build="$VERSION+cpu"
  elif [ "$(uname -s)" != Linux ]; then
    build="$VERSION (PyPI's build for $(uname -s) has no CUDA)"
  elif [[ " ${versions//,/ } " == *" $VERSION "* ]]; then
    cat >&2 <<EOF
error: pip would install the CUDA build of torch==$VERSION (PyPI's Linux wheel: about 20 nvidia/triton
packages, several GB); no index pip knows offers $VERSION+cpu. The tests need only the CPU build: point
pip at PyTorch's CPU wheel index and run again:
  EDGETALLY_TORCH_INDEX=https://download.pytorch.org/whl/cpu scripts/test.sh
(EDGETALLY_ALLOW_CUDA_TORCH=1 scripts/test.sh installs the CUDA build anyway.)
EOF
    exit 1
  else
    echo "error: no index pip knows offers torch==$VERSION (${versions:-none found}); set EDGETALLY_TORCH_INDEX" >&2
    exit 1
  fi
  if [ "$mode" = check ]; then
    echo "ok: torch==$VERSION resolves to $build"
    exit 0
  fi
fi
"$PY" -m pip install -q ${index[@]+"${index[@]}"} "torch==$VERSION"
