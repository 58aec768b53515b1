#include "aten/training_ops.h"

#include <ATen/ATen.h>
#include <ATen/Operators.h>

#include <mutex>

#include "aten/fallback.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/foreach.h"
#include "kernels/nll.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "runtime/generator.h"

namespace rustorch::training_ops {
namespace {
namespace k = ::rustorch::kernels;
using k::BinaryOp;
using k::PointwiseOp;
using k::UnaryOp;

// Re-dispatch the current call to the counted CPU fallback.
#define RT_FALLBACK(op, ...) return ::rustorch::fallback<at::_ops::op>(__VA_ARGS__)

bool real_scalar(const Scalar& s) { return !s.isComplex() && !s.isBoolean(); }

bool real_scalars(at::ArrayRef<Scalar> s) {
  for (const auto& v : s)
    if (!real_scalar(v)) return false;
  return true;
}

bool ew(std::initializer_list<Tensor> in, const Tensor& out = Tensor()) {
  return k::float_elementwise_supported(in, out);
}

}  // namespace

// ---- softmax / NLL -------------------------------------------------------------------------

Tensor log_softmax(const Tensor& self, int64_t dim, bool half_to_float) {
  if (!k::softmax_supported(self) || half_to_float)
    RT_FALLBACK(_log_softmax, self, dim, half_to_float);
  return k::log_softmax(self, dim, false);
}

Tensor log_softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim,
                            at::ScalarType input_dtype) {
  if (!k::softmax_supported(grad) || grad.scalar_type() != output.scalar_type() ||
      input_dtype != output.scalar_type())
    RT_FALLBACK(_log_softmax_backward_data, grad, output, dim, input_dtype);
  return k::log_softmax_backward(grad, output, dim, input_dtype);
}

Tensor softmax(const Tensor& self, int64_t dim, bool half_to_float) {
  if (!k::softmax_supported(self) || half_to_float) RT_FALLBACK(_softmax, self, dim, half_to_float);
  return k::softmax(self, dim, false);
}

Tensor softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim,
                        at::ScalarType input_dtype) {
  if (!k::softmax_supported(grad) || grad.scalar_type() != output.scalar_type() ||
      input_dtype != output.scalar_type())
    RT_FALLBACK(_softmax_backward_data, grad, output, dim, input_dtype);
  return k::softmax_backward(grad, output, dim, input_dtype);
}

std::tuple<Tensor, Tensor> nll_loss_forward(const Tensor& self, const Tensor& target,
                                            const std::optional<Tensor>& weight,
                                            int64_t reduction, int64_t ignore_index) {
  if (!k::nll_supported(self, target, weight))
    RT_FALLBACK(nll_loss_forward, self, target, weight, reduction, c10::SymInt(ignore_index));
  return k::nll_loss_forward(self, target, weight, reduction, ignore_index);
}

Tensor nll_loss_backward(const Tensor& grad_output, const Tensor& self, const Tensor& target,
                         const std::optional<Tensor>& weight, int64_t reduction,
                         int64_t ignore_index, const Tensor& total_weight) {
  if (!k::nll_supported(self, target, weight) || grad_output.scalar_type() != self.scalar_type() ||
      total_weight.scalar_type() != self.scalar_type())
    RT_FALLBACK(nll_loss_backward, grad_output, self, target, weight, reduction,
                c10::SymInt(ignore_index), total_weight);
  return k::nll_loss_backward(grad_output, self, target, weight, reduction, ignore_index,
                              total_weight);
}

std::tuple<Tensor, Tensor> nll_loss2d_forward(const Tensor& self, const Tensor& target,
                                              const std::optional<Tensor>& weight,
                                              int64_t reduction, int64_t ignore_index) {
  if (!k::nll_supported(self, target, weight))
    RT_FALLBACK(nll_loss2d_forward, self, target, weight, reduction, c10::SymInt(ignore_index));
  return k::nll_loss2d_forward(self, target, weight, reduction, ignore_index);
}

