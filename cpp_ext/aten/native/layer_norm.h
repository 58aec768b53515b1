// native_layer_norm and native_layer_norm_backward for float32/float64: rows of N =
// prod(normalized_shape) values, statistics per row in double. Rows are independent, and the
// weight/bias gradients sum fixed chunks of rows in a fixed order, so results are bit-identical
// at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace rustorch::native {

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_layer_norm(
    const at::Tensor& input, at::IntArrayRef normalized_shape,
    const std::optional<at::Tensor>& weight, const std::optional<at::Tensor>& bias, double eps);

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_layer_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, at::IntArrayRef normalized_shape,
    const at::Tensor& mean, const at::Tensor& rstd, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, std::array<bool, 3> output_mask);

// Predicates (argument lists as registered): float32/float64, the trailing dims equal to
// normalized_shape, weight/bias/statistics of the input's dtype and the expected sizes.
bool native_layer_norm_ok(const at::Tensor& input, at::IntArrayRef normalized_shape,
                          const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias, double eps);
bool native_layer_norm_backward_ok(
    const at::Tensor& grad_out, const at::Tensor& input, at::IntArrayRef normalized_shape,
    const at::Tensor& mean, const at::Tensor& rstd, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, std::array<bool, 3> output_mask);

}  // namespace rustorch::native
