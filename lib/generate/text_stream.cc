#include "lib/generate/text_stream.h"

#include <algorithm>

namespace reasonrt::gen {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// Length of the longest suffix of `text` that is a proper prefix of `tag`.
size_t PartialTagSuffix(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

bool PromptOpensThinking(std::string_view text) {
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text.size() >= kOpen.size() && text.substr(text.size() - kOpen.size()) == kOpen;
}

void ReasoningSplitter::Emit(Channel channel, std::string_view text, std::vector<Piece>* out) {
  if (channel_start_) {
    while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
    if (text.empty()) return;
    channel_start_ = false;
  }
  if (!out->empty() && out->back().channel == channel) {
    out->back().text.append(text);
  } else {
    out->push_back({channel, std::string(text)});
  }
}

void ReasoningSplitter::Feed(std::string_view text, std::vector<Piece>* out) {
  pending_.append(text);
  while (true) {
    if (state_ == State::kStart) {
      size_t i = 0;
      while (i < pending_.size() && IsSpace(pending_[i])) ++i;
      const std::string_view rest = std::string_view(pending_).substr(i);
      if (rest.substr(0, kOpen.size()) == kOpen) {
        pending_.erase(0, i + kOpen.size());
        state_ = State::kThinking;
        channel_start_ = true;
        continue;
      }
      if (rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;  // maybe "<think>"
      state_ = State::kAnswer;
      channel_start_ = true;
      continue;
    }
    if (state_ == State::kThinking) {
      const size_t close = pending_.find(kClose);
      if (close != std::string::npos) {
        Emit(Channel::kThinking, std::string_view(pending_).substr(0, close), out);
        pending_.erase(0, close + kClose.size());
        state_ = State::kAnswer;
        channel_start_ = true;
        continue;
      }
      const size_t hold = PartialTagSuffix(pending_, kClose);
      Emit(Channel::kThinking, std::string_view(pending_).substr(0, pending_.size() - hold), out);
      pending_.erase(0, pending_.size() - hold);
      return;
    }
    Emit(Channel::kAnswer, pending_, out);
    pending_.clear();
    return;
  }
}

void ReasoningSplitter::Finish(std::vector<Piece>* out) {
  Emit(state_ == State::kThinking ? Channel::kThinking : Channel::kAnswer, pending_, out);
  pending_.clear();
}

std::string StopMatcher::Feed(std::string_view text, bool* stopped) {
  *stopped = false;
  pending_.append(text);
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    first = std::min(first, pending_.find(s));
  }
  if (first != std::string::npos) {
    *stopped = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  size_t hold = 0;
  for (const std::string& s : stops_) {
    if (!s.empty()) hold = std::max(hold, PartialTagSuffix(pending_, s));
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out = std::move(pending_);
  pending_.clear();
  return out;
}

}  // namespace reasonrt::gen
