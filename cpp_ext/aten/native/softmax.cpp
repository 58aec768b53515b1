// Softmax family. Rows along the last dimension (the cross-entropy case) use AVX2 with a
// vectorized exp; other dimensions run column-wise. Each output row is computed by one thread
// in a fixed order, so results do not depend on the thread count.
#include "aten/native/softmax.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/WrapDimUtils.h>

#include <cmath>
#include <limits>
#include <vector>

#include "kernels/simd_math.h"

namespace rustorch::native {
using namespace ::rustorch::kernels;  // raw compute: gemm, simd helpers
namespace {

struct Split {
  int64_t outer = 1, dim = 1, inner = 1;
};

Split split_at(const at::Tensor& t, int64_t dim) {
  Split s;
  if (t.dim() == 0) return s;
  for (int64_t i = 0; i < dim; ++i) s.outer *= t.size(i);
  s.dim = t.size(dim);
  for (int64_t i = dim + 1; i < t.dim(); ++i) s.inner *= t.size(i);
  return s;
}

// ---- rows (inner == 1), scalar code: double, and float without AVX2 -------------------------

template <typename T, bool kLog>
void forward_row_scalar(const T* x, T* y, int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    T e = std::exp(x[i] - m);
    if (!kLog) y[i] = e;
    sum += e;
  }
  if (kLog) {
    const T ls = std::log(sum);
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) - ls;
  } else {
    const T inv = T(1) / sum;
    for (int64_t i = 0; i < n; ++i) y[i] *= inv;
  }
}

template <typename T, bool kLog>
void backward_row_scalar(const T* g, const T* y, T* gi, int64_t n) {
  T s = 0;
  if (kLog) {
    for (int64_t i = 0; i < n; ++i) s += g[i];
    for (int64_t i = 0; i < n; ++i) gi[i] = g[i] - std::exp(y[i]) * s;
  } else {
    for (int64_t i = 0; i < n; ++i) s += g[i] * y[i];
    for (int64_t i = 0; i < n; ++i) gi[i] = y[i] * (g[i] - s);
  }
}

// ---- rows, AVX2 float ------------------------------------------------------------------------

template <bool kLog>
RUSTORCH_AVX2 void forward_row_avx2(const float* x, float* y, int64_t n) {
  using namespace simd;
  const int64_t nv = n & ~int64_t(7);
  const __m256i tm = tail_mask(n - nv);
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 vm = ninf;
  for (int64_t i = 0; i < nv; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
  if (nv < n) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + nv, tm),
                                                      _mm256_castsi256_ps(tm)));
  const __m256 m = _mm256_set1_ps(hmax(vm));
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nv; i += 8) {
    __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    if (!kLog) _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (nv < n) {
    __m256 xt = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + nv, tm), _mm256_castsi256_ps(tm));
    __m256 e = exp8(_mm256_sub_ps(xt, m));
    if (!kLog) _mm256_maskstore_ps(y + nv, tm, e);
    acc = _mm256_add_ps(acc, e);
  }
  const float sum = hsum(acc);
  if (kLog) {
    const __m256 ls = _mm256_set1_ps(std::log(sum));
    for (int64_t i = 0; i < nv; i += 8)
      _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), m), ls));
    if (nv < n)
      _mm256_maskstore_ps(y + nv, tm,
                          _mm256_sub_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, tm), m), ls));
  } else {
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (int64_t i = 0; i < nv; i += 8)
      _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
    if (nv < n)
      _mm256_maskstore_ps(y + nv, tm, _mm256_mul_ps(_mm256_maskload_ps(y + nv, tm), inv));
  }
}

// log_softmax: g - exp(y) * s;  softmax: y * (g - s).
template <bool kLog>
RUSTORCH_AVX2 inline __m256 backward_body(__m256 gv, __m256 yv, __m256 s) {
  return kLog ? _mm256_fnmadd_ps(simd::exp8(yv), s, gv) : _mm256_mul_ps(yv, _mm256_sub_ps(gv, s));
}

