// _foreach_* kernels used by the optimizers (SGD, Adam/AdamW, Adadelta, ...): one call walks a
// list of tensors with the element-wise kernels of elementwise.h. `inplace` writes into self
// and returns nothing; otherwise returns new tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "kernels/elementwise.h"

namespace rustorch::kernels {

enum class PointwiseOp { Addcmul, Addcdiv };

// Every tensor float32/float64, and at each index the lists' tensors share one dtype.
bool foreach_supported(std::initializer_list<at::TensorList> lists);
// A 0-dim "scalar tensor" argument (_foreach_add.Tensor, ...) readable as a real number.
bool foreach_scalar_tensor_supported(const at::Tensor& t);

std::vector<at::Tensor> foreach_binary_list(BinaryOp op, at::TensorList self,
                                            at::TensorList other, const at::Scalar& alpha,
                                            bool inplace);
std::vector<at::Tensor> foreach_binary_scalar(BinaryOp op, at::TensorList self,
                                              const at::Scalar& s, bool inplace);
std::vector<at::Tensor> foreach_binary_scalarlist(BinaryOp op, at::TensorList self,
                                                  at::ArrayRef<at::Scalar> s, bool inplace);
std::vector<at::Tensor> foreach_unary(UnaryOp op, at::TensorList self, bool inplace);
std::vector<at::Tensor> foreach_pointwise(PointwiseOp op, at::TensorList self,
                                          at::TensorList t1, at::TensorList t2,
                                          at::ArrayRef<at::Scalar> values, bool inplace);
std::vector<at::Tensor> foreach_lerp_scalar(at::TensorList self, at::TensorList end,
                                            const at::Scalar& weight, bool inplace);
std::vector<at::Tensor> foreach_lerp_list(at::TensorList self, at::TensorList end,
                                          at::TensorList weight, bool inplace);
void foreach_zero(at::TensorList self);

// The Scalar held by a 0-dim tensor argument.
at::Scalar scalar_of(const at::Tensor& t);
// values[i] for every i of a list of n (one Scalar repeated, or a list checked for length).
std::vector<at::Scalar> expand_scalars(at::ArrayRef<at::Scalar> s, size_t n);

}  // namespace rustorch::kernels
