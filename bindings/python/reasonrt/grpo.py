"""reasonrt.grpo: the numerics and rule-based rewards of GRPO, on numpy arrays.

    from reasonrt import grpo
    rewards = np.stack([grpo.accuracy(texts, golds), grpo.format(texts)])   # [functions, N]
    adv = grpo.advantages(rewards, group_size=8, weights=[1.0, 0.5])         # [N]
    out = grpo.policy_loss(new_lp, old_lp, adv, mask, ref_logprobs=ref_lp, beta=0.04)
    out["loss"], out["grad"]                                                 # d loss / d new_lp

    batch = grpo.rollout(model, ["What's 2 + 2?"], ["4"], n=8)               # a trainer's batch

Rewards are float32 arrays with NaN for "no reward" (an unparseable gold); see
include/reasonrt/grpo.h for the exact rules.
"""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _reasonrt

_g = _reasonrt.grpo

__all__ = ["advantages", "policy_loss", "kl_k3", "extract_answer", "parse_number", "accuracy", "format",
           "tag_count", "language_consistency", "soft_overlong", "cosine_length", "repetition_penalty",
           "arithmetic", "sft_json_line", "rollout", "accepted_jsonl"]


def advantages(rewards, *, group_size: int, scaling: str = "group", baseline: str = "mean",
               unbiased: bool = True, eps: float = 1e-4, weights: Optional[Sequence[float]] = None,
               combination: str = "sum") -> np.ndarray:
    """Group-relative advantages of rewards [N] or [functions, N] (groups of group_size
    consecutive samples). scaling: "group" | "batch" | "none" (Dr. GRPO); baseline: "mean" |
    "rloo"; combination of several functions: "sum" (weighted sum, then normalise) or
    "normalize" (normalise each, then weighted sum). NaN rewards are missing."""
    return _g.advantages(np.asarray(rewards, dtype=np.float32), group_size, scaling, baseline, unbiased, eps,
                         [float(w) for w in (weights or [])], combination)


def policy_loss(new_logprobs, old_logprobs, advantages, mask, *, ref_logprobs=None, eps_low: float = 0.2,
                eps_high: float = 0.2, dual_clip: float = 0.0, level: str = "token", beta: float = 0.0,
                aggregation: str = "grpo", max_length: int = 0) -> Dict[str, Any]:
    """The clipped policy loss and its gradient with respect to new_logprobs ([B, T] arrays,
    advantages [B]). level: "token" | "sequence" (GSPO); aggregation: "grpo" (per-sequence
    mean, then batch mean) | "token_mean" (DAPO) | "dr_grpo" (sum / (B x max_length)).
    Returns {"loss", "grad", "per_token_loss", "kl_mean", "clip_fraction"}."""
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return dict(_g.policy_loss(f32(new_logprobs), f32(old_logprobs), f32(advantages), f32(mask),
                               None if ref_logprobs is None else f32(ref_logprobs), eps_low, eps_high, dual_clip,
                               level, beta, aggregation, max_length))


def kl_k3(new_logprob: float, ref_logprob: float) -> float:
    """exp(ref - new) - (ref - new) - 1."""
    return _g.kl_k3(new_logprob, ref_logprob)


def extract_answer(completion: str) -> str:
    """The last \\boxed{...} after </think> (or the text after it)."""
    return _g.extract_answer(completion)


def parse_number(text: str) -> float:
    """The value of a numeric answer (LaTeX fractions, roots, pi, separators); ValueError if none."""
    return _g.parse_number(text)


def accuracy(completions: Sequence[str], golds: Sequence[str], *, rtol: float = 1e-6,
             atol: float = 1e-9) -> np.ndarray:
    return _g.accuracy(list(completions), list(golds), rtol, atol)


def format(completions: Sequence[str], *, prompt_opens_thinking: bool = True) -> np.ndarray:  # noqa: A001
    return _g.format(list(completions), prompt_opens_thinking)


def tag_count(completions: Sequence[str], *, prompt_opens_thinking: bool = True) -> np.ndarray:
    return _g.tag_count(list(completions), prompt_opens_thinking)


