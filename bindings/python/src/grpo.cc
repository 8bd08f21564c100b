// reasonrt._reasonrt.grpo: the GRPO toolkit on numpy arrays (the package's reasonrt.grpo
// wraps it with keyword arguments).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "reasonrt/grpo.h"

namespace reasonrt::py_binding {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

std::vector<float> Flat(const FloatArray& a) { return std::vector<float>(a.data(), a.data() + a.size()); }

py::array_t<float> Shaped(const std::vector<float>& v, py::ssize_t rows, py::ssize_t cols) {
  py::array_t<float> a({rows, cols});
  if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(float));
  return a;
}

template <typename E>
E Pick(const std::string& value, std::initializer_list<std::pair<const char*, E>> choices, const char* what) {
  std::string names;
  for (const auto& [name, e] : choices) {
    if (value == name) return e;
    names += std::string(names.empty() ? "" : ", ") + name;
  }
  throw py::value_error(std::string(what) + " must be one of " + names + ", not '" + value + "'");
}

grpo::Script ScriptOf(const std::string& s) {
  using grpo::Script;
  return Pick<Script>(s, {{"latin", Script::kLatin}, {"han", Script::kHan}, {"cyrillic", Script::kCyrillic},
                          {"arabic", Script::kArabic}, {"greek", Script::kGreek}, {"hangul", Script::kHangul},
                          {"kana", Script::kKana}, {"devanagari", Script::kDevanagari}},
                      "script");
}

// Scores texts with one reward function.
py::array_t<float> ScoreAll(const grpo::RewardFn& fn, const std::vector<std::string>& completions,
                            const std::vector<std::string>& golds, const std::vector<int64_t>& lengths, bool opens) {
  if (!golds.empty() && golds.size() != completions.size()) throw py::value_error("golds: one per completion");
  if (!lengths.empty() && lengths.size() != completions.size()) throw py::value_error("lengths: one per completion");
  std::vector<float> out(completions.size());
  for (size_t i = 0; i < completions.size(); ++i) {
    grpo::Sample s;
    s.completion = completions[i];
    if (!golds.empty()) s.gold = golds[i];
    if (!lengths.empty()) s.completion_tokens = lengths[i];
    s.prompt_opens_thinking = opens;
    out[i] = fn(s);
  }
  return ToArray(out);
}

}  // namespace

grpo::AdvantageOptions AdvantageOptionsOf(int64_t group_size, const std::string& scaling, const std::string& baseline,
                                          bool unbiased, double eps, std::vector<double> weights,
                                          const std::string& combination) {
  grpo::AdvantageOptions o;
  o.group_size = group_size;
  o.scaling = Pick<grpo::AdvantageScaling>(scaling, {{"group", grpo::AdvantageScaling::kGroup},
                                                     {"batch", grpo::AdvantageScaling::kBatch},
                                                     {"none", grpo::AdvantageScaling::kNone}},
                                           "scaling");
  o.baseline = Pick<grpo::Baseline>(baseline, {{"mean", grpo::Baseline::kGroupMean}, {"rloo", grpo::Baseline::kLeaveOneOut}},
                                    "baseline");
  o.unbiased_std = unbiased;
  o.eps = eps;
  o.weights = std::move(weights);
  o.combination = Pick<grpo::RewardCombination>(combination, {{"sum", grpo::RewardCombination::kSumThenNormalize},
                                                               {"normalize", grpo::RewardCombination::kNormalizeThenSum}},
                                                "combination");
  return o;
}

// Prompts as lists of {"role", "content"} dicts -> chat messages.
std::vector<std::vector<ChatMessage>> ChatPrompts(
    const std::vector<std::vector<std::map<std::string, std::string>>>& messages) {
  std::vector<std::vector<ChatMessage>> prompts;
  for (const auto& list : messages) {
    std::vector<ChatMessage> prompt;
    for (const auto& fields : list) {
      ChatMessage m;
      for (const auto& [key, value] : fields) {
        if (key == "role") {
          m.role = value;
        } else if (key == "content") {
          m.content = value;
        } else {
          throw py::value_error("messages take 'role' and 'content', not '" + key + "'");
        }
      }
      prompt.push_back(std::move(m));
    }
    prompts.push_back(std::move(prompt));
  }
  return prompts;
}

