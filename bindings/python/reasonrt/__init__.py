"""reasonrt: an embeddable runtime for DeepSeek-R1-family reasoning models.

    import reasonrt
    model = reasonrt.Model("/models/DeepSeek-R1-Distill-Qwen-1.5B")
    result = model.generate([{"role": "user", "content": "What is 17 * 23?"}])
    print(result.completions[0].thinking, result.completions[0].answer)

    for event in model.generate(messages, stream=True):   # thinking and answer as they come
        print(event.channel, event.text)

    group = model.generate(messages, n=8, seed=42)        # GRPO: n completions, log-probs as numpy
    group.completions[3].logprobs                          # numpy float32 [tokens]

Errors raise ValueError (bad input), FileNotFoundError, MemoryError (context or memory
full), NotImplementedError, or RuntimeError, with the library's message. Ctrl-C stops a
running generation (KeyboardInterrupt).
"""
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from . import _reasonrt
from . import grpo

__all__ = ["Model", "Completion", "GenerationResult", "Event", "route_tokens", "grpo", "__version__"]
__version__ = "0.1.0"

Messages = Union[str, Sequence[Dict[str, Any]]]


@dataclass
class Completion:
    """One completion: thinking and answer text, token ids, per-token log-probs
    (log_softmax(logits / temperature) over the vocabulary) and channels."""
    index: int
    thinking: str
    answer: str
    tokens: np.ndarray
    logprobs: np.ndarray
    channels: List[str]
    finish_reason: str
    thinking_tokens: int


@dataclass
class GenerationResult:
    prompt: str
    prompt_tokens: np.ndarray
    completions: List[Completion]
    timings: Dict[str, float] = field(default_factory=dict)
    # MoE models with routing_stats=True: {"layers": int32 [L] (decoder layer ids),
    # "load": int64 [L, experts] (tokens routed to each expert), "tokens": int}; with
    # routing_trace=True also "trace_seq_ids", "trace_positions", "trace_layers" (int32 [N])
    # and "trace_experts" (int32 [N, k]), "trace_weights" (float32 [N, k]): every token's
    # choice in every MoE layer, in forward order.
    routing: Optional[Dict[str, Any]] = None


@dataclass
class Event:
    """A streamed event: type is "thinking", "answer", "token" or "finish"."""
    type: str
    index: int
    channel: Optional[str] = None
    text: str = ""
    token: int = -1
    logprob: float = 0.0
    finish_reason: Optional[str] = None


def _result(d: Dict[str, Any]) -> GenerationResult:
    completions = [Completion(c["index"], c["thinking"], c["answer"], c["tokens"], c["logprobs"],
                              list(c["channels"]), c["finish_reason"], c["thinking_tokens"])
                   for c in d["completions"]]
    routing = dict(d["routing"]) if "routing" in d else None
    return GenerationResult(d["prompt"], d["prompt_tokens"], completions, dict(d["timings"]), routing)