Tensor nll_loss2d_backward(const Tensor& grad_output, const Tensor& self, const Tensor& target,
                           const std::optional<Tensor>& weight, int64_t reduction,
                           int64_t ignore_index, const Tensor& total_weight) {
  if (!k::nll_supported(self, target, weight) || grad_output.scalar_type() != self.scalar_type() ||
      total_weight.scalar_type() != self.scalar_type())
    RT_FALLBACK(nll_loss2d_backward, grad_output, self, target, weight, reduction,
                c10::SymInt(ignore_index), total_weight);
  return k::nll_loss2d_backward(grad_output, self, target, weight, reduction, ignore_index,
                                total_weight);
}

// ---- activations, pooling, dropout ---------------------------------------------------------

Tensor relu(const Tensor& self) {
  if (!ew({self})) RT_FALLBACK(relu, self);
  return k::unary(UnaryOp::Relu, self, Tensor());
}

Tensor& relu_(Tensor& self) {
  if (!ew({self}, self)) RT_FALLBACK(relu_, self);
  k::unary(UnaryOp::Relu, self, self);
  return self;
}

Tensor threshold_backward(const Tensor& grad_output, const Tensor& self, const Scalar& threshold) {
  if (!ew({grad_output, self}) || !real_scalar(threshold))
    RT_FALLBACK(threshold_backward, grad_output, self, threshold);
  return k::threshold_backward(grad_output, self, threshold, Tensor());
}

std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& self, at::IntArrayRef kernel_size,
                                                   at::IntArrayRef stride, at::IntArrayRef padding,
                                                   at::IntArrayRef dilation, bool ceil_mode) {
  if (!k::max_pool2d_supported(self))
    RT_FALLBACK(max_pool2d_with_indices, self, kernel_size, stride, padding, dilation, ceil_mode);
  return k::max_pool2d_with_indices(self, kernel_size, stride, padding, dilation, ceil_mode);
}

Tensor max_pool2d_with_indices_backward(const Tensor& grad_output, const Tensor& self,
                                        at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation,
                                        bool ceil_mode, const Tensor& indices) {
  if (!k::max_pool2d_supported(self) || grad_output.scalar_type() != self.scalar_type() ||
      indices.scalar_type() != at::kLong)
    RT_FALLBACK(max_pool2d_with_indices_backward, grad_output, self, kernel_size, stride, padding,
                dilation, ceil_mode, indices);
  return k::max_pool2d_with_indices_backward(grad_output, self, kernel_size, stride, padding,
                                             dilation, ceil_mode, indices);
}

std::tuple<Tensor, Tensor> native_dropout(const Tensor& input, double p, std::optional<bool> train) {
  if (!k::dropout_supported(input)) RT_FALLBACK(native_dropout, input, p, train);
  uint64_t seed = 0;
  if ((!train.has_value() || *train) && input.numel() > 0) {
    // One draw from the device generator keys the whole mask (Philox, counter = element).
    at::CPUGeneratorImpl* gen = ::rustorch::generator_impl(std::nullopt, input.device().index());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    seed = gen->random64();
  }
  return k::native_dropout(input, p, train, seed, 0);
}

Tensor native_dropout_backward(const Tensor& grad_output, const Tensor& mask, double scale) {
  if (!k::dropout_backward_supported(grad_output, mask))
    RT_FALLBACK(native_dropout_backward, grad_output, mask, scale);
  return k::dropout_backward(grad_output, mask, scale);
}

// ---- element-wise --------------------------------------------------------------------------

#define RT_BINARY_ALPHA(name, OP, aten_fn, aten_inplace, aten_out)                          \
  Tensor name(const Tensor& self, const Tensor& other, const Scalar& alpha) {              \
    if (!ew({self, other}) || !real_scalar(alpha)) RT_FALLBACK(aten_fn, self, other, alpha); \
    return k::binary(BinaryOp::OP, self, other, alpha, Tensor());                          \
  }                                                                                         \
  Tensor& name##_(Tensor & self, const Tensor& other, const Scalar& alpha) {               \
    if (!ew({self, other}, self) || !real_scalar(alpha))                                    \
      RT_FALLBACK(aten_inplace, self, other, alpha);                                        \
    k::binary(BinaryOp::OP, self, other, alpha, self);                                      \
    return self;                                                                            \
  }                                                                                         \
  Tensor& name##_out(const Tensor& self, const Tensor& other, const Scalar& alpha,         \
                     Tensor& out) {                                                         \
    if (!ew({self, other}, out) || !real_scalar(alpha))                                     \
      RT_FALLBACK(aten_out, self, other, alpha, out);                                       \
    k::binary(BinaryOp::OP, self, other, alpha, out);                                       \
    return out;                                                                             \
  }

