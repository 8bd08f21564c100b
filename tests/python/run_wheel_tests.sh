#!/usr/bin/env bash
# Packages the wheel, installs it into a fresh virtualenv (Debian's numpy and pytest come
# from the system site packages; nothing from PyPI) and runs the Python tests there, from
# outside the source tree, so they import the installed package.
# run_wheel_tests.sh BUILD_DIR CLI
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build_dir="$(cd "$1" && pwd)"
work="$build_dir/python_test"
rm -rf "$work"
mkdir -p "$work"
bash "$here/../../scripts/package_wheel.sh" "$build_dir" "$work/dist" > /dev/null
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install -q --no-index --no-deps "$work"/dist/reasonrt-*.whl
cd "$work"
RRT_CLI="$2" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$here/test_reasonrt.py" "$here/test_grpo.py"
# The Python examples run against the installed package.
"$2" synth --config "$here/tiny_config.json" --out "$work/model" --seed 4 > /dev/null
"$work/venv/bin/python" "$here/../../examples/python/chat_stream.py" "$work/model" "What is 2+2?" | grep -q "finished"
"$work/venv/bin/python" "$here/../../examples/python/group_logprobs.py" "$work/model" 4 | grep -q "tokens/s decoding the group"
echo "examples/python: ok"
