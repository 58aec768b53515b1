#include "aten/native/conv.h"

#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "aten/native/matmul.h"
#include "kernels/gemm.h"
#include "kernels/gemm_scratch.h"
#include "kernels/cpu_info.h"
#include "kernels/depthwise_conv.h"

namespace rustorch::native {
using namespace ::rustorch::kernels;  // raw compute: gemm, simd helpers
namespace {

// Sizes of one conv2d call. Per group: Cg input channels, Mg output channels, K = Cg*KH*KW.
struct Geometry {
  int64_t n, c, h, w;     // input
  int64_t m, kh, kw;      // weight
  int64_t oh, ow;         // output
  int64_t sh, sw, ph, pw, dh, dw;
  int64_t groups, cg, mg;
  int64_t k() const { return cg * kh * kw; }
  int64_t ohw() const { return oh * ow; }
  // 1x1, stride 1, no padding: the im2col matrix of a group is the input itself.
  bool col_is_input() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

int64_t pick(at::IntArrayRef v, size_t i, const char* what) {
  TORCH_CHECK(v.size() == 1 || v.size() == 2, "conv2d: expected 1 or 2 values for ", what,
              ", got ", v.size());
  return v.size() == 1 ? v[0] : v[i];
}

Geometry geometry(const at::Tensor& input, const at::Tensor& weight, at::IntArrayRef stride,
                  at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK(input.dim() == 4, "conv2d: expected a 4-D input (N, C, H, W), got ",
              input.dim(), "-D");
  TORCH_CHECK(weight.dim() == 4, "conv2d: expected a 4-D weight, got ", weight.dim(), "-D");
  TORCH_CHECK(groups > 0, "non-positive groups is not supported");
  Geometry g{};
  g.n = input.size(0), g.c = input.size(1), g.h = input.size(2), g.w = input.size(3);
  g.m = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.sh = pick(stride, 0, "stride"), g.sw = pick(stride, 1, "stride");
  g.ph = pick(padding, 0, "padding"), g.pw = pick(padding, 1, "padding");
  g.dh = pick(dilation, 0, "dilation"), g.dw = pick(dilation, 1, "dilation");
  TORCH_CHECK(g.sh > 0 && g.sw > 0, "non-positive stride is not supported");
  TORCH_CHECK(g.dh > 0 && g.dw > 0, "dilation should be greater than zero");
  TORCH_CHECK(g.ph >= 0 && g.pw >= 0, "negative padding is not supported");
  g.groups = groups;
  TORCH_CHECK(g.m % groups == 0, "Given groups=", groups, ", expected weight to be divisible by ",
              groups, " at dimension 0, but got weight of size ", weight.sizes(), " instead");
  TORCH_CHECK(g.c == weight.size(1) * groups, "Given groups=", groups, ", weight of size ",
              weight.sizes(), ", expected input", input.sizes(), " to have ",
              weight.size(1) * groups, " channels, but got ", g.c, " channels instead");
  g.cg = g.c / groups, g.mg = g.m / groups;
  g.oh = (g.h + 2 * g.ph - g.dh * (g.kh - 1) - 1) / g.sh + 1;
  g.ow = (g.w + 2 * g.pw - g.dw * (g.kw - 1) - 1) / g.sw + 1;
  TORCH_CHECK(g.h + 2 * g.ph >= g.dh * (g.kh - 1) + 1 && g.w + 2 * g.pw >= g.dw * (g.kw - 1) + 1,
              "Calculated padded input size per channel: (", g.h + 2 * g.ph, " x ",
              g.w + 2 * g.pw, "). Kernel size: (", g.dh * (g.kh - 1) + 1, " x ",
              g.dw * (g.kw - 1) + 1, "). Kernel size can't be greater than actual input size");
  return g;
}

// Output columns ow whose input column ow*s + off lies inside [0, size): [lo, hi).
void valid_range(int64_t off, int64_t s, int64_t size, int64_t count, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = size - off <= 0 ? 0 : (size - off + s - 1) / s;
  lo = std::min(lo, count);
  hi = std::clamp(hi, lo, count);
}

// col[(c, i, j), (oh - oh0, ow)] = x[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside) for
// `channels` channels of one image and output rows oh0 <= oh < oh1; rows of col are `ld` apart
// ((oh1 - oh0) * ow for one image's block, N * oh * ow when all images share the matrix).
template <typename T>
void im2col(const Geometry& g, const T* x, int64_t channels, int64_t oh0, int64_t oh1, T* col,
            int64_t ld) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * ld - oh0 * g.ow;
        const int64_t off_w = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off_w, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          T* dst = row + oh * g.ow;
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.h) {
            std::fill(dst, dst + g.ow, T(0));
            continue;
          }
          const T* src = x + (c * g.h + ih) * g.w + off_w;
          std::fill(dst, dst + lo, T(0));
          if (g.sw == 1) {
            std::memcpy(dst + lo, src + lo, (hi - lo) * sizeof(T));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
          }
          std::fill(dst + hi, dst + g.ow, T(0));
        }
      }
}