#define RT_BINARY(name, OP, aten_fn, aten_inplace, aten_out)                       \
  Tensor name(const Tensor& self, const Tensor& other) {                          \
    if (!ew({self, other})) RT_FALLBACK(aten_fn, self, other);                    \
    return k::binary(BinaryOp::OP, self, other, 1, Tensor());                     \
  }                                                                                \
  Tensor& name##_(Tensor & self, const Tensor& other) {                           \
    if (!ew({self, other}, self)) RT_FALLBACK(aten_inplace, self, other);         \
    k::binary(BinaryOp::OP, self, other, 1, self);                                 \
    return self;                                                                   \
  }                                                                                \
  Tensor& name##_out(const Tensor& self, const Tensor& other, Tensor& out) {      \
    if (!ew({self, other}, out)) RT_FALLBACK(aten_out, self, other, out);         \
    k::binary(BinaryOp::OP, self, other, 1, out);                                  \
    return out;                                                                    \
  }

RT_BINARY_ALPHA(add, Add, add_Tensor, add__Tensor, add_out)
RT_BINARY_ALPHA(sub, Sub, sub_Tensor, sub__Tensor, sub_out)
RT_BINARY(mul, Mul, mul_Tensor, mul__Tensor, mul_out)
RT_BINARY(div, Div, div_Tensor, div__Tensor, div_out)

#define RT_SCALAR_ALPHA(name, OP, aten_fn, aten_inplace)                                    \
  Tensor name(const Tensor& self, const Scalar& other, const Scalar& alpha) {              \
    if (!k::float_scalar_supported(self, other, Tensor()) || !real_scalar(alpha))           \
      RT_FALLBACK(aten_fn, self, other, alpha);                                             \
    return k::binary_scalar(BinaryOp::OP, self, other, alpha, Tensor());                    \
  }                                                                                         \
  Tensor& name##_(Tensor & self, const Scalar& other, const Scalar& alpha) {               \
    if (!k::float_scalar_supported(self, other, self) || !real_scalar(alpha))               \
      RT_FALLBACK(aten_inplace, self, other, alpha);                                        \
    k::binary_scalar(BinaryOp::OP, self, other, alpha, self);                               \
    return self;                                                                            \
  }

#define RT_SCALAR(name, OP, aten_fn, aten_inplace)                                          \
  Tensor name(const Tensor& self, const Scalar& other) {                                   \
    if (!k::float_scalar_supported(self, other, Tensor())) RT_FALLBACK(aten_fn, self, other); \
    return k::binary_scalar(BinaryOp::OP, self, other, 1, Tensor());                        \
  }                                                                                         \
  Tensor& name##_(Tensor & self, const Scalar& other) {                                    \
    if (!k::float_scalar_supported(self, other, self)) RT_FALLBACK(aten_inplace, self, other); \
    k::binary_scalar(BinaryOp::OP, self, other, 1, self);                                   \
    return self;                                                                            \
  }

RT_SCALAR_ALPHA(add_scalar, Add, add_Scalar, add__Scalar)
RT_SCALAR_ALPHA(sub_scalar, Sub, sub_Scalar, sub__Scalar)
RT_SCALAR(mul_scalar, Mul, mul_Scalar, mul__Scalar)
RT_SCALAR(div_scalar, Div, div_Scalar, div__Scalar)

#define RT_UNARY(name, OP, aten_fn, aten_inplace)                 \
  Tensor name(const Tensor& self) {                              \
    if (!ew({self})) RT_FALLBACK(aten_fn, self);                 \
    return k::unary(UnaryOp::OP, self, Tensor());                \
  }                                                               \
  Tensor& name##_(Tensor & self) {                               \
    if (!ew({self}, self)) RT_FALLBACK(aten_inplace, self);      \
    k::unary(UnaryOp::OP, self, self);                            \
    return self;                                                  \
  }

RT_UNARY(sqrt, Sqrt, sqrt, sqrt_)
RT_UNARY(neg, Neg, neg, neg_)
RT_UNARY(reciprocal, Reciprocal, reciprocal, reciprocal_)

