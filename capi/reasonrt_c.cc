// The C ABI over the C++ API: status codes, a thread-local error message, handles checked
// against a registry of live objects, and nothing thrown past the boundary.
#include "reasonrt_c.h"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <unordered_set>

#include "lib/core/strings.h"
#include "lib/io/json.h"
#include "lib/models/tensor_inventory.h"
#include "reasonrt/chat.h"
#include "reasonrt/generate.h"
#include "reasonrt/grpo.h"
#include "reasonrt/model.h"
#include "reasonrt/moe.h"
#include "reasonrt/tokenizer.h"

struct rrt_model {
  std::shared_ptr<const reasonrt::Model> model;
  std::shared_ptr<const reasonrt::Tokenizer> tokenizer;
  std::shared_ptr<const reasonrt::ChatTemplate> chat;
  std::unique_ptr<reasonrt::Generator> generator;
  int64_t parameters = 0;
  int64_t active_parameters = 0;
};

struct rrt_session {
  std::unique_ptr<reasonrt::Session> session;
  std::atomic<bool> busy{false};
};

struct rrt_rollout {
  reasonrt::grpo::RolloutBatch batch;
};

struct rrt_result {
  reasonrt::GenerationResult result;
  std::vector<std::vector<uint8_t>> channels;
};

struct rrt_generation {
  std::mutex mu;
  std::deque<reasonrt::GenerationEvent> queue;
  std::vector<std::string> polled_texts;  // texts of the events of the last poll
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  bool finished = false;
  absl::Status status;
  std::unique_ptr<rrt_result> result;
  std::thread worker;
};

namespace {

using reasonrt::StrCat;

thread_local std::string g_last_error;

std::mutex g_handles_mu;
std::unordered_set<const void*>& Handles() {
  static auto* h = new std::unordered_set<const void*>();
  return *h;
}
void Register(const void* p) {
  std::lock_guard<std::mutex> l(g_handles_mu);
  Handles().insert(p);
}
bool Unregister(const void* p) {
  std::lock_guard<std::mutex> l(g_handles_mu);
  return Handles().erase(p) > 0;
}
bool Live(const void* p) {
  std::lock_guard<std::mutex> l(g_handles_mu);
  return p != nullptr && Handles().count(p) > 0;
}

std::mutex g_log_mu;
rrt_log_fn g_log_fn = nullptr;
void* g_log_user = nullptr;

void Log(int32_t level, const std::string& message) {
  std::lock_guard<std::mutex> l(g_log_mu);
  if (g_log_fn) g_log_fn(level, message.data(), message.size(), g_log_user);
}

rrt_status Fail(rrt_status code, std::string message) {
  g_last_error = std::move(message);
  Log(3, g_last_error);
  return code;
}

rrt_status FromStatus(const absl::Status& s) {
  if (s.ok()) return RRT_OK;
  rrt_status code = RRT_INTERNAL;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: code = RRT_INVALID_ARGUMENT; break;
    case absl::StatusCode::kNotFound: code = RRT_NOT_FOUND; break;
    case absl::StatusCode::kOutOfRange: code = RRT_OUT_OF_RANGE; break;
    case absl::StatusCode::kResourceExhausted: code = RRT_RESOURCE_EXHAUSTED; break;
    case absl::StatusCode::kCancelled: code = RRT_CANCELLED; break;
    case absl::StatusCode::kUnimplemented: code = RRT_UNIMPLEMENTED; break;
    case absl::StatusCode::kDataLoss: code = RRT_DATA_LOSS; break;
    case absl::StatusCode::kFailedPrecondition: code = RRT_MISUSE; break;
    default: break;
  }
  return Fail(code, std::string(s.message()));
}

// Runs `body`, turning any exception into a status: nothing crosses into the host.
template <typename F>
rrt_status Guard(F&& body) {
  try {
    g_last_error.clear();
    return body();
  } catch (const std::bad_alloc&) {
    return Fail(RRT_RESOURCE_EXHAUSTED, "out of memory");
  } catch (const std::exception& e) {
    return Fail(RRT_INTERNAL, StrCat("internal error: ", e.what()));
  } catch (...) {
    return Fail(RRT_INTERNAL, "internal error");
  }
}

// The layouts programs were built against (LP64): changing one breaks every program built
// with an older header (struct_size must match). kv_dtype came after the first release and
// sits in what was rrt_generate_options' tail padding, which its _init zeroes: the size is
// unchanged, and a program that knows nothing of it gets the f32 cache.
static_assert(sizeof(void*) != 8 ||
                  (sizeof(rrt_load_options) == 48 && sizeof(rrt_model_info) == 104 &&
                   sizeof(rrt_generate_options) == 112 &&
                   offsetof(rrt_generate_options, kv_dtype) == 108 &&
                   sizeof(rrt_stream_callbacks) == 48 && sizeof(rrt_completion) == 80 &&
                   sizeof(rrt_event) == 40 && sizeof(rrt_router_config) == 64 &&
                   sizeof(rrt_grpo_advantage_options) == 64 &&
                   sizeof(rrt_grpo_loss_options) == 56 && sizeof(rrt_grpo_loss) == 32 &&
                   sizeof(rrt_rollout_arrays) == 88 && sizeof(rrt_token_draw) == 64 &&
                   sizeof(rrt_logit_edit) == 20 && sizeof(rrt_drawn_token) == 16),
              "a C ABI struct's layout changed");

#define RRT_CHECK_HANDLE(h, what) \
  if (!Live(h)) return Fail((h) == nullptr ? RRT_INVALID_ARGUMENT : RRT_MISUSE, StrCat(what, " is NULL or was destroyed"))
#define RRT_CHECK_ARG(cond, message) \
  if (!(cond)) return Fail(RRT_INVALID_ARGUMENT, message)
