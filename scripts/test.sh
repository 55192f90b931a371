#!/usr/bin/env bash
# Installs dependencies, builds, starts the local SLURM cluster the SLURM tests use, and
# runs every test under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
if [ -x scripts/slurm-local.sh ]; then
  bash scripts/slurm-local.sh start || echo "test.sh: local SLURM did not start; SLURM tests will report SKIPPED"
fi
cd build
# Serial: several suites share a scratch folder per fixture (tests of one suite must not race).
ctest --output-on-failure --timeout 900
