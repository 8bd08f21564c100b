#include "lib/backends/token_draw.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lib/backends/token_draw_kernels.h"
#include "lib/core/strings.h"

namespace reasonrt {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

absl::Status Bad(std::string_view where, std::string_view what) {
  return absl::InvalidArgumentError(StrCat(where, ": ", what));
}

// The token at which the best-first walk over `ids` first reaches `target`: by count
// (`prob` null) or by mass (prob[id]); -1 when it never does (rounding). Tokens are binned
// by how far below `top` they lie (1/16 apart, then one bin for everything 16 below):
// whole bins are taken up to the target's bin, and only that bin's tokens are sorted.
template <typename Better>
int32_t Boundary(const std::vector<int32_t>& ids, float top, const std::vector<float>& work,
                 const float* prob, double target, const Better& better) {
  constexpr int kBins = 257;
  auto bin = [&](int32_t id) {
    const float d = (top - work[id]) * 16.0f;
    return d < kBins - 1 ? static_cast<int>(d) : kBins - 1;
  };
  // Four histograms side by side, so that neighbouring tokens' additions do not wait on
  // each other when they land in the same bin.
  const size_t n = ids.size();
  double part[4][kBins] = {};
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const int32_t id = ids[i + j];
      part[j][bin(id)] += prob != nullptr ? prob[id] : 1.0;
    }
  }
  for (; i < n; ++i) part[0][bin(ids[i])] += prob != nullptr ? prob[ids[i]] : 1.0;
  double cum = 0;
  int b = 0;
  for (; b < kBins; ++b) {
    const double weight = (part[0][b] + part[1][b]) + (part[2][b] + part[3][b]);
    if (cum + weight >= target) break;
    cum += weight;
  }
  if (b == kBins) return -1;
  thread_local std::vector<int32_t> members;
  members.clear();
  for (int32_t id : ids) {
    if (bin(id) == b) members.push_back(id);
  }
  std::sort(members.begin(), members.end(), better);
  for (int32_t id : members) {
    cum += prob != nullptr ? prob[id] : 1.0;
    if (cum >= target) return id;
  }
  return -1;
}

}  // namespace

float RawLogProb::operator()(int32_t token) {
  if (z_ < 0) {
    const int64_t n = static_cast<int64_t>(logits_.size());
    // Any offset gives the same value; the largest scaled logit keeps exp() in range.
    offset_ = draw::MaxOf(logits_.data(), n) * inv_t_;
    z_ = draw::SumExp(logits_.data(), n, inv_t_, offset_);
  }
  return static_cast<float>(double(logits_[token] * inv_t_) - double(offset_) - std::log(z_));
}

absl::Status CheckTokenDraw(const TokenDraw& d, int64_t vocab, std::string_view where) {
  if (d.score_token < -1 || d.score_token >= vocab) {
    return Bad(where,
               StrCat("score_token ", d.score_token, " is outside the row [0, ", vocab, ")"));
  }
  if (!d.draw && d.score_token < 0) return Bad(where, "neither draws nor scores a token");
  if (!d.greedy && !(d.temperature >= 1e-3f && d.temperature <= 100)) {
    return Bad(where,
               StrCat("temperature ", d.temperature, " is not in [0.001, 100] (greedy is a flag)"));
  }
  if (d.draw && !d.greedy) {
    if (d.top_k < 0) return Bad(where, StrCat("top_k ", d.top_k, " is negative"));
    if (!(d.top_p > 0 && d.top_p <= 1))
      return Bad(where, StrCat("top_p ", d.top_p, " is not in (0, 1]"));
    if (!(d.min_p >= 0 && d.min_p <= 1))
      return Bad(where, StrCat("min_p ", d.min_p, " is not in [0, 1]"));
    if (!(d.uniform >= 0 && d.uniform < 1))
      return Bad(where, StrCat("uniform ", d.uniform, " is not in [0, 1)"));
  }
  for (size_t i = 0; i < d.edits.size(); ++i) {
    const LogitEdit& e = d.edits[i];
    if (e.token < 0 || e.token >= vocab) {
      return Bad(where, StrCat("edit ", i, " names token ", e.token, ", outside the row [0, ",
                               vocab, ")"));
    }
    if (i > 0 && e.token <= d.edits[i - 1].token) {
      return Bad(where, StrCat("edit ", i, " (token ", e.token, ") does not follow token ",
                               d.edits[i - 1].token,
                               ": edits must be in strictly increasing token order"));
    }
    if (std::isnan(e.bias) || e.bias == std::numeric_limits<float>::infinity()) {
      return Bad(where, StrCat("edit ", i, " (token ", e.token, "): bias ", e.bias,
                               " is not finite or -inf"));
    }
    if (!(e.repetition_penalty > 0) || std::isinf(e.repetition_penalty)) {
      return Bad(where, StrCat("edit ", i, " (token ", e.token, "): repetition_penalty ",
                               e.repetition_penalty, " is not finite and > 0"));
    }
    if (!std::isfinite(e.offset)) {
      return Bad(where,
                 StrCat("edit ", i, " (token ", e.token, "): offset ", e.offset, " is not finite"));
    }
  }
  return absl::OkStatus();
}