#define RRT_CHECK_STRUCT(p, type)                                                                 \
  if ((p) != nullptr && (p)->struct_size != sizeof(type))                                        \
  return Fail(RRT_MISUSE, StrCat(#type ".struct_size is ", (p)->struct_size, ", expected ", sizeof(type), \
                                 " (call " #type "_init)"))

// Copies `data` into a caller buffer; OUT_OF_RANGE (with *needed set) when it does not fit.
template <typename T>
rrt_status CopyOut(const T* data, size_t n, T* out, size_t capacity, size_t* needed) {
  *needed = n;
  if (n > capacity) return Fail(RRT_OUT_OF_RANGE, StrCat("the output needs ", n, " elements, capacity is ", capacity));
  if (n > 0) std::memcpy(out, data, n * sizeof(T));
  return RRT_OK;
}

rrt_status CopyText(const std::string& s, char* out, size_t capacity, size_t* length) {
  *length = s.size();
  if (s.size() > capacity) return Fail(RRT_OUT_OF_RANGE, StrCat("the text needs ", s.size(), " bytes, capacity is ", capacity));
  if (!s.empty()) std::memcpy(out, s.data(), s.size());
  if (s.size() < capacity) out[s.size()] = '\0';
  return RRT_OK;
}

reasonrt::GenerateOptions ToOptions(const rrt_generate_options& o) {
  reasonrt::GenerateOptions g;
  g.sampling.greedy = o.greedy != 0;
  g.sampling.temperature = o.temperature;
  g.sampling.top_p = o.top_p;
  g.sampling.top_k = o.top_k;
  g.sampling.min_p = o.min_p;
  g.sampling.repetition_penalty = o.repetition_penalty;
  g.sampling.seed = o.seed;
  g.max_new_tokens = o.max_new_tokens;
  g.n = o.n;
  g.thinking.max_tokens = o.max_thinking_tokens;
  g.thinking.min_tokens = o.min_thinking_tokens;
  for (size_t i = 0; i < o.stop_count; ++i) {
    if (o.stop[i] != nullptr) g.stop.emplace_back(o.stop[i]);
  }
  g.chat.add_generation_prompt = o.add_generation_prompt != 0;
  g.sampling.presence_penalty = o.presence_penalty;
  g.sampling.frequency_penalty = o.frequency_penalty;
  g.first_index = o.first_index;
  if (o.tools_json != nullptr) g.chat.tools_json = o.tools_json;
  if (o.extra_json != nullptr) g.chat.extra_context_json = o.extra_json;
  g.routing_stats = o.routing_stats != 0;
  g.kv_dtype = o.kv_dtype == RRT_KV_BF16 ? reasonrt::DType::kBF16 : reasonrt::DType::kF32;
  return g;
}

rrt_status CheckGenerateOptions(const rrt_generate_options* o) {
  RRT_CHECK_ARG(o != nullptr, "generate options are NULL");
  RRT_CHECK_STRUCT(o, rrt_generate_options);
  RRT_CHECK_ARG(o->stop_count == 0 || o->stop != nullptr, "stop is NULL but stop_count is not 0");
  RRT_CHECK_ARG(o->kv_dtype == RRT_KV_F32 || o->kv_dtype == RRT_KV_BF16,
                StrCat("kv_dtype ", o->kv_dtype, " is not RRT_KV_F32 (0) or RRT_KV_BF16 (1)"));
  return RRT_OK;
}

// Messages JSON -> generation run: rendered by the template, special tokens only from it.
absl::StatusOr<std::unique_ptr<reasonrt::GenerationRun>> StartRun(const rrt_model* m, const char* json,
                                                                  size_t length,
                                                                  const reasonrt::GenerateOptions& options) {
  auto prompt = m->chat->RenderJson(std::string_view(json, length), options.chat);
  if (!prompt.ok()) return prompt.status();
  auto ids = reasonrt::EncodeChatPrompt(*m->tokenizer, *prompt);
  if (!ids.ok()) return ids.status();
  return m->generator->StartFromTokens(*ids, options);
}

std::unique_ptr<rrt_result> MakeResult(reasonrt::GenerationResult r) {
  auto out = std::make_unique<rrt_result>();
  out->result = std::move(r);
  for (const auto& c : out->result.completions) {
    std::vector<uint8_t> ch;
    for (auto x : c.channels) ch.push_back(static_cast<uint8_t>(x));
    out->channels.push_back(std::move(ch));
  }
  return out;
}

reasonrt::Batch MakeBatch(const int32_t* tokens, const int32_t* positions, const int32_t* seq_ids,
                          const uint8_t* want_logits, size_t count) {
  reasonrt::Batch batch;
  for (size_t i = 0; i < count; ++i)
    batch.Add(tokens[i], positions[i], seq_ids[i], want_logits[i] != 0);
  return batch;
}

// Runs `f` on the session's C++ object unless another thread has it.
template <typename F>
rrt_status WithSession(rrt_session* session, const char* what, F f) {
  if (session->busy.exchange(true))
    return Fail(RRT_MISUSE, StrCat(what, ": the session is in use on another thread"));
  struct Release {
    std::atomic<bool>& b;
    ~Release() { b.store(false); }
  } release{session->busy};
  return f(*session->session);
}

}  // namespace

extern "C" {

const char* rrt_last_error(void) { return g_last_error.c_str(); }

const char* rrt_status_name(rrt_status status) {
  switch (status) {
    case RRT_OK: return "OK";
    case RRT_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case RRT_NOT_FOUND: return "NOT_FOUND";
    case RRT_OUT_OF_RANGE: return "OUT_OF_RANGE";
    case RRT_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case RRT_CANCELLED: return "CANCELLED";
    case RRT_UNIMPLEMENTED: return "UNIMPLEMENTED";
    case RRT_DATA_LOSS: return "DATA_LOSS";
    case RRT_MISUSE: return "MISUSE";
    case RRT_INTERNAL: return "INTERNAL";
  }
  return "UNKNOWN";
}

const char* rrt_version(void) { return "0.1.0"; }
uint32_t rrt_abi_version(void) { return RRT_ABI_VERSION; }

void rrt_set_log_callback(rrt_log_fn fn, void* user) {
  std::lock_guard<std::mutex> l(g_log_mu);
  g_log_fn = fn;
  g_log_user = user;
}

void rrt_load_options_init(rrt_load_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  o->backend = "auto";
}

rrt_status rrt_model_load(const char* path, size_t path_length, const rrt_load_options* options, rrt_model** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG(path != nullptr && out != nullptr, "rrt_model_load: path and out must not be NULL");
    RRT_CHECK_STRUCT(options, rrt_load_options);
    reasonrt::LoadOptions lo;
    if (options != nullptr) {
      if (options->backend != nullptr) lo.backend = options->backend;
      lo.num_threads = options->num_threads;
      lo.weights_in_memory = options->weights_in_memory != 0;
      lo.exact_activations = options->exact_activations != 0;
      if (options->progress != nullptr) {
        auto fn = options->progress;
        void* user = options->progress_user;
        lo.progress = [fn, user](float f) { return fn(f, user) != 0; };
      }
    }
    const std::string dir(path, path_length);
    auto model = reasonrt::Model::Load(dir, lo);
    if (!model.ok()) return FromStatus(model.status());
    auto tok = reasonrt::Tokenizer::Load(dir);
    if (!tok.ok()) return FromStatus(tok.status());
    auto chat = reasonrt::ChatTemplate::Load(dir);
    if (!chat.ok()) return FromStatus(chat.status());
    auto m = std::make_unique<rrt_model>();
    m->model = std::move(*model);
    m->tokenizer = std::move(*tok);
    m->chat = std::move(*chat);
    auto gen = reasonrt::Generator::Create(m->model, m->tokenizer, m->chat);
    if (!gen.ok()) return FromStatus(gen.status());
    m->generator = std::move(*gen);
    const reasonrt::ParameterCounts counts = reasonrt::CountParameters(m->model->config());
    m->parameters = counts.total;
    m->active_parameters = counts.active_per_token;
    Log(1, StrCat("loaded ", dir, " (", m->model->backend_name(), " backend)"));
    Register(m.get());
    *out = m.release();
    return RRT_OK;
  });
}

