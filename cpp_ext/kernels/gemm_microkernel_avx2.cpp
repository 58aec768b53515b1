// AVX2+FMA micro-kernels (Haswell and later, Zen): 6 x 16 float and 6 x 8 double, one template
// over the vector type. Each keeps
// 12 ymm accumulators, 2 ymm of B and 1 broadcast of A in registers: 12 FMAs per 2 loads + 6
// broadcasts, which keeps both FMA pipes busy.
#include <immintrin.h>

#include "kernels/gemm_microkernel.h"

#define RUSTORCH_AVX2 __attribute__((target("avx2,fma")))
#define RUSTORCH_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

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

// The vector operations of one dtype, so both kernels are one template.
template <typename T>
struct Vec;
template <>
struct Vec<float> {
  using V = __m256;
  static constexpr int kLanes = 8;
  RUSTORCH_AVX2_INLINE static V zero() { return _mm256_setzero_ps(); }
  RUSTORCH_AVX2_INLINE static V load(const float* p) { return _mm256_load_ps(p); }
  RUSTORCH_AVX2_INLINE static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  RUSTORCH_AVX2_INLINE static void store(float* p, V v) { _mm256_store_ps(p, v); }
  RUSTORCH_AVX2_INLINE static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  RUSTORCH_AVX2_INLINE static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  RUSTORCH_AVX2_INLINE static V set1(float v) { return _mm256_set1_ps(v); }
  RUSTORCH_AVX2_INLINE static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  RUSTORCH_AVX2_INLINE static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};
template <>
struct Vec<double> {
  using V = __m256d;
  static constexpr int kLanes = 4;
  RUSTORCH_AVX2_INLINE static V zero() { return _mm256_setzero_pd(); }
  RUSTORCH_AVX2_INLINE static V load(const double* p) { return _mm256_load_pd(p); }
  RUSTORCH_AVX2_INLINE static V loadu(const double* p) { return _mm256_loadu_pd(p); }
  RUSTORCH_AVX2_INLINE static void store(double* p, V v) { _mm256_store_pd(p, v); }
  RUSTORCH_AVX2_INLINE static void storeu(double* p, V v) { _mm256_storeu_pd(p, v); }
  RUSTORCH_AVX2_INLINE static V bcast(const double* p) { return _mm256_broadcast_sd(p); }
  RUSTORCH_AVX2_INLINE static V set1(double v) { return _mm256_set1_pd(v); }
  RUSTORCH_AVX2_INLINE static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  RUSTORCH_AVX2_INLINE static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
};

// 6 x (2 vectors) tile: 6 x 16 floats or 6 x 8 doubles. A is packed (6-interleaved); B is
// packed (rows NR apart, aligned) or read in place (rows ldb apart, unaligned loads): the FMAs
// and their order are the same either way.
template <typename T, bool kDirectB>
RUSTORCH_AVX2_INLINE void ukr_6x2v_body(int64_t k, const T* a, const T* b, int64_t ldb, T* c,
                                        int64_t rsc, int64_t csc, T alpha, T beta) {
  using W = Vec<T>;
  using V = typename W::V;
  constexpr int L = W::kLanes;
  ACC_DECL(W::zero);
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * rsc), _MM_HINT_T0);
#pragma GCC unroll 4
  for (int64_t p = 0; p < k; ++p) {
    const V b0 = kDirectB ? W::loadu(b) : W::load(b);
    const V b1 = kDirectB ? W::loadu(b + L) : W::load(b + L);
    V ai;
    ACC_ROW(0, W::bcast, W::fma);
    ACC_ROW(1, W::bcast, W::fma);
    ACC_ROW(2, W::bcast, W::fma);
    ACC_ROW(3, W::bcast, W::fma);
    ACC_ROW(4, W::bcast, W::fma);
    ACC_ROW(5, W::bcast, W::fma);
    a += 6;
    b += ldb;
  }
  if (csc == 1) {
    const V va = W::set1(alpha);
    if (beta == T(0)) {
#define STORE0(I, X0, X1)                          \
  W::storeu(c + I * rsc, W::mul(va, X0));          \
  W::storeu(c + I * rsc + L, W::mul(va, X1))
      ACC_ALL(STORE0);
#undef STORE0
    } else {
      const V vb = W::set1(beta);
#define STOREB(I, X0, X1)                                                             \
  W::storeu(c + I * rsc, W::fma(vb, W::loadu(c + I * rsc), W::mul(va, X0)));          \
  W::storeu(c + I * rsc + L, W::fma(vb, W::loadu(c + I * rsc + L), W::mul(va, X1)))
      ACC_ALL(STOREB);
#undef STOREB
    }
  } else {
    constexpr int NR = 2 * L;
    alignas(32) T acc[6 * NR];
#define SPILL(I, X0, X1) W::store(acc + I * NR, X0); W::store(acc + I * NR + L, X1)
    ACC_ALL(SPILL);
#undef SPILL
    store_tile_generic(acc, 6, NR, NR, c, rsc, csc, alpha, beta);
  }
}

template <typename T>
RUSTORCH_AVX2 void ukr_6x2v(int64_t k, const T* a, const T* b, T* c, int64_t rsc, int64_t csc,
                            T alpha, T beta) {
  ukr_6x2v_body<T, false>(k, a, b, 2 * Vec<T>::kLanes, c, rsc, csc, alpha, beta);
}

template <typename T>
RUSTORCH_AVX2 void ukr_6x2v_ldb(int64_t k, const T* a, const T* b, int64_t ldb, T* c, int64_t rsc,
                                int64_t csc, T alpha, T beta) {
  ukr_6x2v_body<T, true>(k, a, b, ldb, c, rsc, csc, alpha, beta);
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
#undef RUSTORCH_AVX2_INLINE

}  // namespace

MicroKernel<float> microkernel_f32_avx2() {
  return {6, 16, &ukr_6x2v<float>, "avx2 6x16", &interleave6_f32, &interleave16_f32,
          &ukr_6x2v_ldb<float>};
}
MicroKernel<double> microkernel_f64_avx2() {
  return {6, 8, &ukr_6x2v<double>, "avx2 6x8", &interleave6_f64, &interleave8_f64,
          &ukr_6x2v_ldb<double>};
}

}  // namespace rustorch::kernels::gemm_detail
