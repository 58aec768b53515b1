// Activations of transformer and ResNet-style models and their backward, float32/float64:
// gelu (exact and tanh approximation), silu, tanh, sigmoid. Registered on the out= / grad_input
// overloads, which the functional and in-place forms of these structured ops call.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

namespace rustorch::native {

at::Tensor& gelu_out(const at::Tensor& self, c10::string_view approximate, at::Tensor& out);
at::Tensor& gelu_backward_out(const at::Tensor& grad, const at::Tensor& self,
                              c10::string_view approximate, at::Tensor& grad_input);
at::Tensor& silu_out(const at::Tensor& self, at::Tensor& out);
at::Tensor& silu_backward_out(const at::Tensor& grad, const at::Tensor& self,
                              at::Tensor& grad_input);
at::Tensor& tanh_out(const at::Tensor& self, at::Tensor& out);
at::Tensor& tanh_backward_out(const at::Tensor& grad, const at::Tensor& output,
                              at::Tensor& grad_input);
at::Tensor& sigmoid_out(const at::Tensor& self, at::Tensor& out);
at::Tensor& sigmoid_backward_out(const at::Tensor& grad, const at::Tensor& output,
                                 at::Tensor& grad_input);

// gelu's approximate is "none" or "tanh" (anything else: ATen raises the error).
bool gelu_out_ok(const at::Tensor& self, c10::string_view approximate, at::Tensor& out);
bool gelu_backward_out_ok(const at::Tensor& grad, const at::Tensor& self,
                          c10::string_view approximate, at::Tensor& grad_input);

}  // namespace rustorch::native