void rrt_model_destroy(rrt_model* model) {
  if (model == nullptr || !Unregister(model)) return;
  try {
    delete model;
  } catch (...) {
  }
}

rrt_status rrt_model_get_info(const rrt_model* model, rrt_model_info* info) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(info != nullptr, "info is NULL");
    RRT_CHECK_STRUCT(info, rrt_model_info);
    const auto& cfg = model->model->config();
    rrt_model_info out{};
    out.struct_size = sizeof(out);
    const std::string arch(reasonrt::ArchitectureName(cfg.architecture));
    std::snprintf(out.architecture, sizeof(out.architecture), "%s", arch.c_str());
    out.vocab_size = cfg.vocab_size;
    out.hidden_size = cfg.hidden_size;
    out.num_layers = cfg.num_hidden_layers;
    out.max_positions = cfg.max_position_embeddings;
    out.parameters = model->parameters;
    if (cfg.is_deepseek() && cfg.n_routed_experts > 0) {
      out.n_routed_experts = cfg.n_routed_experts;
      out.experts_per_token = cfg.num_experts_per_tok;
      out.active_parameters = model->active_parameters;
    } else {
      out.active_parameters = model->parameters;
    }
    *info = out;
    return RRT_OK;
  });
}

rrt_status rrt_model_update_weights(const rrt_model* model, const char* const* names, const float* const* values,
                                    const size_t* value_counts, size_t count) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(count == 0 || (names && values && value_counts), "rrt_model_update_weights: NULL argument");
    std::vector<reasonrt::WeightUpdate> updates;
    for (size_t i = 0; i < count; ++i) {
      RRT_CHECK_ARG(names[i] != nullptr && (values[i] != nullptr || value_counts[i] == 0),
                    "rrt_model_update_weights: NULL name or values");
      auto shape = model->model->WeightShape(names[i]);
      if (!shape.ok()) return FromStatus(shape.status());
      int64_t n = 1;
      for (int64_t d : *shape) n *= d;
      RRT_CHECK_ARG(static_cast<size_t>(n) == value_counts[i],
                    StrCat("rrt_model_update_weights: ", names[i], " has ", n, " values, ", value_counts[i], " given"));
      auto view = reasonrt::TensorView::BorrowReadOnly(values[i], reasonrt::DType::kF32, *shape);
      if (!view.ok()) return FromStatus(view.status());
      updates.push_back({names[i], *view});
    }
    return FromStatus(model->model->UpdateWeights(updates));
  });
}

rrt_status rrt_tokenize(const rrt_model* model, const char* text, size_t length, int32_t parse_special,
                        int32_t add_special, int32_t* ids, size_t capacity, size_t* count) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG((text != nullptr || length == 0) && count != nullptr && (ids != nullptr || capacity == 0),
                  "rrt_tokenize: NULL text, ids or count");
    reasonrt::EncodeOptions o;
    o.parse_special = parse_special != 0;
    o.add_special_tokens = add_special != 0;
    auto r = model->tokenizer->Encode(std::string_view(text ? text : "", length), o);
    if (!r.ok()) return FromStatus(r.status());
    return CopyOut(r->data(), r->size(), ids, capacity, count);
  });
}

rrt_status rrt_detokenize(const rrt_model* model, const int32_t* ids, size_t count, int32_t skip_special, char* text,
                          size_t capacity, size_t* length) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG((ids != nullptr || count == 0) && length != nullptr && (text != nullptr || capacity == 0),
                  "rrt_detokenize: NULL ids, text or length");
    reasonrt::DecodeOptions o;
    o.skip_special_tokens = skip_special != 0;
    auto r = model->tokenizer->Decode(absl::MakeConstSpan(ids, count), o);
    if (!r.ok()) return FromStatus(r.status());
    return CopyText(*r, text, capacity, length);
  });
}

rrt_status rrt_chat_render(const rrt_model* model, const char* messages_json, size_t length,
                           const rrt_generate_options* options, char* text, size_t capacity, size_t* text_length) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(messages_json != nullptr && text_length != nullptr && (text != nullptr || capacity == 0),
                  "rrt_chat_render: NULL messages, text or length");
    rrt_generate_options defaults;
    rrt_generate_options_init(&defaults);
    if (options != nullptr) {
      if (rrt_status s = CheckGenerateOptions(options); s != RRT_OK) return s;
    }
    const reasonrt::GenerateOptions go = ToOptions(options != nullptr ? *options : defaults);
    auto p = model->chat->RenderJson(std::string_view(messages_json, length), go.chat);
    if (!p.ok()) return FromStatus(p.status());
    return CopyText(p->text, text, capacity, text_length);
  });
}

rrt_status rrt_session_create(const rrt_model* model, int64_t max_tokens, rrt_session** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(out != nullptr && max_tokens > 0, "rrt_session_create: out is NULL or max_tokens <= 0");
    reasonrt::SessionOptions so;
    so.max_tokens = max_tokens;
    auto s = model->model->NewSession(so);
    if (!s.ok()) return FromStatus(s.status());
    auto h = std::make_unique<rrt_session>();
    h->session = std::move(*s);
    Register(h.get());
    *out = h.release();
    return RRT_OK;
  });
}

void rrt_session_destroy(rrt_session* session) {
  if (session == nullptr || !Unregister(session)) return;
  delete session;
}

rrt_status rrt_session_forward(rrt_session* session, const int32_t* tokens, const int32_t* positions,
                               const int32_t* seq_ids, const uint8_t* want_logits, size_t count, float* logits,
                               size_t capacity, size_t* rows) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    RRT_CHECK_ARG(tokens && positions && seq_ids && want_logits && rows && (logits || capacity == 0),
                  "rrt_session_forward: NULL argument");
    return WithSession(session, "rrt_session_forward", [&](reasonrt::Session& s) -> rrt_status {
      auto out = s.Forward(MakeBatch(tokens, positions, seq_ids, want_logits, count));
      if (!out.ok()) return FromStatus(out.status());
      *rows = out->batch_rows.size();
      if (out->values.size() > capacity) {
        return Fail(RRT_OUT_OF_RANGE,
                    StrCat("logits need ", out->values.size(), " floats, capacity is ", capacity,
                           " (the tokens were processed)"));
      }
      if (!out->values.empty())
        std::memcpy(logits, out->values.data(), out->values.size() * sizeof(float));
      return RRT_OK;
    });
  });
}

