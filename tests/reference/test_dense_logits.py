"""reasonrt's dense forward pass against the independent PyTorch reference.

Each case synthesizes a checkpoint with `reasonrt synth`, writes all-position logits with
`reasonrt logits` and compares them with dense_reference.py: max |diff| <= 1e-3 * max
|logit| and the same argmax at every position. Needs RRT_CLI (the reasonrt binary) and
RRT_MODEL_CONFIGS_DIR in the environment (ctest sets both).
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

CLI = os.environ.get("RRT_CLI")
CONFIGS = os.environ.get("RRT_MODEL_CONFIGS_DIR", os.path.join(HERE, "../../../shared/model-configs"))
pytestmark = pytest.mark.skipif(not CLI, reason="RRT_CLI not set")

TINY_QWEN = {
    "model_type": "qwen2", "hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 6,
    "num_key_value_heads": 2, "intermediate_size": 160, "vocab_size": 512,
    "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "bos_token_id": 300, "eos_token_id": 301,
}
TINY_LLAMA_TIED = {
    "model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 1, "intermediate_size": 128, "vocab_size": 400,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 1,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
}


def synth(tmp_path, name, config=None, config_file=None, extra=()):
    if config is not None:
        config_file = tmp_path / f"{name}_config.json"
        config_file.write_text(json.dumps(config))
    out = tmp_path / name
    subprocess.run([CLI, "synth", "--config", str(config_file), "--out", str(out), "--seed", "3",
                    *extra], check=True, capture_output=True)
    return out


def ours(model, tokens, tmp_path, *flags):
    out = tmp_path / f"ours{'_'.join(flags)}.npy"
    subprocess.run([CLI, "logits", "--model", str(model), "--tokens", ",".join(map(str, tokens)),
                    "--out", str(out), *flags], check=True, capture_output=True)
    return np.load(out)


def reference(model, tokens):
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    with torch.no_grad():
        return dense_reference.forward(cfg, read_model(str(model)), tokens).numpy()


# The reference backend and the cpu backend's decode path keep activations in f32: max
# |diff| <= 1e-3 * max |logit| and the same argmax at every position. The cpu backend's
# prompt GEMM rounds activations to bf16 (with bf16 weights, as fast runtimes do), which
# moves logits by up to ~3e-3 of the largest: that path gets a 1e-2 bound, and its argmax
# must agree wherever the reference's top two are further apart than twice that bound.
TIGHT, BF16_ACTIVATIONS = 1e-3, 1e-2


def assert_close(got, want, rel=TIGHT):
    assert got.shape == want.shape
    scale = np.abs(want).max()
    diff = np.abs(got - want).max()
    assert diff <= rel * scale, f"max |diff| {diff} > {rel} * {scale}"
    top2 = np.sort(want, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * rel * scale if rel > TIGHT else np.ones(len(want), bool)
    mismatch = np.nonzero((got.argmax(1) != want.argmax(1)) & decided)[0]
    assert mismatch.size == 0, f"argmax differs at positions {mismatch[:10]}"


def tokens_for(n, vocab, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, n).tolist()


def check_all_backends(model, toks, tmp_path, decode=True):
    want = reference(model, toks)
    assert_close(ours(model, toks, tmp_path, "--backend", "reference"), want)
    assert_close(ours(model, toks, tmp_path, "--backend", "cpu"), want, BF16_ACTIVATIONS)
    # With exact activations the prompt GEMM is as tight as the reference.
    assert_close(ours(model, toks, tmp_path, "--backend", "cpu", "--exact"), want)
    if decode:
        # One token per forward call through the KV cache: the cpu backend's decode path.
        assert_close(ours(model, toks, tmp_path, "--backend", "cpu", "--decode"), want)


def test_tiny_qwen2_prefill_and_decode(tmp_path):
    model = synth(tmp_path, "qwen", TINY_QWEN)
    toks = tokens_for(37, 512)
    check_all_backends(model, toks, tmp_path)
    assert_close(ours(model, toks, tmp_path, "--backend", "reference", "--decode"), reference(model, toks))


def test_f16_and_f32_checkpoints(tmp_path):
    for dtype in ("f16", "f32"):
        model = synth(tmp_path, "qwen_" + dtype, TINY_QWEN, extra=["--dtype", dtype])
        check_all_backends(model, tokens_for(20, 512, seed=5), tmp_path)


def test_tiny_llama3_tied_long_sequence(tmp_path):
    # Past 8192 positions the llama3 low-frequency scaling matters.
    model = synth(tmp_path, "llama", TINY_LLAMA_TIED)
    toks = tokens_for(8300, 400, seed=1)
    check_all_backends(model, toks, tmp_path, decode=False)


@pytest.mark.parametrize("config", ["r1-distill-qwen-1.5b.json", "r1-distill-llama-8b.json"])
def test_real_shapes_two_layers(tmp_path, config):
    path = os.path.join(CONFIGS, config)
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    model = synth(tmp_path, "real", config_file=path, extra=["--layers", "2"])
    toks = tokens_for(12, 1000, seed=2)
    check_all_backends(model, toks, tmp_path)