template <bool kLog>
RUSTORCH_AVX2 void backward_row_avx2(const float* g, const float* y, float* gi, int64_t n) {
  using namespace simd;
  const int64_t nv = n & ~int64_t(7);
  const __m256i tm = tail_mask(n - nv);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nv; i += 8) {
    __m256 gv = _mm256_loadu_ps(g + i);
    acc = kLog ? _mm256_add_ps(acc, gv) : _mm256_fmadd_ps(gv, _mm256_loadu_ps(y + i), acc);
  }
  if (nv < n) {
    __m256 gv = _mm256_maskload_ps(g + nv, tm);
    acc = kLog ? _mm256_add_ps(acc, gv)
               : _mm256_fmadd_ps(gv, _mm256_maskload_ps(y + nv, tm), acc);
  }
  const __m256 s = _mm256_set1_ps(hsum(acc));
  for (int64_t i = 0; i < nv; i += 8)
    _mm256_storeu_ps(gi + i, backward_body<kLog>(_mm256_loadu_ps(g + i), _mm256_loadu_ps(y + i), s));
  if (nv < n)
    _mm256_maskstore_ps(gi + nv, tm, backward_body<kLog>(_mm256_maskload_ps(g + nv, tm),
                                                         _mm256_maskload_ps(y + nv, tm), s));
}

// ---- columns (inner > 1): vectorizable loops over the contiguous inner index ---------------

template <typename T, bool kLog>
void forward_cols(const T* x, T* y, int64_t d, int64_t inner) {
  std::vector<T> m(inner, -std::numeric_limits<T>::infinity()), sum(inner, T(0));
  for (int64_t k = 0; k < d; ++k) {
    const T* xr = x + k * inner;
    for (int64_t j = 0; j < inner; ++j) m[j] = xr[j] > m[j] ? xr[j] : m[j];
  }
  for (int64_t k = 0; k < d; ++k) {
    const T* xr = x + k * inner;
    T* yr = y + k * inner;
    for (int64_t j = 0; j < inner; ++j) {
      T e = std::exp(xr[j] - m[j]);
      if (!kLog) yr[j] = e;
      sum[j] += e;
    }
  }
  if (kLog) {
    for (int64_t j = 0; j < inner; ++j) sum[j] = std::log(sum[j]);
  } else {
    for (int64_t j = 0; j < inner; ++j) sum[j] = T(1) / sum[j];
  }
  for (int64_t k = 0; k < d; ++k) {
    const T* xr = x + k * inner;
    T* yr = y + k * inner;
    for (int64_t j = 0; j < inner; ++j) yr[j] = kLog ? (xr[j] - m[j]) - sum[j] : yr[j] * sum[j];
  }
}

template <typename T, bool kLog>
void backward_cols(const T* g, const T* y, T* gi, int64_t d, int64_t inner) {
  std::vector<T> s(inner, T(0));
  for (int64_t k = 0; k < d; ++k) {
    const T* gr = g + k * inner;
    const T* yr = y + k * inner;
    for (int64_t j = 0; j < inner; ++j) s[j] += kLog ? gr[j] : gr[j] * yr[j];
  }
  for (int64_t k = 0; k < d; ++k) {
    const T* gr = g + k * inner;
    const T* yr = y + k * inner;
    T* o = gi + k * inner;
    for (int64_t j = 0; j < inner; ++j)
      o[j] = kLog ? gr[j] - std::exp(yr[j]) * s[j] : yr[j] * (gr[j] - s[j]);
  }
}

// ---- drivers ---------------------------------------------------------------------------------

int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, work_per_item));
}

