"""reasonrt.grpo from the installed wheel: the issue's vectors, the policy loss and its
gradient against a PyTorch transcription of TRL's GRPO loss (autograd as the oracle),
rewards, the arithmetic generator and a rollout on a synthetic model."""
import json
import os
import subprocess

import numpy as np
import pytest

from reasonrt import grpo
import reasonrt

CLI = os.environ.get("RRT_CLI")


def test_advantage_vectors():
    np.testing.assert_allclose(grpo.advantages([1, 0, 0, 1], group_size=4), [0.8658754, -0.8658754, -0.8658754, 0.8658754], atol=1e-6)
    np.testing.assert_allclose(grpo.advantages([1, 0, 0, 1], group_size=4, eps=1e-6), [0.8660239, -0.8660239, -0.8660239, 0.8660239], atol=1e-6)
    np.testing.assert_allclose(grpo.advantages([1, 0, 0, 1], group_size=4, scaling="none"), [0.5, -0.5, -0.5, 0.5])
    np.testing.assert_allclose(grpo.advantages([1, 0, 0, 1], group_size=4, scaling="none", baseline="rloo"),
                               [2 / 3, -2 / 3, -2 / 3, 2 / 3], atol=1e-6)
    np.testing.assert_allclose(grpo.advantages([1, 0, 0, 0], group_size=4), [1.4997001, -0.4999, -0.4999, -0.4999], atol=1e-6)
    assert (grpo.advantages([1, 1, 1, 1], group_size=4) == 0).all()
    two = np.array([[1, 0, 0, 1], [1, 1, 0, 0]], np.float32)
    np.testing.assert_allclose(grpo.advantages(two, group_size=4, scaling="none", weights=[1, 0.5]), [0.75, -0.25, -0.75, 0.25])
    with pytest.raises(ValueError):
        grpo.advantages([1, 0, 0], group_size=4)
    with pytest.raises(ValueError, match="scaling"):
        grpo.advantages([1, 0, 0, 1], group_size=4, scaling="bogus")


def torch_loss(torch, new, old, ref, adv, mask, eps_low, eps_high, beta, aggregation, level):
    """TRL-style GRPO loss written independently in torch."""
    log_ratio = new - old
    if level == "sequence":
        log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1)).unsqueeze(-1)
    coef1 = torch.exp(log_ratio)
    coef2 = torch.clamp(coef1, 1 - eps_low, 1 + eps_high)
    a = adv.unsqueeze(-1)
    per_token = -torch.min(coef1 * a, coef2 * a)
    if beta:
        per_token = per_token + beta * (torch.exp(ref - new) - (ref - new) - 1)
    if aggregation == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    if aggregation == "token_mean":
        return (per_token * mask).sum() / mask.sum()
    return (per_token * mask).sum() / (mask.shape[0] * mask.shape[1])


@pytest.mark.parametrize("aggregation", ["grpo", "token_mean", "dr_grpo"])
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_policy_loss_matches_torch_autograd(aggregation, level):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    b, t = 4, 7
    old = (-1.0 - rng.random((b, t))).astype(np.float32)
    new = (old + rng.normal(0, 0.3, (b, t))).astype(np.float32)  # some ratios outside the clip range
    ref = (old + rng.normal(0, 0.2, (b, t))).astype(np.float32)
    adv = rng.normal(0, 1, b).astype(np.float32)
    mask = np.ones((b, t), np.float32)
    mask[0, 5:] = 0
    mask[2, 2:] = 0
    ours = grpo.policy_loss(new, old, adv, mask, ref_logprobs=ref, beta=0.04, eps_low=0.2, eps_high=0.28,
                            aggregation=aggregation, level=level)
    tn = torch.tensor(new, dtype=torch.float64, requires_grad=True)
    want = torch_loss(torch, tn, torch.tensor(old, dtype=torch.float64), torch.tensor(ref, dtype=torch.float64),
                      torch.tensor(adv, dtype=torch.float64), torch.tensor(mask, dtype=torch.float64), 0.2, 0.28, 0.04,
                      aggregation, level)
    want.backward()
    assert abs(ours["loss"] - want.item()) < 1e-5
    np.testing.assert_allclose(ours["grad"], (tn.grad.numpy() * mask), atol=1e-6)


