// aten-signature entry points of the training-path kernels (softmax / NLL, activations,
// pooling, dropout, element-wise, reductions, _foreach_*). Each one checks what its kernel
// supports and otherwise re-dispatches to the counted CPU fallback, so an unsupported dtype or
// layout is slower, never wrong. Registered in aten/native_ops.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>
#include <vector>

namespace rustorch::training_ops {

using at::Scalar;
using at::Tensor;
using at::TensorList;

// Softmax / NLL
Tensor log_softmax(const Tensor& self, int64_t dim, bool half_to_float);
Tensor log_softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim,
                            at::ScalarType input_dtype);
Tensor softmax(const Tensor& self, int64_t dim, bool half_to_float);
Tensor softmax_backward(const Tensor& grad, const Tensor& output, int64_t dim,
                        at::ScalarType input_dtype);
std::tuple<Tensor, Tensor> nll_loss_forward(const Tensor& self, const Tensor& target,
                                            const std::optional<Tensor>& weight,
                                            int64_t reduction, int64_t ignore_index);
Tensor nll_loss_backward(const Tensor& grad_output, const Tensor& self, const Tensor& target,
                         const std::optional<Tensor>& weight, int64_t reduction,
                         int64_t ignore_index, const Tensor& total_weight);
std::tuple<Tensor, Tensor> nll_loss2d_forward(const Tensor& self, const Tensor& target,
                                              const std::optional<Tensor>& weight,
                                              int64_t reduction, int64_t ignore_index);
Tensor nll_loss2d_backward(const Tensor& grad_output, const Tensor& self, const Tensor& target,
                           const std::optional<Tensor>& weight, int64_t reduction,
                           int64_t ignore_index, const Tensor& total_weight);

// Activations, pooling, dropout
Tensor relu(const Tensor& self);
Tensor& relu_(Tensor& self);
Tensor threshold_backward(const Tensor& grad_output, const Tensor& self, const Scalar& threshold);
std::tuple<Tensor, Tensor> max_pool2d_with_indices(const Tensor& self, at::IntArrayRef kernel_size,
                                                   at::IntArrayRef stride, at::IntArrayRef padding,
                                                   at::IntArrayRef dilation, bool ceil_mode);
Tensor max_pool2d_with_indices_backward(const Tensor& grad_output, const Tensor& self,
                                        at::IntArrayRef kernel_size, at::IntArrayRef stride,
                                        at::IntArrayRef padding, at::IntArrayRef dilation,
                                        bool ceil_mode, const Tensor& indices);
std::tuple<Tensor, Tensor> native_dropout(const Tensor& input, double p, std::optional<bool> train);
Tensor native_dropout_backward(const Tensor& grad_output, const Tensor& mask, double scale);

