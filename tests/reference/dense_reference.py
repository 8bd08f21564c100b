"""An independent float32 PyTorch reference of the Qwen2 and Llama architectures.

Written from the Hugging Face transformers semantics (modeling_qwen2.py, modeling_llama.py,
modeling_rope_utils.py): RMSNorm, rotate-half RoPE with default / linear / llama3
frequencies, grouped-query causal attention, SwiGLU MLP, tied or untied head. It shares
no code with reasonrt and reads the checkpoint with its own safetensors parser.

    python3 dense_reference.py --model DIR --tokens 1,2,3 --out ref.npy
"""
import argparse
import json
import math
import os

import numpy as np
import torch

from safetensors_np import read_model


def rope_inv_freq(cfg):
    dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    base = cfg.get("rope_theta", 10000.0)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "linear":
        inv_freq = inv_freq / scaling["factor"]
    elif kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_len = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old_len / low, old_len / high
        wavelen = 2 * math.pi / inv_freq
        scaled = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_len / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    elif kind != "default":
        raise ValueError(f"rope type {kind} not in this reference")
    return inv_freq


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def forward(cfg, w, tokens):
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or h // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    t = len(tokens)

    pos = torch.arange(t, dtype=torch.int64)
    freqs = rope_inv_freq(cfg)[None, :].float() * pos[:, None].float()  # [T, hd/2]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None, :], emb.sin()[:, None, :]
    mask = torch.full((t, t), float("-inf")).triu(1)

    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        n = rms_norm(x, w[p + "input_layernorm.weight"], eps)

        def proj(name):
            y = n @ w[p + f"self_attn.{name}.weight"].T
            return y + w[p + f"self_attn.{name}.bias"] if bias else y

        q = proj("q_proj").view(t, nh, hd)
        k = proj("k_proj").view(t, nkv, hd)
        v = proj("v_proj").view(t, nkv, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        scores = torch.einsum("thd,shd->hts", q, k) / math.sqrt(hd) + mask
        attn = torch.einsum("hts,shd->thd", torch.softmax(scores, dim=-1), v).reshape(t, nh * hd)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T

        n = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = n @ w[p + "mlp.gate_proj.weight"].T
        up = n @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T

    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else w["lm_head.weight"]
    return x @ head.T


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.model, "config.json")) as f:
        cfg = json.load(f)
    tokens = [int(s) for s in args.tokens.split(",")]
    torch.set_num_threads(os.cpu_count() or 1)
    with torch.no_grad():
        logits = forward(cfg, read_model(args.model), tokens)
    np.save(args.out, logits.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
