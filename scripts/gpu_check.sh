#!/usr/bin/env bash
# The GPU checks of the cuda backend (issue 11), run on the device machine from the
# repository root after scripts/gpu_bundle.sh packed .gpu/ here. Writes its logs to $OUT.
# Each stage has its own time limit (seconds, T_<stage>) so that one that hangs leaves the
# others their time; the order puts the cheap, telling ones first.
#
#   STAGES="tests bench kernels fastpaths experimental expbench moe torch sanitizer cpu auto" bash .gpu/check.sh
#   (the default: all)
#
# fastpaths: `reasonrt bench` (-g 8 too) with RRT_CUDA_FAST_PATHS=0 and without,
# alternated: the groups' tensor-core GEMV, RopeAndStoreKv and SiluMulMatMul against the
# plain paths.
# experimental: the paths RRT_CUDA_EXPERIMENTAL=1 turns on (written without a GPU; now
# MatMulAddRmsNorm's fused GEMV, the decode attention's merge in its last split, fp8
# prompts on bf16 tensor cores, SampleTokens and the MoE routing on the GPU, GateUpMatMul's
# product in its GEMV): backends_tests, sessions and DeepSeek with them, the new kernels'
# tests under compute-sanitizer's memcheck and racecheck, the fp8 prompt matmul,
# SampleTokens and GateUpMatMul benchmarks both ways.
# expbench: `reasonrt bench` (-g 8 too) on q7 without and with them, alternated: greedy (the
# batch-1 decode target), then with --sample (R1's sampling, the draws where the logits are).
# moe: a 4-layer synthetic MoE of Moonlight's shapes with R1's router grouping: the MoE
# tests with RRT_CUDA_EXPERIMENTAL=1 (the router and the experts' GEMV on the GPU), then
# `reasonrt bench` (-g 4) without and with it, alternated, then the ExpertGateUpMatMul
# benchmark (gate and up experts in one launch against two ExpertMatMuls and SiluMul).
# kernels: the cuda kernel benchmarks (decode GEMV by shape and split, prompt attention)
# against the device's copy bandwidth.
# auto: every test binary that loads models through "auto" (sessions, models, generation,
# GRPO rollouts, Mini-R1's accuracy, the C API) with RRT_BACKEND=cuda, so that they run on
# the GPU (the check behind `auto` preferring cuda).
# cpu: the cpu backend on that machine's CPU (AVX512-BF16 and AMX on the H200 machines lent
# so far), 2 threads, a synthetic R1-Distill-Qwen-1.5B: `reasonrt bench`, then with -g 8.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
work=/tmp/rrt-gpu
mkdir -p "$work"
tar -C "$work" -xJf "$here/bundle.tar.xz"
bin=$work/bin
# cuBLAS is opened at run time: the toolkit's copy or the one PyTorch's wheels carry.
cublas_dirs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
cublas_dirs+=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
export LD_LIBRARY_PATH=$work/lib:$cublas_dirs
"$bin/reasonrt" devices >/dev/null 2>&1 || export LD_LIBRARY_PATH=$work/lib:$work/lib/cxx:$cublas_dirs
echo "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >"$work/env.sh"  # for gpu_ab.sh's runs
stages=${STAGES:-tests auto bench experimental expbench moe fastpaths kernels torch sanitizer cpu}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$bin/reasonrt" devices 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  for d in ${cublas_dirs//:/ }; do ls "$d" | grep -m2 "libcublas\.so"; done
} 2>&1 | tee "$out/gpu.txt"

stage() {  # stage NAME LIMIT COMMAND...: runs COMMAND under its limit, logs to $out/NAME.txt
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" >>"$out/$name.txt" 2>&1
  local rc=$?
  echo "== $name: exit $rc after $((SECONDS - t0)) s" | tee -a "$out/$name.txt"
}

gpu_tests() {  # gpu_tests NAME: the conformance suite and the cuda tests (every op on the
  # GPU against the reference), sessions on every backend, the DeepSeek model on the exact
  # backends; logged to $out/NAME.txt
  stage "$1" "${T_TESTS:-150}" "$bin/backends_tests"
  stage "$1" "${T_TESTS:-150}" "$bin/runtime_tests" --gtest_filter='Backends/SessionTest.*'
  stage "$1" "${T_TESTS:-150}" "$bin/models_tests" --gtest_filter='Backends/DeepseekTest.*'
}

