#!/usr/bin/env bash
# The main job on a fresh machine: build the reasonrt tool, make a synthetic model with
# the real shapes of DeepSeek-R1-Distill-Qwen-1.5B (2 of its 28 layers), describe it and
# run a forward pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target reasonrt_cli
build_dir=${RRT_BUILD_DIR:-build}
cli="$build_dir/examples/cli/reasonrt"
model="$build_dir/demo/r1-distill-qwen-1.5b-2l"
if [[ ! -f "$model/model.safetensors" ]]; then
  "$cli" synth --config ../shared/model-configs/r1-distill-qwen-1.5b.json --out "$model" --layers 2 --seed 1
fi
"$cli" devices
"$cli" inspect "$model"
"$cli" logits --model "$model" --tokens 151646,40,1079,264,3460,13 --out "$build_dir/demo/logits.npy"
