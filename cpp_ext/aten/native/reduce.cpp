#include "aten/native/reduce.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch_v2.h>
#include <ATen/Parallel.h>
#include <ATen/WrapDimUtilsMulti.h>
#include <ATen/native/Resize.h>

#include <bitset>
#include <cmath>
#include <vector>

#include "kernels/simd_math.h"

namespace rustorch::native {
using namespace ::rustorch::kernels;  // raw compute: gemm, simd helpers
namespace {

constexpr int64_t kChunk = 8192;  // elements per partial sum; fixed, never thread-dependent

template <typename Acc>
constexpr int lanes() {
  return 64 / int(sizeof(Acc));  // two AVX2 registers of accumulators
}

template <typename T, typename Acc>
[[gnu::always_inline]] inline Acc lane_sum_body(const T* x, int64_t n) {
  constexpr int L = lanes<Acc>();
  Acc acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) acc[l] += static_cast<Acc>(x[i + l]);
  for (int l = 0; i + l < n; ++l) acc[l] += static_cast<Acc>(x[i + l]);
  for (int w = L / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

template <typename T, typename Acc>
RUSTORCH_AVX2 Acc lane_sum_avx2(const T* x, int64_t n) {
  return lane_sum_body<T, Acc>(x, n);
}

template <typename T, typename Acc>
Acc lane_sum(const T* x, int64_t n) {
  return simd::has_avx2() ? lane_sum_avx2<T, Acc>(x, n) : lane_sum_body<T, Acc>(x, n);
}

// out[j] (+)= sum_r x[r * inner + j], r in order: vectorizes over j.
template <typename T, typename Acc>
[[gnu::always_inline]] inline void col_sum_body(const T* x, Acc* out, int64_t rows,
                                                int64_t inner, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j) out[j] = Acc(0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * inner;
    for (int64_t j = j0; j < j1; ++j) out[j] += static_cast<Acc>(xr[j]);
  }
}

template <typename T, typename Acc>
RUSTORCH_AVX2 void col_sum_avx2(const T* x, Acc* out, int64_t rows, int64_t inner, int64_t j0,
                                int64_t j1) {
  col_sum_body<T, Acc>(x, out, rows, inner, j0, j1);
}

template <typename T, typename Acc>
void col_sum(const T* x, Acc* out, int64_t rows, int64_t inner, int64_t j0, int64_t j1) {
  if (simd::has_avx2()) {
    col_sum_avx2<T, Acc>(x, out, rows, inner, j0, j1);
  } else {
    col_sum_body<T, Acc>(x, out, rows, inner, j0, j1);
  }
}

// Sum of a contiguous (outer, R, inner) view over R into out (outer, inner).
template <typename T, typename Acc>
void sum_kernel(const T* x, Acc* out, int64_t outer, int64_t r, int64_t inner) {
  if (inner == 1) {
    const int64_t chunks = std::max<int64_t>(1, (r + kChunk - 1) / kChunk);
    if (chunks == 1) {
      at::parallel_for(0, outer, std::max<int64_t>(1, 32768 / std::max<int64_t>(r, 1)),
                       [&](int64_t b, int64_t e) {
                         for (int64_t o = b; o < e; ++o) out[o] = lane_sum<T, Acc>(x + o * r, r);
                       });
      return;
    }
    std::vector<Acc> part(outer * chunks);
    at::parallel_for(0, outer * chunks, 2, [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) {
        const int64_t o = k / chunks, c = k % chunks;
        const int64_t s = c * kChunk, n = std::min(kChunk, r - s);
        part[k] = lane_sum<T, Acc>(x + o * r + s, n);
      }
    });
    for (int64_t o = 0; o < outer; ++o) {
      Acc acc = part[o * chunks];
      for (int64_t c = 1; c < chunks; ++c) acc += part[o * chunks + c];
      out[o] = acc;
    }
    return;
  }
  constexpr int64_t kCols = 256;
  const int64_t col_blocks = (inner + kCols - 1) / kCols;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, r * kCols));
  at::parallel_for(0, outer * col_blocks, grain, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t o = k / col_blocks, cb = k % col_blocks;
      const int64_t j0 = cb * kCols, j1 = std::min(inner, j0 + kCols);
      col_sum<T, Acc>(x + o * r * inner, out + o * inner, r, inner, j0, j1);
    }
  });
}