rrt_status rrt_session_forward_keep(rrt_session* session, const int32_t* tokens,
                                    const int32_t* positions, const int32_t* seq_ids,
                                    const uint8_t* want_logits, size_t count, size_t* rows) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    RRT_CHECK_ARG(tokens && positions && seq_ids && want_logits && rows,
                  "rrt_session_forward_keep: NULL argument");
    return WithSession(
        session, "rrt_session_forward_keep", [&](reasonrt::Session& s) -> rrt_status {
          auto kept =
              s.ForwardKeepLogits(MakeBatch(tokens, positions, seq_ids, want_logits, count));
          if (!kept.ok()) return FromStatus(kept.status());
          *rows = static_cast<size_t>(*kept);
          return RRT_OK;
        });
  });
}

void rrt_token_draw_init(rrt_token_draw* d) {
  if (d == nullptr) return;
  std::memset(d, 0, sizeof(*d));
  d->struct_size = sizeof(*d);
  d->draw = 1;
  d->temperature = 1.0f;
  d->top_p = 1.0f;
  d->score_token = -1;
}

rrt_status rrt_session_sample(rrt_session* session, const int32_t* rows,
                              const rrt_token_draw* draws, size_t count, rrt_drawn_token* out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    RRT_CHECK_ARG(count == 0 || (rows && draws && out), "rrt_session_sample: NULL argument");
    for (size_t i = 0; i < count; ++i) {
      RRT_CHECK_STRUCT(&draws[i], rrt_token_draw);
      RRT_CHECK_ARG(draws[i].edit_count == 0 || draws[i].edits != nullptr,
                    "rrt_session_sample: NULL edits");
    }
    std::vector<std::vector<reasonrt::LogitEdit>> edits(count);
    std::vector<reasonrt::TokenDraw> td(count);
    for (size_t i = 0; i < count; ++i) {
      const rrt_token_draw& d = draws[i];
      for (size_t j = 0; j < d.edit_count; ++j) {
        const rrt_logit_edit& e = d.edits[j];
        edits[i].push_back({e.token, e.bias, e.repetition_penalty, e.offset, e.banned != 0});
      }
      td[i] = reasonrt::TokenDraw{d.draw != 0, d.greedy != 0, d.temperature, d.top_k,      d.top_p,
                                  d.min_p,     d.uniform,     edits[i],      d.score_token};
    }
    std::vector<reasonrt::DrawnToken> drawn(count);
    return WithSession(session, "rrt_session_sample", [&](reasonrt::Session& s) -> rrt_status {
      const absl::Status st =
          s.SampleKept(absl::MakeConstSpan(rows, count), td, absl::MakeSpan(drawn));
      if (!st.ok()) return FromStatus(st);
      for (size_t i = 0; i < count; ++i) {
        out[i] = rrt_drawn_token{drawn[i].token, drawn[i].logprob, drawn[i].sampled_logprob,
                                 drawn[i].score_logprob};
      }
      return RRT_OK;
    });
  });
}

void rrt_generate_options_init(rrt_generate_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof(*o));
  o->struct_size = sizeof(*o);
  const auto r1 = reasonrt::SamplingParams::R1Recommended();
  o->temperature = r1.temperature;
  o->top_p = r1.top_p;
  o->repetition_penalty = 1.0f;
  o->max_new_tokens = 1024;
  o->n = 1;
  o->max_thinking_tokens = -1;
  o->add_generation_prompt = 1;
}

rrt_status rrt_generate(const rrt_model* model, const char* messages_json, size_t length,
                        const rrt_generate_options* options, const rrt_stream_callbacks* cb, rrt_result** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(messages_json != nullptr && out != nullptr, "rrt_generate: NULL messages or out");
    if (rrt_status s = CheckGenerateOptions(options); s != RRT_OK) return s;
    RRT_CHECK_STRUCT(cb, rrt_stream_callbacks);
    reasonrt::StreamCallbacks stream;
    if (cb != nullptr) {
      const rrt_stream_callbacks c = *cb;
      if (c.on_thinking) stream.on_thinking = [c](int i, std::string_view t) { c.on_thinking(i, t.data(), t.size(), c.user); };
      if (c.on_answer) stream.on_answer = [c](int i, std::string_view t) { c.on_answer(i, t.data(), t.size(), c.user); };
      if (c.on_token) {
        stream.on_token = [c](int i, int32_t tok, float lp, reasonrt::Channel ch) {
          c.on_token(i, tok, lp, static_cast<int32_t>(ch), c.user);
        };
      }
      if (c.on_finish) {
        stream.on_finish = [c](const reasonrt::Completion& comp) {
          c.on_finish(comp.index, static_cast<int32_t>(comp.finish_reason), c.user);
        };
      }
    }
    const reasonrt::GenerateOptions go = ToOptions(*options);
    auto run = StartRun(model, messages_json, length, go);
    if (!run.ok()) return FromStatus(run.status());
    reasonrt::GenerationResult result;
    while (auto e = (*run)->Next()) {
      if (!e->ok()) return FromStatus(e->status());
      const auto& ev = **e;
      switch (ev.type) {
        case reasonrt::GenerationEvent::Type::kThinking: if (stream.on_thinking) stream.on_thinking(ev.index, ev.text); break;
        case reasonrt::GenerationEvent::Type::kAnswer: if (stream.on_answer) stream.on_answer(ev.index, ev.text); break;
        case reasonrt::GenerationEvent::Type::kToken:
          if (stream.on_token) stream.on_token(ev.index, ev.token, ev.logprob, ev.channel);
          break;
        case reasonrt::GenerationEvent::Type::kFinish:
          if (stream.on_finish) stream.on_finish((*run)->result().completions[ev.index]);
          break;
      }
    }
    auto r = MakeResult((*run)->result());
    Register(r.get());
    *out = r.release();
    return RRT_OK;
  });
}

int32_t rrt_result_count(const rrt_result* result) {
  if (!Live(result)) return 0;
  return static_cast<int32_t>(result->result.completions.size());
}

rrt_status rrt_result_get(const rrt_result* result, int32_t index, rrt_completion* c) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(result, "result");
    RRT_CHECK_ARG(c != nullptr, "completion is NULL");
    RRT_CHECK_STRUCT(c, rrt_completion);
    RRT_CHECK_ARG(index >= 0 && index < static_cast<int32_t>(result->result.completions.size()),
                  StrCat("completion index ", index, " is out of range"));
    const auto& comp = result->result.completions[index];
    rrt_completion out{};
    out.struct_size = sizeof(out);
    out.thinking = comp.thinking.c_str();
    out.thinking_length = comp.thinking.size();
    out.answer = comp.answer.c_str();
    out.answer_length = comp.answer.size();
    out.tokens = comp.tokens.data();
    out.logprobs = comp.logprobs.data();
    out.channels = result->channels[index].data();
    out.token_count = comp.tokens.size();
    out.finish_reason = static_cast<int32_t>(comp.finish_reason);
    out.thinking_tokens = comp.thinking_tokens;
    *c = out;
    return RRT_OK;
  });
}

