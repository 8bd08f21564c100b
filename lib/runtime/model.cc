// Model::Load and the Session implementation.
#include "reasonrt/model.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>

#include "lib/backends/token_draw.h"
#include "lib/core/status_macros.h"
#include "lib/core/strings.h"
#include "lib/core/thread_pool.h"
#include "lib/models/architecture.h"
#include "lib/models/tensor_inventory.h"
#include "lib/runtime/kv_cache.h"
#include "reasonrt/backend.h"

namespace reasonrt {

struct Model::Impl {
  ModelConfig config;
  std::unique_ptr<Checkpoint> checkpoint;
  // Rebuilt by UpdateWeights (an architecture may hold derived copies of weights); read
  // under `weights_mu` shared, replaced under it exclusive.
  mutable std::unique_ptr<ArchitectureModel> arch;
  mutable std::shared_mutex weights_mu;
  LoadOptions options;
  std::string backend_name;

  // A new instance of the backend (`name`: the resolved one once loaded) with the load
  // options' threads and exactness.
  absl::StatusOr<std::unique_ptr<Backend>> NewBackend(std::string_view name) const {
    BackendOptions bo;
    bo.num_threads = options.num_threads;
    bo.exact_activations = options.exact_activations;
    return CreateBackend(name, bo);
  }
};

namespace {

// SampleKept's spans agree in length and its rows are among the `kept` rows.
absl::Status CheckKeptRows(absl::Span<const int32_t> rows, size_t draws, size_t out, int64_t kept) {
  if (rows.size() != draws || rows.size() != out) {
    return absl::InvalidArgumentError(StrCat("SampleKept: ", rows.size(), " rows, ", draws,
                                             " draws and room for ", out, " tokens"));
  }
  for (int32_t r : rows) {
    if (r < 0 || r >= kept) {
      return absl::InvalidArgumentError(
          StrCat("SampleKept: row ", r, " is not one of the ", kept, " kept rows"));
    }
  }
  return absl::OkStatus();
}

class SessionImpl final : public Session {
 public:
  SessionImpl(std::shared_ptr<const Model::Impl> model, std::unique_ptr<Backend> backend,
              std::unique_ptr<PagedKvCache> cache)
      : model_holder_(std::move(model)), model_(*model_holder_), backend_(std::move(backend)), cache_(std::move(cache)) {}

  absl::StatusOr<Logits> Forward(const Batch& batch) override {
    Logits out;
    RRT_RETURN_IF_ERROR(Run(batch, [&](const Plan& plan) -> absl::StatusOr<TensorView> {
      out.vocab_size = model_.config.vocab_size;
      out.batch_rows = plan.logit_batch_rows;
      const int64_t rows = static_cast<int64_t>(plan.forward.logit_rows.size());
      out.values.resize(static_cast<size_t>(rows * out.vocab_size));
      return TensorView::Borrow(out.values.data(), DType::kF32, {rows, out.vocab_size});
    }));
    return out;
  }

  absl::StatusOr<int64_t> ForwardKeepLogits(const Batch& batch) override {
    kept_ = TensorView();
    int64_t rows = 0;
    TensorView kept;
    RRT_RETURN_IF_ERROR(Run(batch, [&](const Plan& plan) -> absl::StatusOr<TensorView> {
      rows = static_cast<int64_t>(plan.forward.logit_rows.size());
      if (rows == 0) return TensorView();
      RRT_ASSIGN_OR_RETURN(kept, backend_->Allocate(DType::kF32, {rows, model_.config.vocab_size}));
      return kept;
    }));
    kept_ = kept;
    return rows;
  }

  absl::Status SampleKept(absl::Span<const int32_t> rows, absl::Span<const TokenDraw> draws,
                          absl::Span<DrawnToken> out) override {
    const int64_t kept = kept_.empty() ? 0 : kept_.dim(0);
    RRT_RETURN_IF_ERROR(CheckKeptRows(rows, draws.size(), out.size(), kept));
    if (rows.empty()) return absl::OkStatus();
    bool in_order = static_cast<int64_t>(rows.size()) == kept;
    for (size_t i = 0; i < rows.size(); ++i) in_order &= rows[i] == static_cast<int32_t>(i);
    if (in_order) return backend_->SampleTokens(kept_, draws, out);
    // Other rows, or rows twice: gathered first (on the backend's device).
    RRT_ASSIGN_OR_RETURN(
        TensorView picked,
        backend_->Allocate(DType::kF32, {static_cast<int64_t>(rows.size()), kept_.dim(1)}));
    RRT_RETURN_IF_ERROR(backend_->Embedding(kept_, rows, picked));
    return backend_->SampleTokens(picked, draws, out);
  }

