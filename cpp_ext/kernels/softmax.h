// softmax / log_softmax forward and backward over one dimension (float32, float64).
#pragma once

#include <ATen/core/Tensor.h>

namespace rustorch::kernels {

// True when these kernels handle `t` (float32/float64, strided); otherwise use the fallback.
bool softmax_supported(const at::Tensor& t);

at::Tensor log_softmax(const at::Tensor& self, int64_t dim, bool half_to_float);
at::Tensor softmax(const at::Tensor& self, int64_t dim, bool half_to_float);
at::Tensor log_softmax_backward(const at::Tensor& grad_output, const at::Tensor& output,
                                int64_t dim, at::ScalarType input_dtype);
at::Tensor softmax_backward(const at::Tensor& grad_output, const at::Tensor& output, int64_t dim,
                            at::ScalarType input_dtype);

}  // namespace rustorch::kernels
