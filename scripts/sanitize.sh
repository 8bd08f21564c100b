#!/usr/bin/env bash
# Builds reasonrt with AddressSanitizer and UndefinedBehaviorSanitizer (LeakSanitizer on)
# into ./build-asan (or $RRT_ASAN_DIR) and runs the whole test suite there. Not part of
# `scripts/test.sh`: on 2 cores the build takes about 10 minutes and the tests 8.
# Extra arguments go to ctest, e.g. `scripts/sanitize.sh -R Safetensors`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/setup-deps.sh
build_dir=${RRT_ASAN_DIR:-build-asan}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  # No CUDA (nvcc's device code is not instrumented), no benchmarks, no Python module.
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRRT_WITH_CUDA=OFF \
    -DRRT_BUILD_BENCHMARKS=OFF -DRRT_BUILD_PYTHON=OFF "-DCMAKE_C_FLAGS=$flags" "-DCMAKE_CXX_FLAGS=$flags" \
    "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined" \
    "-DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined"
fi
cmake --build "$build_dir" -j "$(nproc)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir "$build_dir" -j "$(nproc)" --timeout 900 --output-on-failure "$@"
