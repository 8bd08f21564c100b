"""The installed `reasonrt` wheel (tests/python/run_wheel_tests.sh installs it into a fresh
virtualenv): loading, tokenizer, chat template, generation, streaming, groups, log-probs
against scoring and against the C++ command-line tool, cancellation and errors."""
import _thread
import json
import os
import subprocess
import threading

import numpy as np
import pytest

import reasonrt

CLI = os.environ.get("RRT_CLI")
MESSAGES = [{"role": "user", "content": "What is 17 * 23?"}]
TINY = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 512, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": False,
        "bos_token_id": 300, "eos_token_id": 301}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("m")
    (d / "cfg.json").write_text(json.dumps(TINY))
    subprocess.run([CLI, "synth", "--config", str(d / "cfg.json"), "--out", str(d / "model"), "--seed", "4"],
                   check=True, capture_output=True)
    return str(d / "model")


@pytest.fixture(scope="module")
def model(model_dir):
    return reasonrt.Model(model_dir)


def test_the_installed_package_is_used():
    here = os.path.dirname(os.path.abspath(__file__))
    assert "site-packages" in reasonrt.__file__ and not reasonrt.__file__.startswith(os.path.dirname(here))


def test_load_progress_info_and_errors(model_dir, model):
    seen = []
    m = reasonrt.Model(model_dir, progress=lambda f: seen.append(f))
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert m.info["architecture"] == "qwen2" and m.info["vocab_size"] == 512
    with pytest.raises(KeyboardInterrupt):
        reasonrt.Model(model_dir, progress=lambda f: False)
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        reasonrt.Model("/nonexistent/model")


def test_tokenizer_and_chat_prompt(model):
    ids = model.tokenize("hello world")
    assert model.detokenize(ids) == "hello world"
    prompt = model.chat_prompt(MESSAGES)
    assert prompt.endswith("<｜Assistant｜><think>\n")
    with pytest.raises(ValueError, match="99999"):
        model.detokenize([99999])


def test_generate_result_and_stream_agree(model):
    r = model.generate(MESSAGES, max_tokens=16, seed=3)
    c = r.completions[0]
    assert isinstance(c.logprobs, np.ndarray) and c.logprobs.dtype == np.float32
    assert len(c.tokens) == len(c.logprobs) == len(c.channels) and 0 < len(c.tokens) <= 16
    assert np.all(c.logprobs <= 0)
    events = list(model.generate(MESSAGES, max_tokens=16, seed=3, stream=True))
    thinking = "".join(e.text for e in events if e.type == "thinking")
    answer = "".join(e.text for e in events if e.type == "answer")
    assert (thinking, answer) == (c.thinking, c.answer)
    tokens = [e.token for e in events if e.type == "token"]
    assert tokens == list(c.tokens)
    assert {e.channel for e in events if e.type == "token"} <= {"thinking", "answer"}
    assert events[-1].type == "finish" and events[-1].finish_reason == c.finish_reason


def test_bf16_kv_cache(model):
    # The cache rounded to bf16: the same call, log-probs that move a little but not far.
    f32 = model.generate(MESSAGES, max_tokens=8, greedy=True).completions[0]
    bf16 = model.generate(MESSAGES, max_tokens=8, greedy=True, kv_dtype="bf16").completions[0]
    assert f32.logprobs[0] != bf16.logprobs[0]
    assert abs(float(f32.logprobs[0]) - float(bf16.logprobs[0])) < 0.1
    with pytest.raises(ValueError, match="f16"):
        model.generate(MESSAGES, max_tokens=2, kv_dtype="f16")


def test_group_logprobs_match_scoring_single_runs_and_the_cpp_tool(model_dir):
    # Exact activations: a batch of sequences then computes what each alone computes (bf16
    # weights otherwise round the activations of batched decode to bf16).
    model = reasonrt.Model(model_dir, exact=True)
    g = model.generate(MESSAGES, n=4, max_tokens=12, seed=11, temperature=0.9)
    assert len(g.completions) == 4
    scores = model.score(g.prompt_tokens, [c.tokens for c in g.completions], temperature=0.9)
    for c, s in zip(g.completions, scores):
        np.testing.assert_allclose(s, c.logprobs, atol=1e-3)
    one = model.generate(MESSAGES, n=1, first_index=2, max_tokens=12, seed=11, temperature=0.9)
    assert list(one.completions[0].tokens) == list(g.completions[2].tokens)
    out = subprocess.run([CLI, "generate", "--model", model_dir, "--prompt", MESSAGES[0]["content"], "-n", "4",
                          "--max-tokens", "12", "--seed", "11", "--temp", "0.9", "--exact", "--json"],
                         check=True, capture_output=True).stdout
    cpp = json.loads(out)
    for c, k in zip(g.completions, cpp["completions"]):
        assert list(c.tokens) == k["tokens"]
        np.testing.assert_allclose(c.logprobs, k["logprobs"], atol=1e-6)


def test_ctrl_c_cancels_a_generation(model):
    timer = threading.Timer(0.05, _thread.interrupt_main)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        model.generate(MESSAGES, max_tokens=10**6, max_thinking=-1)
    timer.cancel()


