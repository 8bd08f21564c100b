// The _reasonrt extension module: the C++ API for the Python package `reasonrt`
// (bindings/python/reasonrt/__init__.py wraps it). Compute runs without the GIL; a
// generation checks for signals (Ctrl-C) between decode steps and stops on one.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common.h"
#include "reasonrt/chat.h"
#include "reasonrt/generate.h"
#include "reasonrt/grpo.h"
#include "reasonrt/model.h"
#include "reasonrt/moe.h"
#include "reasonrt/tokenizer.h"

namespace py = pybind11;
using namespace reasonrt;

namespace reasonrt::py_binding {
void DefineGrpo(py::module_& m);
py::dict RolloutDict(const Generator& generator,
                     const std::vector<std::vector<std::map<std::string, std::string>>>& messages,
                     const std::vector<std::string>& golds, const std::vector<std::pair<std::string, double>>& rewards,
                     const GenerateOptions& go, grpo::AdvantageOptions ao);
grpo::AdvantageOptions AdvantageOptionsOf(int64_t group_size, const std::string& scaling, const std::string& baseline,
                                          bool unbiased, double eps, std::vector<double> weights,
                                          const std::string& combination);
}  // namespace reasonrt::py_binding
using namespace reasonrt::py_binding;

namespace {

const char* ChannelName(Channel c) { return c == Channel::kThinking ? "thinking" : "answer"; }

py::dict CompletionDict(const Completion& c) {
  py::dict d;
  d["index"] = c.index;
  d["thinking"] = c.thinking;
  d["answer"] = c.answer;
  d["tokens"] = ToArray(c.tokens);
  d["logprobs"] = ToArray(c.logprobs);
  py::list channels;
  for (Channel ch : c.channels) channels.append(ChannelName(ch));
  d["channels"] = channels;
  d["finish_reason"] = std::string(FinishReasonName(c.finish_reason));
  d["thinking_tokens"] = c.thinking_tokens;
  if (!c.sampled_logprobs.empty()) d["sampled_logprobs"] = ToArray(c.sampled_logprobs);
  return d;
}

py::dict ResultDict(const GenerationResult& r) {
  py::dict d;
  d["prompt"] = r.prompt;
  d["prompt_tokens"] = ToArray(r.prompt_tokens);
  py::list completions;
  for (const Completion& c : r.completions) completions.append(CompletionDict(c));
  d["completions"] = completions;
  py::dict t;
  t["prompt_tokens"] = r.timings.prompt_tokens;
  t["generated_tokens"] = r.timings.generated_tokens;
  t["prompt_seconds"] = r.timings.prompt_seconds;
  t["decode_seconds"] = r.timings.decode_seconds;
  t["decode_tokens_per_second"] = r.timings.decode_tokens_per_second();
  d["timings"] = t;
  const RoutingStats& rs = r.routing;
  if (!rs.layers.empty()) {
    py::dict routing;
    routing["layers"] = ToArray(rs.layers);
    py::array_t<int64_t> load({static_cast<py::ssize_t>(rs.layers.size()), static_cast<py::ssize_t>(rs.n_routed_experts)});
    std::memcpy(load.mutable_data(), rs.load.data(), rs.load.size() * sizeof(int64_t));
    routing["load"] = load;
    routing["tokens"] = rs.tokens;
    if (rs.trace_size() > 0) {
      const auto n = static_cast<py::ssize_t>(rs.trace_size());
      routing["trace_seq_ids"] = ToArray(rs.trace_seq_ids);
      routing["trace_positions"] = ToArray(rs.trace_positions);
      routing["trace_layers"] = ToArray(rs.trace_layers);
      py::array_t<int32_t> experts({n, static_cast<py::ssize_t>(rs.k)});
      py::array_t<float> weights({n, static_cast<py::ssize_t>(rs.k)});
      std::memcpy(experts.mutable_data(), rs.trace_experts.data(), rs.trace_experts.size() * sizeof(int32_t));
      std::memcpy(weights.mutable_data(), rs.trace_weights.data(), rs.trace_weights.size() * sizeof(float));
      routing["trace_experts"] = experts;
      routing["trace_weights"] = weights;
    }
    d["routing"] = routing;
  }
  return d;
}

// (experts int32 [T, k], weights float32 [T, k]) of a Routing.
py::tuple RoutingArrays(const Routing& r) {
  py::array_t<int32_t> experts({static_cast<py::ssize_t>(r.tokens), static_cast<py::ssize_t>(r.k)});
  py::array_t<float> weights({static_cast<py::ssize_t>(r.tokens), static_cast<py::ssize_t>(r.k)});
  if (!r.experts.empty()) {
    std::memcpy(experts.mutable_data(), r.experts.data(), r.experts.size() * sizeof(int32_t));
    std::memcpy(weights.mutable_data(), r.weights.data(), r.weights.size() * sizeof(float));
  }
  return py::make_tuple(experts, weights);
}

py::dict EventDict(const GenerationEvent& e) {
  py::dict d;
  static const char* kTypes[] = {"thinking", "answer", "token", "finish"};
  d["type"] = kTypes[static_cast<int>(e.type)];
  d["index"] = e.index;
  switch (e.type) {
    case GenerationEvent::Type::kThinking:
    case GenerationEvent::Type::kAnswer:
      d["channel"] = e.type == GenerationEvent::Type::kThinking ? "thinking" : "answer";
      d["text"] = e.text;
      break;
    case GenerationEvent::Type::kToken:
      d["channel"] = ChannelName(e.channel);
      d["token"] = e.token;
      d["logprob"] = e.logprob;
      break;
    case GenerationEvent::Type::kFinish: d["finish_reason"] = std::string(FinishReasonName(e.finish_reason)); break;
  }
  return d;
}

// A generation advanced from Python: each next() runs at most one decode step without
// the GIL.
class Run {
 public:
  explicit Run(std::unique_ptr<GenerationRun> run) : run_(std::move(run)) {}
  py::object Next() {
    std::optional<absl::StatusOr<GenerationEvent>> e;
    {
      py::gil_scoped_release release;
      e = run_->Next();
    }
    if (!e) throw py::stop_iteration();
    if (!e->ok()) Raise(e->status());
    return EventDict(**e);
  }
  py::dict Result() const { return ResultDict(run_->result()); }

