#!/usr/bin/env bash
# Installs everything greenfound's build, tests and demo need, from Debian 12 packages only.
# Idempotent: packages already present are left alone; safe to run on every CI start.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread libopenblas-pthread-dev
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  nlohmann-json3-dev libcli11-dev libssl-dev
  googletest libgtest-dev libgmock-dev
  libopencv-imgcodecs-dev libopencv-imgproc-dev libopencv-core-dev libjpeg-dev
  python3 python3-numpy python3-h5py python3-sklearn python3-scipy python3-torch python3-pil
  chromium fonts-dejavu-core
  munge slurmctld slurmd slurm-client slurm-wlm-basic-plugins
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

# Debian's LibTorch calls BLAS through the alternatives system; without OpenBLAS selected it
# falls back to reference BLAS (~15x slower matmuls).
arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
for name in "libblas.so.3-$arch" "liblapack.so.3-$arch"; do
  alt=$(update-alternatives --list "$name" 2>/dev/null | grep openblas-pthread | head -n1 || true)
  [ -n "$alt" ] && $SUDO update-alternatives --set "$name" "$alt" >/dev/null
done
echo "install-deps: ok (BLAS: $(readlink -f /usr/lib/$arch/libblas.so.3))"
