// reasonrt/cpu_features.h: what the CPU we run on can do, detected at run time.
//
// Basic usage:
//
//   const reasonrt::CpuFeatures& cpu = reasonrt::GetCpuFeatures();
//   if (cpu.avx512_bf16) { ... }
//   std::string s = reasonrt::CpuFeaturesString(cpu);   // "avx2 avx512f ... amx_bf16"
//
// Kernels are chosen from these flags at run time; the library is never built with
// -march=native. A flag is set only when both the CPU reports it and the operating system
// saves the registers it needs (XSAVE state for AVX/AVX-512, permission for AMX tiles).
#ifndef REASONRT_CPU_FEATURES_H_
#define REASONRT_CPU_FEATURES_H_

#include <string>

#include "reasonrt/export.h"

namespace reasonrt {

struct CpuFeatures {
  // x86-64
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx512_fp16 = false;
  bool avx_vnni = false;
  bool amx_tile = false;
  bool amx_bf16 = false;
  bool amx_int8 = false;
  // Arm
  bool neon = false;
  bool sve = false;
  bool arm_bf16 = false;
  bool arm_dotprod = false;
};

// Detected once, on first call; thread-safe. Setting the environment variable
// RRT_CPU_DISABLE to a space- or comma-separated list of flag names (as printed by
// CpuFeaturesString) before the first call clears those flags, so tests can exercise
// the fallback paths on a capable machine. A name that is no flag (a typo would otherwise
// leave the fast path on unnoticed) is reported on stderr, once.
RRT_API const CpuFeatures& GetCpuFeatures();

// The names in an RRT_CPU_DISABLE list that are no flag of CpuFeatures, space-separated
// ("" when all are known).
RRT_API std::string UnknownCpuFeatureNames(const std::string& list);

// Detects without caching or the environment override.
RRT_API CpuFeatures DetectCpuFeatures();

// The set flags as lower-case names separated by spaces.
RRT_API std::string CpuFeaturesString(const CpuFeatures& features);

}  // namespace reasonrt

#endif  // REASONRT_CPU_FEATURES_H_