 private:
  std::unique_ptr<GenerationRun> run_;
};

class PyModel {
 public:
  PyModel(const std::string& path, const std::string& backend, int threads, bool exact, py::object progress,
          bool in_memory) {
    LoadOptions lo;
    lo.weights_in_memory = in_memory;
    lo.backend = backend;
    lo.num_threads = threads;
    lo.exact_activations = exact;
    if (!progress.is_none()) {
      lo.progress = [progress](float f) {
        py::gil_scoped_acquire gil;
        py::object r = progress(f);
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        return r.is_none() || r.cast<bool>();
      };
    }
    absl::StatusOr<std::unique_ptr<Generator>> gen;
    {
      py::gil_scoped_release release;
      gen = Generator::Load(path, lo);
    }
    gen_ = Check(std::move(gen));
  }

  py::dict Info() const {
    const ModelConfig& c = gen_->model().config();
    py::dict d;
    d["architecture"] = std::string(ArchitectureName(c.architecture));
    d["vocab_size"] = c.vocab_size;
    d["hidden_size"] = c.hidden_size;
    d["num_layers"] = c.num_hidden_layers;
    d["max_positions"] = c.max_position_embeddings;
    d["backend"] = std::string(gen_->model().backend_name());
    if (c.is_deepseek() && c.n_routed_experts > 0) {
      d["n_routed_experts"] = c.n_routed_experts;
      d["experts_per_token"] = c.num_experts_per_tok;
      py::list moe_layers;
      for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
        if (c.IsMoeLayer(i)) moe_layers.append(i);
      }
      d["moe_layers"] = moe_layers;
    }
    return d;
  }

