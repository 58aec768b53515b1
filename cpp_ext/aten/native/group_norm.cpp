#include "aten/native/group_norm.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>

#include <cmath>
#include <vector>

#include "aten/native/norm_args.h"

namespace rustorch::native {
namespace {

using norm::data_or_null;
using norm::defined;
using norm::mutable_data_or_null;

bool param_ok(const std::optional<at::Tensor>& t, const at::Tensor& input, int64_t c) {
  return !defined(t) || (t->numel() == c && t->scalar_type() == input.scalar_type());
}

bool input_ok(const at::Tensor& x, int64_t n, int64_t c, int64_t hxw, int64_t group) {
  const auto st = x.scalar_type();
  return (st == at::kFloat || st == at::kDouble) && x.dim() >= 2 && n > 0 && c > 0 && hxw > 0 &&
         group > 0 && c % group == 0 && x.size(0) == n && x.size(1) == c &&
         x.numel() == n * c * hxw && x.suggest_memory_format() == at::MemoryFormat::Contiguous;
}

// Sum of len values (as double) in 4 fixed partial sums.
template <typename T, typename F>
double sum4(int64_t len, const F& term) {
  double s[4] = {0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 4 <= len; j += 4)
    for (int k = 0; k < 4; ++k) s[k] += term(j + k);
  for (; j < len; ++j) s[0] += term(j);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <typename T>
void forward_impl(const T* x, const T* w, const T* b, int64_t n, int64_t c, int64_t hxw,
                  int64_t group, double eps, T* y, T* mean_out, T* rstd_out) {
  const int64_t d = c / group, len = d * hxw;
  at::parallel_for(0, n * group, std::max<int64_t>(1, 16384 / len), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * len;
      const double mean = sum4<T>(len, [&](int64_t j) { return double(xr[j]); }) / len;
      const double var = sum4<T>(len, [&](int64_t j) {
        const double v = double(xr[j]) - mean;
        return v * v;
      }) / len;
      const double rstd = 1.0 / std::sqrt(var + eps);
      mean_out[r] = static_cast<T>(mean);
      rstd_out[r] = static_cast<T>(rstd);
      const T mt = static_cast<T>(mean), rt = static_cast<T>(rstd);
      const int64_t c0 = (r % group) * d;
      T* yr = y + r * len;
      for (int64_t k = 0; k < d; ++k) {
        const T* xc = xr + k * hxw;
        T* yc = yr + k * hxw;
        const T wc = w ? w[c0 + k] : T(1), bc = b ? b[c0 + k] : T(0);
        for (int64_t j = 0; j < hxw; ++j) yc[j] = (xc[j] - mt) * rt * wc + bc;
      }
    }
  });
}

// ATen's formulas (GroupNormKernel.cpp), in double: per (n, c) ds = sum dy * x, db = sum dy;
// dx = rstd * w_c * dy + c2 * x + c3 with per-group c2, c3; dw_c = sum_n (ds - db * mean) * rstd;
// db_c = sum_n db.
template <typename T>
void backward_impl(const T* dy, const T* x, const T* mean, const T* rstd, const T* w, int64_t n,
                   int64_t c, int64_t hxw, int64_t group, T* dx, T* dw, T* db) {
  const int64_t d = c / group, len = d * hxw;
  std::vector<double> ds(n * c), dbs(n * c);
  at::parallel_for(0, n * c, std::max<int64_t>(1, 16384 / hxw), [&](int64_t begin, int64_t end) {
    for (int64_t nc = begin; nc < end; ++nc) {
      const T* g = dy + nc * hxw;
      const T* xc = x + nc * hxw;
      ds[nc] = sum4<T>(hxw, [&](int64_t j) { return double(g[j]) * double(xc[j]); });
      dbs[nc] = sum4<T>(hxw, [&](int64_t j) { return double(g[j]); });
    }
  });
  if (dx) {
    const double s = 1.0 / static_cast<double>(len);
    at::parallel_for(0, n * group, std::max<int64_t>(1, 16384 / len), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t c0 = (r % group) * d, nc0 = (r / group) * c + c0;
        const double mu = double(mean[r]), rs = double(rstd[r]);
        double ds_g = 0, db_g = 0;
        for (int64_t k = 0; k < d; ++k) {
          const double wc = w ? double(w[c0 + k]) : 1.0;
          ds_g += ds[nc0 + k] * wc;
          db_g += dbs[nc0 + k] * wc;
        }
        const double c2 = (db_g * mu - ds_g) * rs * rs * rs * s;
        const double c3 = -c2 * mu - db_g * rs * s;
        for (int64_t k = 0; k < d; ++k) {
          const double c1 = rs * (w ? double(w[c0 + k]) : 1.0);
          const int64_t off = r * len + k * hxw;
          for (int64_t j = 0; j < hxw; ++j)
            dx[off + j] = static_cast<T>(c1 * double(dy[off + j]) + c2 * double(x[off + j]) + c3);
        }
      }
    });
  }
  if (dw || db) {
    at::parallel_for(0, c, 64, [&](int64_t begin, int64_t end) {
      for (int64_t ch = begin; ch < end; ++ch) {
        double sw = 0, sb = 0;
        for (int64_t i = 0; i < n; ++i) {
          const int64_t r = i * group + ch / d;
          sw += (ds[i * c + ch] - dbs[i * c + ch] * double(mean[r])) * double(rstd[r]);
          sb += dbs[i * c + ch];
        }
        if (dw) dw[ch] = static_cast<T>(sw);
        if (db) db[ch] = static_cast<T>(sb);
      }
    });
  }
}

}  // namespace

