#!/usr/bin/env bash
# Packs what the GPU checks of the cuda backend need into .gpu/ (ignored by git), for a
# machine that has an NVIDIA GPU and CUDA but not this project's Debian dependencies: the
# test binaries, the CLI and the cuda kernel benchmarks from ./build (scripts/build.sh
# builds them with CUDA wherever nvcc is), the shared libraries they load, the C API test's
# tiny models, Mini-R1, the 7B and 1.5B model configs, and gpu/check.sh.
#
#   bash scripts/gpu_bundle.sh            # here, after scripts/build.sh
#   bash .gpu/check.sh                    # there, from the repository root; results in $OUT
set -euo pipefail
cd "$(dirname "$0")/.."
build=${RRT_BUILD_DIR:-build}
bins=("$build/tests/backends_tests" "$build/tests/models_tests" "$build/tests/runtime_tests"
      "$build/tests/generate_tests" "$build/tests/grpo_tests" "$build/tests/mini_r1_tests"
      "$build/tests/capi/capi_test" "$build/examples/cli/reasonrt"
      "$build/benchmarks/cuda_benchmarks")
for b in "${bins[@]}"; do
  [[ -x $b ]] || { echo "missing $b: run scripts/build.sh first" >&2; exit 1; }
done
grep -q 'RRT_WITH_CUDA:BOOL=ON' "$build/CMakeCache.txt" || { echo "$build was configured without CUDA" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp "${bins[@]}" "$stage/bin/"
# Every shared library they load except the C library's own, which the other machine has.
for b in "${bins[@]}"; do
  ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | grep -Ev '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*)\.so' |
  while read -r lib; do cp -L "$lib" "$stage/lib/"; done
strip --strip-unneeded "$stage"/bin/* "$stage"/lib/* 2>/dev/null || true
# The C++ runtime apart: used there only if the machine's own is older than ours (ours
# needs glibc 2.36, which an older machine may lack).
mkdir -p "$stage/lib/cxx"
mv "$stage"/lib/libstdc++.so* "$stage"/lib/libgcc_s.so* "$stage/lib/cxx/" 2>/dev/null || true
# The C API test's tiny models (made by the build) and Mini-R1 (in the source tree).
cp -r "$build/tests/capi/tiny_qwen" "$build/tests/capi/tiny_v3" examples/mini-r1/model "$stage/"
mv "$stage/model" "$stage/mini-r1"
cp ../shared/model-configs/r1-distill-qwen-7b.json ../shared/model-configs/r1-distill-qwen-1.5b.json \
   ../shared/model-configs/moonlight-16b-a3b.json "$stage/"

mkdir -p .gpu
tar -C "$stage" -cJf .gpu/bundle.tar.xz .
cp scripts/gpu_check.sh .gpu/check.sh
cp scripts/gpu_ab.sh .gpu/ab.sh
rm -f .gpu/reasonrt_b .gpu/backends_tests_b
# A variant of the CLI (and of backends_tests, to check it first) for scripts/gpu_ab.sh.
if [[ -n ${RRT_AB_CLI:-} ]]; then strip -o .gpu/reasonrt_b "$RRT_AB_CLI"; fi
if [[ -n ${RRT_AB_TESTS:-} ]]; then strip -o .gpu/backends_tests_b "$RRT_AB_TESTS"; fi
cp benchmarks/torch_decode.py .gpu/torch_decode.py
du -sh .gpu/bundle.tar.xz