struct Plan {
  at::Tensor input;  // contiguous data laid out as (outer, r, inner)
  int64_t outer = 1, r = 1, inner = 1;
};

// Lays the input out so the reduced dims form one contiguous run: no copy when they already
// are (contiguous input, adjacent reduced dims); otherwise kept dims first, then reduced.
Plan plan(const at::Tensor& self, const std::bitset<64>& mask) {
  Plan p;
  const int64_t nd = self.dim();
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < nd; ++d)
    if (mask[d]) {
      if (first < 0) first = d;
      last = d;
    }
  bool adjacent = first >= 0;
  for (int64_t d = first; adjacent && d <= last; ++d) adjacent = mask[d];
  if (adjacent && self.is_contiguous()) {
    p.input = self;
    for (int64_t d = 0; d < first; ++d) p.outer *= self.size(d);
    for (int64_t d = first; d <= last; ++d) p.r *= self.size(d);
    for (int64_t d = last + 1; d < nd; ++d) p.inner *= self.size(d);
    return p;
  }
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < nd; ++d)
    if (!mask[d]) {
      perm.push_back(d);
      p.outer *= self.size(d);
    }
  for (int64_t d = 0; d < nd; ++d)
    if (mask[d]) {
      perm.push_back(d);
      p.r *= self.size(d);
    }
  p.input = self.permute(perm).contiguous();
  return p;
}

std::vector<int64_t> reduced_shape(const at::Tensor& self, const std::bitset<64>& mask,
                                   bool keepdim) {
  std::vector<int64_t> shape;
  for (int64_t d = 0; d < self.dim(); ++d) {
    if (!mask[d]) {
      shape.push_back(self.size(d));
    } else if (keepdim) {
      shape.push_back(1);
    }
  }
  return shape;
}

at::Tensor prepare_out(const at::Tensor& out, at::IntArrayRef shape,
                       const at::TensorOptions& opts) {
  if (!out.defined()) return at::empty(shape, opts);
  TORCH_CHECK(out.scalar_type() == opts.dtype().toScalarType(), "Expected out tensor to have dtype ",
              opts.dtype(), ", but got ", out.scalar_type(), " instead");
  at::native::resize_output(out, shape);
  return out;
}

// Writes `res` (contiguous) into `out` when `out` is not contiguous.
void finish(const at::Tensor& out, const at::Tensor& res) {
  if (!out.is_same(res)) out.copy_(res);
}

at::Tensor sum_impl(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                    at::ScalarType out_dtype, const at::Tensor& out_arg) {
  const auto mask = at::dim_list_to_bitset(dim.value_or(at::IntArrayRef{}), self.dim());
  std::bitset<64> m = mask;
  if (!dim.has_value() || dim->empty())
    for (int64_t d = 0; d < self.dim(); ++d) m[d] = true;
  const auto shape = reduced_shape(self, m, keepdim);
  at::Tensor out = prepare_out(out_arg, shape, self.options().dtype(out_dtype));
  at::Tensor res = out.is_contiguous() ? out : at::empty(shape, out.options());
  if (res.numel() == 0) return out;
  if (self.numel() == 0) {
    res.zero_();
    finish(out, res);
    return out;
  }
  const Plan p = plan(self, m);
  AT_DISPATCH_V2(self.scalar_type(), "rustorch_sum", AT_WRAP([&] {
    if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
      sum_kernel<scalar_t, scalar_t>(p.input.const_data_ptr<scalar_t>(), res.data_ptr<scalar_t>(),
                                     p.outer, p.r, p.inner);
    } else {
      sum_kernel<scalar_t, int64_t>(p.input.const_data_ptr<scalar_t>(), res.data_ptr<int64_t>(),
                                    p.outer, p.r, p.inner);
    }
  }), at::kFloat, at::kDouble, at::kBool, at::kInt, at::kLong);
  finish(out, res);
  return out;
}

}  // namespace

bool sum_supported(const at::Tensor& self, std::optional<at::ScalarType> dtype) {
  if (self.layout() != at::kStrided || self.dim() > 64) return false;
  const auto st = self.scalar_type();
  if (st == at::kFloat || st == at::kDouble) return !dtype || *dtype == st;
  if (st == at::kBool || st == at::kInt || st == at::kLong) return !dtype || *dtype == at::kLong;
  return false;
}

