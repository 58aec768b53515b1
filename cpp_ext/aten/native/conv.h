// 2-D convolution (NCHW, float32/float64) forward and backward as GEMMs over im2col buffers:
//   forward      out[n, g]    = W_g . col(x[n, g])                  (one GEMM per image and group)
//   grad_input   col          = W_g^T . grad_out[n, g], then col2im (one per image and group)
//   grad_weight  grad_W_g     = sum_n grad_out[n, g] . col(x[n, g])^T (one batch-reduce GEMM)
// Images are independent and the weight gradient reduces over the batch inside a single GEMM
// in a fixed order, so every result is bit-identical for any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace rustorch::native {

// True when conv2d_forward/backward handle these arguments (2-D, not transposed, float32 or
// float64, matching dtypes); the others belong to a fallback.
bool conv2d_supported(const at::Tensor& input, const at::Tensor& weight, bool transposed);

at::Tensor conv2d_forward(const at::Tensor& input, const at::Tensor& weight,
                          const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups);

// (grad_input, grad_weight, grad_bias); an entry is undefined where output_mask is false.
std::tuple<at::Tensor, at::Tensor, at::Tensor> conv2d_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    at::IntArrayRef stride, at::IntArrayRef padding, at::IntArrayRef dilation, int64_t groups,
    std::array<bool, 3> output_mask);

// aten::convolution / convolution_backward (registered on the ops themselves, so autograd and
// double backward keep ATen's formulas): 2-D convolutions, and 1-D ones as 2-D convolutions of
// height 1.
at::Tensor convolution(const at::Tensor& input, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                       at::IntArrayRef output_padding, int64_t groups);
std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    at::OptionalIntArrayRef bias_sizes, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, bool transposed, at::IntArrayRef output_padding, int64_t groups,
    std::array<bool, 3> output_mask);
// Not transposed, 1-D or 2-D, float32/float64 operands of one dtype and device.
bool convolution_ok(const at::Tensor& input, const at::Tensor& weight,
                    const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                    at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                    at::IntArrayRef output_padding, int64_t groups);
bool convolution_backward_ok(const at::Tensor& grad_output, const at::Tensor& input,
                             const at::Tensor& weight, at::OptionalIntArrayRef bias_sizes,
                             at::IntArrayRef stride, at::IntArrayRef padding,
                             at::IntArrayRef dilation, bool transposed,
                             at::IntArrayRef output_padding, int64_t groups,
                             std::array<bool, 3> output_mask);

}  // namespace rustorch::native