// The pipeline, as TokenDraw defines it, in passes over the whole row (SIMD) and work on a
// "pool": the tokens within `depth` of the best, widened until it provably holds every
// kept token.
absl::StatusOr<DrawnToken> DrawTokenOnHost(absl::Span<const float> logits, const TokenDraw& d) {
  const int32_t vocab = static_cast<int32_t>(logits.size());
  if (const int64_t bad = draw::FindNotFinite(logits.data(), vocab); bad >= 0) {
    return absl::InvalidArgumentError(
        StrCat("logits contain ", std::isnan(logits[bad]) ? "NaN" : "+inf", " (token ", bad, ")"));
  }
  const bool greedy = d.greedy;
  RawLogProb raw(logits, greedy ? 1.0f : 1.0f / d.temperature);
  DrawnToken r;
  if (!d.draw) {
    r.score_logprob = raw(d.score_token);
    return r;
  }
  thread_local std::vector<float> work;
  work.assign(logits.begin(), logits.end());
  for (const LogitEdit& e : d.edits) {
    float& w = work[e.token];
    w += e.bias;
    if (e.repetition_penalty != 1.0f)
      w = w > 0 ? w / e.repetition_penalty : w * e.repetition_penalty;
    w += e.offset;
    if (e.banned) w = kNegInf;
  }
  // Edits change the row: its log-probs then come from the row as given, apart.
  const bool processed = !d.edits.empty();

  const float max_logit = greedy ? draw::MaxOf(work.data(), vocab)
                                 : draw::ScaleAndMax(work.data(), vocab, 1.0f / d.temperature);
  if (max_logit == kNegInf)
    return absl::InvalidArgumentError("no token can be sampled: every logit is -inf");
  if (greedy) {
    r.token = static_cast<int32_t>(std::find(work.begin(), work.end(), max_logit) - work.begin());
    r.logprob = raw(r.token);
    if (d.score_token >= 0) r.score_logprob = raw(d.score_token);
    return r;
  }

  auto better = [&](int32_t a, int32_t b) {
    return work[a] > work[b] || (work[a] == work[b] && a < b);
  };
  const bool top_k = d.top_k > 0;
  const bool top_p = d.top_p < 1.0f;
  const double min_p_floor = d.min_p > 0 ? max_logit + std::log(double(d.min_p)) : -HUGE_VAL;
  thread_local std::vector<float> prob;        // exp(work[id] - max_logit), unnormalised
  thread_local std::vector<int32_t> pool;      // ids in increasing order
  thread_local std::vector<int32_t> universe;  // the pool that top-k keeps
  prob.resize(static_cast<size_t>(vocab));
  const double z_all = draw::ExpOf(work.data(), vocab, max_logit, prob.data());
  pool.resize(static_cast<size_t>(vocab));
  // The pool: the tokens within `depth` of the best (every finite one once depth is
  // infinite). With neither top-k nor top-p, everything min-p keeps.
  constexpr float kWhole = std::numeric_limits<float>::infinity();
  float depth = 16.0f;
  if (!top_k && !top_p)
    depth = d.min_p > 0 ? static_cast<float>(-std::log(double(d.min_p))) + 1.0f : kWhole;
  int32_t kth = -1;    // top-k: the k-th best token (kept: it and everything better)
  int32_t cross = -1;  // top-p: the token whose mass crosses top_p (likewise)
  int64_t size = 0;
  while (true) {
    if (depth > 128.0f) depth = kWhole;  // exp(-128) is 0 in f32: nothing left to gain
    const float floor = depth == kWhole ? std::numeric_limits<float>::lowest() : max_logit - depth;
    size = draw::IndicesAtLeast(work.data(), vocab, floor, pool.data());
    const bool whole = depth == kWhole || size == vocab;
    universe.assign(pool.begin(), pool.begin() + size);
    if (top_k) {
      if (d.top_k < size) {
        kth = Boundary(universe, max_logit, work, nullptr, d.top_k, better);
        universe.erase(std::remove_if(universe.begin(), universe.end(),
                                      [&](int32_t id) { return id != kth && better(kth, id); }),
                       universe.end());
      } else if (!whole) {
        depth *= 2;
        continue;
      }
    }
    if (!top_p) break;
    // The mass top-p takes its share of: what top-k kept, or (no top-k) the whole row.
    double z = 0;
    if (top_k) {
      for (int32_t id : universe) z += prob[id];
    } else {
      z = z_all;
    }
    cross = Boundary(universe, max_logit, work, prob.data(), d.top_p * z, better);
    if (cross >= 0) break;
    if (whole || top_k) {  // rounding left the mass short of the target: all of it is kept
      cross = *std::min_element(universe.begin(), universe.end(),
                                [&](int32_t a, int32_t b) { return better(b, a); });
      break;
    }
    depth *= 2;
  }

  // The kept tokens in id order, and the draw.
  auto at_least = [&](int32_t id, int32_t bound) {  // no bound (-1): compares id with itself
    const int32_t b = bound < 0 ? id : bound;
    return (work[id] > work[b]) | ((work[id] == work[b]) & (id <= b));
  };
  int64_t kept = 0;
  double z = 0;
  for (int64_t i = 0; i < size; ++i) {  // without branches: about half may be kept
    const int32_t id = pool[i];
    const bool keep = at_least(id, kth) & at_least(id, cross) & (double(work[id]) >= min_p_floor);
    pool[kept] = id;
    kept += keep;
    z += keep ? prob[id] : 0.0;
  }
  const double u = d.uniform * z;
  double cum = 0;
  int64_t pick = kept - 1;
  for (int64_t i = 0; i < kept; ++i) {
    cum += prob[pool[i]];
    if (u < cum) {
      pick = i;
      break;
    }
  }
  while (prob[pool[pick]] == 0 && pick > 0) --pick;  // never a zero-probability token
  r.token = pool[pick];
  // Unedited logits: work is logits / T and z_all is RawLogProb's own sum, so its value
  // comes without two more passes over the row.
  auto logprob = [&](int32_t token) {
    return processed
               ? raw(token)
               : static_cast<float>(double(work[token]) - double(max_logit) - std::log(z_all));
  };
  r.logprob = logprob(r.token);
  if (d.score_token >= 0) r.score_logprob = logprob(d.score_token);
  r.sampled_logprob = static_cast<float>(std::log(prob[r.token] / z));
  return r;
}

absl::Status DrawRowOnHost(const TensorView& logits, int64_t row, const TokenDraw& draw,
                           DrawnToken* out) {
  const int64_t vocab = logits.dim(1);
  absl::StatusOr<DrawnToken> t = DrawTokenOnHost(
      absl::MakeConstSpan(logits.data_as<float>() + row * vocab, static_cast<size_t>(vocab)), draw);
  if (!t.ok())
    return absl::InvalidArgumentError(
        StrCat("SampleTokens: row ", row, ": ", t.status().message()));
  *out = *t;
  return absl::OkStatus();
}

}  // namespace reasonrt