// The adjoint of im2col (same row range): gx[c, ih, iw] += col[(c, i, j), (oh - oh0, ow)], in
// a fixed order.
template <typename T>
void col2im_add(const Geometry& g, const T* col, int64_t channels, int64_t oh0, int64_t oh1,
                T* gx, int64_t ld) {
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < g.kh; ++i)
      for (int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * ld - oh0 * g.ow;
        const int64_t off_w = j * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(off_w, g.sw, g.w, g.ow, lo, hi);
        for (int64_t oh = oh0; oh < oh1; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + i * g.dh;
          if (ih < 0 || ih >= g.h) continue;
          T* dst = gx + (c * g.h + ih) * g.w + off_w;
          const T* src = row + oh * g.ow;
          if (g.sw == 1) {  // unit stride: a loop the compiler vectorizes
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
          }
        }
      }
}

// Runs fn(image) for every image: one image per thread when they spread evenly (each GEMM
// then runs single-threaded inside), else one after the other with threaded GEMMs. Either way
// each image's result is the same (GEMM is deterministic for any thread count).
template <typename F>
void for_each_image(int64_t n, const F& fn) {
  const int64_t nt = at::in_parallel_region() ? 1 : at::get_num_threads();
  if (nt > 1 && n > 1 && (n % nt == 0 || n >= 4 * nt)) {
    at::parallel_for(0, n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) fn(i, false);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i, true);
  }
}

// Output rows per im2col block: the block of all channels stays within ~2x L2 (so it is still
// in cache when the GEMM packs it). Depends on sizes only, never on the thread count.
template <typename T>
int64_t rows_per_block(const Geometry& g, int64_t channels) {
  const int64_t row_bytes = channels * g.kh * g.kw * g.ow * int64_t(sizeof(T));
  const int64_t budget = 2 * cpu::cache_sizes().l2;
  return std::clamp<int64_t>(budget / std::max<int64_t>(1, row_bytes), 1, std::max<int64_t>(1, g.oh));
}

// Depthwise (one input and one output channel per group): direct loops, kernels/depthwise_conv.
bool depthwise(const Geometry& g) { return g.cg == 1 && g.mg == 1 && g.groups > 1; }

DepthwiseShape depthwise_shape(const Geometry& g) {
  return {g.n, g.c, g.h, g.w, g.kh, g.kw, g.oh, g.ow, g.sh, g.sw, g.ph, g.pw, g.dh, g.dw};
}

// ---- Small feature maps: one GEMM over the whole batch ---------------------------------------
// With few output pixels per image (ResNet's late stages: 4x4, 2x2) a GEMM per image has
// n = oh*ow of 4..64 columns, so the weight (up to 512 x 4608) is packed again for every image
// and the micro-kernel's 16-wide panels run mostly empty. Here the images share one im2col matrix
// [C*KH*KW, N*oh*ow] and the output gradient is gathered into [M, N*oh*ow] ("pixel-major"), so
// forward, input and weight gradients are one GEMM each with N*oh*ow columns (or k).
// Depends on sizes only (never on the thread count); each C element still has one fixed K order.
constexpr int64_t kBatchedMaxPixels = 128;        // oh*ow at most (8x8 yes, 16x16 no: measured)
constexpr int64_t kBatchedMaxBytes = 64ll << 20;  // scratch of the whole batch at most

template <typename T>
bool batched(const Geometry& g) {
  // Scratch: the im2col matrix [C*KH*KW, N*oh*ow] and the pixel-major output (gradient)
  // [M, N*oh*ow], both held by the calling thread.
  return g.n > 1 && !depthwise(g) && g.ohw() <= kBatchedMaxPixels &&
         (g.c * g.kh * g.kw + g.m) * g.n * g.ohw() * int64_t(sizeof(T)) <= kBatchedMaxBytes;
}

