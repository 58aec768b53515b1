#include "kernels/cpu_info.h"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>

namespace rustorch::cpu {
namespace {

int64_t sysconf_or(int name, int64_t fallback) {
  long v = sysconf(name);
  return v > 0 ? static_cast<int64_t>(v) : fallback;
}

Isa detect_isa() {
  __builtin_cpu_init();
  Isa hw = Isa::scalar;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) hw = Isa::avx2;
  if (hw == Isa::avx2 && __builtin_cpu_supports("avx512f")) hw = Isa::avx512;
  const char* env = std::getenv("RUSTORCH_ISA");
  if (env == nullptr) return hw;
  Isa wanted = hw;
  if (std::strcmp(env, "scalar") == 0) wanted = Isa::scalar;
  else if (std::strcmp(env, "avx2") == 0) wanted = Isa::avx2;
  else if (std::strcmp(env, "avx512") == 0) wanted = Isa::avx512;
  return static_cast<int>(wanted) < static_cast<int>(hw) ? wanted : hw;
}

}  // namespace

const CacheSizes& cache_sizes() {
  static const CacheSizes sizes{
      sysconf_or(_SC_LEVEL1_DCACHE_SIZE, 32 << 10),
      sysconf_or(_SC_LEVEL2_CACHE_SIZE, 512 << 10),
      sysconf_or(_SC_LEVEL3_CACHE_SIZE, 32 << 20),
  };
  return sizes;
}

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "scalar";
  }
}

double measure_clock_ghz() {
  // Four independent chains of 1-cycle adds would measure throughput; one chain measures
  // latency = 1 cycle per add on every x86 core since the P6.
  constexpr int64_t kIters = 5'000'000;  // x 10 adds
  double best = 0.0;
  for (int rep = 0; rep < 3; ++rep) {
    uint64_t x = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t i = 0; i < kIters; ++i)
      asm volatile(
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
          "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
          : "+r"(x));
    auto t1 = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(t1 - t0).count();
    double ghz = static_cast<double>(kIters) * 10.0 / s * 1e-9;
    if (ghz > best) best = ghz;
  }
  return best;
}

}  // namespace rustorch::cpu
