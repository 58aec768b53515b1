#include "aten/native/batch_norm.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>

#include <cmath>
#include <vector>

#include "aten/native/norm_args.h"

namespace rustorch::native {
namespace {

// The input seen as channels: `cl` = channels_last (rows of C contiguous values, rows = N*HW),
// else (N, C, inner) with `inner` contiguous values per (n, c) plane.
struct Layout {
  bool cl = false;
  int64_t n = 0, c = 0, inner = 0;
  int64_t rows() const { return n * inner; }
  int64_t per_channel() const { return n * inner; }
};

at::MemoryFormat format_of(const at::Tensor& t) {
  if (t.dim() == 4 && t.is_contiguous(at::MemoryFormat::ChannelsLast) && !t.is_contiguous())
    return at::MemoryFormat::ChannelsLast;
  if (t.dim() == 5 && t.is_contiguous(at::MemoryFormat::ChannelsLast3d) && !t.is_contiguous())
    return at::MemoryFormat::ChannelsLast3d;
  return at::MemoryFormat::Contiguous;
}

Layout layout_of(const at::Tensor& x, at::MemoryFormat fmt) {
  Layout l;
  l.cl = fmt != at::MemoryFormat::Contiguous;
  l.n = x.size(0);
  l.c = x.size(1);
  l.inner = x.dim() > 2 ? x.numel() / (l.n * l.c) : 1;
  return l;
}

constexpr int64_t kRowsPerChunk = 64;  // channels_last partial sums: fixed, thread-independent

// Per-channel sums s1[c] = sum f1, s2[c] = sum f2 over every element of channel c, where
// f(a, b, c, acc1, acc2) adds one element's contributions (b may be null). Partial sums per
// (n, c) plane or per chunk of rows, combined in index order: the same bits at any thread count.
template <typename T, typename F>
void channel_sums(const Layout& l, const T* a, const T* b, F f, std::vector<double>& s1,
                  std::vector<double>& s2) {
  const int64_t C = l.c;
  s1.assign(C, 0.0);
  s2.assign(C, 0.0);
  if (!l.cl) {
    std::vector<double> p1(l.n * C), p2(l.n * C);
    const int64_t inner = l.inner;
    at::parallel_for(0, l.n * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)),
                     [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t c = plane % C;
        const T* pa = a + plane * inner;
        const T* pb = b ? b + plane * inner : nullptr;
        double q1[4] = {0, 0, 0, 0}, q2[4] = {0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 4 <= inner; i += 4)
          for (int k = 0; k < 4; ++k) f(pa[i + k], pb ? pb[i + k] : T(0), c, q1[k], q2[k]);
        for (; i < inner; ++i) f(pa[i], pb ? pb[i] : T(0), c, q1[0], q2[0]);
        p1[plane] = (q1[0] + q1[1]) + (q1[2] + q1[3]);
        p2[plane] = (q2[0] + q2[1]) + (q2[2] + q2[3]);
      }
    });
    for (int64_t n = 0; n < l.n; ++n)
      for (int64_t c = 0; c < C; ++c) {
        s1[c] += p1[n * C + c];
        s2[c] += p2[n * C + c];
      }
    return;
  }
  const int64_t rows = l.rows();
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  std::vector<double> p1(chunks * C, 0.0), p2(chunks * C, 0.0);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      double* q1 = p1.data() + k * C;
      double* q2 = p2.data() + k * C;
      const int64_t r_end = std::min(rows, (k + 1) * kRowsPerChunk);
      for (int64_t r = k * kRowsPerChunk; r < r_end; ++r) {
        const T* ra = a + r * C;
        const T* rb = b ? b + r * C : nullptr;
        for (int64_t c = 0; c < C; ++c) f(ra[c], rb ? rb[c] : T(0), c, q1[c], q2[c]);
      }
    }
  });
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t c = 0; c < C; ++c) {
      s1[c] += p1[k * C + c];
      s2[c] += p2[k * C + c];
    }
}

// out = g(a, b, c) element-wise over the layout (b may be null).
template <typename T, typename G>
void channel_map(const Layout& l, const T* a, const T* b, T* out, G g) {
  const int64_t C = l.c;
  if (!l.cl) {
    const int64_t inner = l.inner;
    at::parallel_for(0, l.n * C, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)),
                     [&](int64_t begin, int64_t end) {
      for (int64_t plane = begin; plane < end; ++plane) {
        const int64_t c = plane % C;
        const int64_t off = plane * inner;
        for (int64_t i = 0; i < inner; ++i)
          out[off + i] = g(a[off + i], b ? b[off + i] : T(0), c);
      }
    });
    return;
  }
  at::parallel_for(0, l.rows(), std::max<int64_t>(1, 32768 / std::max<int64_t>(C, 1)),
                   [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t off = r * C;
      for (int64_t c = 0; c < C; ++c) out[off + c] = g(a[off + c], b ? b[off + c] : T(0), c);
    }
  });
}