py::dict RolloutDict(const Generator& generator,
                     const std::vector<std::vector<std::map<std::string, std::string>>>& messages,
                     const std::vector<std::string>& golds, const std::vector<std::pair<std::string, double>>& rewards,
                     const GenerateOptions& go, grpo::AdvantageOptions ao) {
  const std::vector<std::vector<ChatMessage>> prompts = ChatPrompts(messages);
  grpo::RewardSet set;
  for (const auto& [name, weight] : rewards) set.Add(name, Check(grpo::BuiltinReward(name)), weight);
  grpo::RolloutOptions ro;
  ro.generate = go;
  ro.advantages = std::move(ao);
  absl::StatusOr<grpo::RolloutBatch> r;
  {
    py::gil_scoped_release release;
    r = grpo::Rollout(generator, prompts, golds, set, ro);
  }
  grpo::RolloutBatch b = Check(std::move(r));
  const auto rows = static_cast<py::ssize_t>(b.size()), cols = static_cast<py::ssize_t>(b.max_length);
  py::dict d;
  py::list prompt_tokens;
  for (const auto& p : b.prompt_tokens) prompt_tokens.append(ToArray(p));
  d["prompt_tokens"] = prompt_tokens;
  d["prompt_index"] = ToArray(b.prompt_of);
  py::array_t<int32_t> tokens({rows, cols});
  if (!b.completion_tokens.empty()) {
    std::memcpy(tokens.mutable_data(), b.completion_tokens.data(), b.completion_tokens.size() * sizeof(int32_t));
  }
  d["completion_tokens"] = tokens;
  d["old_logprobs"] = Shaped(b.old_logprobs, rows, cols);
  d["mask"] = Shaped(b.mask, rows, cols);
  std::vector<uint8_t> truncated = b.truncated;
  d["truncated"] = ToArray(truncated).attr("astype")("bool");
  d["completions"] = b.completions;
  d["reward_names"] = b.reward_names;
  d["rewards"] = Shaped(b.rewards, static_cast<py::ssize_t>(b.reward_names.size()), rows);
  d["advantages"] = ToArray(b.advantages);
  return d;
}