void rrt_result_destroy(rrt_result* result) {
  if (result == nullptr || !Unregister(result)) return;
  delete result;
}

rrt_status rrt_generation_start(const rrt_model* model, const char* messages_json, size_t length,
                                const rrt_generate_options* options, rrt_generation** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(messages_json != nullptr && out != nullptr, "rrt_generation_start: NULL messages or out");
    if (rrt_status s = CheckGenerateOptions(options); s != RRT_OK) return s;
    auto g = std::make_unique<rrt_generation>();
    reasonrt::GenerateOptions go = ToOptions(*options);
    go.cancel = g->cancel;
    // Render and validate on the caller's thread, so that bad input fails here.
    auto run = StartRun(model, messages_json, length, go);
    if (!run.ok()) return FromStatus(run.status());
    rrt_generation* raw = g.get();
    raw->worker = std::thread([raw, r = std::shared_ptr<reasonrt::GenerationRun>(std::move(*run))]() {
      absl::Status status;
      try {
        while (auto e = r->Next()) {
          if (!e->ok()) {
            status = e->status();
            break;
          }
          std::lock_guard<std::mutex> l(raw->mu);
          raw->queue.push_back(std::move(**e));
        }
      } catch (const std::exception& ex) {
        status = absl::InternalError(StrCat("internal error: ", ex.what()));
      } catch (...) {
        status = absl::InternalError("internal error");
      }
      auto result = MakeResult(r->result());
      std::lock_guard<std::mutex> l(raw->mu);
      raw->status = status;
      raw->result = std::move(result);
      raw->finished = true;
    });
    Register(raw);
    *out = g.release();
    return RRT_OK;
  });
}

rrt_status rrt_generation_poll(rrt_generation* g, rrt_event* events, size_t capacity, size_t* count, int32_t* done) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(g, "generation");
    RRT_CHECK_ARG(count != nullptr && done != nullptr && (events != nullptr || capacity == 0),
                  "rrt_generation_poll: NULL events, count or done");
    std::lock_guard<std::mutex> l(g->mu);
    g->polled_texts.clear();
    size_t n = 0;
    while (n < capacity && !g->queue.empty()) {
      reasonrt::GenerationEvent e = std::move(g->queue.front());
      g->queue.pop_front();
      rrt_event out{};
      out.type = static_cast<int32_t>(e.type);
      out.index = e.index;
      out.token = e.token;
      out.logprob = e.logprob;
      out.channel = static_cast<int32_t>(e.channel);
      out.finish_reason = static_cast<int32_t>(e.finish_reason);
      g->polled_texts.push_back(std::move(e.text));
      events[n++] = out;
    }
    // Texts are set after the vector stops growing, so their pointers stay put.
    for (size_t i = 0; i < n; ++i) {
      events[i].text = g->polled_texts[i].c_str();
      events[i].text_length = g->polled_texts[i].size();
    }
    *count = n;
    *done = g->finished && g->queue.empty() ? 1 : 0;
    if (*done && !g->status.ok()) return FromStatus(g->status);
    return RRT_OK;
  });
}

rrt_status rrt_generation_cancel(rrt_generation* g) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(g, "generation");
    g->cancel->store(true);
    return RRT_OK;
  });
}

rrt_status rrt_generation_result(rrt_generation* g, rrt_result** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(g, "generation");
    RRT_CHECK_ARG(out != nullptr, "out is NULL");
    std::lock_guard<std::mutex> l(g->mu);
    if (!g->finished) return Fail(RRT_MISUSE, "rrt_generation_result: the generation has not finished");
    if (!g->status.ok()) return FromStatus(g->status);
    if (!g->result) return Fail(RRT_MISUSE, "rrt_generation_result: the result was already taken");
    Register(g->result.get());
    *out = g->result.release();
    return RRT_OK;
  });
}

void rrt_generation_destroy(rrt_generation* g) {
  if (g == nullptr || !Unregister(g)) return;
  try {
    g->cancel->store(true);
    if (g->worker.joinable()) g->worker.join();
    delete g;
  } catch (...) {
  }
}

rrt_status rrt_score(const rrt_model* model, const int32_t* prompt, size_t prompt_count, const int32_t* completion,
                     size_t completion_count, float temperature, float* logprobs) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(prompt != nullptr && prompt_count > 0 && (completion != nullptr || completion_count == 0) &&
                      (logprobs != nullptr || completion_count == 0),
                  "rrt_score: NULL prompt, completion or logprobs");
    std::vector<std::vector<int32_t>> completions = {std::vector<int32_t>(completion, completion + completion_count)};
    auto r = model->generator->Score(absl::MakeConstSpan(prompt, prompt_count), completions, temperature);
    if (!r.ok()) return FromStatus(r.status());
    if (!r->logprobs[0].empty()) std::memcpy(logprobs, r->logprobs[0].data(), r->logprobs[0].size() * sizeof(float));
    return RRT_OK;
  });
}

void rrt_router_config_init(rrt_router_config* c) {
  if (c == nullptr) return;
  std::memset(c, 0, sizeof(*c));
  c->struct_size = sizeof(*c);
  c->n_routed_experts = 256;
  c->num_experts_per_tok = 8;
  c->n_group = 8;
  c->topk_group = 4;
  c->scoring_func = RRT_SCORING_SIGMOID;
  c->topk_method = RRT_TOPK_NOAUX_TC;
  c->norm_topk_prob = 1;
  c->always_scale = 1;
  c->routed_scaling_factor = 2.5;
}

