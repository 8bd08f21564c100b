#include "lib/runtime/kv_cache.h"

#include "lib/core/status_macros.h"
#include "lib/core/strings.h"

namespace reasonrt {

absl::StatusOr<std::unique_ptr<PagedKvCache>> PagedKvCache::Create(Backend& backend,
                                                                   const KvCacheShape& shape,
                                                                   int64_t capacity_tokens) {
  if (capacity_tokens <= 0) {
    return absl::InvalidArgumentError(StrCat("KV cache capacity must be positive, got ", capacity_tokens));
  }
  if (shape.dtype != DType::kF32 && shape.dtype != DType::kBF16) {
    return absl::InvalidArgumentError(StrCat("KV cache dtype must be f32 or bf16, not ", DTypeName(shape.dtype)));
  }
  const int64_t blocks = (capacity_tokens + kKvBlockSize - 1) / kKvBlockSize;
  if (blocks > (int64_t{1} << 30)) {
    return absl::ResourceExhaustedError(StrCat("KV cache of ", capacity_tokens, " tokens is too large"));
  }
  auto cache = std::unique_ptr<PagedKvCache>(new PagedKvCache(backend));
  for (int64_t l = 0; l < shape.layers; ++l) {
    PagedKvLayer layer;
    RRT_ASSIGN_OR_RETURN(layer.k, backend.Allocate(shape.dtype, {blocks, kKvBlockSize, shape.kv_heads, shape.k_dim}));
    if (shape.v_dim > 0) {
      RRT_ASSIGN_OR_RETURN(layer.v, backend.Allocate(shape.dtype, {blocks, kKvBlockSize, shape.kv_heads, shape.v_dim}));
    }
    cache->layers_.push_back(std::move(layer));
  }
  cache->refcount_.assign(blocks, 0);
  for (int64_t b = blocks - 1; b >= 0; --b) cache->free_.push_back(static_cast<int32_t>(b));
  return cache;
}

int64_t PagedKvCache::Length(int32_t seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.length;
}

int64_t PagedKvCache::BlocksNeeded(int32_t seq, int64_t count) const {
  auto it = seqs_.find(seq);
  const int64_t length = it == seqs_.end() ? 0 : it->second.length;
  const int64_t have = it == seqs_.end() ? 0 : static_cast<int64_t>(it->second.blocks.size());
  const int64_t need = (length + count + kKvBlockSize - 1) / kKvBlockSize;
  int64_t blocks = std::max<int64_t>(0, need - have);
  // Writing into a shared partial last block needs a private copy of it.
  if (count > 0 && length % kKvBlockSize != 0 && refcount_[it->second.blocks.back()] > 1) ++blocks;
  return blocks;
}

absl::Status PagedKvCache::Append(int32_t seq, int64_t count) {
  const int64_t needed = BlocksNeeded(seq, count);
  if (needed > free_blocks()) {
    return absl::ResourceExhaustedError(
        StrCat("KV cache is full: sequence ", seq, " needs ", needed, " more blocks of ",
               kKvBlockSize, " tokens, ", free_blocks(), " are free (capacity ",
               total_blocks() * kKvBlockSize, " tokens)"));
  }
  Sequence& s = seqs_[seq];
  if (count > 0 && s.length % kKvBlockSize != 0 && refcount_[s.blocks.back()] > 1) {
    const int32_t copy = free_.back();
    free_.pop_back();
    refcount_[copy] = 1;
    RRT_RETURN_IF_ERROR(CopyBlock(s.blocks.back(), copy));
    Release(s.blocks.back());
    s.blocks.back() = copy;
  }
  s.length += count;
  while (static_cast<int64_t>(s.blocks.size()) * kKvBlockSize < s.length) {
    const int32_t b = free_.back();
    free_.pop_back();
    refcount_[b] = 1;
    s.blocks.push_back(b);
  }
  return absl::OkStatus();
}

void PagedKvCache::Truncate(int32_t seq, int64_t length) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end() || length >= it->second.length) return;
  Sequence& s = it->second;
  s.length = std::max<int64_t>(0, length);
  while (static_cast<int64_t>(s.blocks.size()) * kKvBlockSize >= s.length + kKvBlockSize) {
    Release(s.blocks.back());
    s.blocks.pop_back();
  }
  if (s.length == 0) Remove(seq);
}

absl::Status PagedKvCache::Fork(int32_t src, int32_t dst) {
  auto it = seqs_.find(src);
  if (it == seqs_.end()) return absl::InvalidArgumentError(StrCat("no sequence ", src, " to fork"));
  if (seqs_.count(dst)) return absl::InvalidArgumentError(StrCat("sequence ", dst, " already exists"));
  for (int32_t b : it->second.blocks) ++refcount_[b];
  seqs_[dst] = it->second;
  return absl::OkStatus();
}

void PagedKvCache::Remove(int32_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  for (int32_t b : it->second.blocks) Release(b);
  seqs_.erase(it);
}

absl::Span<const int32_t> PagedKvCache::BlockTable(int32_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.blocks;
}

int64_t PagedKvCache::Slot(int32_t seq, int64_t pos) const {
  const Sequence& s = seqs_.at(seq);
  return static_cast<int64_t>(s.blocks[pos / kKvBlockSize]) * kKvBlockSize + pos % kKvBlockSize;
}

void PagedKvCache::Release(int32_t block) {
  if (--refcount_[block] == 0) free_.push_back(block);
}

absl::Status PagedKvCache::CopyBlock(int32_t from, int32_t to) {
  for (const PagedKvLayer& layer : layers_) {
    for (const TensorView* t : {&layer.k, &layer.v}) {
      if (t->empty()) continue;
      RRT_ASSIGN_OR_RETURN(TensorView src, t->Select(from));
      RRT_ASSIGN_OR_RETURN(TensorView dst, t->Select(to));
      RRT_RETURN_IF_ERROR(backend_.Copy(src, dst));
    }
  }
  return absl::OkStatus();
}

}  // namespace reasonrt