def language_consistency(completions: Sequence[str], script: str = "latin") -> np.ndarray:
    return _g.language_consistency(list(completions), script)


def soft_overlong(lengths: Sequence[int], *, max_tokens: int, cache: int) -> np.ndarray:
    return _g.soft_overlong([int(n) for n in lengths], max_tokens, cache)


def cosine_length(completions: Sequence[str], golds: Sequence[str], lengths: Sequence[int], *,
                  max_tokens: int = 1000, min_correct: float = 0.5, max_correct: float = 1.0,
                  min_wrong: float = -0.5, max_wrong: float = 0.0) -> np.ndarray:
    return _g.cosine_length(list(completions), list(golds), [int(n) for n in lengths], max_tokens, min_correct,
                            max_correct, min_wrong, max_wrong)


def repetition_penalty(completions: Sequence[str], *, n: int = 3, max_penalty: float = 1.0) -> np.ndarray:
    return _g.repetition_penalty(list(completions), n, max_penalty)


def arithmetic(count: int, seed: int = 0, *, min_operands: int = 2, max_operands: int = 4, max_value: int = 100,
               multiplication: bool = True, parentheses: bool = True,
               column_steps: bool = False, restate: bool = False) -> List[Dict[str, Any]]:
    """Arithmetic problems with code-computed answers: dicts of question, expression, answer,
    verifier_answer, steps and completion (the R1-format SFT target). column_steps spells
    each + and - out digit by digit (carries, borrows) before its result; restate writes the
    expression as it stands after every step but the last ("Now: 125 + 63")."""
    return list(_g.arithmetic(count, seed, min_operands, max_operands, max_value, multiplication, parentheses,
                              column_steps, restate))


def sft_json_line(question: str, completion: str) -> str:
    return _g.sft_json_line(question, completion)


def rollout(model, prompts: Sequence[Union[str, Sequence[Dict[str, str]]]], golds: Sequence[str], *,
            rewards: Sequence[Tuple[str, float]] = (("accuracy", 1.0), ("format", 0.5)), n: int = 8,
            max_tokens: int = 1024, temperature: float = 0.6, top_p: float = 0.95, top_k: int = 0,
            seed: int = 0, scaling: str = "group", baseline: str = "mean", unbiased: bool = True,
            eps: float = 1e-4, combination: str = "sum", kv_dtype: str = "f32") -> Dict[str, Any]:
    """n completions per prompt (chat messages or a user string), their rewards (built-in
    names: accuracy, format, tag_count, repetition, language:<script>) and group
    advantages. Returns arrays: completion_tokens int32 [B, T] (-1 padded), old_logprobs and
    mask float32 [B, T], truncated bool [B], rewards float32 [functions, B], advantages [B],
    plus prompt_tokens, prompt_index, completions (text) and reward_names. kv_dtype="bf16":
    the KV cache in bf16."""
    messages = [[{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p] for p in prompts]
    options = _reasonrt.make_options(n, max_tokens, temperature, top_p, top_k, 0.0, 1.0, seed, False, -1, 0, [],
                                     True, "", "", 0, 0.0, 0.0, False, False, False, kv_dtype)
    return dict(model._m.rollout(messages, list(golds), [(str(k), float(w)) for k, w in rewards], options, scaling,
                                 baseline, unbiased, eps, combination))


def accepted_jsonl(batch: Dict[str, Any], prompts, *, threshold: float = 1.0,
                   weights: Optional[Sequence[float]] = None) -> str:
    """Rejection sampling: the rollout's completions whose weighted reward sum (missing
    rewards left out) is >= threshold, as chat-format SFT JSON lines (the prompt's messages,
    then the assistant's completion with its reasoning; a completion that starts inside the
    template's <think> gets the tag back)."""
    rewards = np.asarray(batch["rewards"], dtype=np.float32)
    messages = [[{"role": "user", "content": p}] if isinstance(p, str) else [dict(m) for m in p] for p in prompts]
    return _g.accepted_jsonl(rewards, list(batch["completions"]), [int(i) for i in batch["prompt_index"]], messages,
                             [float(w) for w in weights] if weights is not None else [1.0] * rewards.shape[0],
                             threshold)
