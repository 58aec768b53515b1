// Fused recurrent cells (aten::_thnn_fused_lstm_cell / _thnn_fused_gru_cell and backward):
// CUDA-only ops that nn.LSTM / nn.GRU reach on every non-CPU device; see rnn_cells.cpp.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace rustorch::native {

using at::Tensor;

std::tuple<Tensor, Tensor, Tensor> lstm_cell(const Tensor& input_gates, const Tensor& hidden_gates,
                                             const Tensor& cx,
                                             const std::optional<Tensor>& input_bias,
                                             const std::optional<Tensor>& hidden_bias);

std::tuple<Tensor, Tensor, Tensor> lstm_cell_backward_impl(const std::optional<Tensor>& grad_hy,
                                                           const std::optional<Tensor>& grad_cy,
                                                           const Tensor& cx, const Tensor& cy,
                                                           const Tensor& workspace,
                                                           bool has_bias);

std::tuple<Tensor, Tensor> gru_cell(const Tensor& input_gates, const Tensor& hidden_gates,
                                    const Tensor& hx, const std::optional<Tensor>& input_bias,
                                    const std::optional<Tensor>& hidden_bias);

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor> gru_cell_backward(const Tensor& grad_hy,
                                                                     const Tensor& workspace,
                                                                     bool has_bias);

}  // namespace rustorch::native
