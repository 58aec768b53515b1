// Element-wise float32/float64 kernels of the training path (arithmetic, optimizer math,
// relu and its backward, dropout backward, comparisons, fill). Every kernel takes an `out`
// tensor: undefined = allocate the result, defined = write into it (in-place variants pass
// self). The templates at the end give them the aten signatures (functional, in-place, out=)
// that aten/native_ops.cpp registers; the *_supported() predicates say which inputs they take.
#pragma once

#include <ATen/core/Tensor.h>

#include <c10/util/SmallVector.h>

namespace rustorch::native {

enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Sqrt, Neg, Relu, Reciprocal };

// Inputs: float32/float64 tensors of one dtype (0-dim operands of other real dtypes are
// converted, as PyTorch's type promotion does); `out`, when defined, of that same dtype.
bool float_elementwise_supported(c10::ArrayRef<at::Tensor> inputs, const at::Tensor& out);
// Integer operands of one integral dtype (not bool; 0-dim operands of other integral dtypes are
// converted); `out`, when defined, of that dtype. Only add/sub/mul take them.
bool integer_elementwise_supported(c10::ArrayRef<at::Tensor> inputs, const at::Tensor& out);
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

// ---- aten-signature forms (registered in aten/native_ops.cpp) ------------------------------

// Predicate of the element-wise ops, for any of their signatures: the tensor arguments pass
// float_elementwise_supported() (or, with Integers, integer_elementwise_supported() and every
// Scalar integral), a non-const Tensor& first argument being in-place self (input and output),
// a later one out=; every Scalar is real.
template <bool Integers>
struct ElementwiseArgs {
  template <class... A>
  bool operator()(A&... args) const {
    c10::SmallVector<at::Tensor, 4> inputs;
    at::Tensor out;
    bool real = true, integral = true;
    int index = 0;
    (visit(args, index++, inputs, out, real, integral), ...);
    if (!real) return false;
    if (float_elementwise_supported(inputs, out)) return true;
    return Integers && integral && integer_elementwise_supported(inputs, out);
  }

 private:
  using Inputs = c10::SmallVector<at::Tensor, 4>;
  static void visit(const at::Tensor& t, int, Inputs& in, at::Tensor&, bool&, bool&) {
    in.push_back(t);
  }
  static void visit(at::Tensor& t, int index, Inputs& in, at::Tensor& out, bool&, bool&) {
    if (index == 0) in.push_back(t);
    out = t;
  }
  static void visit(const at::Scalar& s, int, Inputs&, at::Tensor&, bool& real, bool& integral) {
    real = real && !s.isComplex() && !s.isBoolean();
    integral = integral && s.isIntegral(false);
  }
  // Other arguments (gelu's approximate, ...) are the op's own business.
  template <class T>
  static void visit(const T&, int, Inputs&, at::Tensor&, bool&, bool&) {}
};
// float32/float64 only (div, sqrt, addcmul, ...).
using FloatElementwise = ElementwiseArgs<false>;
// Also integer tensors of one dtype (add, sub, mul: e.g. BatchNorm's num_batches_tracked += 1).
using ArithElementwise = ElementwiseArgs<true>;

template <BinaryOp OP>  // add.Tensor, sub.Tensor
at::Tensor binary_alpha(const at::Tensor& self, const at::Tensor& other, const at::Scalar& alpha) {
  return binary(OP, self, other, alpha, at::Tensor());
}
template <BinaryOp OP>
at::Tensor& binary_alpha_(at::Tensor& self, const at::Tensor& other, const at::Scalar& alpha) {
  binary(OP, self, other, alpha, self);
  return self;
}
template <BinaryOp OP>
at::Tensor& binary_alpha_out(const at::Tensor& self, const at::Tensor& other,
                             const at::Scalar& alpha, at::Tensor& out) {
  binary(OP, self, other, alpha, out);
  return out;
}
template <BinaryOp OP>  // mul.Tensor, div.Tensor
at::Tensor binary_plain(const at::Tensor& self, const at::Tensor& other) {
  return binary(OP, self, other, 1, at::Tensor());
}
template <BinaryOp OP>
at::Tensor& binary_plain_(at::Tensor& self, const at::Tensor& other) {
  binary(OP, self, other, 1, self);
  return self;
}
template <BinaryOp OP>
at::Tensor& binary_plain_out(const at::Tensor& self, const at::Tensor& other, at::Tensor& out) {
  binary(OP, self, other, 1, out);
  return out;
}
template <BinaryOp OP>  // add.Scalar, sub.Scalar
at::Tensor scalar_alpha(const at::Tensor& self, const at::Scalar& other, const at::Scalar& alpha) {
  return binary_scalar(OP, self, other, alpha, at::Tensor());
}
template <BinaryOp OP>
at::Tensor& scalar_alpha_(at::Tensor& self, const at::Scalar& other, const at::Scalar& alpha) {
  binary_scalar(OP, self, other, alpha, self);
  return self;
}
template <BinaryOp OP>  // mul.Scalar, div.Scalar
at::Tensor scalar_plain(const at::Tensor& self, const at::Scalar& other) {
  return binary_scalar(OP, self, other, 1, at::Tensor());
}
template <BinaryOp OP>
at::Tensor& scalar_plain_(at::Tensor& self, const at::Scalar& other) {
  binary_scalar(OP, self, other, 1, self);
  return self;
}
template <UnaryOp OP>
at::Tensor unary_op(const at::Tensor& self) {
  return unary(OP, self, at::Tensor());
}
template <UnaryOp OP>
at::Tensor& unary_op_(at::Tensor& self) {
  unary(OP, self, self);
  return self;
}

