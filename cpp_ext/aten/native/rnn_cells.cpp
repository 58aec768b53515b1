// Fused recurrent cells: aten::_thnn_fused_lstm_cell / _thnn_fused_gru_cell and their backward
// ops, on rustorch.
//
// Why these ops: ATen's LSTMCell / GRUCell (aten/src/ATen/native/RNN.cpp) call the fused cell
// ops for every non-CPU device (is_cuda || is_xpu || is_privateuseone), so nn.LSTM, nn.GRU,
// nn.LSTMCell and nn.GRUCell on rustorch reach them. PyTorch only has CUDA kernels for them, so
// the CPU fallback has nothing to run. Here they run natively on the host memory behind the
// rustorch tensors, with the semantics of the CUDA kernels (aten/src/ATen/native/cuda/RNN.cu):
//
//   LSTM  gates = input_gates + hidden_gates (+ input_bias + hidden_bias), chunks i, f, g, o:
//         i, f, o = sigmoid, g = tanh; cy = f * cx + i * g; hy = o * tanh(cy);
//         workspace [N, 4H] = activated gates (i, f, g, o), read by the backward.
//   GRU   r, z = sigmoid(ig_rz + hg_rz (+ biases)); n = tanh(ig_n + b_in + r * (hg_n + b_hn));
//         hy = n + z * (hx - n); workspace [N, 5H] = (r, z, n, hx, hg_n + b_hn).
//
// Autograd (derivatives.yaml) calls _thnn_fused_lstm_cell_backward (composite, it calls the
// _impl registered here) or _thnn_fused_gru_cell_backward without create_graph; with
// create_graph it uses the differentiable composite backward, which needs nothing from us.
// Math runs in float for half/bfloat16 (CUDA's acc_type), in the tensor's type otherwise.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <tuple>

#include "aten/alias.h"
#include "aten/native/rnn_cells.h"
#include "kernels/rnn_cell.h"

namespace rustorch::native {
namespace {

using at::Tensor;

// CPU view over a rustorch tensor's bytes, made contiguous (a copy only when it is not).
Tensor host_contiguous(const Tensor& t) { return t.defined() ? as_cpu(t).contiguous() : t; }

// Row grain for at::parallel_for: rows are independent, each is `work` elements of math.
int64_t row_grain(int64_t work) { return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work)); }

void check_cell_sizes(const char* op, const Tensor& input_gates, const Tensor& hidden_gates,
                      const std::optional<Tensor>& input_bias,
                      const std::optional<Tensor>& hidden_bias, const Tensor& prev, int64_t factor) {
  TORCH_CHECK(input_gates.dim() == 2, op, ": expected input_gates to be 2-D, got ",
              input_gates.dim(), "-D");
  TORCH_CHECK(input_gates.sizes() == hidden_gates.sizes(), op,
              ": input_gates and hidden_gates must have the same size, got ", input_gates.sizes(),
              " and ", hidden_gates.sizes());
  const int64_t gates = input_gates.size(1);
  TORCH_CHECK(gates % factor == 0, op, ": gate width ", gates, " is not a multiple of ", factor);
  const bool has_ib = input_bias.has_value() && input_bias->defined();
  const bool has_hb = hidden_bias.has_value() && hidden_bias->defined();
  TORCH_CHECK(has_ib == has_hb, op, ": input_bias and hidden_bias must both be given or neither");
  if (has_ib) {
    TORCH_CHECK(input_bias->dim() == 1 && input_bias->numel() == gates, op,
                ": expected input_bias of shape [", gates, "], got ", input_bias->sizes());
    TORCH_CHECK(hidden_bias->sizes() == input_bias->sizes(), op,
                ": input_bias and hidden_bias must have the same size");
  }
  TORCH_CHECK(prev.dim() == 2 && prev.size(0) == input_gates.size(0) &&
                  prev.size(1) == gates / factor,
              op, ": expected the previous state of shape [", input_gates.size(0), ", ",
              gates / factor, "], got ", prev.sizes());
  for (const Tensor* t : {&input_gates, &hidden_gates, &prev}) {
    TORCH_CHECK(t->device() == input_gates.device(), op,
                ": expected all tensors on one device, got ", input_gates.device(), " and ",
                t->device());
    TORCH_CHECK(t->scalar_type() == input_gates.scalar_type(), op,
                ": expected all tensors of one dtype, got ", input_gates.scalar_type(), " and ",
                t->scalar_type());
  }
  for (const std::optional<Tensor>* b : {&input_bias, &hidden_bias})
    if (b->has_value() && (*b)->defined()) {
      TORCH_CHECK((*b)->device() == input_gates.device(), op,
                  ": expected all tensors on one device, got ", input_gates.device(), " and ",
                  (*b)->device());
      TORCH_CHECK((*b)->scalar_type() == input_gates.scalar_type(), op,
                  ": expected all tensors of one dtype, got ", input_gates.scalar_type(), " and ",
                  (*b)->scalar_type());
    }
}

}  // namespace

