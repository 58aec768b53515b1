#include "aten/native/layer_norm.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <cmath>
#include <vector>

#include "aten/native/norm_args.h"
#include "kernels/simd_math.h"

namespace rustorch::native {
namespace simd = ::rustorch::kernels::simd;
namespace {

using norm::data_or_null;
using norm::defined;
using norm::mutable_data_or_null;

// M rows of N values: N = prod(normalized_shape), M = everything before it.
std::pair<int64_t, int64_t> rows_cols(const at::Tensor& input, at::IntArrayRef normalized_shape) {
  int64_t n = 1;
  for (int64_t s : normalized_shape) n *= s;
  return {n == 0 ? 0 : input.numel() / n, n};
}

bool shape_ok(const at::Tensor& input, at::IntArrayRef normalized_shape) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  if (k == 0 || input.dim() < k) return false;
  for (int64_t i = 0; i < k; ++i)
    if (input.size(input.dim() - k + i) != normalized_shape[i]) return false;
  return true;
}

bool param_ok(const std::optional<at::Tensor>& t, const at::Tensor& input, int64_t n) {
  return !defined(t) || (t->numel() == n && t->scalar_type() == input.scalar_type() &&
                         t->device() == input.device());
}

bool float_input(const at::Tensor& x) {
  return (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) && x.numel() > 0;
}

// Shape of mean / rstd: the leading dims, then 1 for each normalized dim (as ATen).
std::vector<int64_t> stat_shape(const at::Tensor& input, at::IntArrayRef normalized_shape) {
  std::vector<int64_t> shape(input.sizes().begin(), input.sizes().end());
  for (size_t i = shape.size() - normalized_shape.size(); i < shape.size(); ++i) shape[i] = 1;
  return shape;
}

constexpr int64_t kRowsPerChunk = 32;  // weight/bias gradient partials: fixed, thread-independent

template <typename T>
void forward_impl(const T* x, const T* w, const T* b, int64_t m, int64_t n, double eps, T* y,
                  T* mean_out, T* rstd_out) {
  at::parallel_for(0, m, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * n;
      double s[4] = {0, 0, 0, 0};
      int64_t j = 0;
      for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(xr[j + k]);
      for (; j < n; ++j) s[0] += static_cast<double>(xr[j]);
      const double mean = ((s[0] + s[1]) + (s[2] + s[3])) / static_cast<double>(n);
      double q[4] = {0, 0, 0, 0};
      j = 0;
      for (; j + 4 <= n; j += 4)
        for (int k = 0; k < 4; ++k) {
          const double d = static_cast<double>(xr[j + k]) - mean;
          q[k] += d * d;
        }
      for (; j < n; ++j) {
        const double d = static_cast<double>(xr[j]) - mean;
        q[0] += d * d;
      }
      const double rstd = 1.0 / std::sqrt(((q[0] + q[1]) + (q[2] + q[3])) / n + eps);
      mean_out[r] = static_cast<T>(mean);
      rstd_out[r] = static_cast<T>(rstd);
      const T mt = static_cast<T>(mean), rt = static_cast<T>(rstd);
      T* yr = y + r * n;
      for (j = 0; j < n; ++j) {
        T v = (xr[j] - mt) * rt;
        if (w) v = v * w[j];
        if (b) v = v + b[j];
        yr[j] = v;
      }
    }
  });
}