// col[(c, i, j), n * ohw + p] for every image n (images in parallel, each writes its columns).
template <typename T>
void im2col_batch(const Geometry& g, const T* x, T* col) {
  const int64_t np = g.n * g.ohw();
  at::parallel_for(0, g.n, 1, [&](int64_t b, int64_t e) {
    for (int64_t n = b; n < e; ++n)
      im2col(g, x + n * g.c * g.h * g.w, g.c, 0, g.oh, col + n * g.ohw(), np);
  });
}

// dst[m, n * ohw + p] = src[n, m, p] (pixel-major), or the reverse with `to_nchw`, adding
// bias[m] when given.
template <typename T>
void relayout(const Geometry& g, const T* src, T* dst, bool to_nchw, const T* bias) {
  const int64_t ohw = g.ohw(), np = g.n * ohw;
  at::parallel_for(0, g.n * g.m, 16, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      const int64_t n = k / g.m, m = k % g.m;
      const T* from = to_nchw ? src + m * np + n * ohw : src + k * ohw;
      T* to = to_nchw ? dst + k * ohw : dst + m * np + n * ohw;
      if (bias != nullptr) {
        for (int64_t p = 0; p < ohw; ++p) to[p] = from[p] + bias[m];
      } else {
        std::memcpy(to, from, ohw * sizeof(T));
      }
    }
  });
}

template <typename T>
void forward_batched(const Geometry& g, const T* x, const T* w, const T* bias, T* out) {
  const int64_t K = g.k(), np = g.n * g.ohw();
  T* col = thread_scratch<T, 2>(g.c * g.kh * g.kw * np);
  T* tmp = thread_scratch<T, 3>(g.m * np);
  im2col_batch(g, x, col);
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    GemmArgs<T> a;
    a.m = g.mg, a.n = np, a.k = K;
    a.a = w + gr * g.mg * K, a.rsa = K, a.csa = 1;
    a.b = col + gr * K * np, a.rsb = np, a.csb = 1;
    a.c = tmp + gr * g.mg * np, a.rsc = np, a.csc = 1;
    gemm(a);
  }
  relayout(g, tmp, out, true, bias);
}

// Input and/or weight gradient (gx, gw may be null).
template <typename T>
void backward_batched(const Geometry& g, const T* go, const T* x, const T* w, T* gx, T* gw) {
  const int64_t K = g.k(), np = g.n * g.ohw();
  T* go_t = thread_scratch<T, 3>(g.m * np);
  T* col = thread_scratch<T, 2>(g.c * g.kh * g.kw * np);
  relayout(g, go, go_t, false, static_cast<const T*>(nullptr));
  if (gw != nullptr) {
    im2col_batch(g, x, col);
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      GemmArgs<T> a;  // gW_g = gO_g . col_g^T
      a.m = g.mg, a.n = K, a.k = np;
      a.a = go_t + gr * g.mg * np, a.rsa = np, a.csa = 1;
      a.b = col + gr * K * np, a.rsb = 1, a.csb = np;
      a.c = gw + gr * g.mg * K, a.rsc = K, a.csc = 1;
      gemm(a);
    }
  }
  if (gx != nullptr) {
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      GemmArgs<T> a;  // col_g = W_g^T . gO_g
      a.m = K, a.n = np, a.k = g.mg;
      a.a = w + gr * g.mg * K, a.rsa = 1, a.csa = K;
      a.b = go_t + gr * g.mg * np, a.rsb = np, a.csb = 1;
      a.c = col + gr * K * np, a.rsc = np, a.csc = 1;
      gemm(a);
    }
    const int64_t image = g.c * g.h * g.w;
    at::parallel_for(0, g.n, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) {
        std::fill(gx + n * image, gx + (n + 1) * image, T(0));
        col2im_add(g, col + n * g.ohw(), g.c, 0, g.oh, gx + n * image, np);
      }
    });
  }
}

