// Runs a fuzz target without libFuzzer, as a ctest: each seed file given on the command
// line, then a fixed number of deterministic mutations of them (byte flips, insertions,
// deletions, truncations, splices). Built with clang and RRT_BUILD_FUZZERS, the same
// targets link against libFuzzer instead for open-ended fuzzing.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  std::vector<std::string> seeds;
  int iterations = 20000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--iterations=", 0) == 0) {
      iterations = std::stoi(arg.substr(13));
      continue;
    }
    std::ifstream in(arg, std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (seeds.empty()) seeds.emplace_back("{}");
  std::mt19937 rng(20261122);
  auto run = [](const std::string& s) {
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  };
  for (const std::string& s : seeds) run(s);
  for (int it = 0; it < iterations; ++it) {
    std::string s = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = rng() % s.size();
      switch (rng() % 6) {
        case 0: s[at] = static_cast<char>(rng()); break;
        case 1: s.insert(at, 1, "{}[]\",:0-9e."[rng() % 13]); break;
        case 2: s.erase(at, 1 + rng() % 8); break;
        case 3: s.resize(at); break;
        case 4: s.insert(at, seeds[rng() % seeds.size()].substr(0, rng() % 64)); break;
        default: s[at] = static_cast<char>(s[at] ^ (1 << (rng() % 8))); break;
      }
    }
    run(s);
  }
  std::printf("%zu seeds and %d mutations ran without a crash\n", seeds.size(), iterations);
  return 0;
}