synth_q7() {  # the synthetic R1-Distill-Qwen-7B the benchmarks run, made once
  [[ -d $work/q7 ]] || stage synth "${T_SYNTH:-150}" "$bin/reasonrt" synth \
    --config "$work/r1-distill-qwen-7b.json" --out "$work/q7" --seed 1
}

ab_bench() {  # ab_bench NAME VARIABLE MODEL ARGS...: `reasonrt bench ARGS` on MODEL with
  # VARIABLE=0, then =1, ROUNDS rounds (2 unless set)
  local name=$1 variable=$2 model=$3; shift 3
  for round in $(seq "${ROUNDS:-2}"); do
    for on in 0 1; do
      echo "== $variable=$on, round $round" >>"$out/$name.txt"
      (export "$variable=$on"; stage "$name" "${T_BENCH:-150}" "$bin/reasonrt" bench \
        --model "$model" --backend cuda "$@")
    done
  done
}

if [[ $stages == *tests* ]]; then
  gpu_tests tests
  grep -E '^\[  (FAILED|PASSED|SKIPPED) |^\[  FAILED  \]|Failure|== ' "$out/tests.txt" | head -60
fi

if [[ $stages == *bench* ]]; then
  synth_q7
  stage bench "${T_BENCH:-150}" "$bin/reasonrt" bench --model "$work/q7" --backend cuda \
    -p 512 -n 64 -r 3 ${BENCH_ARGS:-}
  cat "$out/bench.txt"
  # Where the time goes: each operation's GPU time, one repetition (the events slow it).
  RRT_CUDA_OP_TIMES=1 stage optimes "${T_BENCH:-150}" "$bin/reasonrt" bench --model "$work/q7" \
    --backend cuda -p 512 -n 64 -r 1
  cat "$out/optimes.txt"
fi
if [[ $stages == *kernels* ]]; then
  stage kernels "${T_KERNELS:-150}" "$bin/cuda_benchmarks" --benchmark_min_time=0.1
  grep -E 'BM_|==' "$out/kernels.txt"
fi
if [[ $stages == *fastpaths* ]]; then
  synth_q7
  ab_bench fastpaths RRT_CUDA_FAST_PATHS "$work/q7" -p 512 -n 64 -r 3 -g 8
  grep -E 'prompt|decode|group|== ' "$out/fastpaths.txt"
fi
if [[ $stages == *experimental* ]]; then
  (export RRT_CUDA_EXPERIMENTAL=1; gpu_tests experimental)
  # The new kernels under compute-sanitizer: memcheck, and racecheck for their shared memory.
  new_kernels='*SampleTokens*/cuda:*ExpertMatMul*/cuda:*ExpertGateUp*/cuda:*RouteExperts*/cuda:*MatMulAddRmsNorm*/cuda:*PagedAttention*/cuda:*GateUpMatMul*'
  for tool in memcheck racecheck; do
    RRT_CUDA_EXPERIMENTAL=1 stage experimental "${T_SANITIZER:-150}" compute-sanitizer --tool $tool \
      --report-api-errors no --error-exitcode 1 "$bin/backends_tests" --gtest_filter="$new_kernels"
  done
  stage experimental "${T_KERNELS:-150}" "$bin/cuda_benchmarks" \
    --benchmark_filter='Fp8PromptMatMul|SampleTokens|GateUpMatMul' --benchmark_min_time=0.1
  grep -E '^\[  (FAILED|PASSED) |Failure|ERROR SUMMARY|Fp8Prompt|SampleTokens|GateUp|== ' "$out/experimental.txt"
fi
if [[ $stages == *expbench* ]]; then
  synth_q7
  # Greedy (the decode target's measure: norm_gemv, silu_gemv and the attention merge), then
  # R1's sampling (the draws on the GPU too); a round each.
  ROUNDS=1 ab_bench expbench RRT_CUDA_EXPERIMENTAL "$work/q7" -p 512 -n 64 -r 3 -g 8
  ROUNDS=1 ab_bench expbench RRT_CUDA_EXPERIMENTAL "$work/q7" -p 512 -n 64 -r 3 -g 8 --sample
  grep -E 'prompt|decode|group|== ' "$out/expbench.txt"
