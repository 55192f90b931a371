#!/usr/bin/env bash
# Configures and builds greenfound into ./build (Release, Ninja) against the LibTorch of the
# project's venv (scripts/install-deps.sh): the given targets (e.g. `greenfound` for the
# demo), or everything (library, CLI, tests, benchmarks) when none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv-path.sh
launcher=()
if command -v ccache >/dev/null; then
  # One cache for every clone (CI clones into a new folder each run): paths below the
  # checkout are hashed relative to it, and TUs using the LibTorch PCH stay cacheable.
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
mkdir -p build
# The configure log stays in build/configure.log; its greenfound lines (LibTorch, CUDA, NCCL) are shown.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGF_PYTHON="$GF_PYTHON" "${launcher[@]}" >build/configure.log 2>&1 ||
  { cat build/configure.log >&2; exit 1; }
grep -E '^-- greenfound:' build/configure.log
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build --parallel "$(nproc)" "${targets[@]}"
