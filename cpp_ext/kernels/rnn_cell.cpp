// AVX2 rows of the fused LSTM / GRU cells (float): 8 columns per step with the vectorized
// sigmoid / tanh of simd_math.h; the last h % 8 columns use masked loads and stores, so every
// column goes through the same formulas as the others (results do not depend on the column).
#include "kernels/rnn_cell.h"

#include <immintrin.h>

#include "kernels/cpu_info.h"
#include "kernels/simd_math.h"

namespace rustorch::kernels::rnn {
namespace {

using simd::sigmoid8;
using simd::tanh8;

// Loads/stores of up to 8 floats; `full` selects the plain 8-wide form.
struct Lanes {
  bool full;
  __m256i mask;
  RUSTORCH_AVX2 __m256 load(const float* p) const {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
  }
  // base[off...], or zeros when base is null (an absent bias or gradient).
  RUSTORCH_AVX2 __m256 load_or_zero(const float* base, int64_t off) const {
    return base == nullptr ? _mm256_setzero_ps() : load(base + off);
  }
  RUSTORCH_AVX2 void store(float* p, __m256 v) const {
    if (full) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, mask, v);
  }
};

RUSTORCH_AVX2 Lanes lanes(int64_t j, int64_t h) {
  return h - j >= 8 ? Lanes{true, _mm256_setzero_si256()} : Lanes{false, simd::tail_mask(h - j)};
}

RUSTORCH_AVX2 inline __m256 one_minus(__m256 x) { return _mm256_sub_ps(_mm256_set1_ps(1.0f), x); }

// ((ig + hg) + b_i) + b_h at column col, as in the portable rows.
RUSTORCH_AVX2 inline __m256 gate_sum(const Lanes& l, const float* gi, const float* gh,
                                     const float* ib, const float* hb, int64_t col) {
  const __m256 s = _mm256_add_ps(l.load(gi + col), l.load(gh + col));
  return _mm256_add_ps(_mm256_add_ps(s, l.load_or_zero(ib, col)), l.load_or_zero(hb, col));
}

}  // namespace

bool avx2_rows() {
  static const bool ok = cpu::best_isa() != cpu::Isa::scalar && simd::has_avx2();
  return ok;
}

RUSTORCH_AVX2 void lstm_forward_avx2(int64_t begin, int64_t end, int64_t h, const float* ig,
                                     const float* hg, const float* ib, const float* hb,
                                     const float* cx, float* hy, float* cy, float* ws) {
  for (int64_t row = begin; row < end; ++row) {
    const float* gi = ig + row * 4 * h;
    const float* gh = hg + row * 4 * h;
    float* w = ws + row * 4 * h;
    for (int64_t j = 0; j < h; j += 8) {
      const Lanes l = lanes(j, h);
      __m256 pre[4];
      for (int k = 0; k < 4; ++k) {
        const int64_t col = k * h + j;
        __m256 v = _mm256_add_ps(l.load(gi + col), l.load(gh + col));
        if (ib != nullptr) v = _mm256_add_ps(v, _mm256_add_ps(l.load(ib + col), l.load(hb + col)));
        pre[k] = v;
      }
      const __m256 i = sigmoid8(pre[0]), f = sigmoid8(pre[1]);
      const __m256 g = tanh8(pre[2]), o = sigmoid8(pre[3]);
      const __m256 cell = _mm256_fmadd_ps(f, l.load(cx + row * h + j), _mm256_mul_ps(i, g));
      l.store(cy + row * h + j, cell);
      l.store(hy + row * h + j, _mm256_mul_ps(o, tanh8(cell)));
      l.store(w + j, i);
      l.store(w + h + j, f);
      l.store(w + 2 * h + j, g);
      l.store(w + 3 * h + j, o);
    }
  }
}

