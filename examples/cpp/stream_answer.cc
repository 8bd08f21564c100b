// Streams a reasoning model's thinking (dimmed on a terminal) and answer.
//   stream_answer MODEL_DIR ["question"]
#include <unistd.h>

#include <cstdio>
#include <string>

#include "reasonrt/generate.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stream_answer MODEL_DIR [QUESTION]\n");
    return 2;
  }
  auto gen = reasonrt::Generator::Load(argv[1]);
  if (!gen.ok()) {
    std::fprintf(stderr, "%s\n", std::string(gen.status().message()).c_str());
    return 1;
  }
  const bool tty = isatty(STDOUT_FILENO);
  reasonrt::GenerateOptions options;  // R1's recommended sampling
  options.max_new_tokens = 512;
  options.thinking.max_tokens = 384;
  reasonrt::StreamCallbacks stream;
  stream.on_thinking = [&](int, std::string_view text) {
    std::printf("%s%.*s%s", tty ? "\033[2m" : "", static_cast<int>(text.size()), text.data(), tty ? "\033[0m" : "");
    std::fflush(stdout);
  };
  stream.on_answer = [&](int, std::string_view text) {
    std::printf("%.*s", static_cast<int>(text.size()), text.data());
    std::fflush(stdout);
  };
  const std::string question = argc > 2 ? argv[2] : "What is 17 * 23?";
  auto result = (*gen)->Generate({{.role = "user", .content = question}}, options, stream);
  if (!result.ok()) {
    std::fprintf(stderr, "\n%s\n", std::string(result.status().message()).c_str());
    return 1;
  }
  const reasonrt::Completion& c = result->completions[0];
  std::printf("\n[%zu tokens, %d thinking, finished: %s, %.1f tokens/s]\n", c.tokens.size(), c.thinking_tokens,
              std::string(reasonrt::FinishReasonName(c.finish_reason)).c_str(),
              result->timings.decode_tokens_per_second());
  return 0;
}
