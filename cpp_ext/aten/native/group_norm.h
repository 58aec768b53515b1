// native_group_norm and native_group_norm_backward for float32/float64: N x G groups of
// (C / G) * HxW contiguous values, statistics per group in double (like layer_norm). Groups are
// independent; the per-(n, c) sums of the backward and the weight/bias gradients (summed over n in
// order) have a fixed order, so results are bit-identical at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <optional>
#include <tuple>

namespace rustorch::native {

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_group_norm(
    const at::Tensor& input, const std::optional<at::Tensor>& weight,
    const std::optional<at::Tensor>& bias, int64_t N, int64_t C, int64_t HxW, int64_t group,
    double eps);

std::tuple<at::Tensor, at::Tensor, at::Tensor> native_group_norm_backward(
    const at::Tensor& grad_out, const at::Tensor& input, const at::Tensor& mean,
    const at::Tensor& rstd, const std::optional<at::Tensor>& weight, int64_t N, int64_t C,
    int64_t HxW, int64_t group, std::array<bool, 3> output_mask);

// Predicates (argument lists as registered): float32/float64 input of N * C * HxW elements in
// the contiguous memory format (channels_last goes to CPU's kernel), C divisible by group,
// weight/bias of C elements and statistics of N * group elements in the input's dtype.
bool native_group_norm_ok(const at::Tensor& input, const std::optional<at::Tensor>& weight,
                          const std::optional<at::Tensor>& bias, int64_t N, int64_t C,
                          int64_t HxW, int64_t group, double eps);
bool native_group_norm_backward_ok(const at::Tensor& grad_out, const at::Tensor& input,
                                   const at::Tensor& mean, const at::Tensor& rstd,
                                   const std::optional<at::Tensor>& weight, int64_t N, int64_t C,
                                   int64_t HxW, int64_t group, std::array<bool, 3> output_mask);

}  // namespace rustorch::native
