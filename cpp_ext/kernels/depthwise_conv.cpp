// Depthwise convolution kernels (see depthwise_conv.h). The loop bodies are written once as
// always-inline templates and compiled twice: for the build's baseline ISA and, inside functions
// with target("avx2,fma"), for AVX2; the entry points pick one per call from cpu::best_isa().
#include "kernels/depthwise_conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu_info.h"
#include "kernels/simd_math.h"

namespace rustorch::kernels {
namespace {

#define RUSTORCH_INLINE inline __attribute__((always_inline))

// Output columns whose input column col*s + off lies inside [0, size): [lo, hi).
RUSTORCH_INLINE void valid_cols(int64_t off, int64_t s, int64_t size, int64_t count, int64_t& lo,
                                int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = size - off <= 0 ? 0 : (size - off + s - 1) / s;
  lo = std::min(lo, count);
  hi = std::clamp(hi, lo, count);
}

// y[k] += a * x[k * stride] for k < len.
template <typename T>
RUSTORCH_INLINE void axpy(T* y, const T* x, int64_t stride, T a, int64_t len) {
  if (stride == 1) {
    for (int64_t k = 0; k < len; ++k) y[k] += a * x[k];
  } else {
    for (int64_t k = 0; k < len; ++k) y[k] += a * x[k * stride];
  }
}

// y[k * stride] += a * x[k] for k < len (the adjoint of axpy's gather).
template <typename T>
RUSTORCH_INLINE void scatter_axpy(T* y, int64_t stride, const T* x, T a, int64_t len) {
  if (stride == 1) {
    for (int64_t k = 0; k < len; ++k) y[k] += a * x[k];
  } else {
    for (int64_t k = 0; k < len; ++k) y[k * stride] += a * x[k];
  }
}

constexpr int kLanes = 8;

// acc[v] += sum over k = v (mod 8) of a[k] * b[k * stride]: 8 independent partial sums (a
// fixed assignment of terms to lanes, so the result does not depend on how it is vectorized).
template <typename T>
RUSTORCH_INLINE void dot_lanes(T* acc, const T* a, const T* b, int64_t stride, int64_t len) {
  int64_t k = 0;
  if (stride == 1) {
    for (; k + kLanes <= len; k += kLanes)
      for (int v = 0; v < kLanes; ++v) acc[v] += a[k + v] * b[k + v];
  } else {
    for (; k + kLanes <= len; k += kLanes)
      for (int v = 0; v < kLanes; ++v) acc[v] += a[k + v] * b[(k + v) * stride];
  }
  for (int v = 0; k < len; ++k, ++v) acc[v] += a[k] * b[k * stride];
}

template <typename T>
RUSTORCH_INLINE void forward_plane(const DepthwiseShape& s, const T* xp, const T* wc, T b, T* op) {
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    T* o = op + oh * s.ow;
    for (int64_t k = 0; k < s.ow; ++k) o[k] = b;
    for (int64_t i = 0; i < s.kh; ++i) {
      const int64_t ih = oh * s.sh - s.ph + i * s.dh;
      if (ih < 0 || ih >= s.h) continue;
      const T* xr = xp + ih * s.w;
      for (int64_t j = 0; j < s.kw; ++j) {
        const int64_t off = j * s.dw - s.pw;
        int64_t lo, hi;
        valid_cols(off, s.sw, s.w, s.ow, lo, hi);
        axpy(o + lo, xr + lo * s.sw + off, s.sw, wc[i * s.kw + j], hi - lo);
      }
    }
  }
}

template <typename T>
RUSTORCH_INLINE void grad_input_plane(const DepthwiseShape& s, const T* gp, const T* wc, T* xp) {
  for (int64_t k = 0; k < s.h * s.w; ++k) xp[k] = T(0);
  for (int64_t oh = 0; oh < s.oh; ++oh) {
    const T* g = gp + oh * s.ow;
    for (int64_t i = 0; i < s.kh; ++i) {
      const int64_t ih = oh * s.sh - s.ph + i * s.dh;
      if (ih < 0 || ih >= s.h) continue;
      T* xr = xp + ih * s.w;
      for (int64_t j = 0; j < s.kw; ++j) {
        const int64_t off = j * s.dw - s.pw;
        int64_t lo, hi;
        valid_cols(off, s.sw, s.w, s.ow, lo, hi);
        scatter_axpy(xr + lo * s.sw + off, s.sw, g + lo, wc[i * s.kw + j], hi - lo);
      }
    }
  }
}

// Lane sums of gw[c, tap] over one image's plane, added to acc[tap][lane].
template <typename T>
RUSTORCH_INLINE void grad_weight_plane(const DepthwiseShape& s, const T* gp, const T* xp,
                                       T* acc) {
  for (int64_t i = 0; i < s.kh; ++i)
    for (int64_t j = 0; j < s.kw; ++j) {
      T* a = acc + (i * s.kw + j) * kLanes;
      const int64_t off = j * s.dw - s.pw;
      int64_t lo, hi;
      valid_cols(off, s.sw, s.w, s.ow, lo, hi);
      for (int64_t oh = 0; oh < s.oh; ++oh) {
        const int64_t ih = oh * s.sh - s.ph + i * s.dh;
        if (ih < 0 || ih >= s.h) continue;
        dot_lanes(a, gp + oh * s.ow + lo, xp + ih * s.w + lo * s.sw + off, s.sw, hi - lo);
      }
    }
}

// One compiled copy of the per-plane loops per ISA.
template <typename T>
struct Baseline {
  static void forward(const DepthwiseShape& s, const T* x, const T* w, T b, T* o) {
    forward_plane(s, x, w, b, o);
  }
  static void grad_input(const DepthwiseShape& s, const T* g, const T* w, T* gx) {
    grad_input_plane(s, g, w, gx);
  }
  static void grad_weight(const DepthwiseShape& s, const T* g, const T* x, T* acc) {
    grad_weight_plane(s, g, x, acc);
  }
};

template <typename T>
struct Avx2 {
  RUSTORCH_AVX2 static void forward(const DepthwiseShape& s, const T* x, const T* w, T b, T* o) {
    forward_plane(s, x, w, b, o);
  }
  RUSTORCH_AVX2 static void grad_input(const DepthwiseShape& s, const T* g, const T* w, T* gx) {
    grad_input_plane(s, g, w, gx);
  }
  RUSTORCH_AVX2 static void grad_weight(const DepthwiseShape& s, const T* g, const T* x, T* acc) {
    grad_weight_plane(s, g, x, acc);
  }
};

bool use_avx2() { return cpu::best_isa() >= cpu::Isa::avx2 && simd::has_avx2(); }

template <typename F>
void for_each_plane(const DepthwiseShape& s, const F& fn) {
  at::parallel_for(0, s.n * s.c, 1, [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) fn(plane, plane % s.c);
  });
}