rrt_status rrt_route_tokens(const rrt_router_config* config, const float* logits, int64_t tokens, const float* bias,
                            size_t bias_count, int32_t* experts, float* weights) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG(config != nullptr, "router config is NULL");
    RRT_CHECK_STRUCT(config, rrt_router_config);
    RRT_CHECK_ARG(tokens >= 0 && config->n_routed_experts > 0 && config->n_routed_experts < (1 << 20),
                  "rrt_route_tokens: bad token or expert count");
    RRT_CHECK_ARG((logits != nullptr || tokens == 0) && (bias != nullptr || bias_count == 0) &&
                      (experts != nullptr || tokens == 0) && (weights != nullptr || tokens == 0),
                  "rrt_route_tokens: NULL argument");
    RRT_CHECK_ARG(config->scoring_func >= 0 && config->scoring_func <= 1 && config->topk_method >= 0 &&
                      config->topk_method <= 2,
                  "rrt_route_tokens: unknown scoring_func or topk_method");
    reasonrt::RouterConfig c;
    c.n_routed_experts = config->n_routed_experts;
    c.num_experts_per_tok = config->num_experts_per_tok;
    c.n_group = config->n_group;
    c.topk_group = config->topk_group;
    c.scoring_func = config->scoring_func == RRT_SCORING_SIGMOID ? reasonrt::ScoringFunc::kSigmoid
                                                                 : reasonrt::ScoringFunc::kSoftmax;
    c.topk_method = config->topk_method == RRT_TOPK_NOAUX_TC        ? reasonrt::TopkMethod::kNoauxTc
                    : config->topk_method == RRT_TOPK_GREEDY        ? reasonrt::TopkMethod::kGreedy
                                                                    : reasonrt::TopkMethod::kGroupLimitedGreedy;
    c.norm_topk_prob = config->norm_topk_prob != 0;
    c.always_scale = config->always_scale != 0;
    c.routed_scaling_factor = config->routed_scaling_factor;
    auto r = reasonrt::RouteTokens(c, absl::MakeConstSpan(logits, static_cast<size_t>(tokens * c.n_routed_experts)),
                                   tokens, absl::MakeConstSpan(bias, bias_count));
    if (!r.ok()) return FromStatus(r.status());
    if (!r->experts.empty()) {
      std::memcpy(experts, r->experts.data(), r->experts.size() * sizeof(int32_t));
      std::memcpy(weights, r->weights.data(), r->weights.size() * sizeof(float));
    }
    return RRT_OK;
  });
}

rrt_status rrt_route_layer(const rrt_model* model, int32_t layer, const float* hidden, int64_t tokens,
                           int32_t* experts, float* weights) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(tokens >= 0 && (tokens == 0 || (hidden && experts && weights)), "rrt_route_layer: NULL argument");
    const int64_t h = model->model->config().hidden_size;
    auto r = model->model->RouteLayer(layer, absl::MakeConstSpan(hidden, static_cast<size_t>(tokens * h)), tokens);
    if (!r.ok()) return FromStatus(r.status());
    if (!r->experts.empty()) {
      std::memcpy(experts, r->experts.data(), r->experts.size() * sizeof(int32_t));
      std::memcpy(weights, r->weights.data(), r->weights.size() * sizeof(float));
    }
    return RRT_OK;
  });
}

rrt_status rrt_moe_layer_forward(const rrt_model* model, int32_t layer, const float* hidden, int64_t tokens,
                                 float* output, int32_t* experts, float* weights) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(tokens >= 0 && (tokens == 0 || (hidden && output)), "rrt_moe_layer_forward: NULL argument");
    const int64_t h = model->model->config().hidden_size;
    auto r = model->model->MoeLayerForward(layer, absl::MakeConstSpan(hidden, static_cast<size_t>(tokens * h)), tokens);
    if (!r.ok()) return FromStatus(r.status());
    if (!r->output.empty()) std::memcpy(output, r->output.data(), r->output.size() * sizeof(float));
    if (experts != nullptr && !r->routing.experts.empty()) {
      std::memcpy(experts, r->routing.experts.data(), r->routing.experts.size() * sizeof(int32_t));
    }
    if (weights != nullptr && !r->routing.weights.empty()) {
      std::memcpy(weights, r->routing.weights.data(), r->routing.weights.size() * sizeof(float));
    }
    return RRT_OK;
  });
}

}  // extern "C"

namespace {

rrt_status ExpertLoadOut(const reasonrt::RoutingStats& r, int32_t* layers, int64_t* load, size_t capacity,
                         int32_t* n_layers, int64_t* n_experts, int64_t* tokens) {
  RRT_CHECK_ARG(n_layers && n_experts && tokens && (load || capacity == 0), "expert load: NULL argument");
  *n_layers = static_cast<int32_t>(r.layers.size());
  *n_experts = r.n_routed_experts;
  *tokens = r.tokens;
  if (r.load.size() > capacity) {
    return Fail(RRT_OUT_OF_RANGE, StrCat("the expert load needs ", r.load.size(), " elements, capacity is ", capacity));
  }
  if (!r.layers.empty()) {
    RRT_CHECK_ARG(layers != nullptr, "expert load: layers is NULL");
    std::memcpy(layers, r.layers.data(), r.layers.size() * sizeof(int32_t));
    std::memcpy(load, r.load.data(), r.load.size() * sizeof(int64_t));
  }
  return RRT_OK;
}

}  // namespace

extern "C" {

rrt_status rrt_session_expert_load(rrt_session* session, int32_t* layers, int64_t* load, size_t capacity,
                                   int32_t* n_layers, int64_t* n_experts, int64_t* tokens) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    return WithSession(session, "rrt_session_expert_load", [&](reasonrt::Session& s) {
      return ExpertLoadOut(s.routing_stats(), layers, load, capacity, n_layers, n_experts, tokens);
    });
  });
}

rrt_status rrt_session_reset_routing(rrt_session* session, int32_t trace) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    return WithSession(session, "rrt_session_reset_routing", [&](reasonrt::Session& s) {
      s.ResetRoutingStats(trace != 0);
      return RRT_OK;
    });
  });
}

rrt_status rrt_session_routing_trace(rrt_session* session, int32_t* seq_ids, int32_t* positions, int32_t* layers,
                                     int32_t* experts, float* weights, size_t capacity, size_t* count) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(session, "session");
    RRT_CHECK_ARG(count != nullptr, "rrt_session_routing_trace: count is NULL");
    return WithSession(session, "rrt_session_routing_trace", [&](reasonrt::Session& s) -> rrt_status {
      const reasonrt::RoutingStats r = s.routing_stats();
      const size_t n = r.trace_size();
      *count = n;
      if (n > capacity) return Fail(RRT_OUT_OF_RANGE, StrCat("the trace has ", n, " entries, capacity is ", capacity));
      if (n == 0) return RRT_OK;
      RRT_CHECK_ARG(seq_ids && positions && layers && experts && weights, "rrt_session_routing_trace: NULL argument");
      std::memcpy(seq_ids, r.trace_seq_ids.data(), n * sizeof(int32_t));
      std::memcpy(positions, r.trace_positions.data(), n * sizeof(int32_t));
      std::memcpy(layers, r.trace_layers.data(), n * sizeof(int32_t));
      std::memcpy(experts, r.trace_experts.data(), r.trace_experts.size() * sizeof(int32_t));
      std::memcpy(weights, r.trace_weights.data(), r.trace_weights.size() * sizeof(float));
      return RRT_OK;
    });
  });
}

rrt_status rrt_result_expert_load(const rrt_result* result, int32_t* layers, int64_t* load, size_t capacity,
                                  int32_t* n_layers, int64_t* n_experts, int64_t* tokens) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(result, "result");
    return ExpertLoadOut(result->result.routing, layers, load, capacity, n_layers, n_experts, tokens);
  });
}

