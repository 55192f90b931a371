#!/usr/bin/env bash
# Installs everything greenfound's build, tests and demo need: Debian 12 packages, and one
# Python venv outside the checkout (scripts/venv-path.sh) holding the pinned PyPI packages of
# scripts/requirements.txt — LibTorch with CUDA (torch's wheel) and the test peers (timm,
# scikit-learn, scipy, h5py, codecarbon, ...). The CUDA toolkit (nvcc, cuDNN, NCCL headers)
# comes with the machine under /usr/local/cuda; nothing here runs on a GPU.
# Idempotent and quiet when everything is there: safe to run on every CI start.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv-path.sh

pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates ccache
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  nlohmann-json3-dev libcli11-dev libssl-dev
  googletest libgtest-dev libgmock-dev
  libopencv-imgcodecs-dev libopencv-imgproc-dev libopencv-core-dev libjpeg-dev
  python3 python3-venv
  chromium fonts-dejavu-core
  munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins
  iproute2 util-linux
)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt/dpkg may hold the lock on a fresh machine: retry instead of failing.
  for i in $(seq 1 60); do
    if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
      break
    fi
    [ "$i" -eq 60 ] && { echo "install-deps: apt-get failed" >&2; exit 1; }
    sleep 5
  done
fi

[ -x /usr/local/cuda/bin/nvcc ] || echo "install-deps: warning: no CUDA toolkit at /usr/local/cuda; the build needs nvcc, its headers and NCCL's" >&2

# The venv is built from Debian's interpreter (never the first python3 on PATH), and
# reinstalled only when requirements.txt changed since the last complete install.
want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
stamp=$GF_VENV/.greenfound-requirements
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "install-deps: installing the Python venv at $GF_VENV (LibTorch + CUDA wheels, ~5 GB, a few minutes)"
  [ -x "$GF_PYTHON" ] || { mkdir -p "$(dirname "$GF_VENV")" && /usr/bin/python3 -m venv "$GF_VENV"; }
  "$GF_PYTHON" -m pip install -q --disable-pip-version-check --no-cache-dir -r scripts/requirements.txt
  echo "$want" >"$stamp"
fi
echo "install-deps: ok (venv $GF_VENV, torch $("$GF_PYTHON" -c 'import importlib.metadata as m; print(m.version("torch"))'))"
