// Data for the R1 recipe: the arithmetic cold-start generator, SFT records, rollouts and
// rejection sampling.
#include <cmath>

#include "lib/core/strings.h"
#include "lib/generate/sampler.h"
#include "lib/generate/text_stream.h"
#include "lib/io/json.h"
#include "reasonrt/grpo.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt::grpo {
namespace {

// Uniform integer in [lo, hi] from a SplitMix64 stream.
int64_t Uniform(gen::Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(hi - lo + 1));
}

std::string MessagesJson(absl::Span<const ChatMessage> prompt, std::string_view completion) {
  std::string out = "{\"messages\": [";
  for (const ChatMessage& m : prompt) {
    out += StrCat("{\"role\": ", json::Quote(m.role), ", \"content\": ", json::Quote(m.content.value_or("")), "}, ");
  }
  out += StrCat("{\"role\": \"assistant\", \"content\": ", json::Quote(completion), "}]}");
  return out;
}

// Column by column, least significant digit first: "5 + 5 = 10, write 0 carry 1; ...".
std::string ColumnAdd(int64_t a, int64_t b) {
  std::string out;
  int64_t carry = 0;
  for (int64_t x = a, y = b; x > 0 || y > 0 || carry > 0; x /= 10, y /= 10) {
    const int64_t da = x % 10, db = y % 10;
    if (x == 0 && y == 0) {
      out += StrCat("carry ", carry);
      break;
    }
    const int64_t sum = da + db + carry;
    out += StrCat(da, " + ", db, carry ? " + 1" : "", " = ", sum, ", write ", sum % 10, sum >= 10 ? " carry 1" : "");
    carry = sum / 10;
    if (x / 10 > 0 || y / 10 > 0 || carry > 0) out += "; ";
  }
  return out.empty() ? "0 + 0 = 0, write 0" : out;
}

// a >= b >= 0, column by column with borrows: "3 - 7: 13 - 7 = 6, borrow 1; ...".
std::string ColumnSub(int64_t a, int64_t b) {
  std::string out;
  int64_t borrow = 0;
  for (int64_t x = a, y = b; x > 0 || y > 0; x /= 10, y /= 10) {
    const int64_t top = x % 10 - borrow, db = y % 10;
    if (top < db) {
      out += StrCat(top + 10, " - ", db, " = ", top + 10 - db, ", borrow 1");
      borrow = 1;
    } else {
      out += StrCat(top, " - ", db, " = ", top - db);
      borrow = 0;
    }
    if (x / 10 > 0 || y / 10 > 0) out += "; ";
  }
  return out.empty() ? "0 - 0 = 0" : out;
}

// One + or - step spelled out: the signs first, then the columns, then the result.
std::string ColumnStep(int64_t x, char op, int64_t y, int64_t r) {
  const int64_t s = op == '+' ? y : -y;  // r = x + s
  const std::string head = StrCat(x, " ", std::string(1, op), " ", y);
  std::string how;
  if (op == '-' && y >= 0 && x >= y) {
    how = StrCat(head, ": ", ColumnSub(x, y));
  } else if (x >= 0 && s >= 0) {
    how = StrCat(head, ": ", ColumnAdd(x, s));
  } else if (x < 0 && s < 0) {
    how = StrCat(head, " = -(", -x, " + ", -s, "): ", ColumnAdd(-x, -s));
  } else {
    const int64_t pos = x >= 0 ? x : s, neg = x >= 0 ? -s : -x;  // r = pos - neg
    if (pos >= neg) {
      how = StrCat(head, " = ", pos, " - ", neg, ": ", ColumnSub(pos, neg));
    } else {
      how = StrCat(head, " = -(", neg, " - ", pos, "): ", ColumnSub(neg, pos));
    }
  }
  return StrCat(how, ". So ", head, " = ", r);
}

}  // namespace

std::string ArithmeticProblem::Completion() const {
  std::string thinking = StrCat("Compute ", expression, " step by step.\n");
  for (const std::string& step : steps) thinking += step + "\n";
  return StrCat("<think>\n", thinking, "</think>\n\n", expression, " = \\boxed{", verifier_answer, "}");
}