void rrt_grpo_advantage_options_init(rrt_grpo_advantage_options* o) {
  if (o == nullptr) return;
  *o = rrt_grpo_advantage_options{};
  o->struct_size = sizeof(*o);
  o->group_size = 8;
  o->scaling = RRT_SCALE_GROUP;
  o->baseline = RRT_BASELINE_MEAN;
  o->unbiased_std = 1;
  o->eps = 1e-4;
  o->combination = RRT_COMBINE_SUM;
}

}  // extern "C"

namespace {

rrt_status ToAdvantageOptions(const rrt_grpo_advantage_options* o, reasonrt::grpo::AdvantageOptions* out) {
  RRT_CHECK_ARG(o != nullptr, "advantage options are NULL");
  RRT_CHECK_STRUCT(o, rrt_grpo_advantage_options);
  RRT_CHECK_ARG(o->scaling >= 0 && o->scaling <= 2 && o->baseline >= 0 && o->baseline <= 1 && o->combination >= 0 &&
                    o->combination <= 1 && (o->weights != nullptr || o->weight_count == 0),
                "advantage options: unknown scaling, baseline or combination, or NULL weights");
  namespace g = reasonrt::grpo;
  out->group_size = o->group_size;
  out->scaling = o->scaling == RRT_SCALE_GROUP ? g::AdvantageScaling::kGroup
                 : o->scaling == RRT_SCALE_BATCH ? g::AdvantageScaling::kBatch
                                                 : g::AdvantageScaling::kNone;
  out->baseline = o->baseline == RRT_BASELINE_RLOO ? g::Baseline::kLeaveOneOut : g::Baseline::kGroupMean;
  out->unbiased_std = o->unbiased_std != 0;
  out->eps = o->eps;
  out->combination = o->combination == RRT_COMBINE_NORMALIZE ? g::RewardCombination::kNormalizeThenSum
                                                             : g::RewardCombination::kSumThenNormalize;
  out->weights.assign(o->weights, o->weights + o->weight_count);
  return RRT_OK;
}

}  // namespace

extern "C" {

rrt_status rrt_grpo_advantages(const float* rewards, int64_t functions, int64_t n,
                               const rrt_grpo_advantage_options* options, float* advantages) {
  return Guard([&]() -> rrt_status {
    reasonrt::grpo::AdvantageOptions o;
    if (const rrt_status s = ToAdvantageOptions(options, &o); s != RRT_OK) return s;
    RRT_CHECK_ARG(functions > 0 && n >= 0 && n < (int64_t{1} << 40) && (n == 0 || (rewards && advantages)),
                  "rrt_grpo_advantages: bad sizes or NULL arrays");
    auto a = reasonrt::grpo::ComputeAdvantages(absl::MakeConstSpan(rewards, static_cast<size_t>(functions * n)),
                                               functions, o);
    if (!a.ok()) return FromStatus(a.status());
    if (!a->empty()) std::memcpy(advantages, a->data(), a->size() * sizeof(float));
    return RRT_OK;
  });
}

void rrt_grpo_loss_options_init(rrt_grpo_loss_options* o) {
  if (o == nullptr) return;
  *o = rrt_grpo_loss_options{};
  o->struct_size = sizeof(*o);
  o->eps_low = o->eps_high = 0.2;
  o->level = RRT_LEVEL_TOKEN;
  o->aggregation = RRT_AGG_GRPO;
}

rrt_status rrt_grpo_policy_loss(const float* new_lp, const float* old_lp, const float* ref_lp, const float* adv,
                                const float* mask, int64_t batch, int64_t length, const rrt_grpo_loss_options* options,
                                rrt_grpo_loss* out, float* grad, float* per_token_loss) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG(options != nullptr && out != nullptr, "rrt_grpo_policy_loss: NULL options or output");
    RRT_CHECK_STRUCT(options, rrt_grpo_loss_options);
    RRT_CHECK_STRUCT(out, rrt_grpo_loss);
    RRT_CHECK_ARG(batch >= 0 && length >= 0 && batch < (int64_t{1} << 30) && length < (int64_t{1} << 30),
                  "rrt_grpo_policy_loss: bad sizes");
    const size_t bt = static_cast<size_t>(batch * length);
    RRT_CHECK_ARG(bt == 0 || (new_lp && old_lp && mask), "rrt_grpo_policy_loss: NULL log-probs or mask");
    RRT_CHECK_ARG(batch == 0 || adv, "rrt_grpo_policy_loss: NULL advantages");
    RRT_CHECK_ARG(options->level >= 0 && options->level <= 1 && options->aggregation >= 0 && options->aggregation <= 2,
                  "rrt_grpo_policy_loss: unknown level or aggregation");
    namespace g = reasonrt::grpo;
    g::LossOptions o;
    o.eps_low = options->eps_low;
    o.eps_high = options->eps_high;
    o.dual_clip = options->dual_clip;
    o.beta = options->beta;
    o.level = options->level == RRT_LEVEL_SEQUENCE ? g::ImportanceLevel::kSequence : g::ImportanceLevel::kToken;
    o.aggregation = options->aggregation == RRT_AGG_TOKEN_MEAN ? g::LossAggregation::kTokenMean
                    : options->aggregation == RRT_AGG_DR_GRPO  ? g::LossAggregation::kTokenSumNorm
                                                               : g::LossAggregation::kSequenceMean;
    o.max_length = options->max_length;
    auto l = g::ComputePolicyLoss(absl::MakeConstSpan(new_lp, bt), absl::MakeConstSpan(old_lp, bt),
                                  ref_lp ? absl::MakeConstSpan(ref_lp, bt) : absl::Span<const float>(),
                                  absl::MakeConstSpan(adv, static_cast<size_t>(batch)), absl::MakeConstSpan(mask, bt),
                                  batch, length, o);
    if (!l.ok()) return FromStatus(l.status());
    out->loss = l->loss;
    out->kl_mean = l->kl_mean;
    out->clip_fraction = l->clip_fraction;
    if (grad != nullptr && bt > 0) std::memcpy(grad, l->grad.data(), bt * sizeof(float));
    if (per_token_loss != nullptr && bt > 0) std::memcpy(per_token_loss, l->per_token_loss.data(), bt * sizeof(float));
    return RRT_OK;
  });
}

rrt_status rrt_grpo_reward(const char* name, const char* const* completions, const char* const* golds, size_t count,
                           int32_t prompt_opens_thinking, float* rewards) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG(name != nullptr && (count == 0 || (completions && rewards)), "rrt_grpo_reward: NULL argument");
    auto fn = reasonrt::grpo::BuiltinReward(name);
    if (!fn.ok()) return FromStatus(fn.status());
    for (size_t i = 0; i < count; ++i) {
      RRT_CHECK_ARG(completions[i] != nullptr, "rrt_grpo_reward: NULL completion");
      reasonrt::grpo::Sample s;
      s.completion = completions[i];
      if (golds != nullptr && golds[i] != nullptr) s.gold = golds[i];
      s.prompt_opens_thinking = prompt_opens_thinking != 0;
      rewards[i] = (*fn)(s);
    }
    return RRT_OK;
  });
}

