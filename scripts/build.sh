#!/usr/bin/env bash
# Installs what is missing, configures and builds reasonrt into ./build (or $RRT_BUILD_DIR).
# Extra arguments go to the build step, e.g. `scripts/build.sh --target reasonrt_cli`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/setup-deps.sh
build_dir=${RRT_BUILD_DIR:-build}
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release ${RRT_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$(nproc)" "$@"