std::vector<ArithmeticProblem> GenerateArithmetic(int64_t count, uint64_t seed, const ArithmeticOptions& o) {
  gen::Rng rng(seed);
  const int min_ops = std::max(2, o.min_operands), max_ops = std::max(min_ops, o.max_operands);
  static constexpr const char* kQuestions[] = {"What's %s?", "What is %s?", "Compute %s.", "Calculate %s."};
  std::vector<ArithmeticProblem> out;
  for (int64_t p = 0; p < count; ++p) {
    const int n = static_cast<int>(Uniform(rng, min_ops, max_ops));
    std::vector<int64_t> values(static_cast<size_t>(n));
    std::vector<char> ops(static_cast<size_t>(n - 1));
    for (size_t i = 0; i < ops.size(); ++i) {
      const int64_t pick = Uniform(rng, 0, o.multiplication ? 2 : 1);
      ops[i] = pick == 0 ? '+' : pick == 1 ? '-' : '*';
      if (ops[i] == '*' && i > 0 && ops[i - 1] == '*') ops[i] = '+';  // a product has two factors
    }
    for (int i = 0; i < n; ++i) {
      const bool in_product = (i > 0 && ops[i - 1] == '*') || (i + 1 < n && ops[i] == '*');
      values[i] = Uniform(rng, 0, in_product ? std::min<int64_t>(o.max_value, 12) : o.max_value);
    }
    // An optional parenthesised run of operands [pa, pb], not the whole expression.
    int pa = -1, pb = -1;
    if (o.parentheses && n >= 3 && Uniform(rng, 0, 1) == 1) {
      pa = static_cast<int>(Uniform(rng, 0, n - 2));
      pb = static_cast<int>(Uniform(rng, pa + 1, n - 1));
      if (pa == 0 && pb == n - 1) pb = n - 2;
      if (pb <= pa) pa = pb = -1;
      // A product's factors stay times-table numbers: no parenthesised group as a factor.
      if (pa >= 0 && ((pa > 0 && ops[pa - 1] == '*') || (pb + 1 < n && ops[pb] == '*'))) pa = pb = -1;
    }
    // The expression as it stands: operands, operators and the parenthesised run [pa, pb].
    auto render = [&](const std::vector<int64_t>& v, const std::vector<char>& op, int a, int b) {
      std::string text;
      for (size_t i = 0; i < v.size(); ++i) {
        if (i > 0) text += StrCat(" ", std::string(1, op[i - 1]), " ");
        if (static_cast<int>(i) == a) text += "(";
        text += StrCat(v[i]);
        if (static_cast<int>(i) == b) text += ")";
      }
      return text;
    };
    ArithmeticProblem prob;
    prob.expression = render(values, ops, pa, pb);
    // Evaluate with the steps a person writes: the parentheses first, products before sums,
    // left to right; one operation per step.
    std::vector<int64_t> v = values;
    std::vector<char> op = ops;
    while (!op.empty()) {
      const size_t lo = pa >= 0 ? static_cast<size_t>(pa) : 0;
      const size_t hi = pa >= 0 ? static_cast<size_t>(pb) : op.size();  // ops [lo, hi)
      size_t i = lo;
      while (i < hi && op[i] != '*') ++i;
      if (i == hi) i = lo;
      const int64_t r = op[i] == '*' ? v[i] * v[i + 1] : op[i] == '+' ? v[i] + v[i + 1] : v[i] - v[i + 1];
      if (o.column_steps && op[i] != '*') {
        prob.steps.push_back(ColumnStep(v[i], op[i], v[i + 1], r));
      } else {
        prob.steps.push_back(StrCat(v[i], " ", std::string(1, op[i]), " ", v[i + 1], " = ", r));
      }
      v[i] = r;
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      op.erase(op.begin() + static_cast<std::ptrdiff_t>(i));
      if (pa >= 0 && --pb == pa) pa = pb = -1;
      if (o.restate && !op.empty()) prob.steps.push_back("Now: " + render(v, op, pa, pb));
    }
    prob.answer = v[0];
    prob.verifier_answer = StrCat(prob.answer);
    char question[256];
    std::snprintf(question, sizeof(question), kQuestions[Uniform(rng, 0, 3)], prob.expression.c_str());
    prob.question = question;
    out.push_back(std::move(prob));
  }
  return out;
}

std::string SftJsonLine(std::string_view question, std::string_view completion) {
  ChatMessage user;
  user.role = "user";
  user.content = std::string(question);
  return MessagesJson({user}, completion);
}

