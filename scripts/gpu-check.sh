#!/usr/bin/env bash
# The GPU check: one command for a machine with an NVIDIA GPU and a PyTorch install, but no
# network and none of greenfound's Debian dependencies (an H200 box: python3 = torch 2.11+cu130,
# nvcc 13, cmake, ninja, glibc >= 2.36). It builds greenfound against that machine's own torch,
# runs the `gpu` tests, measures, and prints ONE JSON of figures on stdout (README, GPU check).
#
#   bash scripts/gpu-check.sh prepare     # here, on Debian 12 after scripts/install-deps.sh:
#                                         # downloads the .debs into .gpu-debs/ (<= 64 MiB)
#   bash scripts/gpu-check.sh             # on the GPU machine (with .gpu-debs/ beside the tree)
#   bash scripts/gpu-check.sh --dry-run   # anywhere, automatic without a GPU: the same build and
#                                         # tests (reported skipped), a toy-sized CPU rehearsal
#                                         # of every measurement, GPU figures null
#
# The Debian packages are unpacked into a private prefix (.gpu-deps/, never /) that CMake,
# the linker and the loader are pointed at; OpenCV's GDAL dependency is replaced by a
# stand-in (scripts/gpu-check/gdal_stand_in.c). Progress goes to stderr, logs to out-gpu-check/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEBS=$ROOT/.gpu-debs
PREFIX=$ROOT/.gpu-deps
BUILD=$ROOT/build-gpu
WORK=$ROOT/out-gpu-check
TOOLS=$ROOT/scripts/gpu-check
MIB=$((1024 * 1024))
BUDGET_MIB=64   # what one call of the GPU machine carries: the tree plus .gpu-debs/

