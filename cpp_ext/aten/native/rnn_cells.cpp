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

namespace rustorch::native {
namespace {

using at::Tensor;

template <typename T>
inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

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
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* gi = pig + row * 4 * h;
        const scalar_t* gh = phg + row * 4 * h;
        scalar_t* w = pws + row * 4 * h;
        for (int64_t j = 0; j < h; ++j) {
          acc_t pre[4];
          for (int k = 0; k < 4; ++k) {
            const int64_t col = k * h + j;
            acc_t v = acc_t(gi[col]) + acc_t(gh[col]);
            if (pib != nullptr) v += acc_t(pib[col]) + acc_t(phb[col]);
            pre[k] = v;
          }
          const acc_t i = sigmoid(pre[0]), f = sigmoid(pre[1]);
          const acc_t g = std::tanh(pre[2]), o = sigmoid(pre[3]);
          const acc_t cell = f * acc_t(pc[row * h + j]) + i * g;
          pcy[row * h + j] = scalar_t(cell);
          phy[row * h + j] = scalar_t(o * std::tanh(cell));
          w[j] = scalar_t(i);
          w[h + j] = scalar_t(f);
          w[2 * h + j] = scalar_t(g);
          w[3 * h + j] = scalar_t(o);
        }
      }
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
        for (int64_t row = begin; row < end; ++row) {
          const scalar_t* w = pws + row * 4 * h;
          scalar_t* g = pgg + row * 4 * h;
          for (int64_t j = 0; j < h; ++j) {
            const int64_t e = row * h + j;
            const acc_t i = w[j], f = w[h + j], cg = w[2 * h + j], o = w[3 * h + j];
            const acc_t go = pghy != nullptr ? acc_t(pghy[e]) : acc_t(0);
            const acc_t goc = pgcy != nullptr ? acc_t(pgcy[e]) : acc_t(0);
            const acc_t tc = std::tanh(acc_t(pcy[e]));
            // d cy: through hy = o * tanh(cy), plus the incoming cell gradient.
            const acc_t dc = go * o * (acc_t(1) - tc * tc) + goc;
            g[j] = scalar_t(dc * cg * (acc_t(1) - i) * i);
            g[h + j] = scalar_t(dc * acc_t(pc[e]) * (acc_t(1) - f) * f);
            g[2 * h + j] = scalar_t(dc * i * (acc_t(1) - cg * cg));
            g[3 * h + j] = scalar_t(go * tc * (acc_t(1) - o) * o);
            pgcx[e] = scalar_t(dc * f);
          }
        }
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
      for (int64_t row = begin; row < end; ++row) {
        const scalar_t* gi = pig + row * 3 * h;
        const scalar_t* gh = phg + row * 3 * h;
        scalar_t* w = pws + row * kGruWorkspace * h;
        for (int64_t j = 0; j < h; ++j) {
          auto bias = [&](const scalar_t* b, int64_t col) {
            return b != nullptr ? acc_t(b[col]) : acc_t(0);
          };
          const acc_t r = sigmoid(acc_t(gi[j]) + acc_t(gh[j]) + bias(pib, j) + bias(phb, j));
          const acc_t z = sigmoid(acc_t(gi[h + j]) + acc_t(gh[h + j]) + bias(pib, h + j) +
                                  bias(phb, h + j));
          const acc_t hn = acc_t(gh[2 * h + j]) + bias(phb, 2 * h + j);
          const acc_t ng = std::tanh(acc_t(gi[2 * h + j]) + bias(pib, 2 * h + j) + r * hn);
          const scalar_t prev = px[row * h + j];
          phy[row * h + j] = scalar_t(ng + z * (acc_t(prev) - ng));
          w[j] = scalar_t(r);
          w[h + j] = scalar_t(z);
          w[2 * h + j] = scalar_t(ng);
          w[3 * h + j] = prev;
          w[4 * h + j] = scalar_t(hn);
        }
      }
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
        for (int64_t row = begin; row < end; ++row) {
          const scalar_t* w = pws + row * kGruWorkspace * h;
          scalar_t* a = pgi + row * 3 * h;
          scalar_t* b = pgh + row * 3 * h;
          for (int64_t j = 0; j < h; ++j) {
            const acc_t r = w[j], z = w[h + j], ng = w[2 * h + j];
            const acc_t x = w[3 * h + j], hn = w[4 * h + j];
            const acc_t go = pgo[row * h + j];
            const acc_t dz = go * (x - ng) * (acc_t(1) - z) * z;
            const acc_t dn = go * (acc_t(1) - z) * (acc_t(1) - ng * ng);
            const acc_t dr = dn * hn * (acc_t(1) - r) * r;
            a[j] = b[j] = scalar_t(dr);
            a[h + j] = b[h + j] = scalar_t(dz);
            a[2 * h + j] = scalar_t(dn);
            b[2 * h + j] = scalar_t(dn * r);
            pghx[row * h + j] = scalar_t(go * z);
          }
        }
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