  py::tuple RouteLayer(int layer, py::array_t<float, py::array::c_style | py::array::forcecast> hidden) const {
    if (hidden.ndim() != 2) throw py::value_error("route_layer: hidden must be [tokens, hidden_size]");
    absl::StatusOr<Routing> r;
    {
      py::gil_scoped_release release;
      r = gen_->model().RouteLayer(layer, absl::MakeConstSpan(hidden.data(), static_cast<size_t>(hidden.size())),
                                   hidden.shape(0));
    }
    return RoutingArrays(Check(std::move(r)));
  }

  py::tuple MoeLayerForward(int layer, py::array_t<float, py::array::c_style | py::array::forcecast> hidden) const {
    if (hidden.ndim() != 2) throw py::value_error("moe_layer_forward: hidden must be [tokens, hidden_size]");
    absl::StatusOr<MoeLayerOutput> r;
    {
      py::gil_scoped_release release;
      r = gen_->model().MoeLayerForward(
          layer, absl::MakeConstSpan(hidden.data(), static_cast<size_t>(hidden.size())), hidden.shape(0));
    }
    MoeLayerOutput out = Check(std::move(r));
    py::array_t<float> y({hidden.shape(0), hidden.shape(1)});
    if (!out.output.empty()) std::memcpy(y.mutable_data(), out.output.data(), out.output.size() * sizeof(float));
    py::tuple routing = RoutingArrays(out.routing);
    return py::make_tuple(y, routing[0], routing[1]);
  }

  std::vector<int32_t> Tokenize(const std::string& text, bool parse_special, bool add_special) const {
    EncodeOptions o;
    o.parse_special = parse_special;
    o.add_special_tokens = add_special;
    return Check(gen_->tokenizer().Encode(text, o));
  }

  std::string Detokenize(const std::vector<int32_t>& ids, bool skip_special) const {
    DecodeOptions o;
    o.skip_special_tokens = skip_special;
    return Check(gen_->tokenizer().Decode(ids, o));
  }

  std::string ChatPrompt(const std::string& messages_json, bool add_generation_prompt, const std::string& tools_json,
                         const std::string& extra_json) const {
    ChatOptions o;
    o.add_generation_prompt = add_generation_prompt;
    o.tools_json = tools_json;
    o.extra_context_json = extra_json;
    return Check(gen_->chat_template().RenderJson(messages_json, o)).text;
  }

  std::unique_ptr<Run> Start(py::object messages_json, py::object prompt_text, py::object prompt_tokens,
                             const GenerateOptions& options) const {
    std::vector<int32_t> ids;
    if (!messages_json.is_none()) {
      auto p = Check(gen_->chat_template().RenderJson(messages_json.cast<std::string>(), options.chat));
      ids = Check(EncodeChatPrompt(gen_->tokenizer(), p));
    } else if (!prompt_text.is_none()) {
      EncodeOptions o;
      o.parse_special = true;
      ids = Check(gen_->tokenizer().Encode(prompt_text.cast<std::string>(), o));
    } else {
      ids = prompt_tokens.cast<std::vector<int32_t>>();
    }
    return std::make_unique<Run>(Check(gen_->StartFromTokens(ids, options)));
  }

  // Runs to the end; Ctrl-C (a pending signal) cancels between decode steps.
  py::dict Generate(py::object messages_json, py::object prompt_text, py::object prompt_tokens,
                    const GenerateOptions& options) const {
    std::unique_ptr<Run> run = Start(messages_json, prompt_text, prompt_tokens, options);
    while (true) {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      try {
        run->Next();
      } catch (py::stop_iteration&) {
        break;
      }
    }
    return run->Result();
  }

