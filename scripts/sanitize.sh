#!/usr/bin/env bash
# Builds reasonrt and its tests with sanitizers and runs the whole test suite there:
#   bash scripts/sanitize.sh                        AddressSanitizer + UndefinedBehaviorSanitizer
#                                                    (LeakSanitizer on), in ./build-asan
#   RRT_SANITIZER=thread bash scripts/sanitize.sh   ThreadSanitizer, in ./build-tsan
# ($RRT_SANITIZE_DIR overrides the folder). Not part of `scripts/test.sh`: on 2 cores a build
# takes about 10 minutes. The cuda backend is left out, but its kernels' source still runs, on
# the host, in cuda_emulation_tests (where the toolkit's headers are): there TSan reports a
# missing __syncthreads as a race, and a block that reads another's result before that block's
# ticket (blocks run two and four at once), and ASan a step past shared memory (TSan: about 8 minutes). Extra arguments go to ctest, e.g. `scripts/sanitize.sh -R Safetensors`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/setup-deps.sh
mode=${RRT_SANITIZER:-address}
case "$mode" in
  address)
    build_dir=${RRT_SANITIZE_DIR:-build-asan}
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    link="-fsanitize=address,undefined"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    ;;
  thread)
    build_dir=${RRT_SANITIZE_DIR:-build-tsan}
    flags="-fsanitize=thread"
    link="-fsanitize=thread"
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 suppressions=$PWD/tests/tsan.supp}
    ;;
  *)
    echo "RRT_SANITIZER must be address or thread, not '$mode'" >&2
    exit 2
    ;;
esac
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  # No CUDA (nvcc's device code is not instrumented), no benchmarks, no Python module.
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRRT_WITH_CUDA=OFF \
    -DRRT_BUILD_BENCHMARKS=OFF -DRRT_BUILD_PYTHON=OFF "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" \
    "-DCMAKE_EXE_LINKER_FLAGS=$link" "-DCMAKE_SHARED_LINKER_FLAGS=$link"
fi
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" -j "$(nproc)" --timeout 900 --output-on-failure "$@"