def test_errors_raise_with_the_library_message(model):
    with pytest.raises(ValueError, match="temperature"):
        model.generate(MESSAGES, temperature=float("nan"))
    with pytest.raises(ValueError, match="top_p"):
        model.generate(MESSAGES, top_p=0.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        model.generate([1, 2, 99999])
    with pytest.raises(ValueError, match="line"):
        model.generate([{"role": "user"}])  # no content: the template fails, naming its line


def test_logits_shape(model):
    ids = model.tokenize("abc")
    logits = model.logits(ids)
    assert logits.shape == (len(ids), 512) and logits.dtype == np.float32


def test_route_tokens_against_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 256)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=256).astype(np.float32)
    experts, weights = reasonrt.route_tokens(logits, bias=bias)
    assert experts.shape == (5, 8) and weights.shape == (5, 8)
    # The V3 rule in numpy: sigmoid, biased choice, 8 groups by top-2 sum, keep 4, top 8.
    s = 1 / (1 + np.exp(-logits.astype(np.float64)))
    choice = s + bias
    groups = np.sort(choice.reshape(5, 8, 32), axis=-1)[:, :, -2:].sum(-1)
    keep = np.argsort(-groups, axis=1, kind="stable")[:, :4]
    for t in range(5):
        masked = np.full(256, -np.inf)
        for g in keep[t]:
            masked[g * 32:(g + 1) * 32] = choice[t, g * 32:(g + 1) * 32]
        want = np.argsort(-masked, kind="stable")[:8]
        assert list(experts[t]) == list(want)
        np.testing.assert_allclose(weights[t], s[t, want] / s[t, want].sum() * 2.5, rtol=1e-5)
    with pytest.raises(ValueError, match="bias"):
        reasonrt.route_tokens(logits)


TINY_V3 = {"model_type": "deepseek_v3", "hidden_size": 64, "num_hidden_layers": 3, "first_k_dense_replace": 1,
           "intermediate_size": 96, "moe_intermediate_size": 32, "num_attention_heads": 4,
           "num_key_value_heads": 4, "q_lora_rank": 48, "kv_lora_rank": 32, "qk_nope_head_dim": 16,
           "qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 16, "n_shared_experts": 1,
           "num_experts_per_tok": 4, "n_group": 4, "topk_group": 2, "routed_scaling_factor": 2.5,
           "scoring_func": "sigmoid", "topk_method": "noaux_tc", "norm_topk_prob": True, "vocab_size": 300,
           "max_position_embeddings": 4096, "bos_token_id": 0, "eos_token_id": 1}


def test_moe_layer_api_against_the_torch_reference(tmp_path):
    """Model.route_layer / moe_layer_forward on a tiny deepseek_v3 against the independent
    PyTorch reference's MoE block (tests/reference/deepseek_reference.py), and a
    generation's expert load."""
    torch = pytest.importorskip("torch")
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
    import deepseek_reference as ds
    from safetensors_np import read_model
    (tmp_path / "cfg.json").write_text(json.dumps(TINY_V3))
    subprocess.run([CLI, "synth", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "m"),
                    "--seed", "9"], check=True, capture_output=True)
    m = reasonrt.Model(str(tmp_path / "m"), exact=True)
    info = m.info
    assert info["n_routed_experts"] == 16 and info["experts_per_token"] == 4 and info["moe_layers"] == [1, 2]
    hidden = np.random.default_rng(1).normal(size=(6, 64)).astype(np.float32)
    out, experts, weights = m.moe_layer_forward(2, hidden)
    e2, w2 = m.route_layer(2, hidden)
    assert np.array_equal(experts, e2) and np.array_equal(weights, w2)
    with open(tmp_path / "m" / "config.json") as f:
        cfg = json.load(f)
    trace = []
    with torch.no_grad():
        want = ds.moe(cfg, read_model(str(tmp_path / "m")), "model.layers.2.mlp.", torch.from_numpy(hidden), trace)
    assert np.array_equal(experts, trace[0].numpy())
    np.testing.assert_allclose(out, want.numpy(), atol=1e-5 * float(want.abs().max()))
    with pytest.raises(ValueError, match="no routed experts"):
        m.moe_layer_forward(0, hidden)
    r = m.generate("Hi", max_tokens=4, routing_stats=True)
    fed = len(r.prompt_tokens) + len(r.completions[0].tokens) - 1
    assert r.routing["tokens"] == fed
    assert r.routing["load"].shape == (2, 16) and (r.routing["load"].sum(axis=1) == fed * 4).all()
    assert m.generate("Hi", max_tokens=2).routing is None
    t = m.generate("Hi", max_tokens=3, routing_trace=True).routing
    n = len(t["trace_layers"])
    assert n == 2 * t["tokens"] and t["trace_experts"].shape == (n, 4) and t["trace_weights"].shape == (n, 4)
    assert set(t["trace_layers"].tolist()) == {1, 2}
    counts = np.zeros((2, 16), np.int64)
    for layer, row in zip(t["trace_layers"], t["trace_experts"]):
        np.add.at(counts[layer - 1], row, 1)
    assert np.array_equal(counts, t["load"])


def test_update_weights(model_dir, model):
    """A trainer's weight sync: new head values change the logits without a reload."""
    m = reasonrt.Model(model_dir, in_memory=True)
    ids = m.tokenize("abc")
    before = m.logits(ids)
    m.update_weights({"lm_head.weight": np.zeros((512, 64), np.float32)})
    assert (m.logits(ids) == 0).all()
    rng = np.random.default_rng(0)
    head = rng.normal(size=(512, 64)).astype(np.float32)
    m.update_weights({"lm_head.weight": head})
    after = m.logits(ids)
    assert not np.allclose(after, before)
    with pytest.raises(ValueError):
        m.update_weights({"lm_head.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(ValueError):
        m.update_weights({"no.such.weight": np.zeros(3, np.float32)})
    with pytest.raises(RuntimeError, match="weights_in_memory"):
        model.update_weights({"lm_head.weight": head})