// Per-channel values of an optional 1-D parameter as double (`fill` when absent).
template <typename T>
std::vector<double> param(const std::optional<at::Tensor>& t, int64_t C, double fill) {
  std::vector<double> v(C, fill);
  if (t.has_value() && t->defined()) {
    const at::Tensor tc = t->contiguous();
    const T* p = tc.const_data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) v[c] = static_cast<double>(p[c]);
  }
  return v;
}

using norm::defined;

// A per-channel parameter/statistic the kernel can read: absent, or 1-D of C values of the
// input's dtype on the input's device.
bool channel_vector_ok(const std::optional<at::Tensor>& t, const at::Tensor& input) {
  return !defined(t) || (t->dim() == 1 && t->numel() == input.size(1) &&
                         t->scalar_type() == input.scalar_type() && t->device() == input.device());
}

bool input_ok(const at::Tensor& x) {
  const auto st = x.scalar_type();
  return (st == at::kFloat || st == at::kDouble) && x.dim() >= 2 && x.numel() > 0;
}

template <typename T>
void forward_impl(const at::Tensor& x, const Layout& l, const std::optional<at::Tensor>& weight,
                  const std::optional<at::Tensor>& bias,
                  const std::optional<at::Tensor>& running_mean,
                  const std::optional<at::Tensor>& running_var, bool training, double momentum,
                  double eps, at::Tensor& out, at::Tensor& save_mean, at::Tensor& save_invstd) {
  const int64_t C = l.c;
  const T* xp = x.const_data_ptr<T>();
  std::vector<double> mean(C), invstd(C);
  if (training) {
    const double m = static_cast<double>(l.per_channel());
    std::vector<double> s1, unused;
    channel_sums<T>(l, xp, nullptr,
                    [](T v, T, int64_t, double& a1, double&) { a1 += static_cast<double>(v); },
                    s1, unused);
    for (int64_t c = 0; c < C; ++c) mean[c] = s1[c] / m;
    std::vector<double> var_sum;
    channel_sums<T>(l, xp, nullptr,
                    [&mean](T v, T, int64_t c, double& a1, double&) {
                      const double d = static_cast<double>(v) - mean[c];
                      a1 += d * d;
                    },
                    var_sum, unused);
    T* sm = save_mean.data_ptr<T>();
    T* si = save_invstd.data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) {
      invstd[c] = 1.0 / std::sqrt(var_sum[c] / m + eps);
      sm[c] = static_cast<T>(mean[c]);
      si[c] = static_cast<T>(invstd[c]);
    }
    // Running statistics take the unbiased variance, as ATen does.
    if (defined(running_mean)) {
      T* rm = running_mean->data_ptr<T>();
      for (int64_t c = 0; c < C; ++c)
        rm[c] = static_cast<T>(momentum * mean[c] + (1 - momentum) * static_cast<double>(rm[c]));
    }
    if (defined(running_var)) {
      T* rv = running_var->data_ptr<T>();
      for (int64_t c = 0; c < C; ++c)
        rv[c] = static_cast<T>(momentum * (var_sum[c] / (m - 1)) +
                               (1 - momentum) * static_cast<double>(rv[c]));
    }
  } else {
    mean = param<T>(running_mean, C, 0.0);
    const std::vector<double> var = param<T>(running_var, C, 1.0);
    for (int64_t c = 0; c < C; ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  }
  // y = x * scale + shift per channel, computed in T as ATen's CPU kernel does.
  const std::vector<double> w = param<T>(weight, C, 1.0);
  const std::vector<double> b = param<T>(bias, C, 0.0);
  std::vector<T> scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = static_cast<T>(invstd[c] * w[c]);
    shift[c] = static_cast<T>(b[c] - mean[c] * invstd[c] * w[c]);
  }
  channel_map<T>(l, xp, nullptr, out.data_ptr<T>(),
                 [&](T v, T, int64_t c) { return v * scale[c] + shift[c]; });
}

