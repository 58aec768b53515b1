// _foreach_* kernels used by the optimizers (SGD, Adam/AdamW, Adadelta, ...): one call walks a
// list of tensors with the element-wise kernels of elementwise.h. `inplace` writes into self
// and returns nothing; otherwise returns new tensors.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "aten/native/elementwise.h"

namespace rustorch::native {

enum class PointwiseOp { Addcmul, Addcdiv };

// Every tensor float32/float64, and at each index the lists' tensors share one dtype.
bool foreach_supported(c10::ArrayRef<at::TensorList> lists);
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

// ---- aten-signature forms (registered in aten/native_ops.cpp) ------------------------------

// Predicate of the _foreach_* ops, for any of their signatures: the tensor lists pass
// foreach_supported(), a single Tensor argument (the 0-dim "scalar tensor" of
// _foreach_add.Tensor) passes foreach_scalar_tensor_supported(), every Scalar is real.
struct FloatForeach {
  template <class... A>
  bool operator()(const A&... args) const {
    c10::SmallVector<at::TensorList, 3> lists;
    bool ok = true;
    (visit(args, lists, ok), ...);
    return ok && foreach_supported(lists);
  }

 private:
  static bool real(const at::Scalar& s) { return !s.isComplex() && !s.isBoolean(); }
  static void visit(at::TensorList l, c10::SmallVector<at::TensorList, 3>& lists, bool&) {
    lists.push_back(l);
  }
  static void visit(const at::Tensor& t, c10::SmallVector<at::TensorList, 3>&, bool& ok) {
    ok = ok && foreach_scalar_tensor_supported(t);
  }
  static void visit(const at::Scalar& s, c10::SmallVector<at::TensorList, 3>&, bool& ok) {
    ok = ok && real(s);
  }
  static void visit(at::ArrayRef<at::Scalar> s, c10::SmallVector<at::TensorList, 3>&, bool& ok) {
    for (const auto& v : s) ok = ok && real(v);
  }
};

template <BinaryOp OP>  // _foreach_OP.Scalar
std::vector<at::Tensor> foreach_scalar(at::TensorList self, const at::Scalar& s) {
  return foreach_binary_scalar(OP, self, s, false);
}
template <BinaryOp OP>
void foreach_scalar_(at::TensorList self, const at::Scalar& s) {
  foreach_binary_scalar(OP, self, s, true);
}
template <BinaryOp OP>  // _foreach_OP.ScalarList
std::vector<at::Tensor> foreach_scalarlist(at::TensorList self, at::ArrayRef<at::Scalar> s) {
  return foreach_binary_scalarlist(OP, self, s, false);
}
template <BinaryOp OP>
void foreach_scalarlist_(at::TensorList self, at::ArrayRef<at::Scalar> s) {
  foreach_binary_scalarlist(OP, self, s, true);
}
template <BinaryOp OP>  // _foreach_add.List, _foreach_sub.List
std::vector<at::Tensor> foreach_list_alpha(at::TensorList self, at::TensorList other,
                                           const at::Scalar& alpha) {
  return foreach_binary_list(OP, self, other, alpha, false);
}
template <BinaryOp OP>
void foreach_list_alpha_(at::TensorList self, at::TensorList other, const at::Scalar& alpha) {
  foreach_binary_list(OP, self, other, alpha, true);
}
template <BinaryOp OP>  // _foreach_mul.List, _foreach_div.List
std::vector<at::Tensor> foreach_list(at::TensorList self, at::TensorList other) {
  return foreach_binary_list(OP, self, other, 1, false);
}
template <BinaryOp OP>
void foreach_list_(at::TensorList self, at::TensorList other) {
  foreach_binary_list(OP, self, other, 1, true);
}
template <BinaryOp OP>  // _foreach_mul.Tensor, _foreach_div.Tensor: a 0-dim tensor as Scalar
std::vector<at::Tensor> foreach_tensor(at::TensorList self, const at::Tensor& other) {
  return foreach_binary_scalar(OP, self, scalar_of(other), false);
}
template <BinaryOp OP>
void foreach_tensor_(at::TensorList self, const at::Tensor& other) {
  foreach_binary_scalar(OP, self, scalar_of(other), true);
}
std::vector<at::Tensor> foreach_add_tensor(at::TensorList self, const at::Tensor& other,
                                           const at::Scalar& alpha);
void foreach_add_tensor_(at::TensorList self, const at::Tensor& other, const at::Scalar& alpha);
template <PointwiseOp OP>  // _foreach_addcmul.Scalar, _foreach_addcdiv.Scalar
std::vector<at::Tensor> foreach_pointwise_scalar(at::TensorList self, at::TensorList t1,
                                                 at::TensorList t2, const at::Scalar& value) {
  return foreach_pointwise(OP, self, t1, t2, value, false);
}
template <PointwiseOp OP>
void foreach_pointwise_scalar_(at::TensorList self, at::TensorList t1, at::TensorList t2,
                               const at::Scalar& value) {
  foreach_pointwise(OP, self, t1, t2, value, true);
}
template <PointwiseOp OP>  // .ScalarList
std::vector<at::Tensor> foreach_pointwise_scalarlist(at::TensorList self, at::TensorList t1,
                                                     at::TensorList t2,
                                                     at::ArrayRef<at::Scalar> values) {
  return foreach_pointwise(OP, self, t1, t2, values, false);
}
template <PointwiseOp OP>
void foreach_pointwise_scalarlist_(at::TensorList self, at::TensorList t1, at::TensorList t2,
                                   at::ArrayRef<at::Scalar> values) {
  foreach_pointwise(OP, self, t1, t2, values, true);
}
template <UnaryOp OP>
std::vector<at::Tensor> foreach_unary_op(at::TensorList self) {
  return foreach_unary(OP, self, false);
}
template <UnaryOp OP>
void foreach_unary_op_(at::TensorList self) {
  foreach_unary(OP, self, true);
}
inline std::vector<at::Tensor> foreach_lerp_scalar_op(at::TensorList self, at::TensorList end,
                                                      const at::Scalar& weight) {
  return foreach_lerp_scalar(self, end, weight, false);
}
inline void foreach_lerp_scalar_op_(at::TensorList self, at::TensorList end,
                                    const at::Scalar& weight) {
  foreach_lerp_scalar(self, end, weight, true);
}
inline std::vector<at::Tensor> foreach_lerp_list_op(at::TensorList self, at::TensorList end,
                                                    at::TensorList weight) {
  return foreach_lerp_list(self, end, weight, false);
}
inline void foreach_lerp_list_op_(at::TensorList self, at::TensorList end, at::TensorList weight) {
  foreach_lerp_list(self, end, weight, true);
}
// _foreach_zero_ takes every dtype fill_ takes.
bool foreach_zero_ok(at::TensorList self);

}  // namespace rustorch::native