absl::StatusOr<RolloutBatch> Rollout(const Generator& generator, absl::Span<const std::vector<ChatMessage>> prompts,
                                     absl::Span<const std::string> golds, const RewardSet& rewards,
                                     const RolloutOptions& options) {
  if (golds.size() != prompts.size()) {
    return absl::InvalidArgumentError(StrCat("rollout: ", prompts.size(), " prompts but ", golds.size(), " golds"));
  }
  const int n = options.generate.n;
  RolloutBatch batch;
  struct Row {
    Completion completion;
    std::string text;
    bool opens_thinking;
  };
  std::vector<Row> rows;
  for (size_t p = 0; p < prompts.size(); ++p) {
    absl::StatusOr<GenerationResult> r = generator.Generate(prompts[p], options.generate);
    if (!r.ok()) return r.status();
    batch.prompt_tokens.push_back(r->prompt_tokens);
    const bool opens = gen::PromptOpensThinking(r->prompt);
    for (Completion& c : r->completions) {
      // The raw text with its tags, without the end-of-sequence token; ids the tokenizer
      // does not know (padding rows of the embedding) have no text, as in generation.
      std::vector<int32_t> ids;
      for (size_t t = 0; t < c.tokens.size(); ++t) {
        const bool eos = t + 1 == c.tokens.size() && c.finish_reason == FinishReason::kEos;
        if (!eos && generator.tokenizer().TokenBytes(c.tokens[t]).ok()) ids.push_back(c.tokens[t]);
      }
      absl::StatusOr<std::string> text = generator.tokenizer().Decode(ids, {});
      if (!text.ok()) return text.status();
      batch.prompt_of.push_back(static_cast<int32_t>(p));
      rows.push_back({std::move(c), std::move(*text), opens});
    }
  }
  const int64_t b = static_cast<int64_t>(rows.size());
  for (const Row& r : rows) batch.max_length = std::max<int64_t>(batch.max_length, static_cast<int64_t>(r.completion.tokens.size()));
  const size_t bt = static_cast<size_t>(b * batch.max_length);
  batch.completion_tokens.assign(bt, -1);
  batch.old_logprobs.assign(bt, 0.0f);
  batch.mask.assign(bt, 0.0f);
  std::vector<Sample> samples;
  for (int64_t i = 0; i < b; ++i) {
    const Completion& c = rows[i].completion;
    for (size_t t = 0; t < c.tokens.size(); ++t) {
      const size_t at = static_cast<size_t>(i * batch.max_length) + t;
      batch.completion_tokens[at] = c.tokens[t];
      batch.old_logprobs[at] = c.logprobs[t];
      batch.mask[at] = t < c.forced.size() && c.forced[t] ? 0.0f : 1.0f;  // budget-forced tokens were not sampled
    }
    batch.truncated.push_back(c.finish_reason == FinishReason::kMaxTokens || c.finish_reason == FinishReason::kContextFull);
    batch.completions.push_back(rows[i].text);
  }
  for (int64_t i = 0; i < b; ++i) {
    Sample s;
    s.completion = batch.completions[i];
    s.gold = golds[batch.prompt_of[i]];
    s.prompt_opens_thinking = rows[i].opens_thinking;
    s.completion_tokens = static_cast<int64_t>(rows[i].completion.tokens.size());
    samples.push_back(s);
  }
  batch.reward_names = rewards.names();
  batch.rewards = rewards.Score(samples);
  AdvantageOptions ao = options.advantages;
  ao.group_size = n;
  if (ao.weights.empty()) ao.weights = rewards.weights();
  if (rewards.size() == 0) {
    batch.advantages.assign(static_cast<size_t>(b), 0.0f);
    return batch;
  }
  absl::StatusOr<std::vector<float>> adv = ComputeAdvantages(batch.rewards, static_cast<int64_t>(rewards.size()), ao);
  if (!adv.ok()) return adv.status();
  batch.advantages = std::move(*adv);
  return batch;
}

std::string AcceptedJsonl(const RolloutBatch& batch, absl::Span<const std::vector<ChatMessage>> prompts,
                          absl::Span<const double> weights, double threshold) {
  std::string out;
  const int64_t b = batch.size();
  const size_t functions = batch.reward_names.size();
  for (int64_t i = 0; i < b; ++i) {
    double total = 0.0;
    bool any = false;
    for (size_t f = 0; f < functions; ++f) {
      const float r = batch.rewards[f * static_cast<size_t>(b) + static_cast<size_t>(i)];
      if (std::isnan(r)) continue;
      total += (f < weights.size() ? weights[f] : 1.0) * r;
      any = true;
    }
    if (!any || total < threshold || static_cast<size_t>(batch.prompt_of[i]) >= prompts.size()) continue;
    // The completion starts inside the thinking the template opened: restore the tag.
    std::string completion = batch.completions[i];
    if (completion.find("<think>") == std::string::npos && completion.find("</think>") != std::string::npos) {
      completion = "<think>\n" + completion;
    }
    out += MessagesJson(prompts[batch.prompt_of[i]], completion) + "\n";
  }
  return out;
}

}  // namespace reasonrt::grpo
