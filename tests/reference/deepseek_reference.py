"""An independent float32 PyTorch reference of the DeepSeek-V2/V3 (R1) architecture.

Written from the published semantics (DeepSeek-V3's inference code and model card,
Hugging Face's modeling_deepseek_v3): Multi-head Latent Attention with optional q-LoRA,
YaRN frequencies and mscale, RoPE on adjacent pairs of the rope dims, the MoE router
(sigmoid + correction bias + groups for V3, softmax greedy / group-limited for V2), routed
and shared SwiGLU experts, dense first layers. It shares no code with reasonrt; FP8
weights arrive dequantized by safetensors_np.

Attention has two forms that must agree: the naive one (K and V expanded per head from the
latent) and the absorbed one that reasonrt implements (W_UK folded into the query, W_UV
applied after attention, the cache holding only the latent and the rope key).

    python3 deepseek_reference.py --model DIR --tokens 1,2,3 --out ref.npy [--absorbed]
"""
import argparse
import json
import math
import os

import numpy as np
import torch

from safetensors_np import read_model


def yarn_mscale(scale, mscale):
    return 0.1 * mscale * math.log(scale) + 1.0 if scale > 1 else 1.0


def rope_tables(cfg, positions):
    """cos, sin of shape [T, rope_dim/2] for the rotation of adjacent pairs."""
    dim = cfg["qk_rope_head_dim"]
    base = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    sc = cfg.get("rope_scaling") or {}
    attn_factor = 1.0
    if sc.get("type", sc.get("rope_type")) == "yarn":
        factor, orig = sc["factor"], sc["original_max_position_embeddings"]
        beta_fast, beta_slow = sc.get("beta_fast", 32), sc.get("beta_slow", 1)

        def correction_dim(rotations):
            return dim * math.log(orig / (rotations * 2 * math.pi)) / (2 * math.log(base))

        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        keep = 1 - ramp  # 1: the original frequency, 0: divided by the factor
        freqs = freqs / factor * (1 - keep) + freqs * keep
        # cos/sin scaled by m(mscale) / m(mscale_all_dim): 1 for R1 and V2-Lite, whose two agree.
        attn_factor = yarn_mscale(factor, sc.get("mscale", 1)) / yarn_mscale(factor, sc.get("mscale_all_dim", 0))
    angles = torch.tensor(positions, dtype=torch.float64)[:, None] * freqs[None, :]
    return (torch.cos(angles) * attn_factor).float(), (torch.sin(angles) * attn_factor).float()