  std::vector<py::array_t<float>> Score(const std::vector<int32_t>& prompt,
                                        const std::vector<std::vector<int32_t>>& completions, float temperature) const {
    absl::StatusOr<ScoreResult> r;
    {
      py::gil_scoped_release release;
      r = gen_->Score(prompt, completions, temperature);
    }
    ScoreResult s = Check(std::move(r));
    std::vector<py::array_t<float>> out;
    for (const auto& v : s.logprobs) out.push_back(ToArray(v));
    return out;
  }

  py::array_t<float> Logits(const std::vector<int32_t>& tokens) const {
    SessionOptions so;
    so.max_tokens = static_cast<int64_t>(tokens.size()) + 16;
    auto session = Check(gen_->model().NewSession(so));
    Batch b;
    for (size_t i = 0; i < tokens.size(); ++i) b.Add(tokens[i], static_cast<int32_t>(i), 0, true);
    absl::StatusOr<reasonrt::Logits> l;
    {
      py::gil_scoped_release release;
      l = session->Forward(b);
    }
    reasonrt::Logits logits = Check(std::move(l));
    py::array_t<float> a({static_cast<py::ssize_t>(tokens.size()), static_cast<py::ssize_t>(logits.vocab_size)});
    std::memcpy(a.mutable_data(), logits.values.data(), logits.values.size() * sizeof(float));
    return a;
  }

  const Generator& generator() const { return *gen_; }

 private:
  std::unique_ptr<Generator> gen_;
};

GenerateOptions MakeOptions(int n, int max_tokens, float temperature, float top_p, int top_k, float min_p,
                            float repetition_penalty, uint64_t seed, bool greedy, int max_thinking, int min_thinking,
                            std::vector<std::string> stop, bool add_generation_prompt, std::string tools_json,
                            std::string extra_json, int first_index, float presence_penalty,
                            float frequency_penalty, bool sampled_logprobs, bool routing_stats,
                            bool routing_trace, const std::string& kv_dtype) {
  GenerateOptions o;
  if (kv_dtype == "bf16") {
    o.kv_dtype = DType::kBF16;
  } else if (kv_dtype != "f32") {
    throw py::value_error("kv_dtype '" + kv_dtype + "' is not f32 or bf16");
  }
  o.n = n;
  o.max_new_tokens = max_tokens;
  o.sampling.temperature = temperature;
  o.sampling.top_p = top_p;
  o.sampling.top_k = top_k;
  o.sampling.min_p = min_p;
  o.sampling.repetition_penalty = repetition_penalty;
  o.sampling.seed = seed;
  o.sampling.greedy = greedy;
  o.thinking.max_tokens = max_thinking;
  o.thinking.min_tokens = min_thinking;
  o.stop = std::move(stop);
  o.chat.add_generation_prompt = add_generation_prompt;
  o.chat.tools_json = std::move(tools_json);
  o.chat.extra_context_json = std::move(extra_json);
  o.first_index = first_index;
  o.sampling.presence_penalty = presence_penalty;
  o.sampling.frequency_penalty = frequency_penalty;
  o.sampled_logprobs = sampled_logprobs;
  o.routing_stats = routing_stats;
  o.routing_trace = routing_trace;
  return o;
}