#define RT_POINTWISE(name, aten_fn, aten_inplace)                                             \
  Tensor name(const Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value) { \
    if (!ew({self, t1, t2}) || !real_scalar(value)) RT_FALLBACK(aten_fn, self, t1, t2, value); \
    return k::name(self, t1, t2, value, Tensor());                                            \
  }                                                                                            \
  Tensor& name##_(Tensor & self, const Tensor& t1, const Tensor& t2, const Scalar& value) {  \
    if (!ew({self, t1, t2}, self) || !real_scalar(value))                                      \
      RT_FALLBACK(aten_inplace, self, t1, t2, value);                                          \
    k::name(self, t1, t2, value, self);                                                        \
    return self;                                                                               \
  }

RT_POINTWISE(addcmul, addcmul, addcmul_)
RT_POINTWISE(addcdiv, addcdiv, addcdiv_)

Tensor lerp_scalar(const Tensor& self, const Tensor& end, const Scalar& weight) {
  if (!ew({self, end}) || !real_scalar(weight)) RT_FALLBACK(lerp_Scalar, self, end, weight);
  return k::lerp_scalar(self, end, weight, Tensor());
}

Tensor& lerp_scalar_(Tensor& self, const Tensor& end, const Scalar& weight) {
  if (!ew({self, end}, self) || !real_scalar(weight)) RT_FALLBACK(lerp__Scalar, self, end, weight);
  k::lerp_scalar(self, end, weight, self);
  return self;
}

Tensor lerp_tensor(const Tensor& self, const Tensor& end, const Tensor& weight) {
  if (!ew({self, end, weight})) RT_FALLBACK(lerp_Tensor, self, end, weight);
  return k::lerp_tensor(self, end, weight, Tensor());
}

Tensor& lerp_tensor_(Tensor& self, const Tensor& end, const Tensor& weight) {
  if (!ew({self, end, weight}, self)) RT_FALLBACK(lerp__Tensor, self, end, weight);
  k::lerp_tensor(self, end, weight, self);
  return self;
}

Tensor eq_tensor(const Tensor& self, const Tensor& other) {
  if (!k::eq_supported(self, other, Tensor())) RT_FALLBACK(eq_Tensor, self, other);
  return k::eq(self, other, Tensor());
}

Tensor& eq_tensor_out(const Tensor& self, const Tensor& other, Tensor& out) {
  if (!k::eq_supported(self, other, out)) RT_FALLBACK(eq_Tensor_out, self, other, out);
  k::eq(self, other, out);
  return out;
}

Tensor eq_scalar(const Tensor& self, const Scalar& other) {
  if (!k::eq_scalar_supported(self, other, Tensor())) RT_FALLBACK(eq_Scalar, self, other);
  return k::eq_scalar(self, other, Tensor());
}

Tensor& eq_scalar_out(const Tensor& self, const Scalar& other, Tensor& out) {
  if (!k::eq_scalar_supported(self, other, out)) RT_FALLBACK(eq_Scalar_out, self, other, out);
  k::eq_scalar(self, other, out);
  return out;
}

Tensor& fill_scalar_(Tensor& self, const Scalar& value) {
  if (!k::fill_supported(self) || value.isComplex()) RT_FALLBACK(fill__Scalar, self, value);
  return k::fill(self, value);
}

Tensor& fill_tensor_(Tensor& self, const Tensor& value) {
  if (!k::fill_supported(self) || value.dim() != 0 || at::isComplexType(value.scalar_type()))
    RT_FALLBACK(fill__Tensor, self, value);
  return k::fill(self, value.item());
}

Tensor& zero_(Tensor& self) {
  if (!k::fill_supported(self)) RT_FALLBACK(zero_, self);
  return k::fill(self, 0);
}

// ---- reductions ----------------------------------------------------------------------------

Tensor sum_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
               std::optional<at::ScalarType> dtype) {
  if (!k::sum_supported(self, dtype)) RT_FALLBACK(sum_dim_IntList, self, dim, keepdim, dtype);
  return k::sum(self, dim, keepdim, dtype, Tensor());
}

Tensor& sum_out(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype, Tensor& out) {
  if (!k::sum_supported(self, dtype)) RT_FALLBACK(sum_IntList_out, self, dim, keepdim, dtype, out);
  k::sum(self, dim, keepdim, dtype, out);
  return out;
}

