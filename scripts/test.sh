#!/usr/bin/env bash
# Installs dependencies, builds, starts the local SLURM cluster the SLURM tests use, and
# runs every test under ctest — the `multinode` ones too: each starts and stops its own
# cluster of hosts in network namespaces (scripts/cluster-local.sh; SKIPPED without root) —
# then the ASan+UBSan build: its unit tests, and every fuzz target for 20 s (scripts/fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
echo "test.sh: built after ${SECONDS}s"
if [ -x scripts/slurm-local.sh ]; then
  bash scripts/slurm-local.sh start || echo "test.sh: local SLURM did not start; SLURM tests will report SKIPPED"
fi
cd build
# Serial: the 2-rank MPI jobs and the watchdog's deadlines assume the cores are theirs.
ctest --output-on-failure --timeout 900
echo "test.sh: suite done after ${SECONDS}s"
cd ..
bash scripts/fuzz.sh --tests 10
echo "test.sh: sanitizer build, its tests and the fuzz smoke runs done after ${SECONDS}s"
