"""n completions of one prompt (a GRPO group) with their per-token log-probs as numpy.

    python3 examples/python/group_logprobs.py MODEL_DIR [N]
"""
import sys

import numpy as np

import reasonrt


def main():
    model = reasonrt.Model(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    group = model.generate([{"role": "user", "content": "What is 17 * 23? Answer in \\boxed{}."}],
                           n=n, max_tokens=64, seed=42)
    for c in group.completions:
        lp = c.logprobs
        print(f"completion {c.index}: {len(c.tokens)} tokens ({c.thinking_tokens} thinking), "
              f"sum log-prob {lp.sum():.2f}, mean {lp.mean():.3f}, finish {c.finish_reason}")
    logprobs = np.concatenate([c.logprobs for c in group.completions])
    print(f"{len(logprobs)} tokens, {group.timings['decode_tokens_per_second']:.1f} tokens/s decoding the group")


if __name__ == "__main__":
    main()