  RoutingStats routing_stats() const override { return routing_; }
  void ResetRoutingStats(bool trace) override {
    routing_ = model_.arch->NewRoutingStats();
    trace_routing_ = trace && !routing_.layers.empty();
  }

  int64_t SequenceLength(int32_t seq) const override { return cache_->Length(seq); }
  void RemoveSequence(int32_t seq) override { cache_->Remove(seq); }
  absl::Status ForkSequence(int32_t src, int32_t dst) override { return cache_->Fork(src, dst); }
  int64_t FreeTokens() const override { return cache_->free_blocks() * kKvBlockSize; }

 private:
  struct Plan {
    ForwardPlan forward;
    std::vector<int32_t> row_seq;          // sequence of each planned row
    std::vector<int32_t> sequence_ids;     // sequence of each forward.sequences entry
    std::vector<std::pair<int32_t, int64_t>> counts;  // tokens per sequence
    std::vector<int32_t> logit_batch_rows;
  };

  // Validates the batch and groups its rows by sequence (stable), keeping each
  // sequence's rows in batch order.
  absl::StatusOr<Plan> MakePlan(const Batch& b) const {
    const size_t n = b.tokens.size();
    if (n == 0) return absl::InvalidArgumentError("Forward: empty batch");
    if (b.positions.size() != n || b.seq_ids.size() != n || b.want_logits.size() != n) {
      return absl::InvalidArgumentError(StrCat("Forward: batch has ", n, " tokens but ", b.positions.size(),
                                               " positions, ", b.seq_ids.size(), " sequence ids and ",
                                               b.want_logits.size(), " logits flags"));
    }
    const int64_t vocab = model_.config.vocab_size;
    std::map<int32_t, std::vector<int32_t>> rows_of;  // seq -> batch rows
    for (size_t r = 0; r < n; ++r) {
      if (b.tokens[r] < 0 || b.tokens[r] >= vocab) {
        return absl::InvalidArgumentError(StrCat("Forward: token ", b.tokens[r], " at row ", r,
                                                 " is outside the vocabulary [0, ", vocab, ")"));
      }
      if (b.seq_ids[r] < 0) return absl::InvalidArgumentError(StrCat("Forward: negative sequence id at row ", r));
      rows_of[b.seq_ids[r]].push_back(static_cast<int32_t>(r));
    }
    Plan plan;
    std::vector<int32_t> planned_row_of(n);
    for (const auto& [seq, rows] : rows_of) {
      const int64_t length = cache_->Length(seq);
      AttentionSequence s;
      s.query_begin = static_cast<int64_t>(plan.forward.tokens.size());
      s.query_count = static_cast<int64_t>(rows.size());
      s.first_position = length;
      for (size_t i = 0; i < rows.size(); ++i) {
        const int32_t r = rows[i];
        if (b.positions[r] != length + static_cast<int64_t>(i)) {
          return absl::InvalidArgumentError(StrCat(
              "Forward: row ", r, " of sequence ", seq, " has position ", b.positions[r],
              ", expected ", length + static_cast<int64_t>(i), " (sequences grow one position at a time)"));
        }
        if (b.positions[r] >= model_.config.max_position_embeddings) {
          return absl::OutOfRangeError(StrCat("Forward: position ", b.positions[r],
                                              " is past max_position_embeddings (",
                                              model_.config.max_position_embeddings, ")"));
        }
        planned_row_of[r] = static_cast<int32_t>(plan.forward.tokens.size());
        plan.forward.tokens.push_back(b.tokens[r]);
        plan.forward.positions.push_back(b.positions[r]);
        plan.row_seq.push_back(seq);
      }
      plan.forward.sequences.push_back(s);
      plan.sequence_ids.push_back(seq);
      plan.counts.emplace_back(seq, static_cast<int64_t>(rows.size()));
    }
    for (size_t r = 0; r < n; ++r) {
      if (b.want_logits[r]) {
        plan.forward.logit_rows.push_back(planned_row_of[r]);
        plan.logit_batch_rows.push_back(static_cast<int32_t>(r));
      }
    }
    return plan;
  }