say() { echo "gpu-check: $*" >&2; }
die() { echo "gpu-check: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------
# prepare (here): the .debs of everything the build and its binaries need from Debian.
# ---------------------------------------------------------------------------------------------
# Headers, CMake configs and static libraries to build against.
DEV_PACKAGES=(
  libhdf5-dev libopenmpi-dev openmpi-bin openmpi-common
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libjpeg-dev libjpeg62-turbo-dev libssl-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev
)
# Every Linux with a C++ compiler has these, newer than Debian 12's; ours must not shadow them.
BASE_PACKAGES=(libc6 libstdc++6 libgcc-s1 zlib1g)

prepare() {
  command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "prepare runs on Debian 12 with greenfound's dependencies installed (scripts/install-deps.sh)"
  local pkg
  for pkg in "${DEV_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      die "$pkg is not installed here; run scripts/install-deps.sh first"
  done
  # The shared libraries the binaries load, followed through their NEEDED entries (as the
  # loader resolves them here), stopping at GDAL; then the packages that own them.
  local runtime
  runtime=$(python3 "$TOOLS/runtime_packages.py" --stop libgdal.so.32 --exclude "${BASE_PACKAGES[*]}") ||
    die "could not list the runtime packages"
  local packages=("${DEV_PACKAGES[@]}" $runtime)
  say "downloading ${#packages[@]} packages into $DEBS"
  rm -rf "$DEBS.part" && mkdir -p "$DEBS.part"
  local sandbox=()
  [ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)  # _apt may not write into the checkout
  (cd "$DEBS.part" && apt-get download -q "${sandbox[@]}" "${packages[@]}" >/dev/null) ||
    die "apt-get download failed (run apt-get update first?)"
  rm -rf "$DEBS" && mv "$DEBS.part" "$DEBS"
  local debs_bytes tree_bytes
  debs_bytes=$(du -cb "$DEBS"/*.deb | tail -1 | cut -f1)
  tree_bytes=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  say "$(ls "$DEBS"/*.deb | wc -l) .debs, $((debs_bytes / MIB)) MiB; with the tracked tree" \
      "($((tree_bytes / MIB)) MiB) $(((debs_bytes + tree_bytes) / MIB)) of the $BUDGET_MIB MiB a GPU call carries"
  [ $((debs_bytes + tree_bytes)) -le $((BUDGET_MIB * MIB)) ] || die "over the $BUDGET_MIB MiB budget"
}

# ---------------------------------------------------------------------------------------------
# The private prefix: .debs unpacked, the GDAL stand-in built, the environment pointed at it.
# ---------------------------------------------------------------------------------------------
unpack_prefix() {
  ls "$DEBS"/*.deb >/dev/null 2>&1 || die "no .debs in $DEBS: run 'bash scripts/gpu-check.sh prepare' on Debian 12 first"
  local stamp
  stamp=$(ls -l "$DEBS" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$PREFIX/.stamp" 2>/dev/null)" != "$stamp" ]; then
    say "unpacking $(ls "$DEBS"/*.deb | wc -l) .debs into $PREFIX"
    rm -rf "$PREFIX" && mkdir -p "$PREFIX"
    local deb member
    for deb in "$DEBS"/*.deb; do
      if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$deb" "$PREFIX"
      else  # a .deb is an ar archive holding data.tar.xz (Debian 12's default)
        member=$(ar t "$deb" | grep '^data\.tar')
        ar p "$deb" "$member" | xz -dc | tar -x -C "$PREFIX"
      fi
    done
    cc -shared -fPIC -O1 -Wl,-soname,libgdal.so.32 -o "$PREFIX/usr/lib/x86_64-linux-gnu/libgdal.so.32" \
      "$TOOLS/gdal_stand_in.c"
    [ "$MODE" = gpu ] && prefer_system_libraries
    echo "$stamp" >"$PREFIX/.stamp"
  fi
  local lib=$PREFIX/usr/lib/x86_64-linux-gnu
  # Debian reaches BLAS/LAPACK through alternatives symlinks that dpkg -x does not make.
  export LD_LIBRARY_PATH=$lib:$lib/blas:$lib/lapack:$lib/openmpi/lib:$lib/hdf5/serial:$lib/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PATH=$PREFIX/usr/bin:$PATH
  # Debian's multiarch headers (opensslconf.h, jconfig.h): the compiler searches its own
  # /usr/include/x86_64-linux-gnu only.
  export C_INCLUDE_PATH=$PREFIX/usr/include/x86_64-linux-gnu CPLUS_INCLUDE_PATH=$PREFIX/usr/include/x86_64-linux-gnu
  export OPAL_PREFIX=$PREFIX/usr              # Open MPI relocated: wrappers, components, help files
  export PMIX_INSTALL_PREFIX=$lib/pmix2
  export OMPI_MCA_mca_base_component_show_load_errors=0  # network fabrics (UCX, OFI, PSM) are not brought
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
}

# Dry run on a machine that has greenfound's Debian packages installed (here): run inside a
# mount namespace where the system's copies of their headers, Open MPI, PMIx and HDF5 trees are
# hidden, so the build and mpirun can only have used the prefix. Libraries in the loader's
# default folder stay visible; check_ldd shows they resolve into the prefix first.
SYSTEM_COPIES=(
  /usr/include/{CLI,gmock,gtest,hdf5,nlohmann,opencv4,openssl} /usr/include/x86_64-linux-gnu/{mpi,openmpi,openssl}
  /usr/lib/x86_64-linux-gnu/{openmpi,hdf5,pmix2} /usr/lib/x86_64-linux-gnu/cmake/GTest /usr/share/cmake/nlohmann_json
  /usr/share/openmpi /etc/openmpi
)
SYSTEM_FILES=(/usr/include/{jpeglib.h,jpegint.h,jerror.h,jmorecfg.h} /usr/include/x86_64-linux-gnu/jconfig.h)
hide_system_copies() {
  local path
  for path in "${SYSTEM_COPIES[@]}"; do [ -d "$path" ] && mount -t tmpfs none "$path"; done
  for path in "${SYSTEM_FILES[@]}"; do [ -f "$path" ] && mount --bind /dev/null "$path"; done
  return 0
}

# On the GPU machine, a library the system already has (same soname: same ABI, and newer than
# Debian 12's) is used instead of ours: the prefix's name becomes a link to the system's copy,
# so nothing the system's compiler or tools load is shadowed. A dry run keeps the whole prefix,
# to show it is complete.
prefer_system_libraries() {
  local dir name system
  declare -A have
  while read -r name system; do have[$name]=$system; done < <(ldconfig -p | awk '/x86-64/ {print $1, $NF}')
  for dir in "$PREFIX"/usr/lib/x86_64-linux-gnu{,/blas,/lapack,/openmpi/lib,/hdf5/serial,/pmix2/lib}; do
    [ -d "$dir" ] || continue
    for name in $(ls "$dir" | grep -E '\.so\.[0-9]+$'); do
      system=${have[$name]:-}
      [ -n "$system" ] && ln -sfn "$system" "$dir/$name" && echo "$name" >>"$PREFIX/system-libraries.txt"
    done
  done
  return 0
}

# Every shared library each binary needs resolves, and none of Debian's comes from outside the
# prefix; prints the unresolved ones (nothing when all is well).
check_ldd() {
  local bin
  for bin in "$@"; do
    { ldd "$bin" 2>&1 || true; } | { grep "not found" || true; } | sed "s|^|$(basename "$bin"): |"
  done
}

# ---------------------------------------------------------------------------------------------
# Build and test
# ---------------------------------------------------------------------------------------------
GPU_TESTS=(test_dist_gpu test_model_gpu test_train_gpu test_data_gpu test_energy_gpu test_eval_gpu)

build() {
  local strict=()
  # Dry run on a machine that also has the packages installed: CMake may not look in /usr,
  # so everything must come from the prefix.
  [ "$MODE" = dry-run ] && strict=(-DCMAKE_IGNORE_PREFIX_PATH=/usr)
  local launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  mkdir -p "$BUILD"
  say "configuring $BUILD against $("$PYTHON" -c 'import torch; print("torch", torch.__version__)') of $PYTHON"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGF_PYTHON="$PYTHON" -DGF_BUILD_BENCH=OFF \
    -DCMAKE_PREFIX_PATH="$PREFIX/usr" -DOPENSSL_ROOT_DIR="$PREFIX/usr" \
    -DMPI_C_COMPILER="$PREFIX/usr/bin/mpicc.openmpi" -DMPIEXEC_EXECUTABLE="$PREFIX/usr/bin/mpirun.openmpi" \
    "${strict[@]}" "${launcher[@]}" >"$WORK/configure.log" 2>&1 || { tail -30 "$WORK/configure.log" >&2; die "configure failed"; }
  grep -E '^-- greenfound:' "$WORK/configure.log" >&2 || true
  say "building greenfound and the gpu tests ($(nproc) jobs)"
  cmake --build "$BUILD" --parallel "$(nproc)" --target greenfound dist_worker "${GPU_TESTS[@]}" >"$WORK/build.log" 2>&1 ||
    { tail -40 "$WORK/build.log" >&2; die "build failed (full log: $WORK/build.log)"; }
  # Where CMake found each dependency, for the record (and to show the prefix was used).
  grep -E '^(GF_OPENCV_core|GF_NCCL_LIB|HDF5_C_LIBRARY_hdf5|MPI_mpi_LIBRARY|OPENSSL_CRYPTO_LIBRARY|JPEG_LIBRARY_RELEASE|GTest_DIR|nlohmann_json_DIR|GF_CLI11_INCLUDE|CLI11_DIR):' \
    "$BUILD/CMakeCache.txt" >"$WORK/found.txt" || true
}

run_gpu_tests() {
  say "ctest -L gpu"
  (cd "$BUILD" && ctest -L gpu --output-on-failure --timeout 300) >"$WORK/ctest.log" 2>&1 || true
  grep -E "tests passed|Skipped|Failed|Passed" "$WORK/ctest.log" | sed 's/^/  /' >&2 || true
}

# ---------------------------------------------------------------------------------------------
# Measurements. The sizes: GPU = the published recipe's (ViT-S/14-reg4, 392 px, batch 128,
# bf16); dry run = a toy on the CPU that exercises the same commands and parsing.
# ---------------------------------------------------------------------------------------------
# Sizes: GPU = the published recipe (ViT-S/14-reg4 at 392 px, batch 128, bf16; embed ViT-S@392
# and ViT-L@224); dry run = a toy on the CPU through the same commands and parsing.
set_sizes() {
  if [ "$MODE" = gpu ]; then
    N=6144 SYNTH_SIZE=448x448 BIG=448 SIZE_S=392 SIZE_L=224 BATCH=128 STEPS_SHORT=8 STEPS_LONG=40
    ARCH_S=vit_small_patch14_reg4 ARCH_L=vit_large_patch14_reg4
    MODEL_SETS=()
    DEVICE_SETS=(--set train.device=cuda --set train.precision=bf16)
    EMBED_DEVICE=(--device cuda --precision bf16 --batch-size 256)
  else
    N=48 SYNTH_SIZE=96x96 BIG=72 SIZE_S=56 SIZE_L=42 BATCH=8 STEPS_SHORT=2 STEPS_LONG=4
    ARCH_S=vit_tiny_patch14_reg4 ARCH_L=vit_tiny_patch14_reg4
    MODEL_SETS=(--set model.arch=vit_tiny_patch14_reg4 --set model.img_size=56 --set data.batch_size=$BATCH)
    DEVICE_SETS=(--set train.device=cpu --set train.precision=fp32)
    EMBED_DEVICE=(--device cpu --batch-size 8)
  fi
}

measure() {
  local G=$BUILD/launcher/greenfound
  local threads
  threads=$(nproc)
  say "synthetic data: $N images, packed at $BIG, $SIZE_S and $SIZE_L px"
  "$G" synth --out "$WORK/images" --n "$N" --size "$SYNTH_SIZE" --seed 1 --quiet >"$WORK/synth.log" 2>&1
  local px
  for px in "$BIG" "$SIZE_S" "$SIZE_L"; do
    "$G" pack --images "$WORK/images" --labels "$WORK/images/labels.csv" --id-column image_id --resolution "$px" \
      --split-by patient_id --test-fraction 0.25 --quiet --out "$WORK/packed-$px" >"$WORK/pack-$px.log" 2>&1
  done

  if [ "$MODE" = gpu ]; then
    say "bf16 matmul peak (torch, 8192^3)"
    env -u LD_LIBRARY_PATH "$PYTHON" "$TOOLS/matmul_peak.py" >"$WORK/peak.json" 2>"$WORK/peak.log" ||
      say "peak measurement failed (see $WORK/peak.log)"
  fi

  # Pretraining, twice: the steps after the first few give the rate; the difference of the two
  # runs' GPU energy over the difference of their images gives J/image without the warm-up
  # and the final checkpoint, which both runs share.
  local steps
  for steps in "$STEPS_SHORT" "$STEPS_LONG"; do
    say "pretrain: $steps steps of batch $BATCH"
    "$G" pretrain --config configs/paper.json --data "$WORK/packed-$BIG" --run-dir "$WORK/run-$steps" --max-steps "$steps" \
      --set model.init= --set data.split=all --set data.workers="$threads" --set train.log_every=1 \
      "${MODEL_SETS[@]}" "${DEVICE_SETS[@]}" >"$WORK/pretrain-$steps.log" 2>&1 ||
      { tail -20 "$WORK/pretrain-$steps.log" >&2; die "pretrain failed"; }
  done

  # Embedding rates: the test split and the whole set, so the rate of the extra images leaves
  # out start-up and the first batch's autotuning.
  local which arch split
  for which in s l; do
    if [ "$which" = s ]; then px=$SIZE_S arch=$ARCH_S; else px=$SIZE_L arch=$ARCH_L; fi
    for split in test all; do
      say "embed: $arch at $px px, split $split"
      "$G" embed --data "$WORK/packed-$px" --split "$split" --arch "$arch" --img-size "$px" --init-seed 0 \
        --workers "$threads" --no-energy "${EMBED_DEVICE[@]}" --out "$WORK/embed-$which-$split.h5" \
        >"$WORK/embed-$which-$split.log" 2>&1 || { tail -20 "$WORK/embed-$which-$split.log" >&2; die "embed failed"; }
    done
  done
}

# ---------------------------------------------------------------------------------------------
MODE=gpu
case "${1:-}" in
  prepare) prepare; exit 0 ;;
  --dry-run) MODE=dry-run ;;
  "") ;;
  *) die "usage: bash scripts/gpu-check.sh [prepare | --dry-run]" ;;
esac
# The machine's own torch: GF_PYTHON when set, else the project's venv where there is one
# (scripts/install-deps.sh, here), else python3 (the GPU machine's).
if [ -z "${GF_PYTHON:-}" ]; then
  source scripts/venv-path.sh
  [ -x "$GF_PYTHON" ] || GF_PYTHON=$(command -v python3 || true)
fi
PYTHON=$GF_PYTHON
"$PYTHON" -c 'import torch' 2>/dev/null || die "'$PYTHON' cannot import torch (set GF_PYTHON to a python with torch)"
if [ "$MODE" = gpu ] && ! "$PYTHON" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  say "no GPU visible to torch: dry run"
  MODE=dry-run
fi
for tool in cmake ninja cc; do command -v "$tool" >/dev/null || die "$tool not found"; done
if [ "$MODE" = dry-run ] && [ -z "${GF_GPU_CHECK_HIDDEN:-}" ] && [ "$(id -u)" -eq 0 ] && unshare -m true 2>/dev/null; then
  exec unshare -m env GF_GPU_CHECK_HIDDEN=1 bash "$ROOT/scripts/gpu-check.sh" --dry-run
fi
[ -n "${GF_GPU_CHECK_HIDDEN:-}" ] && hide_system_copies && say "dry run with the system's copies of the brought packages hidden"
set_sizes

start=$(date +%s)
rm -rf "$WORK" && mkdir -p "$WORK"
unpack_prefix
build_start=$(date +%s)
build
build_seconds=$(($(date +%s) - build_start))
check_ldd "$BUILD/launcher/greenfound" "$BUILD/tests/dist/dist_worker" "$BUILD"/tests/*/test_*_gpu \
  "$PREFIX/usr/bin/orterun" >"$WORK/ldd-missing.txt"
[ -s "$WORK/ldd-missing.txt" ] && { cat "$WORK/ldd-missing.txt" >&2; die "unresolved shared libraries"; }
ldd "$BUILD/launcher/greenfound" >"$WORK/ldd-greenfound.txt"
"$BUILD/launcher/greenfound" --version >"$WORK/version.txt"
say "mpirun from the prefix: 2 ranks"
mpirun.openmpi -n 2 --bind-to none "$BUILD/tests/dist/dist_worker" world >"$WORK/mpirun.log" 2>&1 ||
  { cat "$WORK/mpirun.log" >&2; die "mpirun from the prefix failed"; }
run_gpu_tests
measure
env -u LD_LIBRARY_PATH "$PYTHON" "$TOOLS/report.py" --mode "$MODE" --work "$WORK" --greenfound "$BUILD/launcher/greenfound" \
  --lib-path "$LD_LIBRARY_PATH" --debs "$DEBS" --system-libraries "$PREFIX/system-libraries.txt" --build-seconds "$build_seconds" --start "$start" \
  --steps-short "$STEPS_SHORT" --steps-long "$STEPS_LONG" "--cost-sets=${MODEL_SETS[*]}"
