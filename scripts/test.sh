#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, build, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
ctest --test-dir "${RRT_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
