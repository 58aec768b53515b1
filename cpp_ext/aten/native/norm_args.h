// Argument handling shared by the normalization ops (batch_norm, layer_norm, group_norm):
// optional parameters, raw pointers of tensors that may be absent, and the contiguous inputs and
// masked outputs of a backward.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>

namespace rustorch::native::norm {

inline bool defined(const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); }

template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
T* mutable_data_or_null(const at::Tensor& t) {
  return t.defined() ? t.mutable_data_ptr<T>() : nullptr;
}

// A backward's inputs made contiguous, and the gradients output_mask asks for (dx shaped like
// the input, dweight like the weight when there is one, dbias of `bias_sizes` when given).
struct BackwardBuffers {
  at::Tensor x, dy, mean, rstd, weight;
  at::Tensor dx, dweight, dbias;
};

inline BackwardBuffers backward_buffers(const at::Tensor& grad_out, const at::Tensor& input,
                                        const at::Tensor& mean, const at::Tensor& rstd,
                                        const std::optional<at::Tensor>& weight,
                                        std::optional<at::IntArrayRef> bias_sizes,
                                        std::array<bool, 3> output_mask) {
  BackwardBuffers b;
  b.x = input.contiguous();
  b.dy = grad_out.contiguous();
  b.mean = mean.contiguous();
  b.rstd = rstd.contiguous();
  if (defined(weight)) b.weight = weight->contiguous();
  if (output_mask[0]) b.dx = at::empty(b.x.sizes(), b.x.options());
  if (output_mask[1] && b.weight.defined()) b.dweight = at::empty(weight->sizes(), b.x.options());
  if (output_mask[2] && bias_sizes.has_value()) b.dbias = at::empty(*bias_sizes, b.x.options());
  return b;
}

}  // namespace rustorch::native::norm
