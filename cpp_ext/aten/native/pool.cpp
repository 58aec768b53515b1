// max_pool2d over contiguous NCHW planes; each (n, c) plane is one unit of parallel work, and
// the backward scatters into its own plane only, in a fixed order (deterministic).
#include "aten/native/pool.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/native/Pool.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace rustorch::native {
namespace {

struct PoolGeom {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
  int64_t planes, ih, iw, oh, ow;
};

PoolGeom geometry(const at::Tensor& self, at::IntArrayRef kernel_size, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation, bool ceil_mode) {
  TORCH_CHECK(kernel_size.size() == 1 || kernel_size.size() == 2,
              "max_pool2d: kernel_size must either be a single int, or a tuple of two ints");
  TORCH_CHECK(stride.empty() || stride.size() == 1 || stride.size() == 2,
              "max_pool2d: stride must either be omitted, a single int, or a tuple of two ints");
  TORCH_CHECK(padding.size() == 1 || padding.size() == 2,
              "max_pool2d: padding must either be a single int, or a tuple of two ints");
  TORCH_CHECK(dilation.size() == 1 || dilation.size() == 2,
              "max_pool2d: dilation must be either a single int, or a tuple of two ints");
  TORCH_CHECK(self.dim() == 3 || self.dim() == 4,
              "max_pool2d: Expected 3D or 4D tensor, but got ", self.sizes());
  PoolGeom g;
  g.kh = kernel_size[0];
  g.kw = kernel_size.size() == 1 ? g.kh : kernel_size[1];
  g.sh = stride.empty() ? g.kh : stride[0];
  g.sw = stride.empty() ? g.kw : stride.size() == 1 ? g.sh : stride[1];
  g.ph = padding[0];
  g.pw = padding.size() == 1 ? g.ph : padding[1];
  g.dh = dilation[0];
  g.dw = dilation.size() == 1 ? g.dh : dilation[1];
  g.ih = self.size(-2);
  g.iw = self.size(-1);
  const int64_t c = self.size(-3);
  g.planes = c * (self.dim() == 4 ? self.size(0) : 1);
  g.oh = at::native::pooling_output_shape<int64_t>(g.ih, g.kh, g.ph, g.sh, g.dh, ceil_mode);
  g.ow = at::native::pooling_output_shape<int64_t>(g.iw, g.kw, g.pw, g.sw, g.dw, ceil_mode);
  at::native::pool2d_shape_check(self, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw, c, g.ih,
                                 g.iw, g.oh, g.ow, self.suggest_memory_format());
  return g;
}

std::vector<int64_t> out_shape(const at::Tensor& self, const PoolGeom& g) {
  std::vector<int64_t> s(self.sizes().begin(), self.sizes().end());
  s[s.size() - 2] = g.oh;
  s[s.size() - 1] = g.ow;
  return s;
}

// Taps k of a window starting at `start` (step `d`) that land inside [0, size): [lo, hi).
void tap_range(int64_t start, int64_t d, int64_t k, int64_t size, int64_t& lo, int64_t& hi) {
  lo = start >= 0 ? 0 : (-start + d - 1) / d;
  hi = start >= size ? 0 : std::min<int64_t>(k, (size - start + d - 1) / d);
  hi = std::max(hi, lo);
}

template <typename T>
void forward_plane(const T* in, T* out, int64_t* idx, const PoolGeom& g) {
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const int64_t y0 = oy * g.sh - g.ph;
    int64_t ky0, ky1;
    tap_range(y0, g.dh, g.kh, g.ih, ky0, ky1);
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const int64_t x0 = ox * g.sw - g.pw;
      int64_t kx0, kx1;
      tap_range(x0, g.dw, g.kw, g.iw, kx0, kx1);
      T best = -std::numeric_limits<T>::infinity();
      int64_t best_i = -1;
      for (int64_t ky = ky0; ky < ky1; ++ky) {
        const int64_t row = (y0 + ky * g.dh) * g.iw + x0;
        for (int64_t kx = kx0; kx < kx1; ++kx) {
          const int64_t i = row + kx * g.dw;
          const T v = in[i];
          // First maximum wins; a NaN always wins (as in PyTorch). Without branches: on random
          // data `v > best` is a coin flip, and mispredictions cost more than the compares.
          const bool take = (best_i < 0) | (v > best) | (v != v);
          best = take ? v : best;
          best_i = take ? i : best_i;
        }
      }
      out[oy * g.ow + ox] = best;
      idx[oy * g.ow + ox] = best_i;
    }
  }
}