template <typename T>
void forward_impl(const Geometry& g, const T* x, const T* w, const T* bias, T* out) {
  if (depthwise(g)) return depthwise_forward(depthwise_shape(g), x, w, bias, out);
  if (batched<T>(g)) return forward_batched(g, x, w, bias, out);
  const int64_t K = g.k(), ohw = g.ohw();
  const int64_t rows = g.col_is_input() ? g.oh : rows_per_block<T>(g, g.c);
  for_each_image(g.n, [&](int64_t n, bool parallel) {
    const T* xn = x + n * g.c * g.h * g.w;
    T* on = out + n * g.m * ohw;
    if (bias != nullptr)
      for (int64_t m = 0; m < g.m; ++m) std::fill(on + m * ohw, on + (m + 1) * ohw, bias[m]);
    for (int64_t oh0 = 0; oh0 < g.oh; oh0 += rows) {
      const int64_t oh1 = std::min(g.oh, oh0 + rows), cols = (oh1 - oh0) * g.ow;
      const T* col = xn;
      if (!g.col_is_input()) {
        T* buf = thread_scratch<T, 2>(g.c * g.kh * g.kw * cols);
        im2col(g, xn, g.c, oh0, oh1, buf, cols);
        col = buf;
      }
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        GemmArgs<T> a;
        a.m = g.mg, a.n = cols, a.k = K;
        a.a = w + gr * g.mg * K, a.rsa = K, a.csa = 1;
        a.b = col + gr * K * cols, a.rsb = cols, a.csb = 1;
        a.beta = bias != nullptr ? T(1) : T(0);
        a.c = on + gr * g.mg * ohw + oh0 * g.ow, a.rsc = ohw, a.csc = 1;
        gemm(a, parallel);
      }
    }
  });
}

template <typename T>
void grad_input_impl(const Geometry& g, const T* go, const T* w, T* gx) {
  if (depthwise(g)) return depthwise_grad_input(depthwise_shape(g), go, w, gx);
  const int64_t K = g.k(), ohw = g.ohw();
  const int64_t rows = g.col_is_input() ? g.oh : rows_per_block<T>(g, g.cg);
  for_each_image(g.n, [&](int64_t n, bool parallel) {
    T* gxn = gx + n * g.c * g.h * g.w;
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      GemmArgs<T> a;
      a.m = K, a.k = g.mg;
      a.a = w + gr * g.mg * K, a.rsa = 1, a.csa = K;  // W_g^T
      a.rsb = ohw, a.csb = 1;
      const T* go_g = go + (n * g.m + gr * g.mg) * ohw;
      T* gxg = gxn + gr * g.cg * g.h * g.w;
      if (g.col_is_input()) {  // col2im is the identity: write the gradient in place
        a.n = ohw, a.b = go_g;
        a.c = gxg, a.rsc = ohw, a.csc = 1;
        gemm(a, parallel);
        continue;
      }
      std::fill(gxg, gxg + g.cg * g.h * g.w, T(0));
      for (int64_t oh0 = 0; oh0 < g.oh; oh0 += rows) {
        const int64_t oh1 = std::min(g.oh, oh0 + rows), cols = (oh1 - oh0) * g.ow;
        T* col = thread_scratch<T, 2>(K * cols);
        a.n = cols, a.b = go_g + oh0 * g.ow;
        a.c = col, a.rsc = cols, a.csc = 1;
        gemm(a, parallel);
        col2im_add(g, col, g.cg, oh0, oh1, gxg, cols);
      }
    }
  });
}

template <typename T>
void grad_weight_impl(const Geometry& g, const T* go, const T* x, T* gw) {
  if (depthwise(g)) return depthwise_grad_weight(depthwise_shape(g), go, x, gw);
  const int64_t K = g.k(), ohw = g.ohw();
  const int64_t image_col = g.c * g.kh * g.kw * ohw;
  // im2col of a few images at a time, sized to stay in cache (a quarter of L3, at least one image
  // per thread). Chunking does not change the result: each C element still sums the images'
  // K blocks in the same order (beta = 1 after the first chunk).
  const int64_t budget = std::min<int64_t>(cpu::cache_sizes().l3, 32 << 20) / 4;
  const int64_t chunk =
      g.col_is_input()
          ? g.n
          : std::clamp<int64_t>(budget / std::max<int64_t>(1, image_col * int64_t(sizeof(T))),
                                std::min<int64_t>(at::get_num_threads(), g.n), g.n);
  T* cols = g.col_is_input() ? nullptr : thread_scratch<T, 3>(chunk * image_col);
  for (int64_t n0 = 0; n0 < g.n; n0 += chunk) {
    const int64_t cnt = std::min(chunk, g.n - n0);
    const T* base;
    int64_t bstride;
    if (g.col_is_input()) {
      base = x + n0 * g.c * g.h * g.w, bstride = g.c * g.h * g.w;
    } else {
      at::parallel_for(0, cnt, 1, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          im2col(g, x + (n0 + i) * g.c * g.h * g.w, g.c, 0, g.oh, cols + i * image_col, ohw);
      });
      base = cols, bstride = image_col;
    }
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      GemmArgs<T> a;
      a.m = g.mg, a.n = K, a.k = ohw;
      a.a = go + (n0 * g.m + gr * g.mg) * ohw, a.rsa = ohw, a.csa = 1;
      a.b = base + gr * K * ohw, a.rsb = 1, a.csb = ohw;  // col^T
      a.segments = cnt, a.bsa = g.m * ohw, a.bsb = bstride;
      a.beta = n0 == 0 ? T(0) : T(1);
      a.c = gw + gr * g.mg * K, a.rsc = K, a.csc = 1;
      gemm(a);
    }
  }
}

