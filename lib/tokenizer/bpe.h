// lib/tokenizer/bpe.h: the BPE model: vocabulary, ranked merges, and word encoding in
// O(n log n) (a heap of candidate pairs over a linked list of symbols).
#ifndef REASONRT_LIB_TOKENIZER_BPE_H_
#define REASONRT_LIB_TOKENIZER_BPE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"

namespace reasonrt {

class Bpe {
 public:
  // vocab: token -> id. Then the merges, one AddMerge per (left, right) pair in rank order.
  absl::Status Init(absl::flat_hash_map<std::string, int32_t> vocab, size_t num_merges,
                    bool ignore_merges, bool byte_fallback, std::string_view source);
  // InvalidArgument if a side or the merged token is not in the vocabulary.
  absl::Status AddMerge(std::string_view left, std::string_view right);

  // Appends the ids of one pre-tokenized word (byte-level mapped text) to `out`.
  // InvalidArgument if a character has no token and byte_fallback is off.
  absl::Status EncodeWord(std::string_view word, std::vector<int32_t>& out) const;

  const absl::flat_hash_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  struct Merge {
    int32_t rank;
    int32_t id;
  };
  static uint64_t Key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  absl::flat_hash_map<std::string, int32_t> vocab_;
  absl::flat_hash_map<uint64_t, Merge> merges_;
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  std::string joined_;  // scratch for AddMerge
  std::string source_;
  int32_t byte_ids_[256];  // <0xXX> tokens when byte_fallback
};

}  // namespace reasonrt

#endif  // REASONRT_LIB_TOKENIZER_BPE_H_
