"""Self-checks of the DeepSeek reference (the oracle the C++ DeepSeek path will be held to):
its absorbed MLA (reasonrt's form) equals the naive one, its routing follows the stated
rules on a tiny V3 checkpoint with groups and q-LoRA, a V2-style one, in bf16 and FP8, and
the YaRN constants of R1 match the published ones."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import deepseek_reference as ds  # noqa: E402
from safetensors_np import read_model  # noqa: E402

CLI = os.environ.get("RRT_CLI")
CONFIGS = os.environ.get("RRT_MODEL_CONFIGS_DIR", os.path.join(HERE, "../../../shared/model-configs"))
pytestmark = pytest.mark.skipif(not CLI, reason="RRT_CLI not set")

TINY_V3 = {
    "model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 3, "first_k_dense_replace": 1,
    "intermediate_size": 96, "moe_intermediate_size": 32, "num_attention_heads": 4, "num_key_value_heads": 4,
    "q_lora_rank": 48, "kv_lora_rank": 32, "qk_nope_head_dim": 16, "qk_rope_head_dim": 8, "v_head_dim": 16,
    "n_routed_experts": 16, "n_shared_experts": 1, "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2,
    "routed_scaling_factor": 2.5, "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": True,
    "moe_layer_freq": 1, "vocab_size": 300, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
    "tie_word_embeddings": False, "max_position_embeddings": 16384, "num_nextn_predict_layers": 1,
    "rope_scaling": {"type": "yarn", "factor": 4, "original_max_position_embeddings": 4096, "beta_fast": 32,
                     "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0},
    "bos_token_id": 0, "eos_token_id": 1}
TINY_V2 = dict(TINY_V3, model_type="deepseek_v2", q_lora_rank=None, scoring_func="softmax",
               topk_method="group_limited_greedy", norm_topk_prob=False, routed_scaling_factor=1.0,
               rope_scaling={"type": "yarn", "factor": 4, "original_max_position_embeddings": 4096,
                             "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707})


def synth(tmp_path, config, *flags):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(config))
    out = tmp_path / "m"
    subprocess.run([CLI, "synth", "--config", str(cfg), "--out", str(out), "--seed", "5", *flags],
                   check=True, capture_output=True)
    with open(out / "config.json") as f:
        return json.load(f), read_model(str(out))


@pytest.mark.parametrize("config,flags", [(TINY_V3, []), (TINY_V3, ["--fp8"]), (TINY_V2, [])],
                         ids=["v3", "v3_fp8", "v2"])
def test_absorbed_mla_equals_naive_and_routing_follows_the_rules(tmp_path, config, flags):
    cfg, w = synth(tmp_path, config, *flags)
    tokens = [0, 17, 42, 99, 5, 250, 31, 7, 64, 128]
    with torch.no_grad():
        trace_naive, trace_abs = [], []
        naive = ds.forward(cfg, w, tokens, absorbed=False, trace=trace_naive)
        absorbed = ds.forward(cfg, w, tokens, absorbed=True, trace=trace_abs)
    assert torch.isfinite(naive).all()
    scale = naive.abs().max().item()
    assert (naive - absorbed).abs().max().item() <= 1e-5 * scale
    assert all(torch.equal(a, b) for a, b in zip(trace_naive, trace_abs))
    assert len(trace_naive) == cfg["num_hidden_layers"] - cfg["first_k_dense_replace"]
    for idx in trace_naive:
        assert idx.shape == (len(tokens), cfg["num_experts_per_tok"])
        per_group = cfg["n_routed_experts"] // cfg["n_group"]
        for row in idx.tolist():
            assert len(set(row)) == len(row)
            assert len({e // per_group for e in row}) <= cfg["topk_group"]


def test_router_weights_rules():
    logits = torch.tensor([[2.197, -2.197, 0.405, 0.2007, -1.386, -0.847, 0.847, 0.619]])
    cfg = {"model_type": "deepseek_v3", "n_routed_experts": 8, "num_experts_per_tok": 2, "n_group": 4,
           "topk_group": 2, "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": True,
           "routed_scaling_factor": 2.5}
    idx, wts = ds.route(cfg, logits, torch.zeros(8))
    assert idx.tolist() == [[6, 7]]  # expert 0 scores best, but its group is dropped
    np.testing.assert_allclose(wts.numpy(), [[0.7 / 1.35 * 2.5, 0.65 / 1.35 * 2.5]], rtol=1e-3)


def test_r1_yarn_constants():
    path = os.path.join(CONFIGS, "deepseek-r1.json")
    if not os.path.exists(path):  # as the other tests of the real configs
        pytest.skip(f"no {path}")
    with open(path) as f:
        cfg = json.load(f)
    m = 0.1 * 1.0 * math.log(40) + 1
    assert abs(ds.softmax_scale(cfg) - 192 ** -0.5 * m * m) < 1e-12
    assert abs(ds.softmax_scale(cfg) - 0.1352338) < 1e-7  # the published value for R1
    cos, sin = ds.rope_tables(cfg, [1])
    freqs = torch.atan2(sin[0].double(), cos[0].double())
    base = 1.0 / (10000.0 ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64))
    # Dims 0..10 keep their frequency; pairs from 23 on are divided by 40.
    np.testing.assert_allclose(freqs[:11].numpy(), base[:11].numpy(), rtol=1e-5)
    np.testing.assert_allclose(freqs[23:].numpy(), (base[23:] / 40).numpy(), rtol=1e-4)