class Model:
    """A model folder (Hugging Face safetensors, tokenizer.json, chat template), loaded once;
    safe to use from several threads."""

    def __init__(self, path: str, *, backend: str = "auto", threads: int = 0, exact: bool = False,
                 progress: Optional[Callable[[float], Optional[bool]]] = None, in_memory: bool = False):
        """Loads the model. `progress(fraction)` is called while the weights are read;
        returning False cancels (KeyboardInterrupt). in_memory=True reads the weights into
        process memory instead of mapping the files (needed for update_weights)."""
        self._m = _reasonrt.Model(str(path), backend, threads, exact, progress, in_memory)

    def update_weights(self, weights: Dict[str, np.ndarray]) -> None:
        """Replaces weights in place by checkpoint name ({"lm_head.weight": array, ...}), as a
        trainer syncs its policy into the rollout engine; values are converted to each
        tensor's stored dtype. Needs in_memory=True. All are checked before any is written
        (ValueError); running generations see the old or the new weights, never a mix."""
        self._m.update_weights({str(k): np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()})

    @property
    def info(self) -> Dict[str, Any]:
        """Architecture, vocabulary, layers, context length and backend."""
        return dict(self._m.info())

    def tokenize(self, text: str, *, parse_special: bool = False, add_special: bool = False) -> List[int]:
        return list(self._m.tokenize(text, parse_special, add_special))

    def detokenize(self, ids: Sequence[int], *, skip_special: bool = False) -> str:
        return self._m.detokenize([int(i) for i in ids], skip_special)

    def chat_prompt(self, messages: Sequence[Dict[str, Any]], *, add_generation_prompt: bool = True,
                    tools: Optional[list] = None, **extra: Any) -> str:
        """The prompt the model's chat template makes of `messages`."""
        return self._m.chat_prompt(json.dumps(list(messages)), add_generation_prompt,
                                   json.dumps(tools) if tools else "", json.dumps(extra) if extra else "")

    def generate(self, messages: Messages, *, n: int = 1, max_tokens: int = 1024, temperature: float = 0.6,
                 top_p: float = 0.95, top_k: int = 0, min_p: float = 0.0, repetition_penalty: float = 1.0,
                 seed: int = 0, greedy: bool = False, max_thinking: int = -1, min_thinking: int = 0,
                 stop: Optional[List[str]] = None, stream: bool = False, raw: bool = False,
                 tools: Optional[list] = None, first_index: int = 0, presence_penalty: float = 0.0,
                 frequency_penalty: float = 0.0, add_generation_prompt: bool = True,
                 routing_stats: bool = False, routing_trace: bool = False, kv_dtype: str = "f32",
                 **extra: Any) -> Union[GenerationResult, Iterator[Event]]:
        """Generates from chat messages (or, with raw=True, a prompt string; or a list of
        token ids). Defaults are R1's recommended sampling. stream=True returns an iterator
        of Events (one decode step per step of the iterator); otherwise a GenerationResult.
        routing_stats=True (MoE models) fills GenerationResult.routing with the expert load,
        routing_trace=True also with every token's routing. kv_dtype="bf16" keeps the KV
        cache in bf16 (half the memory of long thinking)."""
        options = _reasonrt.make_options(n, max_tokens, temperature, top_p, top_k, min_p, repetition_penalty,
                                         seed, greedy, max_thinking, min_thinking, list(stop or []),
                                         add_generation_prompt, json.dumps(tools) if tools else "",
                                         json.dumps(extra) if extra else "", first_index, presence_penalty,
                                         frequency_penalty, False, routing_stats or routing_trace,
                                         routing_trace, kv_dtype)
        if isinstance(messages, str):
            if not raw:
                messages = [{"role": "user", "content": messages}]
                args = (json.dumps(messages), None, None)
            else:
                args = (None, messages, None)
        elif len(messages) > 0 and isinstance(messages[0], (int, np.integer)):
            args = (None, None, [int(t) for t in messages])
        else:
            args = (json.dumps(list(messages)), None, None)
        if stream:
            return self._stream(self._m.start(*args, options))
        return _result(self._m.generate(*args, options))

    @staticmethod
    def _stream(run) -> Iterator[Event]:
        for e in run:
            yield Event(**e)

    def score(self, prompt: Sequence[int], completions: Sequence[Sequence[int]], *,
              temperature: float = 1.0) -> List[np.ndarray]:
        """Teacher-forced log-probs of each completion's tokens after `prompt`."""
        return list(self._m.score([int(t) for t in prompt], [[int(t) for t in c] for c in completions],
                                  temperature))

    def logits(self, tokens: Sequence[int]) -> np.ndarray:
        """All-position logits, float32 [len(tokens), vocab]."""
        return self._m.logits([int(t) for t in tokens])

    def route_layer(self, layer: int, hidden: np.ndarray):
        """(MoE models) Decoder layer `layer`'s router applied to `hidden` [tokens, hidden_size]
        (the layer's MoE input: its post-attention RMSNorm output). Returns (experts int32
        [tokens, k], weights float32 [tokens, k])."""
        return self._m.route_layer(int(layer), np.asarray(hidden, dtype=np.float32))

    def moe_layer_forward(self, layer: int, hidden: np.ndarray):
        """(MoE models) The layer's whole MoE block on `hidden` [tokens, hidden_size]: returns
        (output float32 [tokens, hidden_size] = weighted routed experts + shared experts,
        experts, weights)."""
        return self._m.moe_layer_forward(int(layer), np.asarray(hidden, dtype=np.float32))


def route_tokens(logits: np.ndarray, *, experts_per_token: int = 8, n_group: int = 8, topk_group: int = 4,
                 scoring: str = "sigmoid", method: str = "noaux_tc", norm: bool = True,
                 scaling: float = 2.5, v2: bool = False, bias: Optional[np.ndarray] = None):
    """DeepSeek's MoE routing of gate logits [tokens, experts] (defaults: R1's router).
    Returns (experts int32 [tokens, k], weights float32 [tokens, k]); v2=True applies
    DeepSeek-V2's rule of not scaling normalised weights."""
    return _reasonrt.route_tokens(np.asarray(logits, dtype=np.float32), experts_per_token, n_group, topk_group,
                                  scoring, method, norm, scaling, not v2,
                                  None if bias is None else [float(b) for b in np.asarray(bias).ravel()])