// addcmul / addcdiv / lerp as functional and in-place ops.
at::Tensor addcmul_op(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                      const at::Scalar& value);
at::Tensor& addcmul_op_(at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                        const at::Scalar& value);
at::Tensor addcdiv_op(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                      const at::Scalar& value);
at::Tensor& addcdiv_op_(at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                        const at::Scalar& value);
at::Tensor lerp_scalar_op(const at::Tensor& self, const at::Tensor& end, const at::Scalar& w);
at::Tensor& lerp_scalar_op_(at::Tensor& self, const at::Tensor& end, const at::Scalar& w);
at::Tensor lerp_tensor_op(const at::Tensor& self, const at::Tensor& end, const at::Tensor& w);
at::Tensor& lerp_tensor_op_(at::Tensor& self, const at::Tensor& end, const at::Tensor& w);
at::Tensor threshold_backward_op(const at::Tensor& grad, const at::Tensor& self,
                                 const at::Scalar& threshold);

// eq / fill_ / zero_ and their predicates.
at::Tensor eq_tensor_op(const at::Tensor& self, const at::Tensor& other);
at::Tensor& eq_tensor_out(const at::Tensor& self, const at::Tensor& other, at::Tensor& out);
at::Tensor eq_scalar_op(const at::Tensor& self, const at::Scalar& other);
at::Tensor& eq_scalar_out(const at::Tensor& self, const at::Scalar& other, at::Tensor& out);
bool eq_tensor_ok(const at::Tensor& self, const at::Tensor& other);
bool eq_tensor_out_ok(const at::Tensor& self, const at::Tensor& other, at::Tensor& out);
bool eq_scalar_ok(const at::Tensor& self, const at::Scalar& other);
bool eq_scalar_out_ok(const at::Tensor& self, const at::Scalar& other, at::Tensor& out);
at::Tensor& fill_scalar_(at::Tensor& self, const at::Scalar& value);
at::Tensor& fill_tensor_(at::Tensor& self, const at::Tensor& value);
at::Tensor& zero_op_(at::Tensor& self);
bool fill_scalar_ok(at::Tensor& self, const at::Scalar& value);
bool fill_tensor_ok(at::Tensor& self, const at::Tensor& value);
bool zero_ok(at::Tensor& self);

// pow with a real Scalar exponent (x*x for 2, sqrt for 0.5, ... as ATen special-cases them).
at::Tensor pow_scalar(const at::Tensor& self, const at::Scalar& exponent);
at::Tensor& pow_scalar_out(const at::Tensor& self, const at::Scalar& exponent, at::Tensor& out);
at::Tensor& pow_scalar_(at::Tensor& self, const at::Scalar& exponent);

// The masked-row pieces of attention's _safe_softmax: isneginf, all over one dim, where.
at::Tensor& isneginf_out(const at::Tensor& self, at::Tensor& out);
bool isneginf_out_ok(const at::Tensor& self, at::Tensor& out);
at::Tensor& all_dim_out(const at::Tensor& self, int64_t dim, bool keepdim, at::Tensor& out);
bool all_dim_out_ok(const at::Tensor& self, int64_t dim, bool keepdim, at::Tensor& out);
at::Tensor& where_self_out(const at::Tensor& condition, const at::Tensor& self,
                           const at::Tensor& other, at::Tensor& out);
bool where_self_out_ok(const at::Tensor& condition, const at::Tensor& self,
                       const at::Tensor& other, at::Tensor& out);
// where.self: its CPU kernel is not structured, so the functional form needs its own native op.
// It also serves attention's bool-mask conversion, where(mask, 0.0, scalar_tensor(-inf)): 0-dim
// CPU operands (wrapped Python numbers) are read in place, as ATen allows CPU scalars there.
at::Tensor where_self(const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other);
bool where_self_ok(const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other);

// dropout backward in aten's signature.
at::Tensor native_dropout_backward(const at::Tensor& grad, const at::Tensor& mask, double scale);
bool native_dropout_backward_ok(const at::Tensor& grad, const at::Tensor& mask, double scale);

}  // namespace rustorch::native