// ---- LSTM ------------------------------------------------------------------------------------

std::tuple<Tensor, Tensor, Tensor> lstm_cell(const Tensor& input_gates, const Tensor& hidden_gates,
                                             const Tensor& cx,
                                             const std::optional<Tensor>& input_bias,
                                             const std::optional<Tensor>& hidden_bias) {
  check_cell_sizes("_thnn_fused_lstm_cell", input_gates, hidden_gates, input_bias, hidden_bias,
                   cx, 4);
  const int64_t n = cx.size(0), h = cx.size(1);
  Tensor workspace = at::empty({n, 4 * h}, input_gates.options());
  Tensor hy = at::empty({n, h}, cx.options());
  Tensor cy = at::empty({n, h}, cx.options());
  if (n == 0 || h == 0) return {hy, cy, workspace};

  const Tensor ig = host_contiguous(input_gates), hg = host_contiguous(hidden_gates);
  const Tensor c = host_contiguous(cx);
  const Tensor ib = host_contiguous(input_bias.value_or(Tensor()));
  const Tensor hb = host_contiguous(hidden_bias.value_or(Tensor()));
  const Tensor ws = as_cpu(workspace), hy_c = as_cpu(hy), cy_c = as_cpu(cy);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ig.scalar_type(),
                                  "_thnn_fused_lstm_cell", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* pig = ig.const_data_ptr<scalar_t>();
    const scalar_t* phg = hg.const_data_ptr<scalar_t>();
    const scalar_t* pc = c.const_data_ptr<scalar_t>();
    const scalar_t* pib = ib.defined() ? ib.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* phb = hb.defined() ? hb.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* pws = ws.mutable_data_ptr<scalar_t>();
    scalar_t* phy = hy_c.mutable_data_ptr<scalar_t>();
    scalar_t* pcy = cy_c.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, row_grain(4 * h), [&](int64_t begin, int64_t end) {
      kernels::rnn::lstm_forward<scalar_t, acc_t>(begin, end, h, pig, phg, pib, phb, pc, phy, pcy,
                                                  pws);
    });
  });
  return {hy, cy, workspace};
}

std::tuple<Tensor, Tensor, Tensor> lstm_cell_backward_impl(const std::optional<Tensor>& grad_hy,
                                                           const std::optional<Tensor>& grad_cy,
                                                           const Tensor& cx, const Tensor& cy,
                                                           const Tensor& workspace,
                                                           bool has_bias) {
  const bool has_ghy = grad_hy.has_value() && grad_hy->defined();
  const bool has_gcy = grad_cy.has_value() && grad_cy->defined();
  if (!has_ghy && !has_gcy) return {};  // no gradient flows (CUDA returns undefined tensors)
  const char* op = "_thnn_fused_lstm_cell_backward_impl";
  const Tensor& defined_grad = has_ghy ? *grad_hy : *grad_cy;
  TORCH_CHECK(defined_grad.dim() == 2, op, ": expected 2-D gradients, got ", defined_grad.dim(),
              "-D");
  const auto size = defined_grad.sizes();
  TORCH_CHECK(!has_ghy || grad_hy->sizes() == size, op, ": grad_hy has size ", grad_hy->sizes(),
              ", expected ", size);
  TORCH_CHECK(!has_gcy || grad_cy->sizes() == size, op, ": grad_cy has size ", grad_cy->sizes(),
              ", expected ", size);
  TORCH_CHECK(cx.sizes() == size && cy.sizes() == size, op, ": cx/cy have sizes ", cx.sizes(),
              "/", cy.sizes(), ", expected ", size);
  const int64_t n = size[0], h = size[1];
  TORCH_CHECK(workspace.dim() == 2 && workspace.numel() == n * h * 4, op,
              ": expected a workspace of ", n * h * 4, " elements, got ", workspace.sizes());

  Tensor grad_gates = at::empty({n, 4 * h}, workspace.options());
  Tensor grad_cx = at::empty({n, h}, cx.options());
  if (n > 0 && h > 0) {
    const Tensor ghy = has_ghy ? host_contiguous(*grad_hy) : Tensor();
    const Tensor gcy = has_gcy ? host_contiguous(*grad_cy) : Tensor();
    const Tensor c = host_contiguous(cx), cyc = host_contiguous(cy);
    const Tensor ws = host_contiguous(workspace);
    const Tensor gg = as_cpu(grad_gates), gcx = as_cpu(grad_cx);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ws.scalar_type(), "rnn_cell_backward", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* pghy = ghy.defined() ? ghy.const_data_ptr<scalar_t>() : nullptr;
      const scalar_t* pgcy = gcy.defined() ? gcy.const_data_ptr<scalar_t>() : nullptr;
      const scalar_t* pc = c.const_data_ptr<scalar_t>();
      const scalar_t* pcy = cyc.const_data_ptr<scalar_t>();
      const scalar_t* pws = ws.const_data_ptr<scalar_t>();
      scalar_t* pgg = gg.mutable_data_ptr<scalar_t>();
      scalar_t* pgcx = gcx.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, n, row_grain(4 * h), [&](int64_t begin, int64_t end) {
        kernels::rnn::lstm_backward<scalar_t, acc_t>(begin, end, h, pghy, pgcy, pc, pcy, pws, pgg,
                                                     pgcx);
      });
    });
  }
  Tensor grad_bias = has_bias ? grad_gates.sum(0, /*keepdim=*/false) : Tensor();
  return {grad_gates, grad_cx, grad_bias};
}

