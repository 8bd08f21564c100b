"""A safetensors reader written from the format description, for the reference tests.

Independent of reasonrt's C++ reader: parses the 8-byte little-endian header length, the
JSON header and the raw data with numpy, and returns float32 torch tensors.
"""
import json
import os
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64,
           "I8": np.int8, "U8": np.uint8}


def _decode(dtype, raw, shape):
    if dtype == "BF16":
        bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32).reshape(shape)
    if dtype == "F8_E4M3":
        b = np.frombuffer(raw, dtype=np.uint8).astype(np.int32)
        sign = np.where(b & 0x80, -1.0, 1.0)
        exp = (b >> 3) & 0xF
        man = b & 0x7
        val = np.where(exp == 0, man / 8.0 * 2.0 ** -6, (1 + man / 8.0) * 2.0 ** (exp - 7.0))
        val = np.where((exp == 15) & (man == 7), np.nan, val)
        return (sign * val).astype(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=_DTYPES[dtype]).astype(np.float32).reshape(shape)


def read_file(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = torch.from_numpy(
            _decode(info["dtype"], data[base + begin:base + end], info["shape"]).copy())
    return out


def read_model(folder):
    """All tensors of a model folder (single file or index + shards), as f32, FP8 weights
    dequantized with their 128x128 weight_scale_inv blocks."""
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        tensors.update(read_file(os.path.join(folder, name)))
    for name in [n for n in tensors if n.endswith("_scale_inv")]:
        scale = tensors.pop(name)
        weight_name = name[: -len("_scale_inv")]
        w = tensors[weight_name]
        s = scale.repeat_interleave(128, 0).repeat_interleave(128, 1)[: w.shape[0], : w.shape[1]]
        tensors[weight_name] = w * s
    return tensors
