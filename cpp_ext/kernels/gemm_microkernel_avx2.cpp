// AVX2+FMA micro-kernels (Haswell and later, Zen): 6 x 16 float and 6 x 8 double. Each keeps
// 12 ymm accumulators, 2 ymm of B and 1 broadcast of A in registers: 12 FMAs per 2 loads + 6
// broadcasts, which keeps both FMA pipes busy.
#include <immintrin.h>

#include "kernels/gemm_microkernel.h"

#define RUSTORCH_AVX2 __attribute__((target("avx2,fma")))

namespace rustorch::kernels::gemm_detail {
namespace {

// Accumulator names cIJ: row I of the tile, vector J (0 or 1) of the row.
#define ACC_DECL(Z)                                                                       \
  auto c00 = Z(), c01 = Z(), c10 = Z(), c11 = Z(), c20 = Z(), c21 = Z(), c30 = Z(), c31 = Z(), \
       c40 = Z(), c41 = Z(), c50 = Z(), c51 = Z()
#define ACC_ROW(I, BCAST, FMA)         \
  ai = BCAST(a + I);                   \
  c##I##0 = FMA(ai, b0, c##I##0);      \
  c##I##1 = FMA(ai, b1, c##I##1)
#define ACC_ALL(F) F(0, c00, c01); F(1, c10, c11); F(2, c20, c21); F(3, c30, c31); F(4, c40, c41); F(5, c50, c51)

RUSTORCH_AVX2 void ukr_f32_6x16(int64_t k, const float* a, const float* b, float* c, int64_t rsc,
                                int64_t csc, float alpha, float beta) {
  ACC_DECL(_mm256_setzero_ps);
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
    __m256 ai;
    ACC_ROW(0, _mm256_broadcast_ss, _mm256_fmadd_ps);
    ACC_ROW(1, _mm256_broadcast_ss, _mm256_fmadd_ps);
    ACC_ROW(2, _mm256_broadcast_ss, _mm256_fmadd_ps);
    ACC_ROW(3, _mm256_broadcast_ss, _mm256_fmadd_ps);
    ACC_ROW(4, _mm256_broadcast_ss, _mm256_fmadd_ps);
    ACC_ROW(5, _mm256_broadcast_ss, _mm256_fmadd_ps);
    a += 6;
    b += 16;
  }
  if (csc == 1) {
    const __m256 va = _mm256_set1_ps(alpha);
    if (beta == 0.0f) {
#define STORE0(I, X0, X1)                                         \
  _mm256_storeu_ps(c + I * rsc, _mm256_mul_ps(va, X0));           \
  _mm256_storeu_ps(c + I * rsc + 8, _mm256_mul_ps(va, X1))
      ACC_ALL(STORE0);
#undef STORE0
    } else {
      const __m256 vb = _mm256_set1_ps(beta);
#define STOREB(I, X0, X1)                                                                      \
  _mm256_storeu_ps(c + I * rsc,                                                                \
                   _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + I * rsc), _mm256_mul_ps(va, X0)));  \
  _mm256_storeu_ps(c + I * rsc + 8,                                                            \
                   _mm256_fmadd_ps(vb, _mm256_loadu_ps(c + I * rsc + 8), _mm256_mul_ps(va, X1)))
      ACC_ALL(STOREB);
#undef STOREB
    }
  } else {
    alignas(32) float acc[6 * 16];
#define SPILL(I, X0, X1) _mm256_store_ps(acc + I * 16, X0); _mm256_store_ps(acc + I * 16 + 8, X1)
    ACC_ALL(SPILL);
#undef SPILL
    store_tile_generic(acc, 6, 16, 16, c, rsc, csc, alpha, beta);
  }
}

RUSTORCH_AVX2 void ukr_f64_6x8(int64_t k, const double* a, const double* b, double* c,
                               int64_t rsc, int64_t csc, double alpha, double beta) {
  ACC_DECL(_mm256_setzero_pd);
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const __m256d b0 = _mm256_load_pd(b);
    const __m256d b1 = _mm256_load_pd(b + 4);
    __m256d ai;
    ACC_ROW(0, _mm256_broadcast_sd, _mm256_fmadd_pd);
    ACC_ROW(1, _mm256_broadcast_sd, _mm256_fmadd_pd);
    ACC_ROW(2, _mm256_broadcast_sd, _mm256_fmadd_pd);
    ACC_ROW(3, _mm256_broadcast_sd, _mm256_fmadd_pd);
    ACC_ROW(4, _mm256_broadcast_sd, _mm256_fmadd_pd);
    ACC_ROW(5, _mm256_broadcast_sd, _mm256_fmadd_pd);
    a += 6;
    b += 8;
  }
  if (csc == 1) {
    const __m256d va = _mm256_set1_pd(alpha);
    if (beta == 0.0) {
#define STORE0(I, X0, X1)                                         \
  _mm256_storeu_pd(c + I * rsc, _mm256_mul_pd(va, X0));           \
  _mm256_storeu_pd(c + I * rsc + 4, _mm256_mul_pd(va, X1))
      ACC_ALL(STORE0);
#undef STORE0
    } else {
      const __m256d vb = _mm256_set1_pd(beta);
#define STOREB(I, X0, X1)                                                                      \
  _mm256_storeu_pd(c + I * rsc,                                                                \
                   _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + I * rsc), _mm256_mul_pd(va, X0)));  \
  _mm256_storeu_pd(c + I * rsc + 4,                                                            \
                   _mm256_fmadd_pd(vb, _mm256_loadu_pd(c + I * rsc + 4), _mm256_mul_pd(va, X1)))
      ACC_ALL(STOREB);
#undef STOREB
    }
  } else {
    alignas(32) double acc[6 * 8];
#define SPILL(I, X0, X1) _mm256_store_pd(acc + I * 8, X0); _mm256_store_pd(acc + I * 8 + 4, X1)
    ACC_ALL(SPILL);
#undef SPILL
    store_tile_generic(acc, 6, 8, 8, c, rsc, csc, alpha, beta);
  }
}

#undef ACC_DECL
#undef ACC_ROW
#undef ACC_ALL

}  // namespace

MicroKernel<float> microkernel_f32_avx2() { return {6, 16, &ukr_f32_6x16, "avx2 6x16"}; }
MicroKernel<double> microkernel_f64_avx2() { return {6, 8, &ukr_f64_6x8, "avx2 6x8"}; }

}  // namespace rustorch::kernels::gemm_detail
