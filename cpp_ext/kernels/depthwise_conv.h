// Depthwise 2-D convolution (one input and one output channel per group, NCHW, contiguous):
// forward, input gradient and weight gradient as direct loops over image rows.
//
// im2col + GEMM would run one tiny (1 x kh*kw) GEMM per image and channel. Here every kernel tap
// is one pass over an output row restricted to the columns where the tap lands inside the input
// (no bounds check per element), so the inner loops are unit-stride multiply-adds the compiler
// vectorizes; an AVX2+FMA build of the same code is picked at run time (cpu::best_isa()).
//
// Deterministic at any thread count: a thread owns whole (image, channel) planes (forward, input
// gradient) or whole channels (weight gradient), and every sum runs in a fixed order (taps, rows,
// images; the weight gradient's dot products keep 8 partial sums combined in lane order).
#pragma once

#include <cstdint>

namespace rustorch::kernels {

struct DepthwiseShape {
  int64_t n, c, h, w;  // input (and channels = groups)
  int64_t kh, kw;      // weight [c, 1, kh, kw]
  int64_t oh, ow;      // output
  int64_t sh, sw, ph, pw, dh, dw;
};

// out[n, c] = bias[c] + sum_taps w[c, i, j] * x[n, c, shifted]; bias may be null.
template <typename T>
void depthwise_forward(const DepthwiseShape& s, const T* x, const T* w, const T* bias, T* out);

// gx = the adjoint of the forward for grad_output go (overwrites gx).
template <typename T>
void depthwise_grad_input(const DepthwiseShape& s, const T* go, const T* w, T* gx);

// gw[c, i, j] = sum_n sum_pixels go * x (overwrites gw).
template <typename T>
void depthwise_grad_weight(const DepthwiseShape& s, const T* go, const T* x, T* gw);

}  // namespace rustorch::kernels
