// lib/runtime/kv_cache.h: the paged KV cache: fixed-size blocks with reference counts,
// per-sequence block tables, copy-on-write of shared partial blocks.
#ifndef REASONRT_LIB_RUNTIME_KV_CACHE_H_
#define REASONRT_LIB_RUNTIME_KV_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "reasonrt/backend.h"

namespace reasonrt {

struct KvCacheShape {
  int64_t layers = 0;
  int64_t kv_heads = 0;
  int64_t k_dim = 0;
  int64_t v_dim = 0;  // 0: keys only (the MLA latent cache)
  DType dtype = DType::kF32;
};

class PagedKvCache {
 public:
  // Capacity is rounded up to whole blocks. ResourceExhausted if memory runs out.
  static absl::StatusOr<std::unique_ptr<PagedKvCache>> Create(Backend& backend,
                                                              const KvCacheShape& shape,
                                                              int64_t capacity_tokens);

  bool HasSequence(int32_t seq) const { return seqs_.count(seq) != 0; }
  int64_t Length(int32_t seq) const;

  // Blocks that Append(seq, count) would take from the pool.
  int64_t BlocksNeeded(int32_t seq, int64_t count) const;

  // Grows `seq` (created if new) by `count` tokens: takes new blocks and privately copies
  // a shared partial last block. ResourceExhausted, with nothing changed, when the pool
  // is short.
  absl::Status Append(int32_t seq, int64_t count);

  // Shrinks `seq` to `length` tokens, freeing whole blocks past it.
  void Truncate(int32_t seq, int64_t length);

  // `dst` shares all of `src`'s blocks.
  absl::Status Fork(int32_t src, int32_t dst);
  void Remove(int32_t seq);

  absl::Span<const int32_t> BlockTable(int32_t seq) const;
  // The cache slot of position `pos` of `seq` (which must be below its length).
  int64_t Slot(int32_t seq, int64_t pos) const;

  const PagedKvLayer& Layer(int64_t layer) const { return layers_[layer]; }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t total_blocks() const { return static_cast<int64_t>(refcount_.size()); }
  int32_t RefCount(int32_t block) const { return refcount_[block]; }

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t length = 0;
  };
  PagedKvCache(Backend& backend) : backend_(backend) {}
  absl::Status CopyBlock(int32_t from, int32_t to);
  void Release(int32_t block);

  Backend& backend_;
  std::vector<PagedKvLayer> layers_;
  std::vector<int32_t> refcount_;
  std::vector<int32_t> free_;  // a stack; lowest ids handed out first
  std::map<int32_t, Sequence> seqs_;
};

}  // namespace reasonrt

#endif  // REASONRT_LIB_RUNTIME_KV_CACHE_H_