template <typename T>
void grad_bias_impl(const Geometry& g, const T* go, T* gb) {
  using acc_t = at::acc_type<T, false>;
  const int64_t ohw = g.ohw();
  at::parallel_for(0, g.m, 1, [&](int64_t b, int64_t e) {
    for (int64_t m = b; m < e; ++m) {
      acc_t s = 0;
      for (int64_t n = 0; n < g.n; ++n) {
        const T* p = go + (n * g.m + m) * ohw;
        for (int64_t i = 0; i < ohw; ++i) s += p[i];
      }
      gb[m] = static_cast<T>(s);
    }
  });
}

}  // namespace

bool conv2d_supported(const at::Tensor& input, const at::Tensor& weight, bool transposed) {
  const auto st = input.scalar_type();
  return !transposed && input.dim() == 4 && weight.dim() == 4 && st == weight.scalar_type() &&
         (st == at::kFloat || st == at::kDouble);
}

at::Tensor conv2d_forward(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups) {
  TORCH_CHECK(conv2d_supported(input, weight, false),
              "rustorch conv2d: expected 4-D float32/float64 input and weight of one dtype, got ",
              input.scalar_type(), " ", input.sizes(), " and ", weight.scalar_type(), " ",
              weight.sizes());
  const Geometry g = geometry(input, weight, stride, padding, dilation, groups);
  const bool has_bias = bias.has_value() && bias->defined();
  if (has_bias)
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == g.m && bias->scalar_type() == input.scalar_type(),
                "conv2d: expected bias of shape [", g.m, "] and dtype ", input.scalar_type(),
                ", got ", bias->sizes(), " ", bias->scalar_type());
  at::Tensor out = at::empty({g.n, g.m, g.oh, g.ow}, input.options());
  if (out.numel() == 0) return out;
  const at::Tensor x = input.contiguous(), w = weight.contiguous();
  const at::Tensor b = has_bias ? bias->contiguous() : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rustorch_conv2d", [&] {
    forward_impl<scalar_t>(g, x.const_data_ptr<scalar_t>(), w.const_data_ptr<scalar_t>(),
                           has_bias ? b.const_data_ptr<scalar_t>() : nullptr,
                           out.mutable_data_ptr<scalar_t>());
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    std::array<bool, 3> output_mask) {
  TORCH_CHECK(conv2d_supported(input, weight, false) &&
                  grad_output.scalar_type() == input.scalar_type(),
              "rustorch conv2d backward: expected 4-D float32/float64 tensors of one dtype");
  const Geometry g = geometry(input, weight, stride, padding, dilation, groups);
  TORCH_CHECK(grad_output.dim() == 4 && grad_output.size(0) == g.n && grad_output.size(1) == g.m &&
                  grad_output.size(2) == g.oh && grad_output.size(3) == g.ow,
              "conv2d backward: grad_output of size ", grad_output.sizes(), ", expected [", g.n,
              ", ", g.m, ", ", g.oh, ", ", g.ow, "]");
  const at::Tensor go = grad_output.contiguous();
  at::Tensor gx, gw, gb;
  const at::Tensor x = output_mask[1] ? input.contiguous() : input;
  const at::Tensor w = output_mask[0] ? weight.contiguous() : weight;
  // Zero-size cases: an empty sum is zero.
  if (output_mask[0]) gx = g.n * g.c * g.h * g.w == 0 || go.numel() == 0
                               ? at::zeros(input.sizes(), input.options())
                               : at::empty(input.sizes(), input.options());
  if (output_mask[1]) gw = at::empty(weight.sizes(), weight.options());
  if (output_mask[2]) gb = at::empty({g.m}, grad_output.options());
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "rustorch_conv2d_backward", [&] {
    const scalar_t* gop = go.const_data_ptr<scalar_t>();
    if (batched<scalar_t>(g) && go.numel() > 0 && (output_mask[0] || output_mask[1])) {
      backward_batched<scalar_t>(
          g, gop, output_mask[1] ? x.const_data_ptr<scalar_t>() : nullptr,
          output_mask[0] ? w.const_data_ptr<scalar_t>() : nullptr,
          output_mask[0] ? gx.mutable_data_ptr<scalar_t>() : nullptr,
          output_mask[1] ? gw.mutable_data_ptr<scalar_t>() : nullptr);
      if (output_mask[2] && gb.numel() > 0) grad_bias_impl<scalar_t>(g, gop, gb.mutable_data_ptr<scalar_t>());
      return;
    }
    if (output_mask[0] && gx.numel() > 0 && go.numel() > 0)
      grad_input_impl<scalar_t>(g, gop, w.const_data_ptr<scalar_t>(), gx.mutable_data_ptr<scalar_t>());
    if (output_mask[1]) {
      if (go.numel() == 0) gw.zero_();
      else if (gw.numel() > 0)
        grad_weight_impl<scalar_t>(g, gop, x.const_data_ptr<scalar_t>(), gw.mutable_data_ptr<scalar_t>());
    }
    if (output_mask[2] && gb.numel() > 0) grad_bias_impl<scalar_t>(g, gop, gb.mutable_data_ptr<scalar_t>());
  });
  return {gx, gw, gb};
}

