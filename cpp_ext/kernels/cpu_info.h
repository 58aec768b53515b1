// What the kernels need to know about the CPU they run on: cache sizes (for GEMM blocking)
// and the best instruction set (for choosing micro-kernels). Both are read once per process.
#pragma once

#include <cstdint>

namespace rustorch::cpu {

struct CacheSizes {
  int64_t l1d;  // bytes, per core
  int64_t l2;   // bytes, per core
  int64_t l3;   // bytes, shared
};

// sysconf's answer, or 32 KiB / 512 KiB / 32 MiB where it has none.
const CacheSizes& cache_sizes();

enum class Isa { scalar = 0, avx2 = 1, avx512 = 2 };

// Best ISA this CPU supports. RUSTORCH_ISA=scalar|avx2|avx512 lowers it (never raises it above
// what the CPU has), so tests can exercise the portable paths on a fast machine.
Isa best_isa();
const char* isa_name(Isa isa);

// Core clock in GHz measured with a chain of dependent adds (one per cycle); ~20 ms.
double measure_clock_ghz();

}  // namespace rustorch::cpu
