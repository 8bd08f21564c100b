// `reasonrt logits --model DIR --tokens 1,2,3 --out FILE.npy`: all-position logits of one
// sequence, as a float32 .npy of shape [T, vocab], for comparison with other implementations.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "examples/cli/commands.h"
#include "lib/core/strings.h"
#include "reasonrt/model.h"

namespace reasonrt::cli {
namespace {

// A little-endian .npy of f32 ('<f4') or i32 ('<i4') values of the given shape.
template <typename T>
absl::Status WriteNpy(const std::string& path, const std::vector<T>& values,
                      const std::vector<int64_t>& shape) {
  static_assert(sizeof(T) == 4);
  std::string dims;
  for (int64_t d : shape) dims += StrCat(d, ", ");
  std::string header = StrCat("{'descr': '", std::is_same_v<T, float> ? "<f4" : "<i4",
                              "', 'fortran_order': False, 'shape': (", dims, "), }");
  // Magic (6) + version (2) + length (2) + header, padded with spaces to 64 bytes, '\n' last.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return absl::PermissionDeniedError(StrCat(path, ": cannot write"));
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(values.data()),
            static_cast<std::streamsize>(values.size() * sizeof(T)));
  return out ? absl::OkStatus() : absl::DataLossError(StrCat(path, ": write failed"));
}

}  // namespace

int RunLogits(const LogitsArgs& args) {
  std::vector<int32_t> tokens;
  for (absl::string_view piece : absl::StrSplit(args.tokens, ',', absl::SkipWhitespace())) {
    int32_t id;
    if (!absl::SimpleAtoi(piece, &id)) {
      return Fail(absl::InvalidArgumentError(StrCat("--tokens: '", ToStd(piece), "' is not an integer")));
    }
    tokens.push_back(id);
  }
  if (tokens.empty()) return Fail(absl::InvalidArgumentError("--tokens is empty"));
  LoadOptions lo;
  lo.backend = args.backend;
  lo.num_threads = args.threads;
  lo.exact_activations = args.exact;
  auto model = Model::Load(args.model, lo);
  if (!model.ok()) return Fail(model.status());
  SessionOptions so;
  so.max_tokens = static_cast<int64_t>(tokens.size());
  auto session = (*model)->NewSession(so);
  if (!session.ok()) return Fail(session.status());
  (*session)->ResetRoutingStats(/*trace=*/!args.routing_out.empty());
  const int64_t vocab = (*model)->config().vocab_size;
  std::vector<float> all;
  const auto start = std::chrono::steady_clock::now();
  // One prefill of all tokens, or one token at a time (--decode) to check the cache.
  const size_t step = args.decode ? 1 : tokens.size();
  for (size_t begin = 0; begin < tokens.size(); begin += step) {
    Batch batch;
    for (size_t i = begin; i < std::min(tokens.size(), begin + step); ++i) {
      batch.Add(tokens[i], static_cast<int32_t>(i), 0, true);
    }
    auto logits = (*session)->Forward(batch);
    if (!logits.ok()) return Fail(logits.status());
    all.insert(all.end(), logits->values.begin(), logits->values.end());
  }
  const absl::Status s = WriteNpy(args.out, all, {static_cast<int64_t>(tokens.size()), vocab});
  if (!s.ok()) return Fail(s);
  if (!args.routing_out.empty()) {
    // The trace as [moe_layers, T, k] expert ids, whatever order the passes recorded it in.
    const RoutingStats r = (*session)->routing_stats();
    if (r.layers.empty()) return Fail(absl::FailedPreconditionError("--routing: the model has no routed experts"));
    const int64_t n = static_cast<int64_t>(tokens.size());
    std::vector<int32_t> ids(r.layers.size() * static_cast<size_t>(n * r.k), -1);
    for (size_t e = 0; e < r.trace_size(); ++e) {
      const size_t row = static_cast<size_t>(
          std::lower_bound(r.layers.begin(), r.layers.end(), r.trace_layers[e]) - r.layers.begin());
      const size_t at = (row * static_cast<size_t>(n) + static_cast<size_t>(r.trace_positions[e])) * r.k;
      std::copy_n(r.trace_experts.begin() + static_cast<std::ptrdiff_t>(e * r.k), r.k, ids.begin() + at);
    }
    const absl::Status rs = WriteNpy(args.routing_out, ids, {static_cast<int64_t>(r.layers.size()), n, r.k});
    if (!rs.ok()) return Fail(rs);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s: [%zu, %lld] logits in %.2f s (%s backend)\n", args.out.c_str(),
              tokens.size(), static_cast<long long>(vocab), seconds,
              std::string((*model)->backend_name()).c_str());
  // The most likely next tokens after the last position.
  const float* last = all.data() + (tokens.size() - 1) * vocab;
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  for (int32_t i = 0; i < vocab; ++i) order[i] = i;
  std::partial_sort(order.begin(), order.begin() + 5, order.end(),
                    [last](int32_t a, int32_t b) { return last[a] > last[b]; });
  std::printf("next-token top 5 after position %zu:", tokens.size() - 1);
  for (int i = 0; i < 5; ++i) std::printf(" %d (%.3f)", order[i], last[order[i]]);
  std::printf("\n");
  return 0;
}

}  // namespace reasonrt::cli
