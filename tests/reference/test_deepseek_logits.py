"""reasonrt's DeepSeek forward pass (MLA in absorbed form over the latent cache, MoE) against
the independent PyTorch reference (deepseek_reference.py, naive MLA).

Each case synthesizes a checkpoint with `reasonrt synth` (bf16, or FP8 e4m3 with 128x128
block scales, which the reference dequantizes the same way), writes all-position logits and
the expert ids of every MoE layer with `reasonrt logits --routing`, and checks:
- logits: max |diff| <= 1e-3 x max |logit| and the same argmax at every position, for the
  reference backend, the cpu backend with exact activations, and one-token-at-a-time decode
  through the cache;
- routing: the expert ids per token per layer equal the reference's exactly (these f32 paths).
The cpu backend's prompt path with bf16-rounded activations can flip a routing decision
whose top experts' scores are closer than that rounding (random synthetic gates have small
margins), and a flip changes that token's output discontinuously, as it does in any bf16
MoE runtime. That path is held to: >= 90% of the (layer, token) decisions equal, and logits
within 1e-2 x max |logit| at the positions before the first flip.
Needs RRT_CLI and RRT_MODEL_CONFIGS_DIR (ctest sets both).
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deepseek_reference as ds  # noqa: E402
from safetensors_np import read_model  # noqa: E402
from test_deepseek_reference import TINY_V2, TINY_V3  # noqa: E402
from test_dense_logits import BF16_ACTIVATIONS, assert_close, tokens_for  # noqa: E402

CLI = os.environ.get("RRT_CLI")
CONFIGS = os.environ.get("RRT_MODEL_CONFIGS_DIR", os.path.join(HERE, "../../../shared/model-configs"))
pytestmark = pytest.mark.skipif(not CLI, reason="RRT_CLI not set")


def synth(tmp_path, name, *, config=None, config_file=None, extra=()):
    if config is not None:
        config_file = tmp_path / f"{name}.json"
        config_file.write_text(json.dumps(config))
    out = tmp_path / name
    subprocess.run([CLI, "synth", "--config", str(config_file), "--out", str(out), "--seed", "11", *extra],
                   check=True, capture_output=True)
    return out


def ours(model, tokens, tmp_path, *flags):
    logits, routing = tmp_path / "ours.npy", tmp_path / "routing.npy"
    subprocess.run([CLI, "logits", "--model", str(model), "--tokens", ",".join(map(str, tokens)),
                    "--out", str(logits), "--routing", str(routing), *flags], check=True, capture_output=True)
    return np.load(logits), np.load(routing)


def reference(model, tokens):
    with open(os.path.join(model, "config.json")) as f:
        cfg = json.load(f)
    trace = []
    with torch.no_grad():
        logits = ds.forward(cfg, read_model(str(model)), tokens, trace=trace).numpy()
    return logits, np.stack([t.numpy() for t in trace]).astype(np.int32)


def check(model, tokens, tmp_path):
    want, want_routing = reference(model, tokens)
    for flags in (["--backend", "reference"], ["--backend", "cpu", "--exact"],
                  ["--backend", "cpu", "--decode"]):
        got, routing = ours(model, tokens, tmp_path, *flags)
        assert_close(got, want)
        assert routing.shape == want_routing.shape, flags
        assert np.array_equal(routing, want_routing), f"{flags}: routing differs at {np.argwhere(routing != want_routing)[:5]}"
    check_bf16_activations(model, tokens, want, want_routing, tmp_path)


def check_bf16_activations(model, tokens, want, want_routing, tmp_path):
    """The cpu backend's default prompt path (bf16-rounded activations) as the docstring says."""
    got, routing = ours(model, tokens, tmp_path, "--backend", "cpu")
    same = (routing == want_routing).all(axis=2)  # [layers, T]
    assert same.mean() >= 0.9, f"only {same.mean():.2f} of the routing decisions agree"
    unflipped = same.all(axis=0)
    first_flip = len(tokens) if unflipped.all() else int(np.argmin(unflipped))
    if first_flip > 0:
        assert_close(got[:first_flip], want[:first_flip], BF16_ACTIVATIONS)


@pytest.mark.parametrize("config,flags", [(TINY_V3, []), (TINY_V3, ["--fp8"]), (TINY_V2, []), (TINY_V2, ["--fp8"])],
                         ids=["v3", "v3_fp8", "v2", "v2_fp8"])
def test_tiny(tmp_path, config, flags):
    model = synth(tmp_path, "m", config=config, extra=flags)
    check(model, tokens_for(40, config["vocab_size"], seed=3), tmp_path)


def test_tiny_v3_past_the_yarn_original_length(tmp_path):
    # YaRN's frequencies and mscale matter past original_max_position_embeddings (4096).
    model = synth(tmp_path, "m", config=TINY_V3)
    tokens = tokens_for(4200, TINY_V3["vocab_size"], seed=4)
    want, want_routing = reference(model, tokens)
    got, routing = ours(model, tokens, tmp_path, "--backend", "cpu", "--exact")
    assert_close(got, want)
    assert np.array_equal(routing, want_routing)


@pytest.mark.parametrize("flags", [[], ["--fp8"]], ids=["bf16", "fp8"])
def test_moonlight_shape_two_layers(tmp_path, flags):
    path = os.path.join(CONFIGS, "moonlight-16b-a3b.json")
    if not os.path.exists(path):
        pytest.skip(f"no {path}")
    model = synth(tmp_path, "moonlight", config_file=path, extra=["--layers", "2", *flags])
    try:  # a few GB: removed right after
        # 16 tokens: a prompt's GEMMs (more than 8 rows), whose FP8 weights span many
        # 128x128 scale blocks here (the tiny models' fit in one).
        tokens = tokens_for(16, 1000, seed=2)
        want, want_routing = reference(model, tokens)
        for mode in ("--exact", "--decode"):
            got, routing = ours(model, tokens, tmp_path, "--backend", "cpu", mode)
            assert_close(got, want)
            assert np.array_equal(routing, want_routing), mode
        check_bf16_activations(model, tokens, want, want_routing, tmp_path)
    finally:
        shutil.rmtree(model)
