// The one map from aten ops to rustorch's own kernels (PrivateUse1). Each line registers one op:
// its native kernel (aten/native/) when the inputs are supported, else the counted CPU fallback
// (aten/native_or_fallback.h checks support once per call). Every op not listed here runs on the
// fallback (aten/fallback.cpp); device plumbing (empty, copy, views, set_, resize_) is in
// aten/minimal.cpp.
#include <ATen/Operators.h>
#include <torch/library.h>

#include "aten/native/activation.h"
#include "aten/native/batch_norm.h"
#include "aten/native/conv.h"
#include "aten/native/dropout.h"
#include "aten/native/elementwise.h"
#include "aten/native/foreach.h"
#include "aten/native/cat.h"
#include "aten/native/embedding.h"
#include "aten/native/group_norm.h"
#include "aten/native/layer_norm.h"
#include "aten/native/matmul.h"
#include "aten/native/nll.h"
#include "aten/native/pool.h"
#include "aten/native/reduce.h"
#include "aten/native/rnn_cells.h"
#include "aten/native/softmax.h"
#include "aten/native/sync_batch_norm.h"
#include "aten/native/triangular.h"
#include "aten/native_or_fallback.h"

namespace {
namespace n = ::rustorch::native;
using n::BinaryOp;
using n::PointwiseOp;
using n::UnaryOp;
constexpr BinaryOp Add = BinaryOp::Add, Sub = BinaryOp::Sub, Mul = BinaryOp::Mul,
                   Div = BinaryOp::Div;
constexpr n::FloatElementwise ew{};
constexpr n::ArithElementwise arith{};
constexpr n::FloatForeach fe{};
constexpr ::rustorch::registration::AnyPlain any{};
}  // namespace

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  // --- GEMM family (native/matmul -> kernels/gemm) ---------------------------------------------
  // matmul, linear and their backward decompose into these (CompositeImplicitAutograd).
  RUSTORCH_OP(m, mm, n::mm, n::mm_ok);
  RUSTORCH_OP(m, mm_out, n::mm_out, n::mm_out_ok);
  RUSTORCH_OP(m, addmm, n::addmm, n::addmm_ok);
  RUSTORCH_OP(m, addmm_out, n::addmm_out, n::addmm_out_ok);
  RUSTORCH_OP(m, addmm_, n::addmm_, n::addmm__ok);
  RUSTORCH_OP(m, bmm, n::bmm, n::mm_ok);
  RUSTORCH_OP(m, bmm_out, n::bmm_out, n::mm_out_ok);
  RUSTORCH_OP(m, baddbmm, n::baddbmm, n::addmm_ok);
  RUSTORCH_OP(m, baddbmm_out, n::baddbmm_out, n::addmm_out_ok);
  RUSTORCH_OP(m, baddbmm_, n::baddbmm_, n::addmm__ok);

  // --- Convolution (native/conv: im2col + GEMM) ------------------------------------------------
  // On the ops themselves (not *_overrideable): autograd and double backward stay ATen's.
  RUSTORCH_OP(m, convolution, n::convolution, n::convolution_ok);
  RUSTORCH_OP(m, convolution_backward, n::convolution_backward, n::convolution_backward_ok);

  // --- Normalization (native/batch_norm, native/layer_norm, native/group_norm) ------------------
  RUSTORCH_OP(m, native_batch_norm, n::native_batch_norm, n::native_batch_norm_ok);
  RUSTORCH_OP(m, native_batch_norm_backward, n::native_batch_norm_backward,
              n::native_batch_norm_backward_ok);
  RUSTORCH_OP(m, native_layer_norm, n::native_layer_norm, n::native_layer_norm_ok);
  RUSTORCH_OP(m, native_layer_norm_backward, n::native_layer_norm_backward,
              n::native_layer_norm_backward_ok);
  RUSTORCH_OP(m, native_group_norm, n::native_group_norm, n::native_group_norm_ok);
  RUSTORCH_OP(m, native_group_norm_backward, n::native_group_norm_backward,
              n::native_group_norm_backward_ok);

  // --- Embedding (native/embedding) -------------------------------------------------------------
  RUSTORCH_OP(m, embedding, n::embedding, n::embedding_ok);
  RUSTORCH_OP(m, embedding_dense_backward, n::embedding_dense_backward,
              n::embedding_dense_backward_ok);

  // --- Shape ops (native/cat) -------------------------------------------------------------------
  RUSTORCH_OP(m, cat_out, n::cat_out, n::cat_out_ok);
  RUSTORCH_OP(m, tril_out, n::tril_out, n::triangular_out_ok);
  RUSTORCH_OP(m, triu_out, n::triu_out, n::triangular_out_ok);

  // --- Softmax, log_softmax, NLL / cross-entropy -----------------------------------------------
  RUSTORCH_OP(m, _log_softmax, n::log_softmax, n::softmax_ok);
  RUSTORCH_OP(m, _log_softmax_backward_data, n::log_softmax_backward, n::softmax_backward_ok);
  RUSTORCH_OP(m, _softmax, n::softmax, n::softmax_ok);
  RUSTORCH_OP(m, _softmax_backward_data, n::softmax_backward, n::softmax_backward_ok);
  RUSTORCH_OP(m, nll_loss_forward, n::nll_forward<n::NllInput::Classes>, n::nll_forward_ok);
  RUSTORCH_OP(m, nll_loss_backward, n::nll_backward<n::NllInput::Classes>, n::nll_backward_ok);
  RUSTORCH_OP(m, nll_loss2d_forward, n::nll_forward<n::NllInput::Spatial>, n::nll_forward_ok);
  RUSTORCH_OP(m, nll_loss2d_backward, n::nll_backward<n::NllInput::Spatial>, n::nll_backward_ok);

  // --- Activations, pooling, dropout -----------------------------------------------------------
  RUSTORCH_OP(m, relu, n::unary_op<UnaryOp::Relu>, ew);
  RUSTORCH_OP(m, relu_, n::unary_op_<UnaryOp::Relu>, ew);
  RUSTORCH_OP(m, threshold_backward, n::threshold_backward_op, ew);
  RUSTORCH_OP(m, max_pool2d_with_indices, n::max_pool2d_with_indices, n::max_pool2d_ok);
  RUSTORCH_OP(m, max_pool2d_with_indices_backward, n::max_pool2d_with_indices_backward,
              n::max_pool2d_backward_ok);
  RUSTORCH_OP(m, gelu_out, n::gelu_out, n::gelu_out_ok);
  RUSTORCH_OP(m, gelu_backward_grad_input, n::gelu_backward_out, n::gelu_backward_out_ok);
  RUSTORCH_OP(m, silu_out, n::silu_out, ew);
  RUSTORCH_OP(m, silu_backward_grad_input, n::silu_backward_out, ew);
  RUSTORCH_OP(m, tanh_out, n::tanh_out, ew);
  RUSTORCH_OP(m, tanh_backward_grad_input, n::tanh_backward_out, ew);
  RUSTORCH_OP(m, sigmoid_out, n::sigmoid_out, ew);
  RUSTORCH_OP(m, sigmoid_backward_grad_input, n::sigmoid_backward_out, ew);
  RUSTORCH_OP(m, native_dropout, n::native_dropout_op, n::native_dropout_ok);
  RUSTORCH_OP(m, native_dropout_backward, n::native_dropout_backward,
              n::native_dropout_backward_ok);

  // --- Element-wise -----------------------------------------------------------------------------
  RUSTORCH_OP(m, add_Tensor, n::binary_alpha<Add>, arith);
  RUSTORCH_OP(m, add__Tensor, n::binary_alpha_<Add>, arith);
  RUSTORCH_OP(m, add_out, n::binary_alpha_out<Add>, arith);
  RUSTORCH_OP(m, sub_Tensor, n::binary_alpha<Sub>, arith);
  RUSTORCH_OP(m, sub__Tensor, n::binary_alpha_<Sub>, arith);
  RUSTORCH_OP(m, sub_out, n::binary_alpha_out<Sub>, arith);
  RUSTORCH_OP(m, mul_Tensor, n::binary_plain<Mul>, arith);
  RUSTORCH_OP(m, mul__Tensor, n::binary_plain_<Mul>, arith);
  RUSTORCH_OP(m, mul_out, n::binary_plain_out<Mul>, arith);
  RUSTORCH_OP(m, div_Tensor, n::binary_plain<Div>, ew);
  RUSTORCH_OP(m, div__Tensor, n::binary_plain_<Div>, ew);
  RUSTORCH_OP(m, div_out, n::binary_plain_out<Div>, ew);
  RUSTORCH_OP(m, add_Scalar, n::scalar_alpha<Add>, ew);
  RUSTORCH_OP(m, add__Scalar, n::scalar_alpha_<Add>, ew);
  RUSTORCH_OP(m, sub_Scalar, n::scalar_alpha<Sub>, ew);
  RUSTORCH_OP(m, sub__Scalar, n::scalar_alpha_<Sub>, ew);
  RUSTORCH_OP(m, mul_Scalar, n::scalar_plain<Mul>, ew);
  RUSTORCH_OP(m, mul__Scalar, n::scalar_plain_<Mul>, ew);
  RUSTORCH_OP(m, div_Scalar, n::scalar_plain<Div>, ew);
  RUSTORCH_OP(m, div__Scalar, n::scalar_plain_<Div>, ew);
  RUSTORCH_OP(m, sqrt, n::unary_op<UnaryOp::Sqrt>, ew);
  RUSTORCH_OP(m, sqrt_, n::unary_op_<UnaryOp::Sqrt>, ew);
  RUSTORCH_OP(m, neg, n::unary_op<UnaryOp::Neg>, ew);
  RUSTORCH_OP(m, neg_, n::unary_op_<UnaryOp::Neg>, ew);
  RUSTORCH_OP(m, reciprocal, n::unary_op<UnaryOp::Reciprocal>, ew);
  RUSTORCH_OP(m, reciprocal_, n::unary_op_<UnaryOp::Reciprocal>, ew);
  RUSTORCH_OP(m, pow_Tensor_Scalar, n::pow_scalar, ew);
  RUSTORCH_OP(m, pow_Tensor_Scalar_out, n::pow_scalar_out, ew);
  RUSTORCH_OP(m, pow__Scalar, n::pow_scalar_, ew);
  RUSTORCH_OP(m, addcmul, n::addcmul_op, ew);
  RUSTORCH_OP(m, addcmul_, n::addcmul_op_, ew);
  RUSTORCH_OP(m, addcdiv, n::addcdiv_op, ew);
  RUSTORCH_OP(m, addcdiv_, n::addcdiv_op_, ew);
  RUSTORCH_OP(m, lerp_Scalar, n::lerp_scalar_op, ew);
  RUSTORCH_OP(m, lerp__Scalar, n::lerp_scalar_op_, ew);
  RUSTORCH_OP(m, lerp_Tensor, n::lerp_tensor_op, ew);
  RUSTORCH_OP(m, lerp__Tensor, n::lerp_tensor_op_, ew);
  RUSTORCH_OP(m, eq_Tensor, n::eq_tensor_op, n::eq_tensor_ok);
  RUSTORCH_OP(m, eq_Tensor_out, n::eq_tensor_out, n::eq_tensor_out_ok);
  RUSTORCH_OP(m, eq_Scalar, n::eq_scalar_op, n::eq_scalar_ok);
  RUSTORCH_OP(m, eq_Scalar_out, n::eq_scalar_out, n::eq_scalar_out_ok);
  RUSTORCH_OP(m, isneginf_out, n::isneginf_out, n::isneginf_out_ok);
  RUSTORCH_OP(m, where_self, n::where_self, n::where_self_ok);
  RUSTORCH_OP(m, where_self_out, n::where_self_out, n::where_self_out_ok);
  RUSTORCH_OP(m, fill__Scalar, n::fill_scalar_, n::fill_scalar_ok);
  RUSTORCH_OP(m, fill__Tensor, n::fill_tensor_, n::fill_tensor_ok);
  RUSTORCH_OP(m, zero_, n::zero_op_, n::zero_ok);

  // --- Reductions -------------------------------------------------------------------------------
  RUSTORCH_OP(m, sum_dim_IntList, n::sum_dim, n::sum_ok);
  RUSTORCH_OP(m, sum_IntList_out, n::sum_out, n::sum_out_ok);
  RUSTORCH_OP(m, mean_dim, n::mean_dim, n::mean_ok);
  RUSTORCH_OP(m, mean_out, n::mean_out, n::mean_out_ok);
  RUSTORCH_OP(m, argmax, n::argmax_op, n::argmax_ok);
  RUSTORCH_OP(m, argmax_out, n::argmax_out, n::argmax_out_ok);
  RUSTORCH_OP(m, all_out, n::all_dim_out, n::all_dim_out_ok);

  // --- Optimizer _foreach_* ops ----------------------------------------------------------------
  RUSTORCH_OP(m, _foreach_add_Scalar, n::foreach_scalar<Add>, fe);
  RUSTORCH_OP(m, _foreach_add__Scalar, n::foreach_scalar_<Add>, fe);
  RUSTORCH_OP(m, _foreach_sub_Scalar, n::foreach_scalar<Sub>, fe);
  RUSTORCH_OP(m, _foreach_sub__Scalar, n::foreach_scalar_<Sub>, fe);
  RUSTORCH_OP(m, _foreach_mul_Scalar, n::foreach_scalar<Mul>, fe);
  RUSTORCH_OP(m, _foreach_mul__Scalar, n::foreach_scalar_<Mul>, fe);
  RUSTORCH_OP(m, _foreach_div_Scalar, n::foreach_scalar<Div>, fe);
  RUSTORCH_OP(m, _foreach_div__Scalar, n::foreach_scalar_<Div>, fe);
  RUSTORCH_OP(m, _foreach_add_ScalarList, n::foreach_scalarlist<Add>, fe);
  RUSTORCH_OP(m, _foreach_add__ScalarList, n::foreach_scalarlist_<Add>, fe);
  RUSTORCH_OP(m, _foreach_sub_ScalarList, n::foreach_scalarlist<Sub>, fe);
  RUSTORCH_OP(m, _foreach_sub__ScalarList, n::foreach_scalarlist_<Sub>, fe);
  RUSTORCH_OP(m, _foreach_mul_ScalarList, n::foreach_scalarlist<Mul>, fe);
  RUSTORCH_OP(m, _foreach_mul__ScalarList, n::foreach_scalarlist_<Mul>, fe);
  RUSTORCH_OP(m, _foreach_div_ScalarList, n::foreach_scalarlist<Div>, fe);
  RUSTORCH_OP(m, _foreach_div__ScalarList, n::foreach_scalarlist_<Div>, fe);
  RUSTORCH_OP(m, _foreach_add_List, n::foreach_list_alpha<Add>, fe);
  RUSTORCH_OP(m, _foreach_add__List, n::foreach_list_alpha_<Add>, fe);
  RUSTORCH_OP(m, _foreach_sub_List, n::foreach_list_alpha<Sub>, fe);
  RUSTORCH_OP(m, _foreach_sub__List, n::foreach_list_alpha_<Sub>, fe);
  RUSTORCH_OP(m, _foreach_mul_List, n::foreach_list<Mul>, fe);
  RUSTORCH_OP(m, _foreach_mul__List, n::foreach_list_<Mul>, fe);
  RUSTORCH_OP(m, _foreach_div_List, n::foreach_list<Div>, fe);
  RUSTORCH_OP(m, _foreach_div__List, n::foreach_list_<Div>, fe);
  RUSTORCH_OP(m, _foreach_add_Tensor, n::foreach_add_tensor, fe);
  RUSTORCH_OP(m, _foreach_add__Tensor, n::foreach_add_tensor_, fe);
  RUSTORCH_OP(m, _foreach_mul_Tensor, n::foreach_tensor<Mul>, fe);
  RUSTORCH_OP(m, _foreach_mul__Tensor, n::foreach_tensor_<Mul>, fe);
  RUSTORCH_OP(m, _foreach_div_Tensor, n::foreach_tensor<Div>, fe);
  RUSTORCH_OP(m, _foreach_div__Tensor, n::foreach_tensor_<Div>, fe);
  RUSTORCH_OP(m, _foreach_addcmul_Scalar, n::foreach_pointwise_scalar<PointwiseOp::Addcmul>, fe);
  RUSTORCH_OP(m, _foreach_addcmul__Scalar, n::foreach_pointwise_scalar_<PointwiseOp::Addcmul>, fe);
  RUSTORCH_OP(m, _foreach_addcmul_ScalarList,
              n::foreach_pointwise_scalarlist<PointwiseOp::Addcmul>, fe);
  RUSTORCH_OP(m, _foreach_addcmul__ScalarList,
              n::foreach_pointwise_scalarlist_<PointwiseOp::Addcmul>, fe);
  RUSTORCH_OP(m, _foreach_addcdiv_Scalar, n::foreach_pointwise_scalar<PointwiseOp::Addcdiv>, fe);
  RUSTORCH_OP(m, _foreach_addcdiv__Scalar, n::foreach_pointwise_scalar_<PointwiseOp::Addcdiv>, fe);
  RUSTORCH_OP(m, _foreach_addcdiv_ScalarList,
              n::foreach_pointwise_scalarlist<PointwiseOp::Addcdiv>, fe);
  RUSTORCH_OP(m, _foreach_addcdiv__ScalarList,
              n::foreach_pointwise_scalarlist_<PointwiseOp::Addcdiv>, fe);
  RUSTORCH_OP(m, _foreach_sqrt, n::foreach_unary_op<UnaryOp::Sqrt>, fe);
  RUSTORCH_OP(m, _foreach_sqrt_, n::foreach_unary_op_<UnaryOp::Sqrt>, fe);
  RUSTORCH_OP(m, _foreach_neg, n::foreach_unary_op<UnaryOp::Neg>, fe);
  RUSTORCH_OP(m, _foreach_neg_, n::foreach_unary_op_<UnaryOp::Neg>, fe);
  RUSTORCH_OP(m, _foreach_reciprocal, n::foreach_unary_op<UnaryOp::Reciprocal>, fe);
  RUSTORCH_OP(m, _foreach_reciprocal_, n::foreach_unary_op_<UnaryOp::Reciprocal>, fe);
  RUSTORCH_OP(m, _foreach_lerp_Scalar, n::foreach_lerp_scalar_op, fe);
  RUSTORCH_OP(m, _foreach_lerp__Scalar, n::foreach_lerp_scalar_op_, fe);
  RUSTORCH_OP(m, _foreach_lerp_List, n::foreach_lerp_list_op, fe);
  RUSTORCH_OP(m, _foreach_lerp__List, n::foreach_lerp_list_op_, fe);
  RUSTORCH_OP(m, _foreach_zero_, n::foreach_zero, n::foreach_zero_ok);

  // --- CUDA-only ops stock torch.nn reaches on a non-CPU device ---------------------------------
  // CPU has no kernel for these, so the fallback cannot serve them: a non-plain input (ZeroTensor,
  // lazy conj) fails there with an error naming the op and the device.
  // Fused recurrent cells (native/rnn_cells): nn.LSTM / nn.GRU / LSTMCell / GRUCell.
  RUSTORCH_OP(m, _thnn_fused_lstm_cell, n::lstm_cell, any);
  RUSTORCH_OP(m, _thnn_fused_lstm_cell_backward_impl, n::lstm_cell_backward_impl, any);
  RUSTORCH_OP(m, _thnn_fused_gru_cell, n::gru_cell, any);
  RUSTORCH_OP(m, _thnn_fused_gru_cell_backward, n::gru_cell_backward, any);
  // SyncBatchNorm's statistics (native/sync_batch_norm), with two or more ranks.
  RUSTORCH_OP(m, batch_norm_stats, n::batch_norm_stats, any);
  RUSTORCH_OP(m, batch_norm_elemt, n::batch_norm_elemt, any);
  RUSTORCH_OP(m, batch_norm_gather_stats, n::batch_norm_gather_stats, any);
  RUSTORCH_OP(m, batch_norm_gather_stats_with_counts, n::batch_norm_gather_stats_with_counts, any);
  RUSTORCH_OP(m, batch_norm_backward_reduce, n::batch_norm_backward_reduce, any);
  RUSTORCH_OP(m, batch_norm_backward_elemt, n::batch_norm_backward_elemt, any);
}