bool mean_supported(const at::Tensor& self, std::optional<at::ScalarType> dtype) {
  const auto st = self.scalar_type();
  return self.layout() == at::kStrided && self.dim() <= 64 &&
         (st == at::kFloat || st == at::kDouble) && (!dtype || *dtype == st);
}

bool argmax_supported(const at::Tensor& self) {
  const auto st = self.scalar_type();
  return self.layout() == at::kStrided &&
         (st == at::kFloat || st == at::kDouble || st == at::kLong || st == at::kInt);
}

at::Tensor sum(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
               std::optional<at::ScalarType> dtype, const at::Tensor& out) {
  TORCH_CHECK(sum_supported(self, dtype), "rustorch sum: unsupported dtype");
  const auto st = self.scalar_type();
  const at::ScalarType out_dtype = (st == at::kFloat || st == at::kDouble) ? st : at::kLong;
  return sum_impl(self, dim, keepdim, out_dtype, out);
}

at::Tensor mean(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype, const at::Tensor& out) {
  TORCH_CHECK(mean_supported(self, dtype), "rustorch mean: unsupported dtype");
  at::Tensor res = sum_impl(self, dim, keepdim, self.scalar_type(), out);
  const int64_t count = res.numel() == 0 ? 0 : self.numel() / std::max<int64_t>(res.numel(), 1);
  // An empty reduction is 0 / 0 = NaN, as in PyTorch.
  AT_DISPATCH_FLOATING_TYPES(res.scalar_type(), "rustorch_mean", [&] {
    const scalar_t n = static_cast<scalar_t>(self.numel() == 0 ? 0 : count);
    at::Tensor c = res.is_contiguous() ? res : res.contiguous();
    scalar_t* d = c.data_ptr<scalar_t>();
    for (int64_t i = 0; i < c.numel(); ++i) d[i] = d[i] / n;
    finish(res, c);
  });
  return res;
}

at::Tensor argmax(const at::Tensor& self, std::optional<int64_t> dim, bool keepdim,
                  const at::Tensor& out_arg) {
  TORCH_CHECK(argmax_supported(self), "rustorch argmax: unsupported dtype");
  at::Tensor x;
  std::vector<int64_t> shape;
  if (dim.has_value()) {
    const int64_t d = at::maybe_wrap_dim(*dim, self.dim());
    const int64_t len = self.dim() == 0 ? 1 : self.size(d);
    TORCH_CHECK(len > 0, "argmax(): Expected reduction dim ", d, " to have non-zero size.");
    for (int64_t i = 0; i < self.dim(); ++i)
      if (i != d || keepdim) shape.push_back(i == d ? 1 : self.size(i));
    x = self.dim() == 0 ? self.reshape({1, 1}) : self.movedim(d, -1).contiguous();
  } else {
    TORCH_CHECK(self.numel() > 0,
                "argmax(): Expected reduction dim to be specified for input.numel() == 0.");
    if (keepdim) shape.assign(self.dim(), 1);
    x = self.contiguous().reshape({1, self.numel()});
  }
  at::Tensor out = prepare_out(out_arg, shape, self.options().dtype(at::kLong));
  at::Tensor res = out.is_contiguous() ? out : at::empty(shape, out.options());
  const int64_t len = x.dim() == 0 ? 1 : x.size(-1);
  const int64_t rows = len == 0 ? 0 : x.numel() / len;
  AT_DISPATCH_V2(x.scalar_type(), "rustorch_argmax", AT_WRAP([&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    int64_t* op = res.data_ptr<int64_t>();
    at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(len, 1)),
                     [&](int64_t b, int64_t e) {
                       for (int64_t row = b; row < e; ++row) {
                         const scalar_t* v = xp + row * len;
                         int64_t best = 0;
                         for (int64_t i = 1; i < len; ++i) {
                           if constexpr (std::is_floating_point_v<scalar_t>) {
                             if (std::isnan(v[best])) break;  // first NaN is the maximum
                             if (v[i] > v[best] || std::isnan(v[i])) best = i;
                           } else {
                             if (v[i] > v[best]) best = i;
                           }
                         }
                         op[row] = best;
                       }
                     });
  }), at::kFloat, at::kDouble, at::kLong, at::kInt);
  finish(out, res);
  return out;
}

}  // namespace rustorch::native
