#include "lib/tokenizer/bpe.h"

#include <queue>

#include "absl/strings/str_format.h"
#include "lib/core/strings.h"
#include "lib/tokenizer/utf8.h"

namespace reasonrt {

absl::Status Bpe::Init(absl::flat_hash_map<std::string, int32_t> vocab, size_t num_merges,
                       bool ignore_merges, bool byte_fallback, std::string_view source) {
  vocab_ = std::move(vocab);
  ignore_merges_ = ignore_merges;
  byte_fallback_ = byte_fallback;
  source_ = std::string(source);
  merges_.reserve(num_merges);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(absl::StrFormat("<0x%02X>", b));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
    if (byte_fallback_ && byte_ids_[b] < 0) {
      return absl::InvalidArgumentError(StrCat(source, ": byte_fallback without a <0x", absl::StrFormat("%02X", b), "> token"));
    }
  }
  return absl::OkStatus();
}

absl::Status Bpe::AddMerge(std::string_view left, std::string_view right) {
  joined_.assign(left);
  joined_.append(right);
  auto ia = vocab_.find(ToAbsl(left)), ib = vocab_.find(ToAbsl(right)), im = vocab_.find(joined_);
  if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end()) {
    return absl::InvalidArgumentError(StrCat(source_, ": merge ", merges_.size(), " ('", left, "' '", right,
                                             "') uses a token missing from the vocabulary"));
  }
  merges_.emplace(Key(ia->second, ib->second), Merge{static_cast<int32_t>(merges_.size()), im->second});
  return absl::OkStatus();
}

absl::Status Bpe::EncodeWord(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return absl::OkStatus();
  if (ignore_merges_) {
    auto it = vocab_.find(ToAbsl(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return absl::OkStatus();
    }
  }
  // Symbols: one per character, linked in order.
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  std::vector<Symbol> sym;
  sym.reserve(word.size());
  size_t i = 0;
  while (i < word.size()) {
    const size_t begin = i;
    utf8::Next(word, i);
    auto it = vocab_.find(ToAbsl(word.substr(begin, i - begin)));
    if (it != vocab_.end()) {
      sym.push_back({it->second, static_cast<int32_t>(sym.size()) - 1, static_cast<int32_t>(sym.size()) + 1});
    } else if (byte_fallback_) {
      for (size_t k = begin; k < i; ++k) {
        sym.push_back({byte_ids_[static_cast<uint8_t>(word[k])], static_cast<int32_t>(sym.size()) - 1,
                       static_cast<int32_t>(sym.size()) + 1});
      }
    } else {
      return absl::InvalidArgumentError(StrCat("no token for the character '", word.substr(begin, i - begin), "'"));
    }
  }
  const int32_t n = static_cast<int32_t>(sym.size());
  sym.back().next = -1;
  // Candidate merges ordered by (rank, position): the lowest rank first, leftmost on ties.
  struct Candidate {
    int32_t rank, pos, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
  auto push = [&](int32_t pos) {
    if (pos < 0) return;
    const int32_t nx = sym[pos].next;
    if (nx < 0) return;
    auto it = merges_.find(Key(sym[pos].id, sym[nx].id));
    if (it != merges_.end()) heap.push({it->second.rank, pos, sym[pos].id, sym[nx].id});
  };
  for (int32_t p = 0; p + 1 < n; ++p) push(p);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    Symbol& left = sym[c.pos];
    // Stale if either side changed since the candidate was pushed.
    if (left.id != c.left_id || left.next < 0 || sym[left.next].id != c.right_id) continue;
    const int32_t right = left.next;
    left.id = merges_.at(Key(c.left_id, c.right_id)).id;
    left.next = sym[right].next;
    if (left.next >= 0) sym[left.next].prev = c.pos;
    sym[right].id = -1;  // removed
    if (left.prev >= 0) push(left.prev);
    push(c.pos);
  }
  for (int32_t p = 0; p >= 0; p = sym[p].next) out.push_back(sym[p].id);
  return absl::OkStatus();
}

}  // namespace reasonrt