py::tuple Route(py::array_t<float, py::array::c_style | py::array::forcecast> logits, int64_t k, int64_t n_group,
               int64_t topk_group, const std::string& scoring, const std::string& method, bool norm, double scaling,
               bool always_scale, py::object bias) {
  if (logits.ndim() != 2) throw py::value_error("route_tokens: logits must be [tokens, experts]");
  RouterConfig c;
  c.n_routed_experts = logits.shape(1);
  c.num_experts_per_tok = k;
  c.n_group = n_group;
  c.topk_group = topk_group;
  if (scoring != "sigmoid" && scoring != "softmax") throw py::value_error("scoring must be 'sigmoid' or 'softmax'");
  c.scoring_func = scoring == "sigmoid" ? ScoringFunc::kSigmoid : ScoringFunc::kSoftmax;
  if (method == "noaux_tc") c.topk_method = TopkMethod::kNoauxTc;
  else if (method == "greedy") c.topk_method = TopkMethod::kGreedy;
  else if (method == "group_limited_greedy") c.topk_method = TopkMethod::kGroupLimitedGreedy;
  else throw py::value_error("method must be 'noaux_tc', 'greedy' or 'group_limited_greedy'");
  c.norm_topk_prob = norm;
  c.routed_scaling_factor = scaling;
  c.always_scale = always_scale;
  std::vector<float> b;
  if (!bias.is_none()) b = bias.cast<std::vector<float>>();
  const int64_t tokens = logits.shape(0);
  Routing r = Check(RouteTokens(c, absl::MakeConstSpan(logits.data(), static_cast<size_t>(logits.size())), tokens, b));
  py::array_t<int32_t> experts({tokens, k});
  py::array_t<float> weights({tokens, k});
  if (!r.experts.empty()) {
    std::memcpy(experts.mutable_data(), r.experts.data(), r.experts.size() * sizeof(int32_t));
    std::memcpy(weights.mutable_data(), r.weights.data(), r.weights.size() * sizeof(float));
  }
  return py::make_tuple(experts, weights);
}

}  // namespace

PYBIND11_MODULE(_reasonrt, m) {
  m.doc() = "reasonrt's C++ core; use the `reasonrt` package.";
  py::class_<GenerateOptions>(m, "GenerateOptions");
  m.def("make_options", &MakeOptions);
  m.def("route_tokens", &Route);
  py::module_ grpo_module = m.def_submodule("grpo", "GRPO numerics, rewards and data");
  DefineGrpo(grpo_module);
  py::class_<Run>(m, "Run")
      .def("__iter__", [](Run& r) -> Run& { return r; })
      .def("__next__", &Run::Next)
      .def("result", &Run::Result);
  py::class_<PyModel>(m, "Model")
      .def(py::init<const std::string&, const std::string&, int, bool, py::object, bool>(), py::arg("path"),
           py::arg("backend") = "auto", py::arg("threads") = 0, py::arg("exact") = false,
           py::arg("progress") = py::none(), py::arg("in_memory") = false)
      .def("update_weights", [](const PyModel& self, const py::dict& weights) {
        std::vector<py::array_t<float, py::array::c_style | py::array::forcecast>> keep;
        std::vector<WeightUpdate> updates;
        for (const auto& [key, value] : weights) {
          keep.push_back(py::cast<py::array_t<float, py::array::c_style | py::array::forcecast>>(value));
          const auto& a = keep.back();
          std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
          updates.push_back({py::cast<std::string>(key), Check(TensorView::BorrowReadOnly(a.data(), DType::kF32, shape))});
        }
        absl::Status s;
        {
          py::gil_scoped_release release;
          s = self.generator().model().UpdateWeights(updates);
        }
        if (!s.ok()) Raise(s);
      })
      .def("info", &PyModel::Info)
      .def("tokenize", &PyModel::Tokenize)
      .def("detokenize", &PyModel::Detokenize)
      .def("chat_prompt", &PyModel::ChatPrompt)
      .def("start", &PyModel::Start)
      .def("generate", &PyModel::Generate)
      .def("score", &PyModel::Score)
      .def("logits", &PyModel::Logits)
      .def("rollout", [](const PyModel& self, const std::vector<std::vector<std::map<std::string, std::string>>>& prompts,
                         const std::vector<std::string>& golds,
                         const std::vector<std::pair<std::string, double>>& rewards, const GenerateOptions& go,
                         const std::string& scaling, const std::string& baseline, bool unbiased, double eps,
                         const std::string& combination) {
        return RolloutDict(self.generator(), prompts, golds, rewards, go,
                           AdvantageOptionsOf(go.n, scaling, baseline, unbiased, eps, {}, combination));
      })
      .def("route_layer", &PyModel::RouteLayer)
      .def("moe_layer_forward", &PyModel::MoeLayerForward);
}
