// The only ISA-specific part of GEMM (BLIS's "micro-kernel"): one register-blocked MR x NR tile
//   C[0:MR, 0:NR] = alpha * (A_panel . B_panel) + beta * C     (beta == 0: C is never read)
// A_panel is packed as k columns of MR contiguous values, B_panel as k rows of NR contiguous
// values, both 64-byte aligned (gemm.cpp packs them). Each ISA file defines its kernels and their
// MR/NR; gemm.cpp picks one at run time from cpu::best_isa().
#pragma once

#include <cstdint>

namespace rustorch::kernels::gemm_detail {

template <typename T>
using MicroKernelFn = void (*)(int64_t k, const T* a, const T* b, T* c, int64_t rsc, int64_t csc,
                               T alpha, T beta);

template <typename T>
struct MicroKernel {
  int64_t mr;
  int64_t nr;
  MicroKernelFn<T> fn;
  const char* name;
};

MicroKernel<float> microkernel_f32_scalar();
MicroKernel<double> microkernel_f64_scalar();
MicroKernel<float> microkernel_f32_avx2();
MicroKernel<double> microkernel_f64_avx2();

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