// Fast path for the common 2x2 stride-2 window without padding or dilation.
template <typename T>
void forward_plane_2x2(const T* in, T* out, int64_t* idx, const PoolGeom& g) {
  for (int64_t oy = 0; oy < g.oh; ++oy) {
    const T* r0 = in + (2 * oy) * g.iw;
    const T* r1 = r0 + g.iw;
    for (int64_t ox = 0; ox < g.ow; ++ox) {
      const int64_t x = 2 * ox;
      T best = r0[x];
      int64_t bi = 2 * oy * g.iw + x;
      auto take = [&](T v, int64_t i) {
        if (v > best || std::isnan(v)) {
          best = v;
          bi = i;
        }
      };
      take(r0[x + 1], bi + 1);
      take(r1[x], 2 * oy * g.iw + g.iw + x);
      take(r1[x + 1], 2 * oy * g.iw + g.iw + x + 1);
      out[oy * g.ow + ox] = best;
      idx[oy * g.ow + ox] = bi;
    }
  }
}

}  // namespace

bool max_pool2d_supported(const at::Tensor& self) {
  const auto st = self.scalar_type();
  if (self.layout() != at::kStrided || (st != at::kFloat && st != at::kDouble)) return false;
  // Channels-last inputs keep that layout in PyTorch's output; leave them to the fallback.
  return self.dim() != 4 || self.suggest_memory_format() != at::MemoryFormat::ChannelsLast ||
         self.is_contiguous();
}

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& self,
                                                           at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride,
                                                           at::IntArrayRef padding,
                                                           at::IntArrayRef dilation,
                                                           bool ceil_mode) {
  TORCH_CHECK(max_pool2d_supported(self), "rustorch max_pool2d: unsupported input");
  const PoolGeom g = geometry(self, kernel_size, stride, padding, dilation, ceil_mode);
  at::Tensor x = self.contiguous();
  const auto shape = out_shape(self, g);
  at::Tensor out = at::empty(shape, self.options());
  at::Tensor idx = at::empty(shape, self.options().dtype(at::kLong));
  if (out.numel() == 0) return {out, idx};
  const bool fast = g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 &&
                    g.dh == 1 && g.dw == 1 && 2 * g.oh <= g.ih && 2 * g.ow <= g.iw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_max_pool2d", [&] {
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    int64_t* ip = idx.data_ptr<int64_t>();
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    at::parallel_for(0, g.planes, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, in_plane)),
                     [&](int64_t b, int64_t e) {
                       for (int64_t p = b; p < e; ++p) {
                         if (fast) {
                           forward_plane_2x2(in + p * in_plane, o + p * out_plane,
                                             ip + p * out_plane, g);
                         } else {
                           forward_plane(in + p * in_plane, o + p * out_plane,
                                         ip + p * out_plane, g);
                         }
                       }
                     });
  });
  return {out, idx};
}

at::Tensor max_pool2d_with_indices_backward(const at::Tensor& grad_output, const at::Tensor& self,
                                            at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                            at::IntArrayRef padding, at::IntArrayRef dilation,
                                            bool ceil_mode, const at::Tensor& indices) {
  TORCH_CHECK(max_pool2d_supported(self) && grad_output.scalar_type() == self.scalar_type() &&
                  indices.scalar_type() == at::kLong,
              "rustorch max_pool2d backward: unsupported input");
  const PoolGeom g = geometry(self, kernel_size, stride, padding, dilation, ceil_mode);
  const auto shape = out_shape(self, g);
  TORCH_CHECK(grad_output.sizes() == at::IntArrayRef(shape) &&
                  indices.sizes() == at::IntArrayRef(shape),
              "max_pool2d backward: expected grad_output and indices of shape ",
              at::IntArrayRef(shape), " but got ", grad_output.sizes(), " and ", indices.sizes());
  at::Tensor go = grad_output.contiguous();
  at::Tensor ix = indices.contiguous();
  at::Tensor gi = at::empty(self.sizes(), self.options());
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_max_pool2d_backward", [&] {
    const scalar_t* gp = go.const_data_ptr<scalar_t>();
    const int64_t* ip = ix.const_data_ptr<int64_t>();
    scalar_t* out = gi.data_ptr<scalar_t>();
    const int64_t in_plane = g.ih * g.iw, out_plane = g.oh * g.ow;
    at::parallel_for(0, g.planes, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, in_plane)),
                     [&](int64_t b, int64_t e) {
                       for (int64_t p = b; p < e; ++p) {
                         scalar_t* dst = out + p * in_plane;
                         std::memset(dst, 0, sizeof(scalar_t) * in_plane);
                         for (int64_t k = 0; k < out_plane; ++k) {
                           const int64_t i = ip[p * out_plane + k];
                           if (i < 0) continue;  // all-padding window: nothing to route
                           TORCH_CHECK(i < in_plane, "max_pool2d backward: index ", i,
                                       " out of range");
                           dst[i] += gp[p * out_plane + k];
                         }
                       }
                     });
  });
  return gi;
}

}  // namespace rustorch::native