// dx of one row: a = mean(dy * w), c = mean(dy * w * xhat), dx = rstd * (dy * w - a - xhat * c).
// The sums run in kAcc interleaved double accumulators combined in a fixed order (the same
// result at any thread count; independent chains instead of one serial add chain), and the row
// is compiled for the baseline ISA and for AVX2 (picked at run time, same operations and order).
constexpr int64_t kAcc = 4;
template <typename T>
[[gnu::always_inline]] inline void dx_row(const T* dyr, const T* xr, const T* w, int64_t n,
                                          double mu, double rs, T* dxr) {
  auto grad = [&](int64_t j) {
    return static_cast<double>(dyr[j]) * (w ? static_cast<double>(w[j]) : 1.0);
  };
  double as[kAcc] = {}, cs[kAcc] = {};
  int64_t j = 0;
  for (; j + kAcc <= n; j += kAcc)
    for (int64_t u = 0; u < kAcc; ++u) {
      const double g = grad(j + u);
      as[u] += g;
      cs[u] += g * (static_cast<double>(xr[j + u]) - mu) * rs;
    }
  double a = (as[0] + as[1]) + (as[2] + as[3]), c = (cs[0] + cs[1]) + (cs[2] + cs[3]);
  for (; j < n; ++j) {
    const double g = grad(j);
    a += g;
    c += g * (static_cast<double>(xr[j]) - mu) * rs;
  }
  a /= n;
  c /= n;
  for (int64_t k = 0; k < n; ++k) {
    const double xhat = (static_cast<double>(xr[k]) - mu) * rs;
    dxr[k] = static_cast<T>(rs * (grad(k) - a - xhat * c));
  }
}
template <typename T>
RUSTORCH_AVX2 void dx_row_avx2(const T* dyr, const T* xr, const T* w, int64_t n, double mu,
                               double rs, T* dxr) {
  dx_row(dyr, xr, w, n, mu, rs, dxr);
}
template <typename T>
void dx_row_default(const T* dyr, const T* xr, const T* w, int64_t n, double mu, double rs,
                    T* dxr) {
  dx_row(dyr, xr, w, n, mu, rs, dxr);
}

// One row's terms of the weight and bias gradients, added to the chunk's partial sums.
template <typename T>
[[gnu::always_inline]] inline void dwdb_row(const T* dyr, const T* xr, int64_t n, double mu,
                                            double rs, double* pw, double* pb) {
  if (pw)
    for (int64_t j = 0; j < n; ++j)
      pw[j] += static_cast<double>(dyr[j]) * ((static_cast<double>(xr[j]) - mu) * rs);
  if (pb)
    for (int64_t j = 0; j < n; ++j) pb[j] += static_cast<double>(dyr[j]);
}
template <typename T>
RUSTORCH_AVX2 void dwdb_row_avx2(const T* dyr, const T* xr, int64_t n, double mu, double rs,
                                 double* pw, double* pb) {
  dwdb_row(dyr, xr, n, mu, rs, pw, pb);
}
template <typename T>
void dwdb_row_default(const T* dyr, const T* xr, int64_t n, double mu, double rs, double* pw,
                      double* pb) {
  dwdb_row(dyr, xr, n, mu, rs, pw, pb);
}

template <typename T>
void backward_impl(const T* dy, const T* x, const T* mean, const T* rstd, const T* w, int64_t m,
                   int64_t n, T* dx, T* dw, T* db) {
  if (dx) {
    const bool avx2 = simd::has_avx2();
    at::parallel_for(0, m, std::max<int64_t>(1, 16384 / n), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
        if (avx2) {
          dx_row_avx2(dy + r * n, x + r * n, w, n, mu, rs, dx + r * n);
        } else {
          dx_row_default(dy + r * n, x + r * n, w, n, mu, rs, dx + r * n);
        }
      }
    });
  }
  if (dw || db) {
    const bool avx2 = simd::has_avx2();
    const int64_t chunks = (m + kRowsPerChunk - 1) / kRowsPerChunk;
    std::vector<double> pw(dw ? chunks * n : 0, 0.0), pb(db ? chunks * n : 0, 0.0);
    at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        const int64_t r_end = std::min(m, (k + 1) * kRowsPerChunk);
        for (int64_t r = k * kRowsPerChunk; r < r_end; ++r) {
          const T* dyr = dy + r * n;
          const T* xr = x + r * n;
          const double mu = static_cast<double>(mean[r]), rs = static_cast<double>(rstd[r]);
          double* p_w = dw ? pw.data() + k * n : nullptr;
          double* p_b = db ? pb.data() + k * n : nullptr;
          if (avx2) {
            dwdb_row_avx2(dyr, xr, n, mu, rs, p_w, p_b);
          } else {
            dwdb_row_default(dyr, xr, n, mu, rs, p_w, p_b);
          }
        }
      }
    });
    at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        double sw = 0, sb = 0;
        for (int64_t k = 0; k < chunks; ++k) {
          if (dw) sw += pw[k * n + j];
          if (db) sb += pb[k * n + j];
        }
        if (dw) dw[j] = static_cast<T>(sw);
        if (db) db[j] = static_cast<T>(sb);
      }
    });
  }
}

}  // namespace

