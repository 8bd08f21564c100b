// Tokenizer speed: load time of each real tokenizer.json and encode throughput (MB/s) on
// the test corpus (tests/tokenizer/make_corpus.py) joined into one text per call.
//
//   python3 tests/tokenizer/make_corpus.py /tmp/corpus.json
//   RRT_CORPUS=/tmp/corpus.json build/benchmarks/tokenizer_benchmarks
#include <cstdlib>
#include <filesystem>

#include "benchmark/benchmark.h"
#include "lib/core/file.h"
#include "lib/io/json.h"
#include "reasonrt/tokenizer.h"

namespace reasonrt {
namespace {

std::string Dir(const std::string& family) {
  return std::string(RRT_TOKENIZER_FILES_DIR) + "/tokenizer-" + family + "/models";
}

std::vector<std::string> Corpus() {
  std::vector<std::string> out;
  const char* path = std::getenv("RRT_CORPUS");
  if (path == nullptr) return out;
  auto text = ReadFileToString(path, size_t{1} << 30);
  if (!text.ok()) return out;
  simdjson::dom::parser parser;
  auto root = json::Parse(parser, *text, path);
  if (!root.ok()) return out;
  for (simdjson::dom::element e : root->get_array()) out.emplace_back(std::string_view(e.get_string()));
  return out;
}

void BM_Load(benchmark::State& state, std::string family) {
  if (!std::filesystem::exists(Dir(family))) {
    state.SkipWithError("npm test data not installed");
    return;
  }
  for (auto _ : state) {
    auto t = Tokenizer::Load(Dir(family));
    if (!t.ok()) state.SkipWithError(std::string(t.status().message()).c_str());
    benchmark::DoNotOptimize(t);
  }
}

void BM_Encode(benchmark::State& state, std::string family) {
  static const std::vector<std::string> corpus = Corpus();
  if (corpus.empty() || !std::filesystem::exists(Dir(family))) {
    state.SkipWithError("set RRT_CORPUS and install the npm test data");
    return;
  }
  auto tok = Tokenizer::Load(Dir(family));
  if (!tok.ok()) {
    state.SkipWithError("load failed");
    return;
  }
  size_t bytes = 0;
  for (const std::string& s : corpus) bytes += s.size();
  int64_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& s : corpus) tokens += static_cast<int64_t>((*tok)->Encode(s, {})->size());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsRate);
}

// A text without spaces of 1, 4 and 10 MB: time per byte must stay flat (linear time).
void BM_EncodeNoSpaces(benchmark::State& state) {
  if (!std::filesystem::exists(Dir("llama3_1"))) {
    state.SkipWithError("npm test data not installed");
    return;
  }
  auto tok = Tokenizer::Load(Dir("llama3_1"));
  std::string text(static_cast<size_t>(state.range(0)) << 20, 'a');
  for (size_t i = 0; i < text.size(); i += 5) text[i] = static_cast<char>('b' + i % 7);
  for (auto _ : state) benchmark::DoNotOptimize((*tok)->Encode(text, {}));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(text.size()));
}
BENCHMARK(BM_EncodeNoSpaces)->Arg(1)->Arg(4)->Arg(10)->Unit(benchmark::kMillisecond)->Iterations(2);

BENCHMARK_CAPTURE(BM_Load, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, llama3_1, std::string("llama3_1"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, llama3_1, std::string("llama3_1"))->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reasonrt

BENCHMARK_MAIN();
