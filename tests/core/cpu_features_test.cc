#include "reasonrt/cpu_features.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace reasonrt {
namespace {

TEST(CpuFeaturesTest, ImpliedFeaturesAreConsistent) {
  const CpuFeatures& f = GetCpuFeatures();
  if (f.avx2) EXPECT_TRUE(f.avx);
  if (f.avx512bw || f.avx512vl || f.avx512_bf16 || f.avx512_vnni) EXPECT_TRUE(f.avx512f);
  if (f.avx512f) EXPECT_TRUE(f.avx);
  if (f.amx_bf16 || f.amx_int8) EXPECT_TRUE(f.amx_tile);
#if defined(__x86_64__)
  EXPECT_TRUE(f.sse42);  // every x86-64 machine this library targets has it
  EXPECT_FALSE(f.neon);
#endif
}

#if defined(__x86_64__) && defined(__linux__)
// The kernel's own cpuinfo flags are an independent reading of cpuid.
TEST(CpuFeaturesTest, AgreesWithProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  if (!in) GTEST_SKIP() << "no /proc/cpuinfo";
  std::string line;
  std::set<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) == 0) {
      std::istringstream words(line.substr(line.find(':') + 1));
      std::string w;
      while (words >> w) flags.insert(w);
      break;
    }
  }
  const CpuFeatures f = DetectCpuFeatures();
  EXPECT_EQ(f.avx2, flags.count("avx2") == 1);
  EXPECT_EQ(f.fma, flags.count("fma") == 1);
  EXPECT_EQ(f.f16c, flags.count("f16c") == 1);
  EXPECT_EQ(f.avx512f, flags.count("avx512f") == 1);
  EXPECT_EQ(f.avx512bw, flags.count("avx512bw") == 1);
  EXPECT_EQ(f.avx512_vnni, flags.count("avx512_vnni") == 1);
  EXPECT_EQ(f.avx512_bf16, flags.count("avx512_bf16") == 1);
  EXPECT_EQ(f.amx_tile, flags.count("amx_tile") == 1);
}
#endif

TEST(CpuFeaturesTest, StringListsSetFlags) {
  CpuFeatures f;
  EXPECT_EQ(CpuFeaturesString(f), "");
  f.avx2 = true;
  f.avx512_bf16 = true;
  EXPECT_EQ(CpuFeaturesString(f), "avx2 avx512_bf16");
}

TEST(CpuFeaturesTest, UnknownDisableNamesAreListed) {
  EXPECT_EQ(UnknownCpuFeatureNames(""), "");
  EXPECT_EQ(UnknownCpuFeatureNames("avx512f, avx2 amx_tile"), "");
  EXPECT_EQ(UnknownCpuFeatureNames("avx512,avx2 none"), "avx512 none");
}

}  // namespace
}  // namespace reasonrt
