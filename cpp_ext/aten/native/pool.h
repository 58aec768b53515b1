// max_pool2d with indices, forward and backward, for (C, H, W) / (N, C, H, W) float32/float64.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace rustorch::native {

// True for float32/float64 inputs not in channels-last layout (those go to the fallback).
bool max_pool2d_supported(const at::Tensor& self);

std::tuple<at::Tensor, at::Tensor> max_pool2d_with_indices(const at::Tensor& self,
                                                           at::IntArrayRef kernel_size,
                                                           at::IntArrayRef stride,
                                                           at::IntArrayRef padding,
                                                           at::IntArrayRef dilation,
                                                           bool ceil_mode);
at::Tensor max_pool2d_with_indices_backward(const at::Tensor& grad_output, const at::Tensor& self,
                                            at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                            at::IntArrayRef padding, at::IntArrayRef dilation,
                                            bool ceil_mode, const at::Tensor& indices);

// Predicates of the aten ops (argument lists as registered).
inline bool max_pool2d_ok(const at::Tensor& self, at::IntArrayRef, at::IntArrayRef,
                          at::IntArrayRef, at::IntArrayRef, bool) {
  return max_pool2d_supported(self);
}
inline bool max_pool2d_backward_ok(const at::Tensor& grad_output, const at::Tensor& self,
                                   at::IntArrayRef, at::IntArrayRef, at::IntArrayRef,
                                   at::IntArrayRef, bool, const at::Tensor& indices) {
  return max_pool2d_supported(self) && grad_output.scalar_type() == self.scalar_type() &&
         indices.scalar_type() == at::kLong;
}

}  // namespace rustorch::native