Tensor mean_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype) {
  if (!k::mean_supported(self, dtype)) RT_FALLBACK(mean_dim, self, dim, keepdim, dtype);
  return k::mean(self, dim, keepdim, dtype, Tensor());
}

Tensor& mean_out(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                 std::optional<at::ScalarType> dtype, Tensor& out) {
  if (!k::mean_supported(self, dtype) || out.scalar_type() != self.scalar_type())
    RT_FALLBACK(mean_out, self, dim, keepdim, dtype, out);
  k::mean(self, dim, keepdim, dtype, out);
  return out;
}

Tensor argmax(const Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  if (!k::argmax_supported(self)) RT_FALLBACK(argmax, self, dim, keepdim);
  return k::argmax(self, dim, keepdim, Tensor());
}

Tensor& argmax_out(const Tensor& self, std::optional<int64_t> dim, bool keepdim, Tensor& out) {
  if (!k::argmax_supported(self) || out.scalar_type() != at::kLong)
    RT_FALLBACK(argmax_out, self, dim, keepdim, out);
  k::argmax(self, dim, keepdim, out);
  return out;
}

// ---- _foreach_* ----------------------------------------------------------------------------

#define RT_FOREACH_SCALAR(name, OP, aten_fn, aten_inplace)                                   \
  std::vector<Tensor> name(TensorList self, const Scalar& s) {                              \
    if (!k::foreach_supported({self}) || !real_scalar(s)) RT_FALLBACK(aten_fn, self, s);    \
    return k::foreach_binary_scalar(BinaryOp::OP, self, s, false);                          \
  }                                                                                          \
  void name##_(TensorList self, const Scalar& s) {                                          \
    if (!k::foreach_supported({self}) || !real_scalar(s)) RT_FALLBACK(aten_inplace, self, s); \
    k::foreach_binary_scalar(BinaryOp::OP, self, s, true);                                  \
  }

#define RT_FOREACH_SCALARLIST(name, OP, aten_fn, aten_inplace)                                \
  std::vector<Tensor> name(TensorList self, at::ArrayRef<Scalar> s) {                        \
    if (!k::foreach_supported({self}) || !real_scalars(s)) RT_FALLBACK(aten_fn, self, s);    \
    return k::foreach_binary_scalarlist(BinaryOp::OP, self, s, false);                       \
  }                                                                                           \
  void name##_(TensorList self, at::ArrayRef<Scalar> s) {                                    \
    if (!k::foreach_supported({self}) || !real_scalars(s)) RT_FALLBACK(aten_inplace, self, s); \
    k::foreach_binary_scalarlist(BinaryOp::OP, self, s, true);                               \
  }

#define RT_FOREACH_LIST_ALPHA(name, OP, aten_fn, aten_inplace)                              \
  std::vector<Tensor> name(TensorList self, TensorList other, const Scalar& alpha) {       \
    if (!k::foreach_supported({self, other}) || !real_scalar(alpha))                       \
      RT_FALLBACK(aten_fn, self, other, alpha);                                            \
    return k::foreach_binary_list(BinaryOp::OP, self, other, alpha, false);                \
  }                                                                                         \
  void name##_(TensorList self, TensorList other, const Scalar& alpha) {                   \
    if (!k::foreach_supported({self, other}) || !real_scalar(alpha))                       \
      RT_FALLBACK(aten_inplace, self, other, alpha);                                       \
    k::foreach_binary_list(BinaryOp::OP, self, other, alpha, true);                        \
  }

#define RT_FOREACH_LIST(name, OP, aten_fn, aten_inplace)                                     \
  std::vector<Tensor> name(TensorList self, TensorList other) {                             \
    if (!k::foreach_supported({self, other})) RT_FALLBACK(aten_fn, self, other);            \
    return k::foreach_binary_list(BinaryOp::OP, self, other, 1, false);                     \
  }                                                                                          \
  void name##_(TensorList self, TensorList other) {                                         \
    if (!k::foreach_supported({self, other})) RT_FALLBACK(aten_inplace, self, other);       \
    k::foreach_binary_list(BinaryOp::OP, self, other, 1, true);                             \
  }

