// Element-wise float32/float64 kernels of the training path (arithmetic, optimizer math,
// relu and its backward, dropout backward, comparisons, fill). Every function takes an `out`
// tensor: undefined = allocate the result, defined = write into it (in-place variants pass
// self). Call the matching *_supported() first; unsupported inputs belong to the fallback.
#pragma once

#include <ATen/core/Tensor.h>

#include <initializer_list>

namespace rustorch::kernels {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Sqrt, Neg, Relu, Reciprocal };

// Inputs: float32/float64 tensors of one dtype (0-dim operands of other real dtypes are
// converted, as PyTorch's type promotion does); `out`, when defined, of that same dtype.
bool float_elementwise_supported(std::initializer_list<at::Tensor> inputs, const at::Tensor& out);
// Same for a tensor combined with a Scalar (real, not complex or bool).
bool float_scalar_supported(const at::Tensor& self, const at::Scalar& s, const at::Tensor& out);

at::Tensor binary(BinaryOp op, const at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha,
                  const at::Tensor& out);
at::Tensor binary_scalar(BinaryOp op, const at::Tensor& a, const at::Scalar& b,
                         const at::Scalar& alpha, const at::Tensor& out);
at::Tensor unary(UnaryOp op, const at::Tensor& a, const at::Tensor& out);
at::Tensor addcmul(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                   const at::Scalar& value, const at::Tensor& out);
at::Tensor addcdiv(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                   const at::Scalar& value, const at::Tensor& out);
at::Tensor lerp_scalar(const at::Tensor& self, const at::Tensor& end, const at::Scalar& weight,
                       const at::Tensor& out);
at::Tensor lerp_tensor(const at::Tensor& self, const at::Tensor& end, const at::Tensor& weight,
                       const at::Tensor& out);
at::Tensor threshold_backward(const at::Tensor& grad, const at::Tensor& self,
                              const at::Scalar& threshold, const at::Tensor& out);

// grad * mask * scale; mask is bool (or grad's dtype).
bool dropout_backward_supported(const at::Tensor& grad, const at::Tensor& mask);
at::Tensor dropout_backward(const at::Tensor& grad, const at::Tensor& mask, double scale);

// eq with a bool result: float32/float64/int64/int32/bool operands of one dtype.
bool eq_supported(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out);
bool eq_scalar_supported(const at::Tensor& a, const at::Scalar& s, const at::Tensor& out);
at::Tensor eq(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out);
at::Tensor eq_scalar(const at::Tensor& a, const at::Scalar& s, const at::Tensor& out);

// fill_/zero_ for every real dtype and bool.
bool fill_supported(const at::Tensor& self);
at::Tensor& fill(at::Tensor& self, const at::Scalar& value);

}  // namespace rustorch::kernels