template <typename T>
void backward_impl(const at::Tensor& dy, const at::Tensor& x, const Layout& l,
                   const std::optional<at::Tensor>& weight,
                   const std::optional<at::Tensor>& running_mean,
                   const std::optional<at::Tensor>& running_var,
                   const std::optional<at::Tensor>& save_mean,
                   const std::optional<at::Tensor>& save_invstd, bool train, double eps,
                   std::array<bool, 3> mask, at::Tensor& gi, at::Tensor& gw, at::Tensor& gb) {
  const int64_t C = l.c;
  const T* xp = x.const_data_ptr<T>();
  const T* dyp = dy.const_data_ptr<T>();
  std::vector<double> mean(C), invstd(C);
  if (train) {
    mean = param<T>(save_mean, C, 0.0);
    invstd = param<T>(save_invstd, C, 1.0);
  } else {
    mean = param<T>(running_mean, C, 0.0);
    const std::vector<double> var = param<T>(running_var, C, 1.0);
    for (int64_t c = 0; c < C; ++c) invstd[c] = 1.0 / std::sqrt(var[c] + eps);
  }
  const std::vector<double> w = param<T>(weight, C, 1.0);
  std::vector<double> sum_dy, dot;
  channel_sums<T>(l, dyp, xp,
                  [&mean](T g, T v, int64_t c, double& a1, double& a2) {
                    a1 += static_cast<double>(g);
                    a2 += static_cast<double>(g) * (static_cast<double>(v) - mean[c]);
                  },
                  sum_dy, dot);
  if (mask[0]) {
    const double m = static_cast<double>(l.per_channel());
    std::vector<T> k(C), g(C), mean_t(C), mdy(C);
    for (int64_t c = 0; c < C; ++c) {
      g[c] = static_cast<T>(invstd[c] * w[c]);
      mean_t[c] = static_cast<T>(mean[c]);
      k[c] = train ? static_cast<T>(dot[c] / m * invstd[c] * invstd[c]) : T(0);
      mdy[c] = train ? static_cast<T>(sum_dy[c] / m) : T(0);
    }
    // train: dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy * (x - mean))) * invstd * w
    // eval:  dx = dy * invstd * w (the statistics are constants)
    channel_map<T>(l, dyp, xp, gi.data_ptr<T>(), [&](T gy, T v, int64_t c) {
      return (gy - mdy[c] - (v - mean_t[c]) * k[c]) * g[c];
    });
  }
  if (mask[1]) {
    T* p = gw.data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(dot[c] * invstd[c]);
  }
  if (mask[2]) {
    T* p = gb.data_ptr<T>();
    for (int64_t c = 0; c < C; ++c) p[c] = static_cast<T>(sum_dy[c]);
  }
}

}  // namespace

bool native_batch_norm_ok(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias,
                          const std::optional<at::Tensor>& running_mean,
                          const std::optional<at::Tensor>& running_var, bool training, double,
                          double) {
  if (!input_ok(input)) return false;
  for (const auto* t : {&weight, &bias, &running_mean, &running_var})
    if (!channel_vector_ok(*t, input)) return false;
  // Eval needs both running statistics; the running stats are written in place, so they must
  // be contiguous.
  if (!training && (!defined(running_mean) || !defined(running_var))) return false;
  for (const auto* t : {&running_mean, &running_var})
    if (defined(*t) && !(*t)->is_contiguous()) return false;
  return true;
}

bool native_batch_norm_backward_ok(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var,
    const std::optional<at::Tensor>& save_mean, const std::optional<at::Tensor>& save_invstd,
    bool train, double, std::array<bool, 3>) {
  if (!input_ok(input) || grad_out.scalar_type() != input.scalar_type() ||
      grad_out.sizes() != input.sizes())
    return false;
  for (const auto* t : {&weight, &running_mean, &running_var, &save_mean, &save_invstd})
    if (!channel_vector_ok(*t, input)) return false;
  if (train) return defined(save_mean) && defined(save_invstd);
  return defined(running_mean) && defined(running_var);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_batch_norm(
    const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& running_mean,
    const std::optional<at::Tensor>& running_var, bool training, double momentum, double eps) {
  const at::MemoryFormat fmt = format_of(input);
  const at::Tensor x = input.contiguous(fmt);
  const Layout l = layout_of(x, fmt);
  at::Tensor out = at::empty_like(x);
  // Eval returns empty saved statistics, as ATen's CPU kernel does.
  const int64_t saved = training ? l.c : 0;
  at::Tensor save_mean = at::empty({saved}, x.options());
  at::Tensor save_invstd = at::empty({saved}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_batch_norm", [&] {
    forward_impl<scalar_t>(x, l, weight, bias, running_mean, running_var, training, momentum, eps,
                           out, save_mean, save_invstd);
  });
  return {out, save_mean, save_invstd};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_batch_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& running_mean, const std::optional<at::Tensor>& running_var,
    const std::optional<at::Tensor>& save_mean, const std::optional<at::Tensor>& save_invstd,
    bool train, double eps, std::array<bool, 3> output_mask) {
  const at::MemoryFormat fmt = format_of(input);
  const at::Tensor x = input.contiguous(fmt);
  const at::Tensor dy = grad_out.contiguous(fmt);
  const Layout l = layout_of(x, fmt);
  at::Tensor gi, gw, gb;
  if (output_mask[0]) gi = at::empty_like(x);
  if (output_mask[1]) gw = at::empty({l.c}, x.options());
  if (output_mask[2]) gb = at::empty({l.c}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_batch_norm_backward", [&] {
    backward_impl<scalar_t>(dy, x, l, weight, running_mean, running_var, save_mean, save_invstd,
                            train, eps, output_mask, gi, gw, gb);
  });
  return {gi, gw, gb};
}

}  // namespace rustorch::native
