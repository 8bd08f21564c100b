"""Generation on synthetic checkpoints against the independent PyTorch reference: greedy
tokens are the reference's argmax step by step, recorded log-probs are log_softmax of the
reference's logits, and a group's completions equal the same completions generated one at
a time (same seed and index). Needs RRT_CLI and RRT_MODEL_CONFIGS_DIR (ctest sets both).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dense_reference  # noqa: E402
from safetensors_np import read_model  # noqa: E402
from test_dense_logits import TINY_LLAMA_TIED, TINY_QWEN, synth  # noqa: E402

CLI = os.environ.get("RRT_CLI")
pytestmark = pytest.mark.skipif(not CLI, reason="RRT_CLI not set")


def generate(model, *flags):
    out = subprocess.run([CLI, "generate", "--model", str(model), "--prompt", "What is 17 * 23?", "--json", *flags],
                         check=True, capture_output=True).stdout
    return json.loads(out)


def reference_logits(model, tokens):
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    with torch.no_grad():
        return dense_reference.forward(cfg, read_model(str(model)), tokens).numpy().astype(np.float64)


def log_softmax(x, t=1.0):
    x = x / t
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("config", [TINY_QWEN, TINY_LLAMA_TIED], ids=["qwen2", "llama_tied"])
def test_greedy_is_reference_argmax_and_logprobs_match(tmp_path, backend, config):
    model = synth(tmp_path, "m", config, extra=["--dtype", "f32"])
    r = generate(model, "--greedy", "--max-tokens", "24", "--backend", backend)
    prompt = r["prompt_tokens"]
    completion = r["completions"][0]["tokens"]
    assert len(completion) >= 1
    ref = reference_logits(model, prompt + completion)
    steps = ref[len(prompt) - 1: len(prompt) - 1 + len(completion)]
    lp = log_softmax(steps)
    scale = np.abs(steps).max()
    for t, token in enumerate(completion):
        top2 = np.sort(steps[t])[-2:]
        if top2[1] - top2[0] > 2e-3 * scale:  # a clear winner: it must be ours
            assert token == int(np.argmax(steps[t])), f"step {t}"
        assert abs(r["completions"][0]["logprobs"][t] - lp[t, token]) < 1e-3, f"step {t}"


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_group_equals_single_runs_and_logprobs_match(tmp_path, backend):
    model = synth(tmp_path, "m", TINY_QWEN, extra=["--dtype", "f32"])
    flags = ["--temp", "0.9", "--top-p", "1", "--seed", "11", "--max-tokens", "16", "--backend", backend]
    group = generate(model, "-n", "4", *flags)
    prompt = group["prompt_tokens"]
    distinct = set()
    for i, c in enumerate(group["completions"]):
        single = generate(model, "-n", "1", "--first-index", str(i), *flags)["completions"][0]
        assert c["tokens"] == single["tokens"], f"completion {i}"
        np.testing.assert_allclose(c["logprobs"], single["logprobs"], atol=1e-4)
        distinct.add(tuple(c["tokens"]))
        # Log-probs at temperature 0.9 of the reference's logits.
        ref = reference_logits(model, prompt + c["tokens"])[len(prompt) - 1: len(prompt) - 1 + len(c["tokens"])]
        want = log_softmax(ref, 0.9)[np.arange(len(c["tokens"])), c["tokens"]]
        np.testing.assert_allclose(c["logprobs"], want, atol=1e-3)
    assert len(distinct) > 1