// ---- GRU -------------------------------------------------------------------------------------

constexpr int64_t kGruWorkspace = 5;  // r, z, n, hx, hidden n-gate (+ its bias)

std::tuple<Tensor, Tensor> gru_cell(const Tensor& input_gates, const Tensor& hidden_gates,
                                    const Tensor& hx, const std::optional<Tensor>& input_bias,
                                    const std::optional<Tensor>& hidden_bias) {
  check_cell_sizes("_thnn_fused_gru_cell", input_gates, hidden_gates, input_bias, hidden_bias, hx,
                   3);
  const int64_t n = hx.size(0), h = hx.size(1);
  Tensor workspace = at::empty({n, h * kGruWorkspace}, hx.options());
  Tensor hy = at::empty({n, h}, hx.options());
  if (n == 0 || h == 0) return {hy, workspace};

  const Tensor ig = host_contiguous(input_gates), hg = host_contiguous(hidden_gates);
  const Tensor x = host_contiguous(hx);
  const Tensor ib = host_contiguous(input_bias.value_or(Tensor()));
  const Tensor hb = host_contiguous(hidden_bias.value_or(Tensor()));
  const Tensor ws = as_cpu(workspace), hy_c = as_cpu(hy);

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ig.scalar_type(),
                                  "_thnn_fused_gru_cell", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* pig = ig.const_data_ptr<scalar_t>();
    const scalar_t* phg = hg.const_data_ptr<scalar_t>();
    const scalar_t* px = x.const_data_ptr<scalar_t>();
    const scalar_t* pib = ib.defined() ? ib.const_data_ptr<scalar_t>() : nullptr;
    const scalar_t* phb = hb.defined() ? hb.const_data_ptr<scalar_t>() : nullptr;
    scalar_t* pws = ws.mutable_data_ptr<scalar_t>();
    scalar_t* phy = hy_c.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, n, row_grain(5 * h), [&](int64_t begin, int64_t end) {
      kernels::rnn::gru_forward<scalar_t, acc_t>(begin, end, h, pig, phg, pib, phb, px, phy, pws);
    });
  });
  return {hy, workspace};
}

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> gru_cell_backward(const Tensor& grad_hy,
                                                                     const Tensor& workspace,
                                                                     bool has_bias) {
  const char* op = "_thnn_fused_gru_cell_backward";
  TORCH_CHECK(grad_hy.dim() == 2, op, ": expected a 2-D grad_hy, got ", grad_hy.dim(), "-D");
  const int64_t n = grad_hy.size(0), h = grad_hy.size(1);
  TORCH_CHECK(workspace.dim() == 2 && workspace.size(0) == n &&
                  workspace.size(1) == h * kGruWorkspace,
              op, ": expected a workspace of shape [", n, ", ", h * kGruWorkspace, "], got ",
              workspace.sizes());
  Tensor grad_input_gates = at::empty({n, 3 * h}, workspace.options());
  Tensor grad_hidden_gates = at::empty({n, 3 * h}, workspace.options());
  Tensor grad_hx = at::empty({n, h}, grad_hy.options());
  if (n > 0 && h > 0) {
    const Tensor go_c = host_contiguous(grad_hy), ws = host_contiguous(workspace);
    const Tensor gi = as_cpu(grad_input_gates), gh = as_cpu(grad_hidden_gates);
    const Tensor ghx = as_cpu(grad_hx);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, ws.scalar_type(), "rnn_cell_backward", [&] {
      using acc_t = at::opmath_type<scalar_t>;
      const scalar_t* pgo = go_c.const_data_ptr<scalar_t>();
      const scalar_t* pws = ws.const_data_ptr<scalar_t>();
      scalar_t* pgi = gi.mutable_data_ptr<scalar_t>();
      scalar_t* pgh = gh.mutable_data_ptr<scalar_t>();
      scalar_t* pghx = ghx.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, n, row_grain(5 * h), [&](int64_t begin, int64_t end) {
        kernels::rnn::gru_backward<scalar_t, acc_t>(begin, end, h, pgo, pws, pgi, pgh, pghx);
      });
    });
  }
  Tensor grad_input_bias, grad_hidden_bias;
  if (has_bias) {
    grad_input_bias = grad_input_gates.sum(0, /*keepdim=*/false);
    grad_hidden_bias = grad_hidden_gates.sum(0, /*keepdim=*/false);
  }
  return {grad_input_gates, grad_hidden_gates, grad_hx, grad_input_bias, grad_hidden_bias};
}

}  // namespace rustorch::native
