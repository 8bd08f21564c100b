// Chat template rendering: a 20-turn conversation through the R1 template (built-in), the
// R1 distills' official one and Qwen3's, plus parsing a template.
#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "reasonrt/chat.h"

namespace {

std::vector<reasonrt::ChatMessage> Conversation(int turns) {
  std::vector<reasonrt::ChatMessage> messages = {{.role = "system", .content = "You are a careful math tutor."}};
  for (int t = 0; t < turns / 2; ++t) {
    messages.push_back({.role = "user", .content = "Question " + std::to_string(t) + ": what is 17 * 23? Explain."});
    messages.push_back({.role = "assistant",
                        .content = "<think>\n17 * 23 = 17 * 20 + 17 * 3 = 340 + 51 = 391.\n</think>\n\nIt is \\boxed{391}."});
  }
  return messages;
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void Render(benchmark::State& state, const reasonrt::ChatTemplate& chat) {
  const auto messages = Conversation(20);
  size_t bytes = 0;
  for (auto _ : state) {
    auto p = chat.Render(messages, {});
    if (!p.ok()) {
      state.SkipWithError(std::string(p.status().message()).c_str());
      return;
    }
    bytes = p->text.size();
    benchmark::DoNotOptimize(p->text.data());
  }
  state.counters["prompt_bytes"] = static_cast<double>(bytes);
}

void BM_RenderBuiltinR1_20Turns(benchmark::State& state) {
  auto chat = reasonrt::ChatTemplate::BuiltinR1();
  Render(state, **chat);
}
BENCHMARK(BM_RenderBuiltinR1_20Turns)->Unit(benchmark::kMicrosecond);

void BM_RenderR1Distill_20Turns(benchmark::State& state) {
  auto chat = reasonrt::ChatTemplate::Parse(ReadFile(RRT_CHAT_TEMPLATES_DIR "/deepseek-r1-distill.jinja"),
                                            {{"bos_token", "<｜begin▁of▁sentence｜>"}});
  if (!chat.ok()) return state.SkipWithError("deepseek-r1-distill.jinja not found");
  Render(state, **chat);
}
BENCHMARK(BM_RenderR1Distill_20Turns)->Unit(benchmark::kMicrosecond);

void BM_RenderQwen3_20Turns(benchmark::State& state) {
  auto chat = reasonrt::ChatTemplate::Load(RRT_TOKENIZER_FILES_DIR "/tokenizer-qwen3/models");
  if (!chat.ok()) return state.SkipWithError("Qwen3 tokenizer_config.json not found");
  Render(state, **chat);
}
BENCHMARK(BM_RenderQwen3_20Turns)->Unit(benchmark::kMicrosecond);

void BM_ParseQwen3Template(benchmark::State& state) {
  auto chat = reasonrt::ChatTemplate::Load(RRT_TOKENIZER_FILES_DIR "/tokenizer-qwen3/models");
  if (!chat.ok()) return state.SkipWithError("Qwen3 tokenizer_config.json not found");
  const std::string source = (*chat)->source();
  for (auto _ : state) {
    auto t = reasonrt::ChatTemplate::Parse(source, {});
    benchmark::DoNotOptimize(t.ok());
  }
}
BENCHMARK(BM_ParseQwen3Template)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