// ---- aten::convolution / convolution_backward -----------------------------------------------

namespace {

bool conv_operands(const at::Tensor& input, const at::Tensor& weight, bool transposed,
                   std::initializer_list<const at::Tensor*> others) {
  const int64_t d = input.dim();
  return !transposed && (d == 4 || d == 3) && weight.dim() == d &&
         same_gemm_operands(input, others);
}

// A 1-D parameter list as its 2-D form for height 1: {v} -> {h_value, v}.
std::vector<int64_t> as_2d(at::IntArrayRef v, int64_t h_value) {
  return {h_value, v.empty() ? h_value : v.back()};
}

}  // namespace

bool convolution_ok(const at::Tensor& input, const at::Tensor& weight,
                    const std::optional<at::Tensor>& bias, at::IntArrayRef, at::IntArrayRef,
                    at::IntArrayRef, bool transposed, at::IntArrayRef, int64_t) {
  return conv_operands(input, weight, transposed, {&weight, bias ? &*bias : nullptr});
}

bool convolution_backward_ok(const at::Tensor& grad_output, const at::Tensor& input,
                             const at::Tensor& weight, at::OptionalIntArrayRef, at::IntArrayRef,
                             at::IntArrayRef, at::IntArrayRef, bool transposed, at::IntArrayRef,
                             int64_t, std::array<bool, 3>) {
  return conv_operands(input, weight, transposed, {&weight, &grad_output}) &&
         grad_output.dim() == input.dim();
}

at::Tensor convolution(const at::Tensor& input, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                       at::IntArrayRef output_padding, int64_t groups) {
  if (input.dim() == 3) {
    return conv2d_forward(input.unsqueeze(2), weight.unsqueeze(2), bias, as_2d(stride, 1),
                          as_2d(padding, 0), as_2d(dilation, 1), groups)
        .squeeze(2);
  }
  return conv2d_forward(input, weight, bias, stride, padding, dilation, groups);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    at::OptionalIntArrayRef bias_sizes, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, bool transposed, at::IntArrayRef output_padding, int64_t groups,
    std::array<bool, 3> output_mask) {
  if (input.dim() == 3) {
    auto [gi, gw, gb] = conv2d_backward(grad_output.unsqueeze(2), input.unsqueeze(2),
                                        weight.unsqueeze(2), as_2d(stride, 1), as_2d(padding, 0),
                                        as_2d(dilation, 1), groups, output_mask);
    return {gi.defined() ? gi.squeeze(2) : gi, gw.defined() ? gw.squeeze(2) : gw, gb};
  }
  return conv2d_backward(grad_output, input, weight, stride, padding, dilation, groups,
                         output_mask);
}

}  // namespace rustorch::native
