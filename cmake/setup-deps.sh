#!/usr/bin/env bash
# Installs reasonrt's build and test dependencies from Debian packages.
# Idempotent: installs only what is missing, and does nothing when all is present.
# Usage: cmake/setup-deps.sh [--no-test-deps]
set -euo pipefail

build_pkgs=(
  cmake g++ make ninja-build ccache pkg-config
  libabsl-dev        # Status, StatusOr, StrFormat, Span, containers
  libeigen3-dev      # reference backend
  libdnnl-dev        # CPU GEMM
  libhwy-dev         # SIMD kernels with runtime dispatch
  libpcre2-dev       # tokenizer regexes
  libsimdjson-dev    # JSON
  libutf8proc-dev    # NFC normalization
  libcli11-dev       # command-line tool
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
)
test_pkgs=(
  python3 python3-numpy python3-torch python3-jinja2 python3-pytest python3-pybind11 pybind11-dev python3-dev python3-venv python3-wheel python3-setuptools python3-pip
  libopenblas0-pthread  # Debian's torch calls the system BLAS: the reference BLAS is ~25x slower
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" != "--no-test-deps" ]]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# node and npm fetch the tokenizer test data; many machines have their own node already.
if [[ "${1:-}" != "--no-test-deps" ]] && ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "setup-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
