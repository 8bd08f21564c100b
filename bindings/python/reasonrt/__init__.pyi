from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

__version__: str

class Completion:
    index: int
    thinking: str
    answer: str
    tokens: np.ndarray
    logprobs: np.ndarray
    channels: List[str]
    finish_reason: str
    thinking_tokens: int

class GenerationResult:
    prompt: str
    prompt_tokens: np.ndarray
    completions: List[Completion]
    timings: Dict[str, float]
    routing: Optional[Dict[str, Any]]

class Event:
    type: str
    index: int
    channel: Optional[str]
    text: str
    token: int
    logprob: float
    finish_reason: Optional[str]

class Model:
    def __init__(self, path: str, *, backend: str = ..., threads: int = ..., exact: bool = ...,
                 progress: Optional[Callable[[float], Optional[bool]]] = ..., in_memory: bool = ...) -> None: ...
    def update_weights(self, weights: Dict[str, np.ndarray]) -> None: ...
    @property
    def info(self) -> Dict[str, Any]: ...
    def tokenize(self, text: str, *, parse_special: bool = ..., add_special: bool = ...) -> List[int]: ...
    def detokenize(self, ids: Sequence[int], *, skip_special: bool = ...) -> str: ...
    def chat_prompt(self, messages: Sequence[Dict[str, Any]], *, add_generation_prompt: bool = ...,
                    tools: Optional[list] = ..., **extra: Any) -> str: ...
    def generate(self, messages: Union[str, Sequence[Dict[str, Any]], Sequence[int]], *, n: int = ...,
                 max_tokens: int = ..., temperature: float = ..., top_p: float = ..., top_k: int = ...,
                 min_p: float = ..., repetition_penalty: float = ..., seed: int = ..., greedy: bool = ...,
                 max_thinking: int = ..., min_thinking: int = ..., stop: Optional[List[str]] = ...,
                 stream: bool = ..., raw: bool = ..., tools: Optional[list] = ..., first_index: int = ...,
                 presence_penalty: float = ..., frequency_penalty: float = ..., add_generation_prompt: bool = ...,
                 routing_stats: bool = ..., routing_trace: bool = ..., **extra: Any) -> Union[GenerationResult, Iterator[Event]]: ...
    def score(self, prompt: Sequence[int], completions: Sequence[Sequence[int]], *,
              temperature: float = ...) -> List[np.ndarray]: ...
    def logits(self, tokens: Sequence[int]) -> np.ndarray: ...
    def route_layer(self, layer: int, hidden: np.ndarray) -> Tuple[np.ndarray, np.ndarray]: ...
    def moe_layer_forward(self, layer: int, hidden: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...

def route_tokens(logits: np.ndarray, *, experts_per_token: int = ..., n_group: int = ..., topk_group: int = ...,
                 scoring: str = ..., method: str = ..., norm: bool = ..., scaling: float = ..., v2: bool = ...,
                 bias: Optional[np.ndarray] = ...) -> tuple: ...
