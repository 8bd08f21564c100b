"""Generates the conversations the chat-template tests render (deterministic by seed):
single and multi-turn, with and without system prompts, assistant turns carrying <think>
reasoning, tool calls and tool results, empty content, unicode, text that looks like
template syntax or special tokens, and add_generation_prompt on and off.
"""
import json
import random

TEXTS = [
    "What is 17 * 23?",
    "Explain the Pythagorean theorem in one sentence.",
    "",
    "   leading and trailing spaces   ",
    "\n\nnewlines around\n\n",
    "multi\nline\ntext\twith\ttabs",
    "unicode: 你好，世界 — naïve café ½ ∑ 🙂👍🏽 مرحبا עברית",
    "quotes ' \" and backslashes \\ \\n (literal)",
    "looks like a template: {{ messages }} {% if true %}x{% endif %} {# c #}",
    "spells special tokens: <｜Assistant｜> <|im_end|> <|eot_id|> <think></think>",
    "json-ish: {\"a\": [1, 2, {\"b\": null}]}",
    "Solve x^2 - 5x + 6 = 0 and put the answer in \\boxed{}.",
    "a" * 300,
    "ends with a newline\n",
]

REASONING = [
    "Let me think. 17 * 23 = 17 * 20 + 17 * 3 = 340 + 51 = 391.",
    "",
    "Step 1: factor.\nStep 2: (x-2)(x-3).\n",
    "思考中……答案是 391。",
]

ANSWERS = ["391", "The roots are 2 and 3: \\boxed{2, 3}", "", "Sure!\n\nHere it is.", "🙂"]

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["c", "f"]}}, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "calculator", "description": "Evaluates an arithmetic expression",
        "parameters": {"type": "object", "properties": {"expr": {"type": "string"}}, "required": ["expr"]}}},
]


def assistant_content(rng):
    kind = rng.randrange(5)
    answer = rng.choice(ANSWERS)
    if kind == 0:
        return answer
    reasoning = rng.choice(REASONING)
    if kind == 1:
        return f"<think>\n{reasoning}\n</think>\n\n{answer}"
    if kind == 2:
        return f"{reasoning}\n</think>\n\n{answer}"  # the opening tag was in the prompt
    if kind == 3:
        return f"<think>{reasoning}</think>{answer}</think>tail"  # two closing tags
    return f"<think>\n\n</think>\n\n{answer}"


def tool_call(rng, args_as_object):
    name = rng.choice(["get_weather", "calculator"])
    args = {"city": rng.choice(["Paris", "Zürich", "東京"])} if name == "get_weather" else {"expr": "17*23"}
    return {"type": "function", "function": {
        "name": name, "arguments": args if args_as_object else json.dumps(args, ensure_ascii=False)}}


def conversation(rng, family):
    """family: 'deepseek' (V3 and R1 templates), 'qwen3' or 'llama3'."""
    messages = []
    n_system = rng.choice([0, 0, 1, 1, 2]) if family != "llama3" else rng.choice([0, 1])
    for _ in range(n_system):
        messages.append({"role": "system", "content": rng.choice(TEXTS[:12])})
    turns = rng.randint(1, 5)
    use_tools = family != "llama3" and rng.random() < 0.35
    for t in range(turns):
        messages.append({"role": "user", "content": rng.choice(TEXTS)})
        if use_tools and rng.random() < 0.6:
            calls = [tool_call(rng, family == "qwen3" and rng.random() < 0.5) for _ in range(rng.randint(1, 2))]
            if family == "deepseek":
                messages.append({"role": "assistant", "content": None, "tool_calls": calls})
            else:
                messages.append({"role": "assistant", "content": rng.choice(["", "Let me check."]),
                                 "tool_calls": calls})
            for _ in calls:
                messages.append({"role": "tool", "content": rng.choice(['{"temp": 21}', "391", "error: unknown city"])})
        if t < turns - 1 or rng.random() < 0.3:
            m = {"role": "assistant", "content": assistant_content(rng)}
            if family == "qwen3" and rng.random() < 0.3:
                m["reasoning_content"] = rng.choice(REASONING)
            messages.append(m)
    if family == "qwen3" and n_system and rng.random() < 0.3:
        messages.append({"role": "system", "content": "A system message later in the chat."})
    case = {"messages": messages, "add_generation_prompt": rng.random() < 0.7}
    if use_tools and rng.random() < 0.7:
        case["tools"] = TOOLS
    if family == "qwen3" and rng.random() < 0.3:
        case["extra"] = {"enable_thinking": rng.random() < 0.5}
    return case


def cases(family, count, seed):
    rng = random.Random(f"{family}-{seed}")
    return [conversation(rng, family) for _ in range(count)]
