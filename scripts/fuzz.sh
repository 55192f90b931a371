#!/usr/bin/env bash
# The ASan+UBSan build (clang-14, -O0) in ./build-fuzz: the libFuzzer targets of fuzz/ and, with
# --tests, the in-process unit tests of the libraries those link (GF_SANITIZED_TESTS in
# tests/CMakeLists.txt): one instrumented build serves both. --tests builds and runs those tests
# under ctest first (label `sanitize`; any ASan, LeakSanitizer or UBSan report fails a test).
# Then each fuzz target (default: every one in fuzz/) runs for SECONDS (default 60) from its
# seed corpus in fuzz/corpus/<target>/, two at a time. New inputs go to
# build-fuzz/corpus/<target>/, each run's log to build-fuzz/logs/<target>.log; an input that
# crashes, leaks, allocates more than 2 GB or runs past 10 s is kept in
# build-fuzz/findings/<target>/ and the script fails. CI runs `scripts/fuzz.sh --tests 20`.
#   usage: scripts/fuzz.sh [--tests] [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv-path.sh
with_tests=0
if [ "${1:-}" = --tests ]; then
  with_tests=1
  shift
fi
seconds=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in fuzz/fuzz_*.cpp; do targets+=("$(basename "$source" .cpp)"); done
fi
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR=$PWD CCACHE_NOHASHDIR=1
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
mkdir -p build-fuzz
# -O0 and line tables only: the sanitizers' reports keep file:line, and the build takes half the
# time of -O1 (CI time; the fuzzers run 2-6x fewer inputs a second).
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O0 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DGF_FUZZ=ON -DGF_BUILD_TESTS=ON -DGF_BUILD_BENCH=OFF \
  -DGF_PYTHON="$GF_PYTHON" "${launcher[@]}" >build-fuzz/configure.log 2>&1 ||
  { cat build-fuzz/configure.log >&2; exit 1; }
build_targets=("${targets[@]}")
[ $with_tests = 0 ] || build_targets+=(gf_sanitized_tests)
cmake --build build-fuzz --parallel "$(nproc)" $(printf -- '--target %s ' "${build_targets[@]}")

# LibTorch's CUDA libraries map memory where ASan's shadow gap would be; UBSan is fatal (the
# build has -fno-sanitize-recover) and says where.
export ASAN_OPTIONS=${ASAN_OPTIONS:-protect_shadow_gap=0:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/fuzz/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ $with_tests = 1 ]; then
  (cd build-fuzz && ctest -L sanitize --output-on-failure --parallel "$(nproc)")
fi

# The targets write each input to a scratch file: keep those writes in memory where possible.
[ -d /dev/shm ] && export TMPDIR=${TMPDIR:-/dev/shm}
mkdir -p build-fuzz/logs
run_target() {
  local t=$1
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/findings/$t"
  "build-fuzz/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=2048 \
    -artifact_prefix="build-fuzz/findings/$t/" -print_final_stats=1 \
    "build-fuzz/corpus/$t" "fuzz/corpus/$t" >"build-fuzz/logs/$t.log" 2>&1
}
status=0
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  pair=("${targets[@]:i:2}")
  pids=()
  for t in "${pair[@]}"; do
    echo "fuzz.sh: $t for ${seconds}s"
    run_target "$t" &
    pids+=($!)
  done
  for k in "${!pair[@]}"; do
    if ! wait "${pids[$k]}"; then
      status=1
      grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' "build-fuzz/logs/${pair[$k]}.log" >&2
    else
      echo "fuzz.sh: ${pair[$k]}: $(grep -E '^#[0-9]+\s+DONE' "build-fuzz/logs/${pair[$k]}.log" | tail -1)"
    fi
  done
done
exit $status
