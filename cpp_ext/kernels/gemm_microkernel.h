// The only ISA-specific part of GEMM (BLIS's "micro-kernel"): one register-blocked MR x NR tile
//   C[0:MR, 0:NR] = alpha * (A_panel . B_panel) + beta * C     (beta == 0: C is never read)
// A_panel is packed as k columns of MR contiguous values, B_panel as k rows of NR contiguous
// values, both 64-byte aligned (gemm.cpp packs them). Each ISA file defines its kernels and their
// MR/NR; the {isa, dtype} table in gemm_microkernel_table.cpp lists them, best ISA first, and
// microkernel<T>(isa) returns the first entry the CPU can run. Adding an ISA: one file with its
// kernels, one entry per dtype in the table.
#pragma once

#include <cstdint>

#include "kernels/cpu_info.h"

namespace rustorch::kernels::gemm_detail {

template <typename T>
using MicroKernelFn = void (*)(int64_t k, const T* a, const T* b, T* c, int64_t rsc, int64_t csc,
                               T alpha, T beta);

// The same tile with B read in place ("direct B", gemm.cpp): row p of B starts at b + p * ldb
// (NR contiguous values, any alignment); A is packed as for `fn`. It performs exactly the FMAs
// of `fn` in the same order, so results are bit-identical to the packed path.
template <typename T>
using MicroKernelLdbFn = void (*)(int64_t k, const T* a, const T* b, int64_t ldb, T* c,
                                  int64_t rsc, int64_t csc, T alpha, T beta);

// Packs `r` vectors of length k that are contiguous in memory, `ld` apart, interleaved:
// dst[p * r + i] = src[i * ld + p] (a transpose). A with unit stride along K (row-major A) and
// B with unit stride along K (a transposed B, e.g. linear's W^T) need it; nullptr = portable loop.
template <typename T>
using InterleaveFn = void (*)(const T* src, int64_t ld, int64_t k, T* dst);

template <typename T>
struct MicroKernel {
  int64_t mr;
  int64_t nr;
  MicroKernelFn<T> fn;
  const char* name;
  InterleaveFn<T> interleave_mr = nullptr;  // r = mr
  InterleaveFn<T> interleave_nr = nullptr;  // r = nr
  MicroKernelLdbFn<T> fn_ldb = nullptr;  // nullptr: this ISA always packs B
};

// One per ISA file (gemm_microkernel_<isa>.cpp).
MicroKernel<float> microkernel_f32_scalar();
MicroKernel<double> microkernel_f64_scalar();
MicroKernel<float> microkernel_f32_avx2();
MicroKernel<double> microkernel_f64_avx2();

// The table lookup: the kernel of the best ISA in the table that `isa` can run.
template <typename T>
MicroKernel<T> microkernel(cpu::Isa isa);

// The write-back every kernel shares for tiles it cannot store with vectors (C not row-contiguous):
// acc is MR x NR row-major. Same rounding as the vector path: fma(beta, c, alpha * acc).
template <typename T>
inline void store_tile_generic(const T* acc, int64_t mr, int64_t nr, int64_t ldacc, T* c,
                               int64_t rsc, int64_t csc, T alpha, T beta) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      T v = alpha * acc[i * ldacc + j];
      T& dst = c[i * rsc + j * csc];
      dst = beta == T(0) ? v : __builtin_fma(beta, dst, v);
    }
}

}  // namespace rustorch::kernels::gemm_detail
