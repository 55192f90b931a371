#!/usr/bin/env bash
# Configures and builds greenfound into ./build (Release, Ninja): the given targets (e.g.
# `greenfound` for the demo), or everything (library, CLI, tests, benchmarks) when none.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
targets=()
for t in "$@"; do targets+=(--target "$t"); done
cmake --build build --parallel "$(nproc)" "${targets[@]}"
