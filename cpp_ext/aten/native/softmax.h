// softmax / log_softmax forward and backward over one dimension (float32, float64).
#pragma once

#include <ATen/core/Tensor.h>

namespace rustorch::native {

// True when these kernels handle `t` (float32/float64, strided); otherwise use the fallback.
bool softmax_supported(const at::Tensor& t);

at::Tensor log_softmax(const at::Tensor& self, int64_t dim, bool half_to_float);
at::Tensor softmax(const at::Tensor& self, int64_t dim, bool half_to_float);
at::Tensor log_softmax_backward(const at::Tensor& grad_output, const at::Tensor& output,
                                int64_t dim, at::ScalarType input_dtype);
at::Tensor softmax_backward(const at::Tensor& grad_output, const at::Tensor& output, int64_t dim,
                            at::ScalarType input_dtype);

// Predicates of the aten ops (argument lists as registered): no half_to_float, one dtype.
inline bool softmax_ok(const at::Tensor& self, int64_t, bool half_to_float) {
  return softmax_supported(self) && !half_to_float;
}
inline bool softmax_backward_ok(const at::Tensor& grad, const at::Tensor& output, int64_t,
                                at::ScalarType input_dtype) {
  return softmax_supported(grad) && grad.scalar_type() == output.scalar_type() &&
         input_dtype == output.scalar_type();
}

}  // namespace rustorch::native
