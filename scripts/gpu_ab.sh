#!/usr/bin/env bash
# A/B of two builds of the CLI on the GPU machine, alternated in one call (machines differ
# from call to call, so only ratios measured side by side mean much). Here:
#
#   cp build/examples/cli/reasonrt /tmp/reasonrt_b     # the variant, built first
#   cp build/tests/backends_tests /tmp/backends_tests_b  # (optional) its tests
#   ...rebuild the baseline...
#   RRT_AB_CLI=/tmp/reasonrt_b RRT_AB_TESTS=/tmp/backends_tests_b bash scripts/gpu_bundle.sh
#
# there (results in $OUT/ab.txt; ROUNDS pairs, bench arguments in BENCH_ARGS):
#
#   bash .gpu/ab.sh
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
[[ -x $here/reasonrt_b ]] || { echo "no variant: pack one with RRT_AB_CLI" >&2; exit 1; }
STAGES=bench bash "$here/check.sh"  # unpacks the bundle, synthesizes the 7B model, benches A
work=/tmp/rrt-gpu
source "$work/env.sh"  # the libraries check.sh found
if [[ -x $here/backends_tests_b ]]; then  # the variant's own tests first (on the GPU too)
  timeout 180 "$here/backends_tests_b" >"$out/tests_b.txt" 2>&1
  echo "== variant's backends_tests: exit $?"; grep -E '^\[  (FAILED|PASSED) ' "$out/tests_b.txt"
fi
for round in $(seq "${ROUNDS:-2}"); do
  for v in A B; do
    cli=$work/bin/reasonrt
    [[ $v == B ]] && cli=$here/reasonrt_b
    echo "== $v, round $round" | tee -a "$out/ab.txt"
    timeout 120 "$cli" bench --model "$work/q7" --backend cuda ${BENCH_ARGS:--p 512 -n 64 -r 3} 2>&1 |
      tee -a "$out/ab.txt" | grep -E 'prompt|decode'
  done
done