fi
if [[ $stages == *moe* ]]; then
  # A DeepSeek-V3-architecture MoE (Moonlight's shapes: 64 experts of 1408, 6 a token, bf16;
  # R1's router grouping, 8 groups of which 4 stay), 4 layers (1 dense, 3 MoE): the router
  # and the experts' GEMV on the GPU (experimental) against the routing on the host.
  [[ -d $work/moon4 ]] || stage synth "${T_SYNTH:-150}" "$bin/reasonrt" synth \
    --config "$work/moonlight-16b-a3b.json" --out "$work/moon4" --seed 1 --layers 4 \
    --set n_group=8 --set topk_group=4
  (export RRT_CUDA_EXPERIMENTAL=1; stage moe "${T_TESTS:-150}" "$bin/backends_tests" \
    --gtest_filter='*Expert*:*Route*:*deepseek*')
  ab_bench moe RRT_CUDA_EXPERIMENTAL "$work/moon4" -p 128 -n 32 -r 3 -g 4
  stage moe "${T_KERNELS:-150}" "$bin/cuda_benchmarks" --benchmark_filter=ExpertGateUp \
    --benchmark_min_time=0.1
  grep -E '^\[  (FAILED|PASSED) |Failure|prompt|decode|group|ExpertGateUp|== ' "$out/moe.txt"
fi
if [[ $stages == *torch* ]]; then
  synth_q7
  PYTHONUNBUFFERED=1 stage torch "${T_TORCH:-120}" python3 "$here/torch_decode.py" --model "$work/q7" --tokens 64
  tail -3 "$out/torch.txt"
fi

if [[ $stages == *sanitizer* ]]; then
  # Memory errors only: one test runs the GPU out of memory on purpose (an API error).
  stage sanitizer "${T_SANITIZER:-150}" compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 1 \
    "$bin/backends_tests" --gtest_filter='*cuda*:*Cuda*'
  tail -4 "$out/sanitizer.txt"
fi

if [[ $stages == *cpu* ]]; then
  [[ -d $work/q15 ]] || stage synth "${T_SYNTH:-150}" "$bin/reasonrt" synth \
    --config "$work/r1-distill-qwen-1.5b.json" --out "$work/q15" --seed 1
  # Issue 3's targets (2 threads, as on the 2-core AVX-512 machine it names) and issue 6's
  # group of 8 against one sequence.
  stage cpu "${T_CPU:-150}" "$bin/reasonrt" bench --model "$work/q15" --backend cpu \
    -t 2 -p 128 -n 64 -r 3
  stage cpu "${T_CPU:-150}" "$bin/reasonrt" bench --model "$work/q15" --backend cpu \
    -t 2 -p 64 -n 24 -r 3 -g 8
  cat "$out/cpu.txt"
fi

if [[ $stages == *auto* ]]; then
  export RRT_BACKEND=cuda
  stage auto "${T_AUTO:-150}" "$bin/runtime_tests"
  # (Configs/*: the real configs' inventories, read from the source tree, backend-free.)
  stage auto "${T_AUTO:-150}" "$bin/models_tests" --gtest_filter='-Configs/*'
  # (GenerateLoopTest: the loop over a scripted session, no backend; it needs the tokenizer
  # test data that npm fetches, not bundled.)
  stage auto "${T_AUTO:-150}" "$bin/generate_tests" --gtest_filter='-GenerateLoopTest.*'
  stage auto "${T_AUTO:-150}" "$bin/grpo_tests"
  RRT_MINI_R1_DIR=$work/mini-r1 stage auto "${T_AUTO:-150}" "$bin/mini_r1_tests"
  stage auto "${T_AUTO:-150}" "$bin/capi_test" "$work/tiny_qwen" "$work/tiny_v3"
  unset RRT_BACKEND
  grep -E '^\[  (FAILED|PASSED|SKIPPED) |^\[  FAILED  \]|Failure|Mini-R1|== ' "$out/auto.txt" | head -60
fi
