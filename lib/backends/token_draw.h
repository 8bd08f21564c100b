// lib/backends/token_draw.h: a TokenDraw (reasonrt/backend.h) on the host, in passes over
// the row (SIMD, token_draw_kernels.h): the default of Backend::SampleTokens, which the
// cpu backend runs on its threads and the generation loop's Sampler calls directly.
#ifndef REASONRT_LIB_BACKENDS_TOKEN_DRAW_H_
#define REASONRT_LIB_BACKENDS_TOKEN_DRAW_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/backend.h"

namespace reasonrt {

// OK when `draw` is valid for a row of `vocab` logits; otherwise InvalidArgument, its
// message starting with `where` and naming the field or edit at fault.
absl::Status CheckTokenDraw(const TokenDraw& draw, int64_t vocab, std::string_view where);

// The token `draw` gives from `logits` (one row, host memory; draw checked). InvalidArgument
// for NaN or +inf in the row, or when no token is left to draw.
absl::StatusOr<DrawnToken> DrawTokenOnHost(absl::Span<const float> logits, const TokenDraw& draw);

// Row `row` of logits [rows, vocab] (f32, host memory) drawn into *out, as DrawTokenOnHost;
// its errors name the row ("SampleTokens: row r: ...").
absl::Status DrawRowOnHost(const TensorView& logits, int64_t row, const TokenDraw& draw,
                           DrawnToken* out);

// log_softmax(logits * inv_t)[token] of a row as given (host memory), its max and sum of
// exponentials taken once, on the first call, for every token asked after.
class RawLogProb {
 public:
  RawLogProb(absl::Span<const float> logits, float inv_t) : logits_(logits), inv_t_(inv_t) {}
  float operator()(int32_t token);

 private:
  absl::Span<const float> logits_;
  float inv_t_;
  float offset_ = 0;
  double z_ = -1;
};

}  // namespace reasonrt

#endif  // REASONRT_LIB_BACKENDS_TOKEN_DRAW_H_