template <typename T, template <typename> class Isa>
void forward_with(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* out) {
  const int64_t hw = s.h * s.w, ohw = s.oh * s.ow, kk = s.kh * s.kw;
  for_each_plane(s, [&](int64_t plane, int64_t c) {
    Isa<T>::forward(s, x + plane * hw, w + c * kk, bias != nullptr ? bias[c] : T(0),
                    out + plane * ohw);
  });
}

template <typename T, template <typename> class Isa>
void grad_input_with(const DepthwiseShape& s, const T* go, const T* w, T* gx) {
  const int64_t hw = s.h * s.w, ohw = s.oh * s.ow, kk = s.kh * s.kw;
  for_each_plane(s, [&](int64_t plane, int64_t c) {
    Isa<T>::grad_input(s, go + plane * ohw, w + c * kk, gx + plane * hw);
  });
}

template <typename T, template <typename> class Isa>
void grad_weight_with(const DepthwiseShape& s, const T* go, const T* x, T* gw) {
  const int64_t hw = s.h * s.w, ohw = s.oh * s.ow, kk = s.kh * s.kw;
  at::parallel_for(0, s.c, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> acc(kk * kLanes);
    for (int64_t c = begin; c < end; ++c) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t n = 0; n < s.n; ++n)
        Isa<T>::grad_weight(s, go + (n * s.c + c) * ohw, x + (n * s.c + c) * hw, acc.data());
      for (int64_t t = 0; t < kk; ++t) {
        T sum = T(0);
        for (int v = 0; v < kLanes; ++v) sum += acc[t * kLanes + v];
        gw[c * kk + t] = sum;
      }
    }
  });
}

}  // namespace

template <typename T>
void depthwise_forward(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* out) {
  if (use_avx2()) return forward_with<T, Avx2>(s, x, w, bias, out);
  forward_with<T, Baseline>(s, x, w, bias, out);
}

template <typename T>
void depthwise_grad_input(const DepthwiseShape& s, const T* go, const T* w, T* gx) {
  if (use_avx2()) return grad_input_with<T, Avx2>(s, go, w, gx);
  grad_input_with<T, Baseline>(s, go, w, gx);
}

template <typename T>
void depthwise_grad_weight(const DepthwiseShape& s, const T* go, const T* x, T* gw) {
  if (use_avx2()) return grad_weight_with<T, Avx2>(s, go, x, gw);
  grad_weight_with<T, Baseline>(s, go, x, gw);
}

template void depthwise_forward<float>(const DepthwiseShape&, const float*, const float*,
                                       const float*, float*);
template void depthwise_forward<double>(const DepthwiseShape&, const double*, const double*,
                                        const double*, double*);
template void depthwise_grad_input<float>(const DepthwiseShape&, const float*, const float*,
                                          float*);
template void depthwise_grad_input<double>(const DepthwiseShape&, const double*, const double*,
                                           double*);
template void depthwise_grad_weight<float>(const DepthwiseShape&, const float*, const float*,
                                           float*);
template void depthwise_grad_weight<double>(const DepthwiseShape&, const double*, const double*,
                                            double*);

}  // namespace rustorch::kernels