  // A forward pass over `batch`, its logits written where `logits_for(plan)` says (an
  // empty view when the batch wants none). On error the sequences are as they were.
  absl::Status Run(const Batch& batch,
                   const std::function<absl::StatusOr<TensorView>(const Plan&)>& logits_for) {
    std::shared_lock<std::shared_mutex> weights(model_.weights_mu);
    RRT_ASSIGN_OR_RETURN(Plan plan, MakePlan(batch));
    RRT_ASSIGN_OR_RETURN(TensorView logits, logits_for(plan));
    // Grow every sequence's cache first; undo all of it if any part fails.
    std::map<int32_t, int64_t> old_lengths;
    for (const auto& [seq, count] : plan.counts) old_lengths[seq] = cache_->Length(seq);
    int64_t blocks = 0;
    for (const auto& [seq, count] : plan.counts) blocks += cache_->BlocksNeeded(seq, count);
    if (blocks > cache_->free_blocks()) {
      return absl::ResourceExhaustedError(
          StrCat("KV cache is full: the batch needs ", blocks, " more blocks of ", kKvBlockSize,
                 " tokens, ", cache_->free_blocks(), " are free (capacity ",
                 cache_->total_blocks() * kKvBlockSize, " tokens)"));
    }
    auto rollback = [&] {
      for (const auto& [seq, length] : old_lengths) {
        if (length == 0) {
          cache_->Remove(seq);
        } else {
          cache_->Truncate(seq, length);
        }
      }
    };
    for (const auto& [seq, count] : plan.counts) {
      const absl::Status s = cache_->Append(seq, count);
      if (!s.ok()) {
        rollback();
        return s;
      }
    }
    ForwardPlan& fp = plan.forward;
    for (size_t r = 0; r < fp.tokens.size(); ++r) {
      fp.slots.push_back(cache_->Slot(plan.row_seq[r], fp.positions[r]));
    }
    for (size_t i = 0; i < fp.sequences.size(); ++i) {
      fp.sequences[i].block_table = cache_->BlockTable(plan.sequence_ids[i]);
    }
    fp.seq_ids = plan.row_seq;
    RoutingStats pass_routing;
    if (!routing_.layers.empty()) {
      pass_routing = model_.arch->NewRoutingStats();
      fp.routing = &pass_routing;
      fp.routing_trace = trace_routing_;
    }
    const absl::Status s = model_.arch->Forward(*backend_, *cache_, fp, logits);
    if (!s.ok()) {
      rollback();
      return s;
    }
    if (fp.routing != nullptr) MergeRouting(pass_routing);
    return absl::OkStatus();
  }

  void MergeRouting(RoutingStats& pass) {
    for (size_t i = 0; i < routing_.load.size(); ++i) routing_.load[i] += pass.load[i];
    routing_.tokens += pass.tokens;
    auto append = [](auto& to, auto& from) { to.insert(to.end(), from.begin(), from.end()); };
    append(routing_.trace_seq_ids, pass.trace_seq_ids);
    append(routing_.trace_positions, pass.trace_positions);
    append(routing_.trace_layers, pass.trace_layers);
    append(routing_.trace_experts, pass.trace_experts);
    append(routing_.trace_weights, pass.trace_weights);
  }

