#!/usr/bin/env bash
# Installs dependencies, builds, and runs the main job (`greenfound demo`) on its built-in
# default: synthetic fundus data, 2 local ranks, results and report.html in ./demo-out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh greenfound
./build/launcher/greenfound demo --out demo-out "$@"
