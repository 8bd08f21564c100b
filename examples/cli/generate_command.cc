// `reasonrt generate` and `reasonrt chat`: streamed generation with thinking and answer.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>

#include "examples/cli/commands.h"
#include "reasonrt/grpo.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "reasonrt/generate.h"

namespace reasonrt::cli {
namespace {

constexpr const char* kDim = "\033[2m";
constexpr const char* kReset = "\033[0m";

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string CompletionJson(const Completion& c) {
  std::string ids, channels, logprobs;
  for (size_t i = 0; i < c.tokens.size(); ++i) {
    ids += StrCat(i ? "," : "", c.tokens[i]);
    channels += StrCat(i ? "," : "", c.channels[i] == Channel::kThinking ? "\"thinking\"" : "\"answer\"");
    logprobs += StrCat(i ? "," : "", JsonNumber(c.logprobs[i]));
  }
  return StrCat("{\"index\": ", c.index, ", \"thinking\": ", json::Quote(c.thinking), ", \"answer\": ",
                json::Quote(c.answer), ", \"finish_reason\": \"", FinishReasonName(c.finish_reason),
                "\", \"thinking_tokens\": ", c.thinking_tokens, ", \"tokens\": [", ids, "], \"channels\": [", channels,
                "], \"logprobs\": [", logprobs, "]}");
}

void PrintTimings(const Timings& t) {
  std::fflush(stdout);
  std::fprintf(stderr, "\n[prompt %lld tokens in %.2f s (%.1f tokens/s); generated %lld tokens in %.2f s (%.2f tokens/s)]\n",
               static_cast<long long>(t.prompt_tokens), t.prompt_seconds,
               t.prompt_seconds > 0 ? t.prompt_tokens / t.prompt_seconds : 0.0,
               static_cast<long long>(t.generated_tokens), t.decode_seconds, t.decode_tokens_per_second());
}

// Streams one completion to the terminal: thinking dimmed when stdout is a terminal.
StreamCallbacks TerminalStream(bool color, bool* in_thinking) {
  StreamCallbacks s;
  s.on_thinking = [color, in_thinking](int index, std::string_view text) {
    if (index != 0) return;
    if (!*in_thinking) {
      std::fputs(color ? kDim : "<think>\n", stdout);
      *in_thinking = true;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  s.on_answer = [color, in_thinking](int index, std::string_view text) {
    if (index != 0) return;
    if (*in_thinking) {
      std::fputs(color ? kReset : "\n</think>", stdout);
      std::fputs("\n\n", stdout);
      *in_thinking = false;
    }
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  return s;
}

}  // namespace

GenerateOptions OptionsFrom(const GenerateArgs& args) {
  GenerateOptions o;
  o.sampling = SamplingParams::R1Recommended();
  if (args.temperature >= 0) o.sampling.temperature = args.temperature;
  if (args.top_p >= 0) o.sampling.top_p = args.top_p;
  o.sampling.top_k = args.top_k;
  o.sampling.min_p = args.min_p;
  o.sampling.repetition_penalty = args.repetition_penalty;
  o.sampling.seed = args.seed;
  o.sampling.greedy = args.greedy;
  o.max_new_tokens = args.max_tokens;
  o.n = args.n;
  o.first_index = args.first_index;
  o.stop = args.stop;
  o.thinking.max_tokens = args.max_thinking;
  o.thinking.min_tokens = args.min_thinking;
  o.kv_dtype = *ParseDTypeName(args.kv_dtype);  // f32 or bf16: checked by the parser
  return o;
}

absl::StatusOr<std::unique_ptr<Generator>> LoadGenerator(const GenerateArgs& args, bool show_progress) {
  LoadOptions load;
  load.num_threads = args.threads;
  load.backend = args.backend;
  load.exact_activations = args.exact;
  if (show_progress) {
    // A progress bar while the weights are read in.
    load.progress = [](float f) {
      const int width = 30, filled = static_cast<int>(f * width + 0.5f);
      std::fprintf(stderr, "\rloading [%.*s%*s] %3d%%", filled, "##############################", width - filled, "",
                   static_cast<int>(f * 100 + 0.5f));
      return true;
    };
  }
  auto gen = Generator::Load(args.model, load);
  if (show_progress) std::fprintf(stderr, gen.ok() ? "\n" : " failed\n");
  return gen;
}


int RunGenerate(const GenerateArgs& args) {
  auto gen = LoadGenerator(args, !args.json && isatty(STDERR_FILENO));
  if (!gen.ok()) return Fail(gen.status());
  const GenerateOptions options = OptionsFrom(args);
  const bool color = isatty(STDOUT_FILENO) && !args.json;
  bool in_thinking = false;
  StreamCallbacks stream;
  if (!args.json && args.n == 1) stream = TerminalStream(color, &in_thinking);
  absl::StatusOr<GenerationResult> result;
  if (args.raw) {
    result = (*gen)->GenerateFromText(args.prompt, options, stream);
  } else {
    std::vector<ChatMessage> messages;
    if (!args.system.empty()) messages.push_back({.role = "system", .content = args.system});
    messages.push_back({.role = "user", .content = args.prompt});
    result = (*gen)->Generate(messages, options, stream);
  }
  if (!result.ok()) return Fail(result.status());
  if (args.json) {
    std::string prompt_ids;
    for (size_t i = 0; i < result->prompt_tokens.size(); ++i) prompt_ids += StrCat(i ? "," : "", result->prompt_tokens[i]);
    std::string out = StrCat("{\"prompt_tokens\": [", prompt_ids, "], \"completions\": [");
    for (size_t i = 0; i < result->completions.size(); ++i) out += StrCat(i ? ", " : "", CompletionJson(result->completions[i]));
    out += StrCat("], \"generated_tokens\": ", result->timings.generated_tokens, ", \"decode_seconds\": ",
                  JsonNumber(result->timings.decode_seconds), ", \"prompt_seconds\": ",
                  JsonNumber(result->timings.prompt_seconds), "}");
    std::printf("%s\n", out.c_str());
    return 0;
  }
  if (in_thinking) std::fputs(color ? kReset : "\n</think>", stdout);
  if (args.n > 1) {
    for (const Completion& c : result->completions) {
      std::printf("=== completion %d (%s, %zu tokens)\n", c.index, std::string(FinishReasonName(c.finish_reason)).c_str(),
                  c.tokens.size());
      if (!c.thinking.empty()) std::printf("%s<think>\n%s\n</think>%s\n\n", color ? kDim : "", c.thinking.c_str(), color ? kReset : "");
      std::printf("%s\n", c.answer.c_str());
    }
  } else {
    std::printf("\n");
  }
  PrintTimings(result->timings);
  if (!args.gold.empty()) {
    // reasonrt's accuracy reward: the last \boxed{} after </think>, compared numerically.
    const grpo::RewardFn accuracy = grpo::AccuracyReward();
    int right = 0;
    for (const Completion& c : result->completions) {
      grpo::Sample s;
      const std::string text = StrCat("</think>", c.answer);
      s.completion = text;
      s.gold = args.gold;
      const float r = accuracy(s);
      right += r == 1.0f;
      const std::string answer = grpo::ExtractAnswer(text);
      std::printf("answer %d: %s (%s; expected %s)\n", c.index, answer.empty() ? "(none)" : answer.c_str(),
                  std::isnan(r) ? "the expected answer is not a number" : r == 1.0f ? "right" : "wrong",
                  args.gold.c_str());
    }
    if (args.n > 1) std::printf("%d of %d right\n", right, args.n);
  }
  return 0;
}

int RunDemo(DemoArgs args) {
  if (args.max_operands < 2) return Fail(absl::InvalidArgumentError("--max-operands must be at least 2"));
  const uint64_t seed = args.question_seed >= 0 ? static_cast<uint64_t>(args.question_seed) : std::random_device{}();
  grpo::ArithmeticOptions o;
  o.min_operands = 2;
  o.max_operands = args.max_operands;
  const grpo::ArithmeticProblem problem = grpo::GenerateArithmetic(1, seed, o)[0];
  std::printf("question (seed %llu): %s\n\n", static_cast<unsigned long long>(seed), problem.question.c_str());
  std::fflush(stdout);
  args.generate.prompt = problem.question;
  args.generate.gold = problem.verifier_answer;
  args.generate.greedy = !args.sample;
  args.generate.n = 1;
  return RunGenerate(args.generate);
}

int RunChat(const GenerateArgs& args) {
  auto gen = LoadGenerator(args, isatty(STDERR_FILENO));
  if (!gen.ok()) return Fail(gen.status());
  GenerateOptions options = OptionsFrom(args);
  options.n = 1;
  const bool color = isatty(STDOUT_FILENO);
  std::vector<ChatMessage> messages;
  if (!args.system.empty()) messages.push_back({.role = "system", .content = args.system});
  std::fprintf(stderr, "chat with %s: type a message, an empty line or Ctrl-D to quit\n", args.model.c_str());
  std::string line;
  while (true) {
    std::fputs(color ? "\033[1m> \033[0m" : "> ", stdout);
    std::fflush(stdout);
    if (!std::getline(std::cin, line) || line.empty()) break;
    messages.push_back({.role = "user", .content = line});
    bool in_thinking = false;
    auto result = (*gen)->Generate(messages, options, TerminalStream(color, &in_thinking));
    if (in_thinking) std::fputs(color ? kReset : "\n</think>", stdout);
    std::fputs("\n", stdout);
    if (!result.ok()) {
      Fail(result.status());
      messages.pop_back();
      continue;
    }
    const Completion& c = result->completions[0];
    // The template drops past thinking; keep it in content as the model wrote it.
    messages.push_back({.role = "assistant", .content = c.thinking.empty() ? c.answer : "<think>\n" + c.thinking + "\n</think>\n\n" + c.answer});
    PrintTimings(result->timings);
  }
  return 0;
}

}  // namespace reasonrt::cli
