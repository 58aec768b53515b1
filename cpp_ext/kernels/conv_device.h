// The rustorch (PrivateUse1) kernels of aten::convolution and aten::convolution_backward
// (registered on the ops themselves, so autograd and double backward keep ATen's formulas):
// 2-D convolutions run on kernels/conv.h, 1-D ones as 2-D convolutions of height 1;
// transposed and 3-D convolutions, other dtypes and invalid mixes go to the CPU fallback.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace rustorch::kernels::device {

at::Tensor convolution(const at::Tensor& input, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                       at::IntArrayRef output_padding, int64_t groups);

std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight,
    at::OptionalIntArrayRef bias_sizes, at::IntArrayRef stride, at::IntArrayRef padding,
    at::IntArrayRef dilation, bool transposed, at::IntArrayRef output_padding, int64_t groups,
    std::array<bool, 3> output_mask);

}  // namespace rustorch::kernels::device
