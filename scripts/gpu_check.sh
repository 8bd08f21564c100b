#!/usr/bin/env bash
# The GPU checks of the cuda backend (issue 11), run on the device machine from the
# repository root after scripts/gpu_bundle.sh packed .gpu/ here. Writes its logs to $OUT.
#
#   STAGES="tests sanitizer bench torch" bash .gpu/check.sh    (the default: all four)
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
work=/tmp/rrt-gpu
mkdir -p "$work"
tar -C "$work" -xJf "$(dirname "$0")/bundle.tar.xz"
export LD_LIBRARY_PATH=$work/lib
bin=$work/bin
"$bin/reasonrt" devices >/dev/null 2>&1 || export LD_LIBRARY_PATH=$work/lib:$work/lib/cxx
stages=${STAGES:-tests sanitizer bench torch}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
"$bin/reasonrt" devices 2>&1 | tee -a "$out/gpu.txt"

if [[ $stages == *tests* ]]; then
  # The conformance suite and the cuda tests (every op on the GPU against the reference),
  # sessions on every backend, and the DeepSeek model on the exact backends.
  "$bin/backends_tests" 2>&1 | tee "$out/tests.txt" | tail -5
  "$bin/runtime_tests" --gtest_filter='Backends/SessionTest.*' 2>&1 | tee -a "$out/tests.txt" | tail -3
  "$bin/models_tests" --gtest_filter='Backends/DeepseekTest.*' 2>&1 | tee -a "$out/tests.txt" | tail -3
  grep -E '^\[  (FAILED|PASSED|SKIPPED) ' "$out/tests.txt"
fi

if [[ $stages == *sanitizer* ]]; then
  compute-sanitizer --tool memcheck --error-exitcode 1 "$bin/backends_tests" \
    --gtest_filter='*cuda*:*Cuda*' >"$out/sanitizer.txt" 2>&1
  echo "compute-sanitizer memcheck exit $?"; tail -3 "$out/sanitizer.txt"
fi

if [[ $stages == *bench* || $stages == *torch* ]]; then
  [[ -d $work/q7 ]] || "$bin/reasonrt" synth --config "$work/r1-distill-qwen-7b.json" --out "$work/q7" --seed 1
fi
if [[ $stages == *bench* ]]; then
  "$bin/reasonrt" bench --model "$work/q7" --backend cuda -p 512 -n 64 -r 3 2>&1 | tee "$out/bench.txt"
fi
if [[ $stages == *torch* ]]; then
  python3 "$(dirname "$0")/torch_decode.py" --model "$work/q7" --tokens 64 2>&1 | tee "$out/torch.txt"
fi
