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

// In-register transpose of the 8 x 8 block r[0..7] (r[i] = row i) into columns.
RUSTORCH_AVX2 inline void transpose8(__m256 r[8]) {
  __m256 t[8], s[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int h = 0; h < 8; h += 4) {
    s[h + 0] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
    s[h + 1] = _mm256_shuffle_ps(t[h + 0], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
    s[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
    s[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x20);
    r[j + 4] = _mm256_permute2f128_ps(s[j], s[j + 4], 0x31);
  }
}

// dst[p * 16 + j] = src[j * ld + p]: two 8 x 8 transposes per 8 values of p.
RUSTORCH_AVX2 void interleave16_f32(const float* src, int64_t ld, int64_t k, float* dst) {
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    for (int h = 0; h < 2; ++h) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + (h * 8 + i) * ld + p);
      transpose8(r);
      for (int q = 0; q < 8; ++q) _mm256_storeu_ps(dst + (p + q) * 16 + h * 8, r[q]);
    }
  }
  for (; p < k; ++p)
    for (int j = 0; j < 16; ++j) dst[p * 16 + j] = src[j * ld + p];
}

// dst[p * 6 + i] = src[i * ld + p]: an 8 x 8 transpose (2 zero rows) per 8 values of p; each
// 8-wide store spills 2 values into the next row, which the next store overwrites.
RUSTORCH_AVX2 void interleave6_f32(const float* src, int64_t ld, int64_t k, float* dst) {
  const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 r[8];
    for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(src + i * ld + p);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    for (int q = 0; q < 7; ++q) _mm256_storeu_ps(dst + (p + q) * 6, r[q]);
    _mm256_maskstore_ps(dst + (p + 7) * 6, six, r[7]);
  }
  for (; p < k; ++p)
    for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * ld + p];
}

// In-register transpose of the 4 x 4 double block r[0..3] into columns.
RUSTORCH_AVX2 inline void transpose4(__m256d r[4]) {
  const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
  const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
  r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
  r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
  r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
  r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// dst[p * 8 + j] = src[j * ld + p]: two 4 x 4 transposes per 4 values of p.
RUSTORCH_AVX2 void interleave8_f64(const double* src, int64_t ld, int64_t k, double* dst) {
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    for (int h = 0; h < 2; ++h) {
      __m256d r[4];
      for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + (h * 4 + i) * ld + p);
      transpose4(r);
      for (int q = 0; q < 4; ++q) _mm256_storeu_pd(dst + (p + q) * 8 + h * 4, r[q]);
    }
  }
  for (; p < k; ++p)
    for (int j = 0; j < 8; ++j) dst[p * 8 + j] = src[j * ld + p];
}

// dst[p * 6 + i] = src[i * ld + p]: rows 0-3 by a 4 x 4 transpose, rows 4-5 as pairs.
RUSTORCH_AVX2 void interleave6_f64(const double* src, int64_t ld, int64_t k, double* dst) {
  int64_t p = 0;
  for (; p + 4 <= k; p += 4) {
    __m256d r[4];
    for (int i = 0; i < 4; ++i) r[i] = _mm256_loadu_pd(src + i * ld + p);
    transpose4(r);
    const __m256d r4 = _mm256_loadu_pd(src + 4 * ld + p), r5 = _mm256_loadu_pd(src + 5 * ld + p);
    const __m256d lo = _mm256_unpacklo_pd(r4, r5), hi = _mm256_unpackhi_pd(r4, r5);
    const __m128d pairs[4] = {_mm256_castpd256_pd128(lo), _mm256_castpd256_pd128(hi),
                              _mm256_extractf128_pd(lo, 1), _mm256_extractf128_pd(hi, 1)};
    for (int q = 0; q < 4; ++q) {
      _mm256_storeu_pd(dst + (p + q) * 6, r[q]);
      _mm_storeu_pd(dst + (p + q) * 6 + 4, pairs[q]);
    }
  }
  for (; p < k; ++p)
    for (int i = 0; i < 6; ++i) dst[p * 6 + i] = src[i * ld + p];
}

#undef ACC_DECL
#undef ACC_ROW
#undef ACC_ALL

}  // namespace

MicroKernel<float> microkernel_f32_avx2() {
  return {6, 16, &ukr_f32_6x16, "avx2 6x16", &interleave6_f32, &interleave16_f32};
}
MicroKernel<double> microkernel_f64_avx2() {
  return {6, 8, &ukr_f64_6x8, "avx2 6x8", &interleave6_f64, &interleave8_f64};
}

}  // namespace rustorch::kernels::gemm_detail
