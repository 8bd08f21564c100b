#!/usr/bin/env bash
# Packages an already built _reasonrt extension into a wheel: package_wheel.sh BUILD_DIR OUT_DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$(cd "$1" && pwd)"
mkdir -p "$2"
out="$(cd "$2" && pwd)"
stage="$build_dir/wheel_stage"
rm -rf "$stage"
mkdir -p "$stage"
cp "$root/bindings/python/setup.py" "$stage/"
cp -r "$root/bindings/python/reasonrt" "$stage/"
cp "$build_dir"/bindings/python/reasonrt/_reasonrt*.so "$stage/reasonrt/"
rm -f "$out"/reasonrt-*.whl
(cd "$stage" && /usr/bin/python3 -m pip wheel . --no-build-isolation --no-deps --no-index -q -w "$out")
ls "$out"/reasonrt-*.whl