  std::shared_ptr<const Model::Impl> model_holder_;
  const Model::Impl& model_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<PagedKvCache> cache_;
  RoutingStats routing_ = model_.arch->NewRoutingStats();
  bool trace_routing_ = false;
  TensorView kept_;  // ForwardKeepLogits' logits (on the backend's device)
};

}  // namespace

Session::~Session() = default;

absl::StatusOr<int64_t> Session::ForwardKeepLogits(const Batch& batch) {
  kept_logits_.reset();
  RRT_ASSIGN_OR_RETURN(Logits logits, Forward(batch));
  kept_logits_ = std::make_shared<Logits>(std::move(logits));
  return static_cast<int64_t>(kept_logits_->batch_rows.size());
}

absl::Status Session::SampleKept(absl::Span<const int32_t> rows, absl::Span<const TokenDraw> draws,
                                 absl::Span<DrawnToken> out) {
  const int64_t kept =
      kept_logits_ == nullptr ? 0 : static_cast<int64_t>(kept_logits_->batch_rows.size());
  RRT_RETURN_IF_ERROR(CheckKeptRows(rows, draws.size(), out.size(), kept));
  for (size_t i = 0; i < rows.size(); ++i) {
    RRT_RETURN_IF_ERROR(
        CheckTokenDraw(draws[i], kept_logits_->vocab_size, StrCat("SampleKept: draw ", i)));
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::StatusOr<DrawnToken> t =
        DrawTokenOnHost(kept_logits_->Row(static_cast<size_t>(rows[i])), draws[i]);
    if (!t.ok())
      return absl::InvalidArgumentError(
          StrCat("SampleKept: row ", rows[i], ": ", t.status().message()));
    out[i] = *t;
  }
  return absl::OkStatus();
}
RoutingStats Session::routing_stats() const { return {}; }
void Session::ResetRoutingStats(bool) {}

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const ModelConfig& Model::config() const { return impl_->config; }
std::string_view Model::backend_name() const { return impl_->backend_name; }

int Model::num_threads() const {
  return impl_->options.num_threads > 0 ? impl_->options.num_threads : AvailableCores();
}

namespace {

// Touches every page of the weights the model uses (not the MTP layers), reporting
// progress; a page-cache read ahead for mapped files, a no-op pass for in-memory ones.
absl::Status WarmWeights(const ModelConfig& config, const Checkpoint& checkpoint,
                         const std::function<bool(float)>& progress) {
  std::vector<TensorView> views;
  uint64_t total = 0;
  InventoryOptions inventory;
  inventory.include_mtp = false;
  for (const TensorSpec& spec : ExpectedTensors(config, inventory)) {
    auto view = checkpoint.Get(spec.name);
    if (!view.ok()) continue;
    total += static_cast<uint64_t>(view->byte_size());
    views.push_back(*view);
  }
  if (!progress(0.0f)) return absl::CancelledError("model loading was cancelled");
  constexpr uint64_t kReportEvery = 32u << 20;
  uint64_t done = 0, next_report = kReportEvery;
  volatile uint8_t sink = 0;
  for (const TensorView& v : views) {
    const auto* bytes = static_cast<const uint8_t*>(v.data());
    const uint64_t n = static_cast<uint64_t>(v.byte_size());
    for (uint64_t off = 0; off < n; off += 4096) {
      sink = sink + bytes[off];
      if (done + off >= next_report) {
        next_report += kReportEvery;
        if (!progress(static_cast<float>(double(done + off) / double(total)))) {
          return absl::CancelledError("model loading was cancelled");
        }
      }
    }
    done += n;
  }
  if (!progress(1.0f)) return absl::CancelledError("model loading was cancelled");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path,
                                                   const LoadOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  RRT_ASSIGN_OR_RETURN(impl->config, LoadModelConfig(path));
  RRT_ASSIGN_OR_RETURN(impl->checkpoint, Checkpoint::Open(path, options.weights_in_memory));
  RRT_RETURN_IF_ERROR(CheckInventory(impl->config, *impl->checkpoint, nullptr));
  if (impl->config.is_deepseek()) {
    RRT_ASSIGN_OR_RETURN(impl->arch, CreateDeepseekModel(impl->config, *impl->checkpoint));
  } else {
    RRT_ASSIGN_OR_RETURN(impl->arch, CreateDenseModel(impl->config, *impl->checkpoint));
  }
  if (options.progress) RRT_RETURN_IF_ERROR(WarmWeights(impl->config, *impl->checkpoint, options.progress));
  // Resolve "auto" once so that every session uses the same backend.
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Backend> probe, impl->NewBackend(options.backend));
  impl->backend_name = std::string(probe->name());
  return std::unique_ptr<Model>(new Model(std::shared_ptr<const Impl>(std::move(impl))));
}

namespace {

absl::StatusOr<TensorView> HiddenView(const ModelConfig& c, absl::Span<const float> hidden,
                                      int64_t tokens) {
  if (!c.is_deepseek() || c.n_routed_experts == 0) {
    return absl::FailedPreconditionError(StrCat(ArchitectureName(c.architecture),
                                                " models have no routed experts"));
  }
  if (tokens < 0 || static_cast<int64_t>(hidden.size()) != tokens * c.hidden_size) {
    return absl::InvalidArgumentError(StrCat("hidden states: ", hidden.size(), " values are not ", tokens,
                                             " tokens x hidden_size ", c.hidden_size));
  }
  return TensorView::BorrowReadOnly(hidden.data(), DType::kF32, {tokens, c.hidden_size});
}

}  // namespace

absl::StatusOr<Routing> Model::RouteLayer(int layer, absl::Span<const float> hidden,
                                          int64_t tokens) const {
  RRT_ASSIGN_OR_RETURN(TensorView x, HiddenView(impl_->config, hidden, tokens));
  std::shared_lock<std::shared_mutex> weights(impl_->weights_mu);
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, impl_->NewBackend(impl_->backend_name));
  return impl_->arch->Route(*backend, layer, x);
}

