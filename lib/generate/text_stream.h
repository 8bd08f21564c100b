// lib/generate/text_stream.h: the text side of generation: splitting thinking from the
// answer, and holding back text that may be the start of a stop string.
#ifndef REASONRT_LIB_GENERATE_TEXT_STREAM_H_
#define REASONRT_LIB_GENERATE_TEXT_STREAM_H_

#include <string>
#include <string_view>
#include <vector>

#include "reasonrt/generate.h"

namespace reasonrt::gen {

struct Piece {
  Channel channel;
  std::string text;
};

// Splits generated text at "<think>" and "</think>", whether a tag comes as one token or
// in pieces. Starts in thinking when the prompt opened the block; otherwise the output
// may open it itself (leading whitespace aside) or never think. The tags are not part of
// either channel; each channel's leading whitespace is dropped.
class ReasoningSplitter {
 public:
  explicit ReasoningSplitter(bool start_in_thinking)
      : state_(start_in_thinking ? State::kThinking : State::kStart) {}

  void Feed(std::string_view text, std::vector<Piece>* out);
  void Finish(std::vector<Piece>* out);  // whatever was held back
  bool thinking() const { return state_ == State::kThinking; }
  bool answering() const { return state_ == State::kAnswer; }

 private:
  enum class State { kStart, kThinking, kAnswer };
  void Emit(Channel channel, std::string_view text, std::vector<Piece>* out);
  State state_;
  std::string pending_;
  bool channel_start_ = true;  // no visible text in the current channel yet
};

// Finds stop strings in a stream of text. Feed returns the text that can be shown: it
// holds back a tail that may begin a stop string, and at a stop returns the text before it.
class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string Feed(std::string_view text, bool* stopped);
  std::string Flush();

 private:
  std::vector<std::string> stops_;
  std::string pending_;
};

// Whether `text` ends with "<think>" (trailing whitespace aside): the model starts thinking.
bool PromptOpensThinking(std::string_view text);

}  // namespace reasonrt::gen

#endif  // REASONRT_LIB_GENERATE_TEXT_STREAM_H_
