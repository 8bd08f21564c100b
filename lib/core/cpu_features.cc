// Run-time CPU feature detection: cpuid + xgetbv on x86-64, auxv on Arm.
#include "reasonrt/cpu_features.h"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace reasonrt {
namespace {

#if defined(__x86_64__) || defined(__i386__)
uint64_t ReadXcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

// Linux keeps AMX tile data off until a process asks for it.
bool RequestAmxPermission() {
#if defined(__linux__)
  constexpr int kArchGetXcompPerm = 0x1022;
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) return false;
  unsigned long bitmask = 0;
  if (syscall(SYS_arch_prctl, kArchGetXcompPerm, &bitmask) != 0) return false;
  return (bitmask & (1ul << kXfeatureXtiledata)) != 0;
#else
  return false;
#endif
}
#endif

// The flags with their names, for printing and for RRT_CPU_DISABLE.
std::vector<std::pair<std::string_view, bool CpuFeatures::*>> Flags() {
  return {{"sse4.2", &CpuFeatures::sse42},        {"avx", &CpuFeatures::avx},
          {"avx2", &CpuFeatures::avx2},           {"fma", &CpuFeatures::fma},
          {"f16c", &CpuFeatures::f16c},           {"avx512f", &CpuFeatures::avx512f},
          {"avx512bw", &CpuFeatures::avx512bw},   {"avx512vl", &CpuFeatures::avx512vl},
          {"avx512dq", &CpuFeatures::avx512dq},   {"avx512_vnni", &CpuFeatures::avx512_vnni},
          {"avx512_bf16", &CpuFeatures::avx512_bf16},
          {"avx512_fp16", &CpuFeatures::avx512_fp16},
          {"avx_vnni", &CpuFeatures::avx_vnni},   {"amx_tile", &CpuFeatures::amx_tile},
          {"amx_bf16", &CpuFeatures::amx_bf16},   {"amx_int8", &CpuFeatures::amx_int8},
          {"neon", &CpuFeatures::neon},           {"sve", &CpuFeatures::sve},
          {"arm_bf16", &CpuFeatures::arm_bf16},   {"arm_dotprod", &CpuFeatures::arm_dotprod}};
}

}  // namespace

CpuFeatures DetectCpuFeatures() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned max_leaf = eax;
  __cpuid_count(1, 0, eax, ebx, ecx, edx);
  f.sse42 = ecx & (1u << 20);
  const bool osxsave = ecx & (1u << 27);
  const uint64_t xcr0 = osxsave ? ReadXcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;               // XMM + YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;  // opmask + ZMM state
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;       // XTILECFG + XTILEDATA
  f.avx = os_avx && (ecx & (1u << 28));
  f.fma = f.avx && (ecx & (1u << 12));
  f.f16c = f.avx && (ecx & (1u << 29));
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const unsigned ebx7 = ebx, ecx7 = ecx, edx7 = edx;
    f.avx2 = f.avx && (ebx7 & (1u << 5));
    f.avx512f = os_avx512 && (ebx7 & (1u << 16));
    f.avx512dq = f.avx512f && (ebx7 & (1u << 17));
    f.avx512bw = f.avx512f && (ebx7 & (1u << 30));
    f.avx512vl = f.avx512f && (ebx7 & (1u << 31));
    f.avx512_vnni = f.avx512f && (ecx7 & (1u << 11));
    f.avx512_fp16 = f.avx512f && (edx7 & (1u << 23));
    const bool amx_bits = edx7 & (1u << 24);
    if (amx_bits && os_amx && RequestAmxPermission()) {
      f.amx_tile = true;
      f.amx_bf16 = edx7 & (1u << 22);
      f.amx_int8 = edx7 & (1u << 25);
    }
    __cpuid_count(7, 1, eax, ebx, ecx, edx);
    f.avx512_bf16 = f.avx512f && (eax & (1u << 5));
    f.avx_vnni = f.avx && (eax & (1u << 4));
  }
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP);
  const unsigned long hwcap2 = getauxval(AT_HWCAP2);
  f.arm_dotprod = hwcap & (1ul << 20);  // HWCAP_ASIMDDP
  f.sve = hwcap & (1ul << 22);          // HWCAP_SVE
  f.arm_bf16 = hwcap2 & (1ul << 14);    // HWCAP2_BF16
#endif
#endif
  return f;
}

namespace {

CpuFeatures AllFeatures() {
  CpuFeatures f;
  for (const auto& [flag, member] : Flags()) f.*member = true;
  return f;
}

// Clears the flags an RRT_CPU_DISABLE list names in *f; returns the names that are no flag,
// space-separated.
std::string ClearNamedFeatures(absl::string_view list, CpuFeatures* f) {
  std::string unknown;
  for (absl::string_view piece : absl::StrSplit(list, absl::ByAnyChar(" ,"), absl::SkipEmpty())) {
    bool known = false;
    for (const auto& [flag, member] : Flags()) {
      if (flag != std::string_view(piece.data(), piece.size())) continue;
      f->*member = false;
      known = true;
    }
    if (!known) absl::StrAppend(&unknown, unknown.empty() ? "" : " ", piece);
  }
  return unknown;
}

}  // namespace

std::string UnknownCpuFeatureNames(const std::string& list) {
  CpuFeatures scratch;
  return ClearNamedFeatures(list, &scratch);
}

const CpuFeatures& GetCpuFeatures() {
  static const CpuFeatures features = [] {
    CpuFeatures f = DetectCpuFeatures();
    if (const char* disable = std::getenv("RRT_CPU_DISABLE")) {
      if (const std::string unknown = ClearNamedFeatures(disable, &f); !unknown.empty()) {
        std::fprintf(stderr,
                     "reasonrt: RRT_CPU_DISABLE names no such CPU feature: %s (known: %s)\n",
                     unknown.c_str(), CpuFeaturesString(AllFeatures()).c_str());
      }
    }
    // Keep the implications detection guarantees: no AVX-512 extension without AVX-512F,
    // nothing AVX without AVX.
    if (!f.avx) f.avx2 = f.fma = f.f16c = f.avx512f = f.avx_vnni = false;
    if (!f.avx512f) {
      f.avx512bw = f.avx512vl = f.avx512dq = f.avx512_vnni = f.avx512_bf16 = f.avx512_fp16 = false;
    }
    if (!f.amx_tile) f.amx_bf16 = f.amx_int8 = false;
    return f;
  }();
  return features;
}

std::string CpuFeaturesString(const CpuFeatures& features) {
  std::vector<std::string> names;
  for (const auto& [name, member] : Flags()) {
    if (features.*member) names.emplace_back(name);
  }
  return absl::StrJoin(names, " ");
}

}  // namespace reasonrt
