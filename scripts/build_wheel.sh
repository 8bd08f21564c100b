#!/usr/bin/env bash
# Builds the Python wheel from the same CMake build (the _reasonrt extension, then the
# package around it), offline: setuptools without build isolation, Debian's Python.
# Output: dist/reasonrt-<version>-<python>-<platform>.whl; install it with
#   pip install dist/reasonrt-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${RRT_BUILD_DIR:-build}
bash scripts/build.sh --target _reasonrt
bash scripts/package_wheel.sh "$build_dir" dist