rrt_status rrt_grpo_extract_answer(const char* completion, size_t length, char* answer, size_t capacity,
                                   size_t* answer_length) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG((completion || length == 0) && answer_length && (answer || capacity == 0),
                  "rrt_grpo_extract_answer: NULL argument");
    return CopyText(reasonrt::grpo::ExtractAnswer(std::string_view(completion, length)), answer, capacity,
                    answer_length);
  });
}

rrt_status rrt_grpo_parse_number(const char* text, size_t length, double* value) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG((text || length == 0) && value, "rrt_grpo_parse_number: NULL argument");
    auto v = reasonrt::grpo::ParseNumber(std::string_view(text, length));
    if (!v.ok()) return FromStatus(v.status());
    *value = *v;
    return RRT_OK;
  });
}

rrt_status rrt_grpo_arithmetic_jsonl(int64_t count, uint64_t seed, char* text, size_t capacity, size_t* text_length) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_ARG(count >= 0 && count <= 10000000 && text_length && (text || capacity == 0),
                  "rrt_grpo_arithmetic_jsonl: bad count or NULL argument");
    std::string out;
    for (const auto& p : reasonrt::grpo::GenerateArithmetic(count, seed)) {
      out += StrCat("{\"question\": ", reasonrt::json::Quote(p.question), ", \"expression\": ",
                    reasonrt::json::Quote(p.expression), ", \"answer\": ", p.answer, ", \"verifier_answer\": ",
                    reasonrt::json::Quote(p.verifier_answer), ", \"completion\": ", reasonrt::json::Quote(p.Completion()),
                    "}\n");
    }
    return CopyText(out, text, capacity, text_length);
  });
}

}  // extern "C"

namespace {

// [[{"role": ..., "content": ...}, ...], ...]
absl::StatusOr<std::vector<std::vector<reasonrt::ChatMessage>>> ParsePrompts(std::string_view json_text) {
  simdjson::dom::parser parser;
  auto root = reasonrt::json::Parse(parser, json_text, "messages_json");
  if (!root.ok()) return root.status();
  std::vector<std::vector<reasonrt::ChatMessage>> out;
  simdjson::dom::array prompts;
  if (root->get_array().get(prompts) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("messages_json: expected an array of message arrays");
  }
  for (simdjson::dom::element prompt : prompts) {
    simdjson::dom::array messages;
    if (prompt.get_array().get(messages) != simdjson::SUCCESS) {
      return absl::InvalidArgumentError("messages_json: each prompt must be an array of messages");
    }
    std::vector<reasonrt::ChatMessage> list;
    for (simdjson::dom::element m : messages) {
      std::string_view role, content;
      if (m["role"].get_string().get(role) != simdjson::SUCCESS ||
          m["content"].get_string().get(content) != simdjson::SUCCESS) {
        return absl::InvalidArgumentError("messages_json: each message needs string \"role\" and \"content\"");
      }
      reasonrt::ChatMessage cm;
      cm.role = std::string(role);
      cm.content = std::string(content);
      list.push_back(std::move(cm));
    }
    out.push_back(std::move(list));
  }
  return out;
}

}  // namespace

extern "C" {

rrt_status rrt_grpo_rollout(const rrt_model* model, const char* messages_json, size_t length, const char* const* golds,
                            size_t gold_count, const char* reward_spec, const rrt_generate_options* options,
                            const rrt_grpo_advantage_options* advantage_options, rrt_rollout** out) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(model, "model");
    RRT_CHECK_ARG(messages_json && (golds || gold_count == 0) && reward_spec && out, "rrt_grpo_rollout: NULL argument");
    if (const rrt_status s = CheckGenerateOptions(options); s != RRT_OK) return s;
    reasonrt::grpo::RolloutOptions ro;
    ro.generate = ToOptions(*options);
    if (advantage_options != nullptr) {
      if (const rrt_status s = ToAdvantageOptions(advantage_options, &ro.advantages); s != RRT_OK) return s;
    }
    auto prompts = ParsePrompts(std::string_view(messages_json, length));
    if (!prompts.ok()) return FromStatus(prompts.status());
    std::vector<std::string> gold_list;
    for (size_t i = 0; i < gold_count; ++i) {
      RRT_CHECK_ARG(golds[i] != nullptr, "rrt_grpo_rollout: NULL gold");
      gold_list.emplace_back(golds[i]);
    }
    auto rewards = reasonrt::grpo::RewardSet::Parse(reward_spec);
    if (!rewards.ok()) return FromStatus(rewards.status());
    auto batch = reasonrt::grpo::Rollout(*model->generator, *prompts, gold_list, *rewards, ro);
    if (!batch.ok()) return FromStatus(batch.status());
    auto r = std::make_unique<rrt_rollout>();
    r->batch = std::move(*batch);
    Register(r.get());
    *out = r.release();
    return RRT_OK;
  });
}

rrt_status rrt_rollout_get(const rrt_rollout* rollout, rrt_rollout_arrays* arrays) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(rollout, "rollout");
    RRT_CHECK_ARG(arrays != nullptr, "arrays is NULL");
    RRT_CHECK_STRUCT(arrays, rrt_rollout_arrays);
    const auto& b = rollout->batch;
    arrays->batch = b.size();
    arrays->length = b.max_length;
    arrays->functions = static_cast<int64_t>(b.reward_names.size());
    arrays->prompt_index = b.prompt_of.data();
    arrays->completion_tokens = b.completion_tokens.data();
    arrays->old_logprobs = b.old_logprobs.data();
    arrays->mask = b.mask.data();
    arrays->truncated = b.truncated.data();
    arrays->rewards = b.rewards.data();
    arrays->advantages = b.advantages.data();
    return RRT_OK;
  });
}

rrt_status rrt_rollout_completion(const rrt_rollout* rollout, int64_t row, const char** text, size_t* length) {
  return Guard([&]() -> rrt_status {
    RRT_CHECK_HANDLE(rollout, "rollout");
    RRT_CHECK_ARG(text && length, "rrt_rollout_completion: NULL argument");
    RRT_CHECK_ARG(row >= 0 && row < rollout->batch.size(), "rrt_rollout_completion: row out of range");
    *text = rollout->batch.completions[row].c_str();
    *length = rollout->batch.completions[row].size();
    return RRT_OK;
  });
}

void rrt_rollout_destroy(rrt_rollout* rollout) {
  if (rollout == nullptr || !Unregister(rollout)) return;
  delete rollout;
}

}  // extern "C"
