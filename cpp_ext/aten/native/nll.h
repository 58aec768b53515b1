// Negative log-likelihood loss (the second half of cross-entropy): nll_loss for 1-D/2-D inputs
// and nll_loss2d for (N, C, H, W) inputs, forward and backward, float32/float64, int64 targets.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace rustorch::native {

// True when these kernels handle the dtypes/layouts; otherwise use the fallback.
bool nll_supported(const at::Tensor& self, const at::Tensor& target,
                   const std::optional<at::Tensor>& weight);

// The input's layout: nll_loss takes (C) or (N, C), nll_loss2d takes (N, C, H, W) with an
// (N, H, W) target. One implementation serves both (as an (N, C, S) view).
enum class NllInput { Classes, Spatial };

// aten::nll_loss[2d]_forward and aten::nll_loss[2d]_backward (K = Classes / Spatial).
template <NllInput K>
std::tuple<at::Tensor, at::Tensor> nll_forward(const at::Tensor& self, const at::Tensor& target,
                                               const std::optional<at::Tensor>& weight,
                                               int64_t reduction, int64_t ignore_index);
template <NllInput K>
at::Tensor nll_backward(const at::Tensor& grad_output, const at::Tensor& self,
                        const at::Tensor& target, const std::optional<at::Tensor>& weight,
                        int64_t reduction, int64_t ignore_index, const at::Tensor& total_weight);

// Predicates of the aten ops (argument lists as registered).
inline bool nll_forward_ok(const at::Tensor& self, const at::Tensor& target,
                           const std::optional<at::Tensor>& weight, int64_t, int64_t) {
  return nll_supported(self, target, weight);
}
inline bool nll_backward_ok(const at::Tensor& grad_output, const at::Tensor& self,
                            const at::Tensor& target, const std::optional<at::Tensor>& weight,
                            int64_t, int64_t, const at::Tensor& total_weight) {
  return nll_supported(self, target, weight) && grad_output.scalar_type() == self.scalar_type() &&
         total_weight.scalar_type() == self.scalar_type();
}

}  // namespace rustorch::native
