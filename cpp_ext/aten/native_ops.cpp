// The one map from aten ops to rustorch's own kernels (PrivateUse1). Reading this file tells
// what is native; everything else goes through the counted fallback (aten/fallback.cpp).
// Device plumbing ops (empty, copy, views, set_, resize_) are in aten/minimal.cpp.
#include <torch/library.h>

#include "aten/training_ops.h"
#include "kernels/conv_device.h"
#include "kernels/gemm_device.h"
#include "runtime/op_stats.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  // Register with RUSTORCH_NATIVE(m, "mm", rustorch::kernels::mm) so calls are counted.

  // --- GEMM family (kernels/gemm*) -------------------------------------------------
  // matmul, linear and their backward decompose into these (CompositeImplicitAutograd).
  namespace gd = rustorch::kernels::device;
  RUSTORCH_NATIVE(m, "mm", gd::mm);
  RUSTORCH_NATIVE(m, "mm.out", gd::mm_out);
  RUSTORCH_NATIVE(m, "addmm", gd::addmm);
  RUSTORCH_NATIVE(m, "addmm.out", gd::addmm_out);
  RUSTORCH_NATIVE(m, "addmm_", gd::addmm_);
  RUSTORCH_NATIVE(m, "bmm", gd::bmm);
  RUSTORCH_NATIVE(m, "bmm.out", gd::bmm_out);
  RUSTORCH_NATIVE(m, "baddbmm", gd::baddbmm);
  RUSTORCH_NATIVE(m, "baddbmm.out", gd::baddbmm_out);
  RUSTORCH_NATIVE(m, "baddbmm_", gd::baddbmm_);

  // --- Convolution (kernels/conv*) -------------------------------------------------
  // On the ops themselves (not *_overrideable): autograd and double backward stay ATen's.
  RUSTORCH_NATIVE(m, "convolution", gd::convolution);
  RUSTORCH_NATIVE(m, "convolution_backward", gd::convolution_backward);

  // --- Softmax, log_softmax, NLL / cross-entropy (kernels/softmax*, kernels/nll*) ---
  // Entry points (dtype checks, fallback) in aten/training_ops.cpp.
  namespace t = ::rustorch::training_ops;
  RUSTORCH_NATIVE(m, "_log_softmax", t::log_softmax);
  RUSTORCH_NATIVE(m, "_log_softmax_backward_data", t::log_softmax_backward);
  RUSTORCH_NATIVE(m, "_softmax", t::softmax);
  RUSTORCH_NATIVE(m, "_softmax_backward_data", t::softmax_backward);
  RUSTORCH_NATIVE(m, "nll_loss_forward", t::nll_loss_forward);
  RUSTORCH_NATIVE(m, "nll_loss_backward", t::nll_loss_backward);
  RUSTORCH_NATIVE(m, "nll_loss2d_forward", t::nll_loss2d_forward);
  RUSTORCH_NATIVE(m, "nll_loss2d_backward", t::nll_loss2d_backward);

  // --- Activations, pooling, dropout (kernels/elementwise*, kernels/pool*, kernels/dropout*)
  RUSTORCH_NATIVE(m, "relu", t::relu);
  RUSTORCH_NATIVE(m, "relu_", t::relu_);
  RUSTORCH_NATIVE(m, "threshold_backward", t::threshold_backward);
  RUSTORCH_NATIVE(m, "max_pool2d_with_indices", t::max_pool2d_with_indices);
  RUSTORCH_NATIVE(m, "max_pool2d_with_indices_backward", t::max_pool2d_with_indices_backward);
  RUSTORCH_NATIVE(m, "native_dropout", t::native_dropout);
  RUSTORCH_NATIVE(m, "native_dropout_backward", t::native_dropout_backward);

  // --- Elementwise, reductions, optimizer _foreach_* ops (kernels/elementwise*, ...) -
  RUSTORCH_NATIVE(m, "add.Tensor", t::add);
  RUSTORCH_NATIVE(m, "add_.Tensor", t::add_);
  RUSTORCH_NATIVE(m, "add.out", t::add_out);
  RUSTORCH_NATIVE(m, "sub.Tensor", t::sub);
  RUSTORCH_NATIVE(m, "sub_.Tensor", t::sub_);
  RUSTORCH_NATIVE(m, "sub.out", t::sub_out);
  RUSTORCH_NATIVE(m, "mul.Tensor", t::mul);
  RUSTORCH_NATIVE(m, "mul_.Tensor", t::mul_);
  RUSTORCH_NATIVE(m, "mul.out", t::mul_out);
  RUSTORCH_NATIVE(m, "div.Tensor", t::div);
  RUSTORCH_NATIVE(m, "div_.Tensor", t::div_);
  RUSTORCH_NATIVE(m, "div.out", t::div_out);
  RUSTORCH_NATIVE(m, "add.Scalar", t::add_scalar);
  RUSTORCH_NATIVE(m, "add_.Scalar", t::add_scalar_);
  RUSTORCH_NATIVE(m, "sub.Scalar", t::sub_scalar);
  RUSTORCH_NATIVE(m, "sub_.Scalar", t::sub_scalar_);
  RUSTORCH_NATIVE(m, "mul.Scalar", t::mul_scalar);
  RUSTORCH_NATIVE(m, "mul_.Scalar", t::mul_scalar_);
  RUSTORCH_NATIVE(m, "div.Scalar", t::div_scalar);
  RUSTORCH_NATIVE(m, "div_.Scalar", t::div_scalar_);
  RUSTORCH_NATIVE(m, "sqrt", t::sqrt);
  RUSTORCH_NATIVE(m, "sqrt_", t::sqrt_);
  RUSTORCH_NATIVE(m, "neg", t::neg);
  RUSTORCH_NATIVE(m, "neg_", t::neg_);
  RUSTORCH_NATIVE(m, "reciprocal", t::reciprocal);
  RUSTORCH_NATIVE(m, "reciprocal_", t::reciprocal_);
  RUSTORCH_NATIVE(m, "addcmul", t::addcmul);
  RUSTORCH_NATIVE(m, "addcmul_", t::addcmul_);
  RUSTORCH_NATIVE(m, "addcdiv", t::addcdiv);
  RUSTORCH_NATIVE(m, "addcdiv_", t::addcdiv_);
  RUSTORCH_NATIVE(m, "lerp.Scalar", t::lerp_scalar);
  RUSTORCH_NATIVE(m, "lerp_.Scalar", t::lerp_scalar_);
  RUSTORCH_NATIVE(m, "lerp.Tensor", t::lerp_tensor);
  RUSTORCH_NATIVE(m, "lerp_.Tensor", t::lerp_tensor_);
  RUSTORCH_NATIVE(m, "eq.Tensor", t::eq_tensor);
  RUSTORCH_NATIVE(m, "eq.Tensor_out", t::eq_tensor_out);
  RUSTORCH_NATIVE(m, "eq.Scalar", t::eq_scalar);
  RUSTORCH_NATIVE(m, "eq.Scalar_out", t::eq_scalar_out);
  RUSTORCH_NATIVE(m, "fill_.Scalar", t::fill_scalar_);
  RUSTORCH_NATIVE(m, "fill_.Tensor", t::fill_tensor_);
  RUSTORCH_NATIVE(m, "zero_", t::zero_);
  RUSTORCH_NATIVE(m, "sum.dim_IntList", t::sum_dim);
  RUSTORCH_NATIVE(m, "sum.IntList_out", t::sum_out);
  RUSTORCH_NATIVE(m, "mean.dim", t::mean_dim);
  RUSTORCH_NATIVE(m, "mean.out", t::mean_out);
  RUSTORCH_NATIVE(m, "argmax", t::argmax);
  RUSTORCH_NATIVE(m, "argmax.out", t::argmax_out);
  RUSTORCH_NATIVE(m, "_foreach_add.Scalar", t::foreach_add_scalar);
  RUSTORCH_NATIVE(m, "_foreach_add_.Scalar", t::foreach_add_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_add.List", t::foreach_add_list);
  RUSTORCH_NATIVE(m, "_foreach_add_.List", t::foreach_add_list_);
  RUSTORCH_NATIVE(m, "_foreach_add.ScalarList", t::foreach_add_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_add_.ScalarList", t::foreach_add_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_add.Tensor", t::foreach_add_tensor);
  RUSTORCH_NATIVE(m, "_foreach_add_.Tensor", t::foreach_add_tensor_);
  RUSTORCH_NATIVE(m, "_foreach_sub.Scalar", t::foreach_sub_scalar);
  RUSTORCH_NATIVE(m, "_foreach_sub_.Scalar", t::foreach_sub_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_sub.List", t::foreach_sub_list);
  RUSTORCH_NATIVE(m, "_foreach_sub_.List", t::foreach_sub_list_);
  RUSTORCH_NATIVE(m, "_foreach_sub.ScalarList", t::foreach_sub_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_sub_.ScalarList", t::foreach_sub_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_mul.Scalar", t::foreach_mul_scalar);
  RUSTORCH_NATIVE(m, "_foreach_mul_.Scalar", t::foreach_mul_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_mul.List", t::foreach_mul_list);
  RUSTORCH_NATIVE(m, "_foreach_mul_.List", t::foreach_mul_list_);
  RUSTORCH_NATIVE(m, "_foreach_mul.ScalarList", t::foreach_mul_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_mul_.ScalarList", t::foreach_mul_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_mul.Tensor", t::foreach_mul_tensor);
  RUSTORCH_NATIVE(m, "_foreach_mul_.Tensor", t::foreach_mul_tensor_);
  RUSTORCH_NATIVE(m, "_foreach_div.Scalar", t::foreach_div_scalar);
  RUSTORCH_NATIVE(m, "_foreach_div_.Scalar", t::foreach_div_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_div.List", t::foreach_div_list);
  RUSTORCH_NATIVE(m, "_foreach_div_.List", t::foreach_div_list_);
  RUSTORCH_NATIVE(m, "_foreach_div.ScalarList", t::foreach_div_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_div_.ScalarList", t::foreach_div_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_div.Tensor", t::foreach_div_tensor);
  RUSTORCH_NATIVE(m, "_foreach_div_.Tensor", t::foreach_div_tensor_);
  RUSTORCH_NATIVE(m, "_foreach_addcmul.Scalar", t::foreach_addcmul_scalar);
  RUSTORCH_NATIVE(m, "_foreach_addcmul_.Scalar", t::foreach_addcmul_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_addcmul.ScalarList", t::foreach_addcmul_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_addcmul_.ScalarList", t::foreach_addcmul_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_addcdiv.Scalar", t::foreach_addcdiv_scalar);
  RUSTORCH_NATIVE(m, "_foreach_addcdiv_.Scalar", t::foreach_addcdiv_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_addcdiv.ScalarList", t::foreach_addcdiv_scalarlist);
  RUSTORCH_NATIVE(m, "_foreach_addcdiv_.ScalarList", t::foreach_addcdiv_scalarlist_);
  RUSTORCH_NATIVE(m, "_foreach_sqrt", t::foreach_sqrt);
  RUSTORCH_NATIVE(m, "_foreach_sqrt_", t::foreach_sqrt_);
  RUSTORCH_NATIVE(m, "_foreach_neg", t::foreach_neg);
  RUSTORCH_NATIVE(m, "_foreach_neg_", t::foreach_neg_);
  RUSTORCH_NATIVE(m, "_foreach_reciprocal", t::foreach_reciprocal);
  RUSTORCH_NATIVE(m, "_foreach_reciprocal_", t::foreach_reciprocal_);
  RUSTORCH_NATIVE(m, "_foreach_lerp.Scalar", t::foreach_lerp_scalar);
  RUSTORCH_NATIVE(m, "_foreach_lerp_.Scalar", t::foreach_lerp_scalar_);
  RUSTORCH_NATIVE(m, "_foreach_lerp.List", t::foreach_lerp_list);
  RUSTORCH_NATIVE(m, "_foreach_lerp_.List", t::foreach_lerp_list_);
  RUSTORCH_NATIVE(m, "_foreach_zero_", t::foreach_zero_);
}