template <typename T, bool kLog>
void forward_impl(const T* x, T* y, const Split& s) {
  const int64_t block = s.dim * s.inner;
  at::parallel_for(0, s.outer, grain_for(block), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      if (s.inner == 1) {
        if constexpr (std::is_same_v<T, float>) {
          if (simd::has_avx2()) {
            forward_row_avx2<kLog>(x + o * block, y + o * block, s.dim);
            continue;
          }
        }
        forward_row_scalar<T, kLog>(x + o * block, y + o * block, s.dim);
      } else {
        forward_cols<T, kLog>(x + o * block, y + o * block, s.dim, s.inner);
      }
    }
  });
}

template <typename T, bool kLog>
void backward_impl(const T* g, const T* y, T* gi, const Split& s) {
  const int64_t block = s.dim * s.inner;
  at::parallel_for(0, s.outer, grain_for(block), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      const int64_t off = o * block;
      if (s.inner == 1) {
        if constexpr (std::is_same_v<T, float>) {
          if (simd::has_avx2()) {
            backward_row_avx2<kLog>(g + off, y + off, gi + off, s.dim);
            continue;
          }
        }
        backward_row_scalar<T, kLog>(g + off, y + off, gi + off, s.dim);
      } else {
        backward_cols<T, kLog>(g + off, y + off, gi + off, s.dim, s.inner);
      }
    }
  });
}

template <bool kLog>
at::Tensor forward(const at::Tensor& self, int64_t dim, bool half_to_float) {
  TORCH_CHECK(!half_to_float, "softmax with half_to_float=True expects a Half input, got ",
              self.scalar_type());
  TORCH_CHECK(softmax_supported(self), "rustorch softmax: unsupported input ", self.toString());
  dim = at::maybe_wrap_dim(dim, self.dim());
  at::Tensor x = self.contiguous();
  at::Tensor y = at::empty(self.sizes(), self.options());
  if (self.numel() == 0) return y;
  const Split s = split_at(x, dim);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_softmax", [&] {
    forward_impl<scalar_t, kLog>(x.const_data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), s);
  });
  return y;
}

template <bool kLog>
at::Tensor backward(const at::Tensor& grad_output, const at::Tensor& output, int64_t dim,
                    at::ScalarType input_dtype) {
  TORCH_CHECK(grad_output.sizes() == output.sizes(), "softmax backward: grad_output shape ",
              grad_output.sizes(), " does not match output shape ", output.sizes());
  TORCH_CHECK(softmax_supported(grad_output) && grad_output.scalar_type() == output.scalar_type() &&
                  input_dtype == output.scalar_type(),
              "rustorch softmax backward: unsupported dtypes");
  dim = at::maybe_wrap_dim(dim, output.dim());
  at::Tensor g = grad_output.contiguous();
  at::Tensor y = output.contiguous();
  at::Tensor gi = at::empty(output.sizes(), output.options());
  if (output.numel() == 0) return gi;
  const Split s = split_at(y, dim);
  AT_DISPATCH_FLOATING_TYPES(y.scalar_type(), "rustorch_softmax_backward", [&] {
    backward_impl<scalar_t, kLog>(g.const_data_ptr<scalar_t>(), y.const_data_ptr<scalar_t>(),
                                  gi.data_ptr<scalar_t>(), s);
  });
  return gi;
}

}  // namespace

bool softmax_supported(const at::Tensor& t) {
  return t.layout() == at::kStrided &&
         (t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble);
}

at::Tensor log_softmax(const at::Tensor& self, int64_t dim, bool half_to_float) {
  return forward<true>(self, dim, half_to_float);
}

at::Tensor softmax(const at::Tensor& self, int64_t dim, bool half_to_float) {
  return forward<false>(self, dim, half_to_float);
}

at::Tensor log_softmax_backward(const at::Tensor& grad_output, const at::Tensor& output,
                                int64_t dim, at::ScalarType input_dtype) {
  return backward<true>(grad_output, output, dim, input_dtype);
}

at::Tensor softmax_backward(const at::Tensor& grad_output, const at::Tensor& output, int64_t dim,
                            at::ScalarType input_dtype) {
  return backward<false>(grad_output, output, dim, input_dtype);
}

}  // namespace rustorch::native
