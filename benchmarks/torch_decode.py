#!/usr/bin/env python3
"""PyTorch's eager decode of a model folder on the GPU, for comparison with
`reasonrt bench --backend cuda` on the same folder (issue 11): Hugging Face transformers'
model in bf16, greedy, one token at a time with its KV cache, no compilation, no CUDA
graphs. Prints tokens/s of decode (median of --reps) after a warm-up.

    python3 benchmarks/torch_decode.py --model DIR [--tokens 64] [--prompt 16] [--reps 3]
"""
import argparse
import statistics
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    config = AutoConfig.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.bfloat16).cuda().eval()
    prompt = torch.randint(0, config.vocab_size, (1, args.prompt), device="cuda")
    rates = []
    with torch.no_grad():
        for rep in range(args.reps + 1):
            out = model(prompt, use_cache=True)
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.tokens):
                out = model(token, past_key_values=past, use_cache=True)
                past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            torch.cuda.synchronize()
            if rep > 0:  # the first is a warm-up
                rates.append(args.tokens / (time.perf_counter() - t0))
    print(f"torch {torch.__version__} eager bf16 decode: {statistics.median(rates):.2f} tokens/s "
          f"(median of {args.reps}; {torch.cuda.get_device_name()})")


if __name__ == "__main__":
    main()
