// `reasonrt arithmetic`: cold-start problems as JSON lines. `reasonrt rollout`: groups of
// completions of a problem file with rewards and advantages, and rejection sampling into
// SFT JSON lines (the R1 recipe's data steps).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "examples/cli/commands.h"
#include "lib/core/file.h"
#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "reasonrt/grpo.h"

namespace reasonrt::cli {

int RunArithmetic(const ArithmeticArgs& args) {
  grpo::ArithmeticOptions o;
  o.min_operands = args.min_operands;
  o.max_operands = args.max_operands;
  o.max_value = args.max_value;
  o.column_steps = args.column_steps;
  o.restate = args.restate;
  for (const grpo::ArithmeticProblem& p : grpo::GenerateArithmetic(args.count, args.seed, o)) {
    if (args.sft) {
      std::printf("%s\n", grpo::SftJsonLine(p.question, p.Completion()).c_str());
    } else {
      std::printf("{\"question\": %s, \"expression\": %s, \"answer\": %lld, \"verifier_answer\": %s}\n",
                  json::Quote(p.question).c_str(), json::Quote(p.expression).c_str(),
                  static_cast<long long>(p.answer), json::Quote(p.verifier_answer).c_str());
    }
  }
  return 0;
}

int RunRollout(const RolloutArgs& args) {
  // Problems: JSON lines with "question" and "verifier_answer" (as `reasonrt arithmetic` writes).
  auto text = ReadFileToString(args.problems, size_t{1} << 30);
  if (!text.ok()) return Fail(text.status());
  std::vector<std::vector<ChatMessage>> prompts;
  std::vector<std::string> golds;
  size_t line_no = 0;
  for (size_t start = 0; start < text->size();) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    const std::string_view line(text->data() + start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    simdjson::dom::parser parser;
    auto doc = json::Parse(parser, line, args.problems);
    std::string_view question, gold;
    if (!doc.ok() || (*doc)["question"].get_string().get(question) != simdjson::SUCCESS ||
        (*doc)["verifier_answer"].get_string().get(gold) != simdjson::SUCCESS) {
      return Fail(absl::InvalidArgumentError(StrCat(args.problems, ":", line_no,
                                                    ": expected a JSON object with string \"question\" and \"verifier_answer\"")));
    }
    ChatMessage m;
    m.role = "user";
    m.content = std::string(question);
    prompts.push_back({m});
    golds.emplace_back(gold);
    if (args.limit > 0 && static_cast<int64_t>(prompts.size()) >= args.limit) break;
  }
  auto rewards = grpo::RewardSet::Parse(args.rewards);
  if (!rewards.ok()) return Fail(rewards.status());
  auto gen = LoadGenerator(args.generate, false);
  if (!gen.ok()) return Fail(gen.status());
  grpo::RolloutOptions ro;
  ro.generate = OptionsFrom(args.generate);
  auto batch = grpo::Rollout(**gen, prompts, golds, *rewards, ro);
  if (!batch.ok()) return Fail(batch.status());
  const int64_t b = batch->size();
  std::printf("%zu prompts x %d completions = %lld rollouts, up to %lld tokens each\n", prompts.size(),
              ro.generate.n, static_cast<long long>(b), static_cast<long long>(batch->max_length));
  for (size_t f = 0; f < batch->reward_names.size(); ++f) {
    double sum = 0.0;
    int64_t present = 0;
    for (int64_t i = 0; i < b; ++i) {
      const float r = batch->rewards[f * static_cast<size_t>(b) + static_cast<size_t>(i)];
      if (std::isnan(r)) continue;
      sum += r;
      ++present;
    }
    std::printf("reward %-16s mean %.4f over %lld (weight %g)\n", batch->reward_names[f].c_str(),
                present > 0 ? sum / static_cast<double>(present) : 0.0, static_cast<long long>(present),
                rewards->weights()[f]);
  }
  int64_t truncated = 0;
  for (uint8_t t : batch->truncated) truncated += t;
  std::printf("truncated %lld of %lld\n", static_cast<long long>(truncated), static_cast<long long>(b));
  if (!args.accepted.empty()) {
    const std::string lines = grpo::AcceptedJsonl(*batch, prompts, rewards->weights(), args.threshold);
    std::ofstream out(args.accepted, std::ios::binary);
    out << lines;
    if (!out) return Fail(absl::PermissionDeniedError(StrCat(args.accepted, ": cannot write")));
    int64_t kept = 0;
    for (char c : lines) kept += c == '\n';
    std::printf("accepted %lld of %lld (combined reward >= %g) -> %s\n", static_cast<long long>(kept),
                static_cast<long long>(b), args.threshold, args.accepted.c_str());
  }
  return 0;
}

}  // namespace reasonrt::cli