def test_policy_loss_by_hand():
    lp = np.array([[-1, -2, 0, 0], [-0.5, -1.5, -0.7, -2.2]], np.float32)
    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]], np.float32)
    out = grpo.policy_loss(lp, lp, [1.0, -1.0], mask)
    assert abs(out["loss"]) < 1e-7
    np.testing.assert_allclose(out["grad"], [[-0.25, -0.25, 0, 0], [0.125] * 4])
    out = grpo.policy_loss(lp, lp, [1.0, -1.0], mask, aggregation="token_mean")
    assert abs(out["loss"] - 1 / 3) < 1e-6
    assert abs(grpo.kl_k3(-1.0, -1.5) - 0.1065307) < 1e-7


def test_rewards_and_parsing():
    texts = ["steps</think>\n\n\\boxed{\\frac{1}{2}}", "steps</think>\n\n\\boxed{3}", "no closing tag"]
    np.testing.assert_array_equal(grpo.accuracy(texts, ["0.5", "4", "1"]), [1, 0, 0])
    assert np.isnan(grpo.accuracy(["</think>\\boxed{1}"], ["one"])[0])
    np.testing.assert_array_equal(grpo.format(texts), [1, 1, 0])
    assert grpo.extract_answer(texts[0]) == "\\frac{1}{2}"
    assert grpo.parse_number("1,234.5") == 1234.5
    with pytest.raises(ValueError):
        grpo.parse_number("twelve")
    np.testing.assert_allclose(grpo.soft_overlong([10, 90, 120], max_tokens=100, cache=20), [0, -0.5, -1])
    assert grpo.language_consistency(["Let us think 先</think>"], "latin")[0] == pytest.approx(0.75)
    assert grpo.repetition_penalty(["a b a b a b"], n=2)[0] == pytest.approx(-0.6)


def test_arithmetic_generator():
    probs = grpo.arithmetic(50, seed=1)
    assert probs == grpo.arithmetic(50, seed=1)
    for p in probs:
        assert grpo.parse_number(p["expression"]) == p["answer"]
        assert grpo.accuracy([p["completion"]], [p["verifier_answer"]])[0] == 1
    line = json.loads(grpo.sft_json_line(probs[0]["question"], probs[0]["completion"]))
    assert line["messages"][1]["content"].startswith("<think>\n")


def test_rollout_on_a_synthetic_model(tmp_path):
    cfg = {"model_type": "qwen2", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_key_value_heads": 2, "intermediate_size": 96, "vocab_size": 512, "max_position_embeddings": 4096,
           "bos_token_id": 300, "eos_token_id": 301}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    subprocess.run([CLI, "synth", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "m"), "--seed", "2"],
                   check=True, capture_output=True)
    model = reasonrt.Model(str(tmp_path / "m"))
    batch = grpo.rollout(model, ["What's 2 + 2?", [{"role": "user", "content": "What's 3 * 3?"}]], ["4", "9"],
                         rewards=[("accuracy", 1.0), ("tag_count", 0.5), ("repetition", 0.25)], n=4,
                         max_tokens=10, temperature=1.0, seed=5)
    b, t = batch["completion_tokens"].shape
    assert b == 8 and batch["old_logprobs"].shape == (b, t) and batch["rewards"].shape == (3, b)
    np.testing.assert_array_equal(batch["mask"].sum(1), (batch["completion_tokens"] >= 0).sum(1))
    want = grpo.advantages(batch["rewards"], group_size=4, weights=[1.0, 0.5, 0.25])
    np.testing.assert_array_equal(batch["advantages"], want)
    np.testing.assert_array_equal(batch["rewards"][1], grpo.tag_count(batch["completions"]))
    assert grpo.accepted_jsonl(batch, ["a", "b"], threshold=1e9) == ""
    lines = grpo.accepted_jsonl(batch, ["What's 2 + 2?", "What's 3 * 3?"], threshold=-1e9).splitlines()
    assert len(lines) == 8 and json.loads(lines[5])["messages"][0]["content"] == "What's 3 * 3?"
    with pytest.raises(ValueError, match="unknown reward"):
        grpo.rollout(model, ["x"], ["1"], rewards=[("bogus", 1.0)], n=2, max_tokens=2)