bool native_layer_norm_ok(const at::Tensor& input, at::IntArrayRef normalized_shape,
                          const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias, double) {
  if (!float_input(input) || !shape_ok(input, normalized_shape)) return false;
  const int64_t n = rows_cols(input, normalized_shape).second;
  return n > 0 && param_ok(weight, input, n) && param_ok(bias, input, n);
}

bool native_layer_norm_backward_ok(
    const at::Tensor& grad_out, const at::Tensor& input, at::IntArrayRef normalized_shape,
    const at::Tensor& mean, const at::Tensor& rstd, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, std::array<bool, 3>) {
  if (!float_input(input) || !shape_ok(input, normalized_shape)) return false;
  const auto [m, n] = rows_cols(input, normalized_shape);
  return n > 0 && grad_out.sizes() == input.sizes() &&
         grad_out.scalar_type() == input.scalar_type() && mean.numel() == m &&
         rstd.numel() == m && mean.scalar_type() == input.scalar_type() &&
         rstd.scalar_type() == input.scalar_type() && param_ok(weight, input, n) &&
         param_ok(bias, input, n);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_layer_norm(
    const at::Tensor& input, at::IntArrayRef normalized_shape,
    const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias, double eps) {
  const auto [m, n] = rows_cols(input, normalized_shape);
  const at::Tensor x = input.contiguous();
  const at::Tensor w = defined(weight) ? weight->contiguous() : at::Tensor();
  const at::Tensor b = defined(bias) ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty(x.sizes(), x.options());
  const auto shape = stat_shape(input, normalized_shape);
  at::Tensor mean = at::empty(shape, x.options());
  at::Tensor rstd = at::empty(shape, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_layer_norm", [&] {
    forward_impl<scalar_t>(x.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
                           data_or_null<scalar_t>(b), m, n, eps, y.data_ptr<scalar_t>(),
                           mean.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>());
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_layer_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, at::IntArrayRef normalized_shape,
    const at::Tensor& mean, const at::Tensor& rstd, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, std::array<bool, 3> output_mask) {
  const auto [m, n] = rows_cols(input, normalized_shape);
  const norm::BackwardBuffers b = norm::backward_buffers(
      grad_out, input, mean, rstd, weight,
      defined(bias) ? std::optional<at::IntArrayRef>(bias->sizes()) : std::nullopt, output_mask);
  AT_DISPATCH_FLOATING_TYPES(b.x.scalar_type(), "rustorch_layer_norm_backward", [&] {
    backward_impl<scalar_t>(b.dy.const_data_ptr<scalar_t>(), b.x.const_data_ptr<scalar_t>(),
                            b.mean.const_data_ptr<scalar_t>(), b.rstd.const_data_ptr<scalar_t>(),
                            data_or_null<scalar_t>(b.weight), m, n,
                            mutable_data_or_null<scalar_t>(b.dx),
                            mutable_data_or_null<scalar_t>(b.dweight),
                            mutable_data_or_null<scalar_t>(b.dbias));
  });
  return {b.dx, b.dweight, b.dbias};
}

}  // namespace rustorch::native