bool native_group_norm_ok(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias, int64_t N, int64_t C,
                          int64_t HxW, int64_t group, double) {
  return input_ok(input, N, C, HxW, group) && param_ok(weight, input, C) &&
         param_ok(bias, input, C);
}

bool native_group_norm_backward_ok(const at::Tensor& grad_out, const at::Tensor& input,
                                   const at::Tensor& mean, const at::Tensor& rstd,
                                   const std::optional<at::Tensor>& weight, int64_t N, int64_t C,
                                   int64_t HxW, int64_t group, std::array<bool, 3>) {
  return input_ok(input, N, C, HxW, group) && grad_out.sizes() == input.sizes() &&
         grad_out.scalar_type() == input.scalar_type() && mean.numel() == N * group &&
         rstd.numel() == N * group && mean.scalar_type() == input.scalar_type() &&
         rstd.scalar_type() == input.scalar_type() && param_ok(weight, input, C);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_group_norm(
    const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, int64_t N, int64_t C, int64_t HxW, int64_t group,
    double eps) {
  const at::Tensor x = input.contiguous();
  const at::Tensor w = defined(weight) ? weight->contiguous() : at::Tensor();
  const at::Tensor b = defined(bias) ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty(x.sizes(), x.options());
  at::Tensor mean = at::empty({N, group}, x.options());
  at::Tensor rstd = at::empty({N, group}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_group_norm", [&] {
    forward_impl<scalar_t>(x.const_data_ptr<scalar_t>(), data_or_null<scalar_t>(w),
                           data_or_null<scalar_t>(b), N, C, HxW, group, eps,
                           y.mutable_data_ptr<scalar_t>(), mean.mutable_data_ptr<scalar_t>(),
                           rstd.mutable_data_ptr<scalar_t>());
  });
  return {y, mean, rstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_group_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& mean,
    const at::Tensor& rstd, const std::optional<at::Tensor>& weight, int64_t N, int64_t C,
    int64_t HxW, int64_t group, std::array<bool, 3> output_mask) {
  const std::array<int64_t, 1> bias_sizes{C};  // group_norm's bias gradient always has C values
  const norm::BackwardBuffers b =
      norm::backward_buffers(grad_out, input, mean, rstd, weight, bias_sizes, output_mask);
  AT_DISPATCH_FLOATING_TYPES(b.x.scalar_type(), "rustorch_group_norm_backward", [&] {
    backward_impl<scalar_t>(b.dy.const_data_ptr<scalar_t>(), b.x.const_data_ptr<scalar_t>(),
                            b.mean.const_data_ptr<scalar_t>(), b.rstd.const_data_ptr<scalar_t>(),
                            data_or_null<scalar_t>(b.weight), N, C, HxW, group,
                            mutable_data_or_null<scalar_t>(b.dx),
                            mutable_data_or_null<scalar_t>(b.dweight),
                            mutable_data_or_null<scalar_t>(b.dbias));
  });
  return {b.dx, b.dweight, b.dbias};
}

}  // namespace rustorch::native