// Element-wise
Tensor add(const Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor& add_(Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor& add_out(const Tensor& self, const Tensor& other, const Scalar& alpha, Tensor& out);
Tensor sub(const Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor& sub_(Tensor& self, const Tensor& other, const Scalar& alpha);
Tensor& sub_out(const Tensor& self, const Tensor& other, const Scalar& alpha, Tensor& out);
Tensor mul(const Tensor& self, const Tensor& other);
Tensor& mul_(Tensor& self, const Tensor& other);
Tensor& mul_out(const Tensor& self, const Tensor& other, Tensor& out);
Tensor div(const Tensor& self, const Tensor& other);
Tensor& div_(Tensor& self, const Tensor& other);
Tensor& div_out(const Tensor& self, const Tensor& other, Tensor& out);
Tensor add_scalar(const Tensor& self, const Scalar& other, const Scalar& alpha);
Tensor& add_scalar_(Tensor& self, const Scalar& other, const Scalar& alpha);
Tensor sub_scalar(const Tensor& self, const Scalar& other, const Scalar& alpha);
Tensor& sub_scalar_(Tensor& self, const Scalar& other, const Scalar& alpha);
Tensor mul_scalar(const Tensor& self, const Scalar& other);
Tensor& mul_scalar_(Tensor& self, const Scalar& other);
Tensor div_scalar(const Tensor& self, const Scalar& other);
Tensor& div_scalar_(Tensor& self, const Scalar& other);
Tensor sqrt(const Tensor& self);
Tensor& sqrt_(Tensor& self);
Tensor neg(const Tensor& self);
Tensor& neg_(Tensor& self);
Tensor reciprocal(const Tensor& self);
Tensor& reciprocal_(Tensor& self);
Tensor addcmul(const Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value);
Tensor& addcmul_(Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value);
Tensor addcdiv(const Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value);
Tensor& addcdiv_(Tensor& self, const Tensor& t1, const Tensor& t2, const Scalar& value);
Tensor lerp_scalar(const Tensor& self, const Tensor& end, const Scalar& weight);
Tensor& lerp_scalar_(Tensor& self, const Tensor& end, const Scalar& weight);
Tensor lerp_tensor(const Tensor& self, const Tensor& end, const Tensor& weight);
Tensor& lerp_tensor_(Tensor& self, const Tensor& end, const Tensor& weight);
Tensor eq_tensor(const Tensor& self, const Tensor& other);
Tensor& eq_tensor_out(const Tensor& self, const Tensor& other, Tensor& out);
Tensor eq_scalar(const Tensor& self, const Scalar& other);
Tensor& eq_scalar_out(const Tensor& self, const Scalar& other, Tensor& out);
Tensor& fill_scalar_(Tensor& self, const Scalar& value);
Tensor& fill_tensor_(Tensor& self, const Tensor& value);
Tensor& zero_(Tensor& self);

// Reductions
Tensor sum_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
               std::optional<at::ScalarType> dtype);
Tensor& sum_out(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype, Tensor& out);
Tensor mean_dim(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype);
Tensor& mean_out(const Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                 std::optional<at::ScalarType> dtype, Tensor& out);
Tensor argmax(const Tensor& self, std::optional<int64_t> dim, bool keepdim);
Tensor& argmax_out(const Tensor& self, std::optional<int64_t> dim, bool keepdim, Tensor& out);

// _foreach_* (the overloads the optimizers call; `_` = in-place)
std::vector<Tensor> foreach_add_scalar(TensorList self, const Scalar& s);
void foreach_add_scalar_(TensorList self, const Scalar& s);
std::vector<Tensor> foreach_add_list(TensorList self, TensorList other, const Scalar& alpha);
void foreach_add_list_(TensorList self, TensorList other, const Scalar& alpha);
std::vector<Tensor> foreach_add_scalarlist(TensorList self, at::ArrayRef<Scalar> s);
void foreach_add_scalarlist_(TensorList self, at::ArrayRef<Scalar> s);
std::vector<Tensor> foreach_add_tensor(TensorList self, const Tensor& other, const Scalar& alpha);
void foreach_add_tensor_(TensorList self, const Tensor& other, const Scalar& alpha);
std::vector<Tensor> foreach_sub_scalar(TensorList self, const Scalar& s);
void foreach_sub_scalar_(TensorList self, const Scalar& s);
std::vector<Tensor> foreach_sub_list(TensorList self, TensorList other, const Scalar& alpha);
void foreach_sub_list_(TensorList self, TensorList other, const Scalar& alpha);
std::vector<Tensor> foreach_sub_scalarlist(TensorList self, at::ArrayRef<Scalar> s);
void foreach_sub_scalarlist_(TensorList self, at::ArrayRef<Scalar> s);
std::vector<Tensor> foreach_mul_scalar(TensorList self, const Scalar& s);
void foreach_mul_scalar_(TensorList self, const Scalar& s);
std::vector<Tensor> foreach_mul_list(TensorList self, TensorList other);
void foreach_mul_list_(TensorList self, TensorList other);
std::vector<Tensor> foreach_mul_scalarlist(TensorList self, at::ArrayRef<Scalar> s);
void foreach_mul_scalarlist_(TensorList self, at::ArrayRef<Scalar> s);
std::vector<Tensor> foreach_mul_tensor(TensorList self, const Tensor& other);
void foreach_mul_tensor_(TensorList self, const Tensor& other);
std::vector<Tensor> foreach_div_scalar(TensorList self, const Scalar& s);
void foreach_div_scalar_(TensorList self, const Scalar& s);
std::vector<Tensor> foreach_div_list(TensorList self, TensorList other);
void foreach_div_list_(TensorList self, TensorList other);
std::vector<Tensor> foreach_div_scalarlist(TensorList self, at::ArrayRef<Scalar> s);
void foreach_div_scalarlist_(TensorList self, at::ArrayRef<Scalar> s);
std::vector<Tensor> foreach_div_tensor(TensorList self, const Tensor& other);
void foreach_div_tensor_(TensorList self, const Tensor& other);
std::vector<Tensor> foreach_addcmul_scalar(TensorList self, TensorList t1, TensorList t2,
                                           const Scalar& value);
void foreach_addcmul_scalar_(TensorList self, TensorList t1, TensorList t2, const Scalar& value);
std::vector<Tensor> foreach_addcmul_scalarlist(TensorList self, TensorList t1, TensorList t2,
                                               at::ArrayRef<Scalar> values);
void foreach_addcmul_scalarlist_(TensorList self, TensorList t1, TensorList t2,
                                 at::ArrayRef<Scalar> values);
std::vector<Tensor> foreach_addcdiv_scalar(TensorList self, TensorList t1, TensorList t2,
                                           const Scalar& value);
void foreach_addcdiv_scalar_(TensorList self, TensorList t1, TensorList t2, const Scalar& value);
std::vector<Tensor> foreach_addcdiv_scalarlist(TensorList self, TensorList t1, TensorList t2,
                                               at::ArrayRef<Scalar> values);
void foreach_addcdiv_scalarlist_(TensorList self, TensorList t1, TensorList t2,
                                 at::ArrayRef<Scalar> values);
std::vector<Tensor> foreach_sqrt(TensorList self);
void foreach_sqrt_(TensorList self);
std::vector<Tensor> foreach_neg(TensorList self);
void foreach_neg_(TensorList self);
std::vector<Tensor> foreach_reciprocal(TensorList self);
void foreach_reciprocal_(TensorList self);
std::vector<Tensor> foreach_lerp_scalar(TensorList self, TensorList end, const Scalar& weight);
void foreach_lerp_scalar_(TensorList self, TensorList end, const Scalar& weight);
std::vector<Tensor> foreach_lerp_list(TensorList self, TensorList end, TensorList weight);
void foreach_lerp_list_(TensorList self, TensorList end, TensorList weight);
void foreach_zero_(TensorList self);

}  // namespace rustorch::training_ops