absl::StatusOr<MoeLayerOutput> Model::MoeLayerForward(int layer, absl::Span<const float> hidden,
                                                      int64_t tokens) const {
  RRT_ASSIGN_OR_RETURN(TensorView x, HiddenView(impl_->config, hidden, tokens));
  std::shared_lock<std::shared_mutex> weights(impl_->weights_mu);
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, impl_->NewBackend(impl_->backend_name));
  MoeLayerOutput result;
  result.output.resize(hidden.size());
  RRT_ASSIGN_OR_RETURN(TensorView out, TensorView::Borrow(result.output.data(), DType::kF32,
                                                          {tokens, impl_->config.hidden_size}));
  RRT_RETURN_IF_ERROR(impl_->arch->MoeBlock(*backend, layer, x, out, &result.routing));
  return result;
}

absl::StatusOr<std::vector<int64_t>> Model::WeightShape(std::string_view name) const {
  RRT_ASSIGN_OR_RETURN(TensorView t, impl_->checkpoint->Get(name));
  return std::vector<int64_t>(t.shape().begin(), t.shape().end());
}

absl::Status Model::UpdateWeights(absl::Span<const WeightUpdate> updates) const {
  const Impl& impl = *impl_;  // weights_mu and arch are mutable; the weights are our anonymous memory
  if (!impl.options.weights_in_memory) {
    return absl::FailedPreconditionError(
        "UpdateWeights: the weights are a read-only file mapping; load with weights_in_memory");
  }
  // Check everything first.
  std::vector<TensorView> targets;
  for (const WeightUpdate& u : updates) {
    absl::StatusOr<TensorView> found = impl.checkpoint->Get(u.name);
    if (!found.ok()) return absl::InvalidArgumentError(StrCat("UpdateWeights: ", found.status().message()));
    const TensorView dst = *found;
    const TensorView& v = u.values;
    if (dst.dtype() != DType::kF32 && dst.dtype() != DType::kF16 && dst.dtype() != DType::kBF16) {
      return absl::UnimplementedError(StrCat("UpdateWeights: ", u.name, " is stored as ", DTypeName(dst.dtype()),
                                             "; only f32, f16 and bf16 weights can be updated"));
    }
    if (v.dtype() != DType::kF32 && v.dtype() != DType::kF16 && v.dtype() != DType::kBF16) {
      return absl::InvalidArgumentError(StrCat("UpdateWeights: values for ", u.name, " are ", DTypeName(v.dtype()),
                                               "; give f32, f16 or bf16"));
    }
    if (v.shape() != dst.shape() || !v.is_contiguous() || (v.empty() && v.num_elements() > 0)) {
      return absl::InvalidArgumentError(StrCat("UpdateWeights: values for ", u.name, " are ", v.DebugString(),
                                               ", the weight is ", dst.DebugString(), " (contiguous values needed)"));
    }
    targets.push_back(dst);
  }
  std::unique_lock<std::shared_mutex> lock(impl.weights_mu);
  std::vector<float> f32;
  for (size_t i = 0; i < updates.size(); ++i) {
    const TensorView& v = updates[i].values;
    const size_t n = static_cast<size_t>(v.num_elements());
    // The weights live in this process's private anonymous memory (weights_in_memory).
    void* dst = const_cast<void*>(targets[i].data());
    if (v.dtype() == targets[i].dtype()) {
      std::memmove(dst, v.data(), static_cast<size_t>(v.byte_size()));
      continue;
    }
    f32.resize(n);
    ConvertToF32(v.dtype(), v.data(), f32.data(), n);
    ConvertFromF32(targets[i].dtype(), f32.data(), dst, n);
  }
  InvalidateWeightCopies();  // device backends re-upload what changed
  // Architectures may keep derived copies (DeepSeek's f32 router): rebuild.
  if (impl.config.is_deepseek()) {
    RRT_ASSIGN_OR_RETURN(impl.arch, CreateDeepseekModel(impl.config, *impl.checkpoint));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Session>> Model::NewSession(const SessionOptions& options) const {
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<Backend> backend, impl_->NewBackend(impl_->backend_name));
  RRT_ASSIGN_OR_RETURN(std::unique_ptr<PagedKvCache> cache,
                       PagedKvCache::Create(*backend, impl_->arch->CacheShape(options.kv_dtype),
                                            options.max_tokens));
  return std::unique_ptr<Session>(new SessionImpl(impl_, std::move(backend), std::move(cache)));
}

}  // namespace reasonrt