RT_FOREACH_SCALAR(foreach_add_scalar, Add, _foreach_add_Scalar, _foreach_add__Scalar)
RT_FOREACH_SCALAR(foreach_sub_scalar, Sub, _foreach_sub_Scalar, _foreach_sub__Scalar)
RT_FOREACH_SCALAR(foreach_mul_scalar, Mul, _foreach_mul_Scalar, _foreach_mul__Scalar)
RT_FOREACH_SCALAR(foreach_div_scalar, Div, _foreach_div_Scalar, _foreach_div__Scalar)
RT_FOREACH_SCALARLIST(foreach_add_scalarlist, Add, _foreach_add_ScalarList, _foreach_add__ScalarList)
RT_FOREACH_SCALARLIST(foreach_sub_scalarlist, Sub, _foreach_sub_ScalarList, _foreach_sub__ScalarList)
RT_FOREACH_SCALARLIST(foreach_mul_scalarlist, Mul, _foreach_mul_ScalarList, _foreach_mul__ScalarList)
RT_FOREACH_SCALARLIST(foreach_div_scalarlist, Div, _foreach_div_ScalarList, _foreach_div__ScalarList)
RT_FOREACH_LIST_ALPHA(foreach_add_list, Add, _foreach_add_List, _foreach_add__List)
RT_FOREACH_LIST_ALPHA(foreach_sub_list, Sub, _foreach_sub_List, _foreach_sub__List)
RT_FOREACH_LIST(foreach_mul_list, Mul, _foreach_mul_List, _foreach_mul__List)
RT_FOREACH_LIST(foreach_div_list, Div, _foreach_div_List, _foreach_div__List)

std::vector<Tensor> foreach_add_tensor(TensorList self, const Tensor& other, const Scalar& alpha) {
  if (!k::foreach_supported({self}) || !k::foreach_scalar_tensor_supported(other) ||
      !real_scalar(alpha))
    RT_FALLBACK(_foreach_add_Tensor, self, other, alpha);
  const Scalar s = k::scalar_of(other);
  std::vector<Tensor> out;
  for (const auto& t : self) out.push_back(k::binary_scalar(BinaryOp::Add, t, s, alpha, Tensor()));
  return out;
}

void foreach_add_tensor_(TensorList self, const Tensor& other, const Scalar& alpha) {
  if (!k::foreach_supported({self}) || !k::foreach_scalar_tensor_supported(other) ||
      !real_scalar(alpha))
    RT_FALLBACK(_foreach_add__Tensor, self, other, alpha);
  const Scalar s = k::scalar_of(other);
  for (const auto& t : self) k::binary_scalar(BinaryOp::Add, t, s, alpha, t);
}

#define RT_FOREACH_TENSOR(name, OP, aten_fn, aten_inplace)                                     \
  std::vector<Tensor> name(TensorList self, const Tensor& other) {                            \
    if (!k::foreach_supported({self}) || !k::foreach_scalar_tensor_supported(other))          \
      RT_FALLBACK(aten_fn, self, other);                                                      \
    return k::foreach_binary_scalar(BinaryOp::OP, self, k::scalar_of(other), false);          \
  }                                                                                            \
  void name##_(TensorList self, const Tensor& other) {                                        \
    if (!k::foreach_supported({self}) || !k::foreach_scalar_tensor_supported(other))          \
      RT_FALLBACK(aten_inplace, self, other);                                                 \
    k::foreach_binary_scalar(BinaryOp::OP, self, k::scalar_of(other), true);                  \
  }

RT_FOREACH_TENSOR(foreach_mul_tensor, Mul, _foreach_mul_Tensor, _foreach_mul__Tensor)
RT_FOREACH_TENSOR(foreach_div_tensor, Div, _foreach_div_Tensor, _foreach_div__Tensor)

