// reasonrt/session.h: a KV cache and the sequences in it; forward passes over batches.
//
// Basic usage:
//
//   std::unique_ptr<reasonrt::Session> session = *model->NewSession({.max_tokens = 4096});
//   reasonrt::Batch prefill;
//   for (int i = 0; i < n; ++i) prefill.Add(prompt[i], /*position=*/i, /*seq=*/0, i == n - 1);
//   absl::StatusOr<reasonrt::Logits> out = session->Forward(prefill);
//   absl::Span<const float> last = out->Row(0);       // logits of the last prompt token
//   reasonrt::Batch step;
//   step.Add(next_token, n, 0, true);                  // decode: one token at position n
//   out = session->Forward(step);
//
// Drawing tokens where the logits are (on a GPU only the tokens come back to the host):
//
//   absl::StatusOr<int64_t> rows = session->ForwardKeepLogits(step);  // 1 row kept
//   reasonrt::TokenDraw draw{.temperature = 0.6f, .top_p = 0.95f, .uniform = 0.42};
//   std::vector<reasonrt::DrawnToken> drawn(1);
//   absl::Status s = session->SampleKept({0}, {draw}, absl::MakeSpan(drawn));
//   // drawn[0].token, drawn[0].logprob
//
// A Session is used by one thread at a time. Sessions of one Model are independent and
// may run on different threads at once.
#ifndef REASONRT_SESSION_H_
#define REASONRT_SESSION_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/backend.h"
#include "reasonrt/dtype.h"
#include "reasonrt/export.h"
#include "reasonrt/moe.h"

namespace reasonrt {

struct SessionOptions {
  // KV-cache capacity in tokens, summed over all sequences (rounded up to whole blocks).
  int64_t max_tokens = 4096;
  // f32 (exact) or bf16 (half the memory).
  DType kv_dtype = DType::kF32;
};

// Tokens of one or more sequences. A sequence's tokens must continue it: its first token
// in the batch sits at the sequence's current length, the next at length + 1, and so on.
// Sequences are created by their first token (at position 0). Rows of different
// sequences may interleave.
struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;
  std::vector<int32_t> seq_ids;
  std::vector<uint8_t> want_logits;  // 1: return logits for this row

  void Add(int32_t token, int32_t position, int32_t seq_id, bool logits) {
    tokens.push_back(token);
    positions.push_back(position);
    seq_ids.push_back(seq_id);
    want_logits.push_back(logits ? 1 : 0);
  }
  size_t size() const { return tokens.size(); }
};

// Logits of the rows a Batch asked for, in batch order.
struct Logits {
  int64_t vocab_size = 0;
  std::vector<int32_t> batch_rows;  // which batch row each logits row belongs to
  std::vector<float> values;        // [batch_rows.size(), vocab_size]
  absl::Span<const float> Row(size_t i) const {
    return absl::MakeConstSpan(values.data() + i * vocab_size, static_cast<size_t>(vocab_size));
  }
};

class RRT_API Session {
 public:
  virtual ~Session();

  // Runs the model over `batch`, appending its tokens to their sequences' caches.
  // InvalidArgument for malformed batches (sizes, token ids, positions that do not
  // continue a sequence); ResourceExhausted when the cache has no room. On error the
  // sequences are left as they were.
  virtual absl::StatusOr<Logits> Forward(const Batch& batch) = 0;

  // (optional) Forward that leaves the logits where the backend computed them (on its
  // device) for SampleKept, instead of returning them; they stay until the session's next
  // ForwardKeepLogits (a Forward in between leaves them). Returns how many rows it kept:
  // those the batch asked for, in batch order. Errors as Forward (which then keeps no
  // rows). The default runs Forward and keeps its logits in host memory.
  virtual absl::StatusOr<int64_t> ForwardKeepLogits(const Batch& batch);

  // (optional) Draws from the kept logits: out[i] from kept row rows[i] as draws[i]
  // directs (Backend::SampleTokens); a row may be drawn from more than once. On a device
  // backend only the tokens and their log-probs come back to the host. InvalidArgument
  // when the spans differ in length, for a row index outside the kept rows, and as
  // SampleTokens. The default draws on the host.
  virtual absl::Status SampleKept(absl::Span<const int32_t> rows, absl::Span<const TokenDraw> draws,
                                  absl::Span<DrawnToken> out);

  // Tokens cached for `seq_id` (0 for an unknown sequence).
  virtual int64_t SequenceLength(int32_t seq_id) const = 0;

  // Drops a sequence and frees its blocks (blocks shared with others stay).
  virtual void RemoveSequence(int32_t seq_id) = 0;

  // Makes `dst_id` a copy of `src_id` that shares its cached blocks; both may then grow
  // independently (a shared partial block is copied on first write). InvalidArgument if
  // src is unknown or dst exists.
  virtual absl::Status ForkSequence(int32_t src_id, int32_t dst_id) = 0;

  // Free cache capacity in tokens (whole free blocks).
  virtual int64_t FreeTokens() const = 0;

  // (MoE models) Which experts the tokens of every Forward went to since the session
  // began or the last ResetRoutingStats: per-layer load, and the per-token trace when
  // enabled. Dense models: no layers. Tokens of a Forward that failed are not counted.
  virtual RoutingStats routing_stats() const;
  // Clears the statistics; `trace` turns the per-token trace on or off.
  virtual void ResetRoutingStats(bool trace = false);

 private:
  std::shared_ptr<Logits> kept_logits_;  // the defaults' kept rows
};

}  // namespace reasonrt

#endif  // REASONRT_SESSION_H_