void DefineGrpo(py::module_& m) {
  m.def("advantages", [](const FloatArray& rewards, int64_t group_size, const std::string& scaling,
                         const std::string& baseline, bool unbiased, double eps, std::vector<double> weights,
                         const std::string& combination) {
    if (rewards.ndim() != 1 && rewards.ndim() != 2) throw py::value_error("rewards must be [N] or [functions, N]");
    const int64_t functions = rewards.ndim() == 2 ? rewards.shape(0) : 1;
    const auto o = AdvantageOptionsOf(group_size, scaling, baseline, unbiased, eps, std::move(weights), combination);
    return ToArray(Check(grpo::ComputeAdvantages(Flat(rewards), functions, o)));
  });
  m.def("policy_loss", [](const FloatArray& new_lp, const FloatArray& old_lp, const FloatArray& advantages,
                          const FloatArray& mask, py::object ref, double eps_low, double eps_high, double dual_clip,
                          const std::string& level, double beta, const std::string& aggregation, int64_t max_length) {
    if (new_lp.ndim() != 2) throw py::value_error("log-probs must be [B, T]");
    grpo::LossOptions o;
    o.eps_low = eps_low;
    o.eps_high = eps_high;
    o.dual_clip = dual_clip;
    o.level = Pick<grpo::ImportanceLevel>(level, {{"token", grpo::ImportanceLevel::kToken},
                                                  {"sequence", grpo::ImportanceLevel::kSequence}},
                                          "level");
    o.beta = beta;
    o.aggregation = Pick<grpo::LossAggregation>(aggregation, {{"grpo", grpo::LossAggregation::kSequenceMean},
                                                              {"token_mean", grpo::LossAggregation::kTokenMean},
                                                              {"dr_grpo", grpo::LossAggregation::kTokenSumNorm}},
                                                "aggregation");
    o.max_length = max_length;
    std::vector<float> ref_v;
    if (!ref.is_none()) ref_v = Flat(ref.cast<FloatArray>());
    const int64_t b = new_lp.shape(0), t = new_lp.shape(1);
    grpo::PolicyLoss l = Check(grpo::ComputePolicyLoss(Flat(new_lp), Flat(old_lp), ref_v, Flat(advantages),
                                                       Flat(mask), b, t, o));
    py::dict d;
    d["loss"] = l.loss;
    d["grad"] = Shaped(l.grad, b, t);
    d["per_token_loss"] = Shaped(l.per_token_loss, b, t);
    d["kl_mean"] = l.kl_mean;
    d["clip_fraction"] = l.clip_fraction;
    return d;
  });
  m.def("kl_k3", &grpo::KlK3);
  m.def("extract_answer", [](const std::string& s) { return grpo::ExtractAnswer(s); });
  m.def("parse_number", [](const std::string& s) { return Check(grpo::ParseNumber(s)); });
  m.def("accuracy", [](const std::vector<std::string>& c, const std::vector<std::string>& golds, double rtol,
                       double atol) {
    grpo::AccuracyOptions o;
    o.relative_tolerance = rtol;
    o.absolute_tolerance = atol;
    return ScoreAll(grpo::AccuracyReward(o), c, golds, {}, true);
  });
  m.def("format", [](const std::vector<std::string>& c, bool opens) {
    return ScoreAll(grpo::FormatReward(), c, {}, {}, opens);
  });
  m.def("tag_count", [](const std::vector<std::string>& c, bool opens) {
    return ScoreAll(grpo::TagCountReward(), c, {}, {}, opens);
  });
  m.def("language_consistency", [](const std::vector<std::string>& c, const std::string& script) {
    return ScoreAll(grpo::LanguageConsistencyReward(ScriptOf(script)), c, {}, {}, true);
  });
  m.def("soft_overlong", [](const std::vector<int64_t>& lengths, int64_t max_tokens, int64_t cache) {
    return ScoreAll(grpo::SoftOverlongReward(max_tokens, cache), std::vector<std::string>(lengths.size()), {},
                    lengths, true);
  });
  m.def("cosine_length", [](const std::vector<std::string>& c, const std::vector<std::string>& golds,
                            const std::vector<int64_t>& lengths, int64_t max_tokens, double min_correct,
                            double max_correct, double min_wrong, double max_wrong) {
    grpo::CosineOptions o;
    o.max_tokens = max_tokens;
    o.min_correct = min_correct;
    o.max_correct = max_correct;
    o.min_wrong = min_wrong;
    o.max_wrong = max_wrong;
    return ScoreAll(grpo::CosineLengthReward(o), c, golds, lengths, true);
  });
  m.def("repetition_penalty", [](const std::vector<std::string>& c, int n, double max_penalty) {
    return ScoreAll(grpo::RepetitionPenaltyReward(n, max_penalty), c, {}, {}, true);
  });
  m.def("arithmetic", [](int64_t count, uint64_t seed, int min_operands, int max_operands, int64_t max_value,
                         bool multiplication, bool parentheses, bool column_steps, bool restate) {
    grpo::ArithmeticOptions o;
    o.min_operands = min_operands;
    o.max_operands = max_operands;
    o.max_value = max_value;
    o.multiplication = multiplication;
    o.parentheses = parentheses;
    o.column_steps = column_steps;
    o.restate = restate;
    py::list out;
    for (const grpo::ArithmeticProblem& p : grpo::GenerateArithmetic(count, seed, o)) {
      py::dict d;
      d["question"] = p.question;
      d["expression"] = p.expression;
      d["answer"] = p.answer;
      d["verifier_answer"] = p.verifier_answer;
      d["steps"] = p.steps;
      d["completion"] = p.Completion();
      out.append(d);
    }
    return out;
  });
  // Rejection sampling over a rollout's dict (the arrays it needs), by grpo::AcceptedJsonl.
  m.def("accepted_jsonl", [](const FloatArray& rewards, const std::vector<std::string>& completions,
                             const std::vector<int32_t>& prompt_index,
                             const std::vector<std::vector<std::map<std::string, std::string>>>& prompts,
                             const std::vector<double>& weights, double threshold) {
    if (rewards.ndim() != 2 || static_cast<size_t>(rewards.shape(1)) != completions.size() ||
        prompt_index.size() != completions.size()) {
      throw py::value_error("accepted_jsonl: rewards [functions, B], completions [B] and prompt_index [B] disagree");
    }
    grpo::RolloutBatch b;
    b.rewards = Flat(rewards);
    b.reward_names.resize(static_cast<size_t>(rewards.shape(0)));
    b.completions = completions;
    b.prompt_of = prompt_index;
    return grpo::AcceptedJsonl(b, ChatPrompts(prompts), weights, threshold);
  });
  m.def("sft_json_line", [](const std::string& q, const std::string& c) { return grpo::SftJsonLine(q, c); });
}

}  // namespace reasonrt::py_binding