def rope_pairs(x, cos, sin):
    """Rotates (x[2i], x[2i+1]) by the angle of pair i. x: [T, ..., dim]."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    shape = [cos.shape[0]] + [1] * (x.dim() - 2) + [cos.shape[1]]
    c, s = cos.view(shape), sin.view(shape)
    out = torch.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


def softmax_scale(cfg):
    scale = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5
    sc = cfg.get("rope_scaling") or {}
    if sc.get("type", sc.get("rope_type")) == "yarn" and sc.get("mscale_all_dim"):
        m = yarn_mscale(sc["factor"], sc["mscale_all_dim"])
        scale = scale * m * m
    return scale


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def mla(cfg, w, p, x, positions, absorbed):
    t = x.shape[0]
    nh = cfg["num_attention_heads"]
    nope, rope, vd, r = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    eps = cfg.get("rms_norm_eps", 1e-6)
    if cfg.get("q_lora_rank"):
        q = rms_norm(x @ w[p + "q_a_proj.weight"].T, w[p + "q_a_layernorm.weight"], eps) @ w[p + "q_b_proj.weight"].T
    else:
        q = x @ w[p + "q_proj.weight"].T
    q = q.view(t, nh, nope + rope)
    q_nope, q_pe = q[..., :nope], q[..., nope:]
    kv_a = x @ w[p + "kv_a_proj_with_mqa.weight"].T
    latent = rms_norm(kv_a[:, :r], w[p + "kv_a_layernorm.weight"], eps)
    cos, sin = rope_tables(cfg, positions)
    k_pe = rope_pairs(kv_a[:, r:], cos, sin)  # [T, rope], one for all heads
    q_pe = rope_pairs(q_pe, cos, sin)
    wkv_b = w[p + "kv_b_proj.weight"].view(nh, nope + vd, r)
    scale = softmax_scale(cfg)
    mask = torch.full((t, t), float("-inf")).triu(1)
    if absorbed:
        q_lat = torch.einsum("thd,hdr->thr", q_nope, wkv_b[:, :nope])
        scores = (torch.einsum("thr,sr->hts", q_lat, latent) + torch.einsum("thd,sd->hts", q_pe, k_pe)) * scale
        probs = torch.softmax(scores + mask, dim=-1)
        o_lat = torch.einsum("hts,sr->thr", probs, latent)
        out = torch.einsum("thr,hvr->thv", o_lat, wkv_b[:, nope:])
    else:
        kv = torch.einsum("sr,hkr->shk", latent, wkv_b)  # [T, nh, nope + v]
        k = torch.cat([kv[..., :nope], k_pe[:, None, :].expand(t, nh, rope)], dim=-1)
        v = kv[..., nope:]
        qf = torch.cat([q_nope, q_pe], dim=-1)
        scores = torch.einsum("thd,shd->hts", qf, k) * scale
        probs = torch.softmax(scores + mask, dim=-1)
        out = torch.einsum("hts,shv->thv", probs, v)
    return out.reshape(t, nh * vd) @ w[p + "o_proj.weight"].T


def swiglu(w, p, x):
    return (torch.nn.functional.silu(x @ w[p + "gate_proj.weight"].T) * (x @ w[p + "up_proj.weight"].T)) @ \
        w[p + "down_proj.weight"].T


def route(cfg, logits, bias):
    """Expert ids [T, k] and weights [T, k] by DeepSeek's rules (see moe.h for the words)."""
    e, k = cfg["n_routed_experts"], cfg["num_experts_per_tok"]
    method = cfg.get("topk_method", "greedy")
    if cfg.get("scoring_func", "softmax") == "sigmoid":
        scores = torch.sigmoid(logits)
    else:
        scores = torch.softmax(logits, dim=-1)
    choice = scores + bias if method == "noaux_tc" else scores.clone()
    if method in ("noaux_tc", "group_limited_greedy"):
        g = cfg["n_group"]
        grouped = choice.view(-1, g, e // g)
        gs = grouped.topk(2, dim=-1).values.sum(-1) if method == "noaux_tc" else grouped.max(dim=-1).values
        keep = gs.topk(cfg["topk_group"], dim=-1).indices
        gmask = torch.zeros_like(gs).scatter_(1, keep, 1.0).bool()
        choice = choice.masked_fill(~gmask.repeat_interleave(e // g, dim=1), float("-inf"))
    idx = choice.topk(k, dim=-1).indices
    weights = scores.gather(1, idx)
    norm = cfg.get("norm_topk_prob", False) and k > 1
    if norm:
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    if not norm or cfg["model_type"] == "deepseek_v3":
        weights = weights * cfg.get("routed_scaling_factor", 1.0)
    return idx, weights


def moe(cfg, w, p, x, trace):
    logits = x @ w[p + "gate.weight"].T
    bias = w.get(p + "gate.e_score_correction_bias", torch.zeros(cfg["n_routed_experts"]))
    idx, weights = route(cfg, logits, bias)
    trace.append(idx)
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(idx.shape[1]):
            out[t] += weights[t, j] * swiglu(w, f"{p}experts.{int(idx[t, j])}.", x[t:t + 1])[0]
    if cfg.get("n_shared_experts"):
        out = out + swiglu(w, p + "shared_experts.", x)
    return out


def forward(cfg, w, tokens, absorbed=False, trace=None):
    """All-position logits [T, vocab]; `trace` (a list) receives each MoE layer's expert ids."""
    trace = [] if trace is None else trace
    eps = cfg.get("rms_norm_eps", 1e-6)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    positions = list(range(len(tokens)))
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = x + mla(cfg, w, p + "self_attn.", rms_norm(x, w[p + "input_layernorm.weight"], eps), positions, absorbed)
        hn = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        is_moe = (cfg.get("n_routed_experts") and i >= cfg.get("first_k_dense_replace", 0)
                  and i % cfg.get("moe_layer_freq", 1) == 0)
        x = x + (moe(cfg, w, p + "mlp.", hn, trace) if is_moe else swiglu(w, p + "mlp.", hn))
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--absorbed", action="store_true")
    a = ap.parse_args()
    with open(os.path.join(a.model, "config.json")) as f:
        cfg = json.load(f)
    with torch.no_grad():
        logits = forward(cfg, read_model(a.model), [int(t) for t in a.tokens.split(",")], a.absorbed)
    np.save(a.out, logits.numpy())


if __name__ == "__main__":
    main()
