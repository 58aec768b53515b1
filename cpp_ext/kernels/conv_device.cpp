#include "kernels/conv_device.h"

#include <ATen/ops/convolution_backward_ops.h>
#include <ATen/ops/convolution_ops.h>

#include <vector>

#include "aten/fallback.h"
#include "kernels/conv.h"
#include "kernels/gemm_device.h"

namespace rustorch::kernels::device {
namespace {

// A 2-D or 1-D (3-D tensors) convolution our kernel handles.
bool native_conv(const at::Tensor& input, const at::Tensor& weight, bool transposed,
                 std::initializer_list<const at::Tensor*> others) {
  const int64_t d = input.dim();
  return !transposed && (d == 4 || d == 3) && weight.dim() == d &&
         native_operands(input, others);
}

// A 1-D parameter list as its 2-D form for height 1: {v} -> {h_value, v}.
std::vector<int64_t> as_2d(at::IntArrayRef v, int64_t h_value) {
  return {h_value, v.empty() ? h_value : v.back()};
}

}  // namespace

at::Tensor convolution(const at::Tensor& input, const at::Tensor& weight,
                       const std::optional<at::Tensor>& bias, at::IntArrayRef stride,
                       at::IntArrayRef padding, at::IntArrayRef dilation, bool transposed,
                       at::IntArrayRef output_padding, int64_t groups) {
  const at::Tensor* b = bias.has_value() ? &*bias : nullptr;
  if (!native_conv(input, weight, transposed, {&weight, b})) {
    return fallback<at::_ops::convolution>(
        input, weight, bias, c10::fromIntArrayRefSlow(stride), c10::fromIntArrayRefSlow(padding),
        c10::fromIntArrayRefSlow(dilation), transposed, c10::fromIntArrayRefSlow(output_padding),
        c10::SymInt(groups));
  }
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
  if (!native_conv(input, weight, transposed, {&weight, &grad_output}) ||
      grad_output.dim() != input.dim()) {
    std::optional<c10::SymIntArrayRef> sym_bias;
    if (bias_sizes.has_value()) sym_bias = c10::fromIntArrayRefSlow(*bias_sizes);
    return fallback<at::_ops::convolution_backward>(
        grad_output, input, weight, sym_bias, c10::fromIntArrayRefSlow(stride),
        c10::fromIntArrayRefSlow(padding), c10::fromIntArrayRefSlow(dilation), transposed,
        c10::fromIntArrayRefSlow(output_padding), c10::SymInt(groups), output_mask);
  }
  if (input.dim() == 3) {
    auto [gi, gw, gb] = conv2d_backward(grad_output.unsqueeze(2), input.unsqueeze(2),
                                        weight.unsqueeze(2), as_2d(stride, 1), as_2d(padding, 0),
                                        as_2d(dilation, 1), groups, output_mask);
    return {gi.defined() ? gi.squeeze(2) : gi, gw.defined() ? gw.squeeze(2) : gw, gb};
  }
  return conv2d_backward(grad_output, input, weight, stride, padding, dilation, groups,
                         output_mask);
}

}  // namespace rustorch::kernels::device