RUSTORCH_AVX2 void lstm_backward_avx2(int64_t begin, int64_t end, int64_t h, const float* ghy,
                                      const float* gcy, const float* cx, const float* cy,
                                      const float* ws, float* gg, float* gcx) {
  for (int64_t row = begin; row < end; ++row) {
    const float* w = ws + row * 4 * h;
    float* g = gg + row * 4 * h;
    for (int64_t j = 0; j < h; j += 8) {
      const Lanes l = lanes(j, h);
      const int64_t e = row * h + j;
      const __m256 i = l.load(w + j), f = l.load(w + h + j);
      const __m256 cg = l.load(w + 2 * h + j), o = l.load(w + 3 * h + j);
      const __m256 go = l.load_or_zero(ghy, e);
      const __m256 goc = l.load_or_zero(gcy, e);
      const __m256 tc = tanh8(l.load(cy + e));
      // d cy: through hy = o * tanh(cy), plus the incoming cell gradient.
      const __m256 dc =
          _mm256_fmadd_ps(_mm256_mul_ps(go, o), _mm256_fnmadd_ps(tc, tc, _mm256_set1_ps(1.0f)), goc);
      l.store(g + j, _mm256_mul_ps(_mm256_mul_ps(dc, cg), _mm256_mul_ps(one_minus(i), i)));
      l.store(g + h + j,
              _mm256_mul_ps(_mm256_mul_ps(dc, l.load(cx + e)), _mm256_mul_ps(one_minus(f), f)));
      l.store(g + 2 * h + j,
              _mm256_mul_ps(_mm256_mul_ps(dc, i), _mm256_fnmadd_ps(cg, cg, _mm256_set1_ps(1.0f))));
      l.store(g + 3 * h + j, _mm256_mul_ps(_mm256_mul_ps(go, tc), _mm256_mul_ps(one_minus(o), o)));
      l.store(gcx + e, _mm256_mul_ps(dc, f));
    }
  }
}

RUSTORCH_AVX2 void gru_forward_avx2(int64_t begin, int64_t end, int64_t h, const float* ig,
                                    const float* hg, const float* ib, const float* hb,
                                    const float* hx, float* hy, float* ws) {
  for (int64_t row = begin; row < end; ++row) {
    const float* gi = ig + row * 3 * h;
    const float* gh = hg + row * 3 * h;
    float* w = ws + row * 5 * h;
    for (int64_t j = 0; j < h; j += 8) {
      const Lanes l = lanes(j, h);
      const __m256 r = sigmoid8(gate_sum(l, gi, gh, ib, hb, j));
      const __m256 z = sigmoid8(gate_sum(l, gi, gh, ib, hb, h + j));
      const __m256 hn = _mm256_add_ps(l.load(gh + 2 * h + j), l.load_or_zero(hb, 2 * h + j));
      const __m256 ng = tanh8(_mm256_fmadd_ps(
          r, hn, _mm256_add_ps(l.load(gi + 2 * h + j), l.load_or_zero(ib, 2 * h + j))));
      const __m256 prev = l.load(hx + row * h + j);
      l.store(hy + row * h + j, _mm256_fmadd_ps(z, _mm256_sub_ps(prev, ng), ng));
      l.store(w + j, r);
      l.store(w + h + j, z);
      l.store(w + 2 * h + j, ng);
      l.store(w + 3 * h + j, prev);
      l.store(w + 4 * h + j, hn);
    }
  }
}

RUSTORCH_AVX2 void gru_backward_avx2(int64_t begin, int64_t end, int64_t h, const float* ghy,
                                     const float* ws, float* gi, float* gh, float* ghx) {
  for (int64_t row = begin; row < end; ++row) {
    const float* w = ws + row * 5 * h;
    float* a = gi + row * 3 * h;
    float* b = gh + row * 3 * h;
    for (int64_t j = 0; j < h; j += 8) {
      const Lanes l = lanes(j, h);
      const __m256 r = l.load(w + j), z = l.load(w + h + j), ng = l.load(w + 2 * h + j);
      const __m256 x = l.load(w + 3 * h + j), hn = l.load(w + 4 * h + j);
      const __m256 go = l.load(ghy + row * h + j);
      const __m256 dz =
          _mm256_mul_ps(_mm256_mul_ps(go, _mm256_sub_ps(x, ng)), _mm256_mul_ps(one_minus(z), z));
      const __m256 dn = _mm256_mul_ps(_mm256_mul_ps(go, one_minus(z)),
                                      _mm256_fnmadd_ps(ng, ng, _mm256_set1_ps(1.0f)));
      const __m256 dr = _mm256_mul_ps(_mm256_mul_ps(dn, hn), _mm256_mul_ps(one_minus(r), r));
      l.store(a + j, dr);
      l.store(b + j, dr);
      l.store(a + h + j, dz);
      l.store(b + h + j, dz);
      l.store(a + 2 * h + j, dn);
      l.store(b + 2 * h + j, _mm256_mul_ps(dn, r));
      l.store(ghx + row * h + j, _mm256_mul_ps(go, z));
    }
  }
}

}  // namespace rustorch::kernels::rnn
