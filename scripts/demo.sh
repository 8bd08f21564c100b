#!/usr/bin/env bash
# The main job on a fresh machine: build the reasonrt tool and ask Mini-R1 (the small
# reasoning model trained with reasonrt's own R1 recipe, examples/mini-r1) an arithmetic
# question it makes up; the thinking streams (dimmed on a terminal), then the answer, then
# whether the boxed answer is right. Extra arguments go to `reasonrt demo`:
#   bash scripts/demo.sh --model DIR          any supported model folder instead
#   bash scripts/demo.sh --question-seed 7    the same question every run
#   bash scripts/demo.sh --sample             R1's sampling instead of greedy
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target reasonrt_cli
cli="${RRT_BUILD_DIR:-build}/examples/cli/reasonrt"
args=("$@")
[[ " $* " == *" --model "* || " $* " == *" --model="* ]] || args=(--model examples/mini-r1/model "${args[@]}")
"$cli" demo "${args[@]}"