#define RT_FOREACH_POINTWISE(name, OP, aten_s, aten_s_, aten_l, aten_l_)                        \
  std::vector<Tensor> name##_scalar(TensorList self, TensorList t1, TensorList t2,             \
                                    const Scalar& value) {                                      \
    if (!k::foreach_supported({self, t1, t2}) || !real_scalar(value))                           \
      RT_FALLBACK(aten_s, self, t1, t2, value);                                                 \
    return k::foreach_pointwise(PointwiseOp::OP, self, t1, t2, value, false);                   \
  }                                                                                              \
  void name##_scalar_(TensorList self, TensorList t1, TensorList t2, const Scalar& value) {     \
    if (!k::foreach_supported({self, t1, t2}) || !real_scalar(value))                           \
      RT_FALLBACK(aten_s_, self, t1, t2, value);                                                \
    k::foreach_pointwise(PointwiseOp::OP, self, t1, t2, value, true);                           \
  }                                                                                              \
  std::vector<Tensor> name##_scalarlist(TensorList self, TensorList t1, TensorList t2,         \
                                        at::ArrayRef<Scalar> values) {                          \
    if (!k::foreach_supported({self, t1, t2}) || !real_scalars(values))                         \
      RT_FALLBACK(aten_l, self, t1, t2, values);                                                \
    return k::foreach_pointwise(PointwiseOp::OP, self, t1, t2, values, false);                  \
  }                                                                                              \
  void name##_scalarlist_(TensorList self, TensorList t1, TensorList t2,                        \
                          at::ArrayRef<Scalar> values) {                                        \
    if (!k::foreach_supported({self, t1, t2}) || !real_scalars(values))                         \
      RT_FALLBACK(aten_l_, self, t1, t2, values);                                               \
    k::foreach_pointwise(PointwiseOp::OP, self, t1, t2, values, true);                          \
  }

RT_FOREACH_POINTWISE(foreach_addcmul, Addcmul, _foreach_addcmul_Scalar, _foreach_addcmul__Scalar,
                     _foreach_addcmul_ScalarList, _foreach_addcmul__ScalarList)
RT_FOREACH_POINTWISE(foreach_addcdiv, Addcdiv, _foreach_addcdiv_Scalar, _foreach_addcdiv__Scalar,
                     _foreach_addcdiv_ScalarList, _foreach_addcdiv__ScalarList)

#define RT_FOREACH_UNARY(name, OP, aten_fn, aten_inplace)                       \
  std::vector<Tensor> name(TensorList self) {                                  \
    if (!k::foreach_supported({self})) RT_FALLBACK(aten_fn, self);             \
    return k::foreach_unary(UnaryOp::OP, self, false);                         \
  }                                                                             \
  void name##_(TensorList self) {                                              \
    if (!k::foreach_supported({self})) RT_FALLBACK(aten_inplace, self);        \
    k::foreach_unary(UnaryOp::OP, self, true);                                 \
  }

RT_FOREACH_UNARY(foreach_sqrt, Sqrt, _foreach_sqrt, _foreach_sqrt_)
RT_FOREACH_UNARY(foreach_neg, Neg, _foreach_neg, _foreach_neg_)
RT_FOREACH_UNARY(foreach_reciprocal, Reciprocal, _foreach_reciprocal, _foreach_reciprocal_)

std::vector<Tensor> foreach_lerp_scalar(TensorList self, TensorList end, const Scalar& weight) {
  if (!k::foreach_supported({self, end}) || !real_scalar(weight))
    RT_FALLBACK(_foreach_lerp_Scalar, self, end, weight);
  return k::foreach_lerp_scalar(self, end, weight, false);
}

void foreach_lerp_scalar_(TensorList self, TensorList end, const Scalar& weight) {
  if (!k::foreach_supported({self, end}) || !real_scalar(weight))
    RT_FALLBACK(_foreach_lerp__Scalar, self, end, weight);
  k::foreach_lerp_scalar(self, end, weight, true);
}

std::vector<Tensor> foreach_lerp_list(TensorList self, TensorList end, TensorList weight) {
  if (!k::foreach_supported({self, end, weight})) RT_FALLBACK(_foreach_lerp_List, self, end, weight);
  return k::foreach_lerp_list(self, end, weight, false);
}

void foreach_lerp_list_(TensorList self, TensorList end, TensorList weight) {
  if (!k::foreach_supported({self, end, weight})) RT_FALLBACK(_foreach_lerp__List, self, end, weight);
  k::foreach_lerp_list(self, end, weight, true);
}

void foreach_zero_(TensorList self) {
  for (const auto& t : self)
    if (!k::fill_supported(t)) RT_FALLBACK(_foreach_zero_, self);
  k::foreach_zero(self);
}

}  // namespace rustorch::training_ops
