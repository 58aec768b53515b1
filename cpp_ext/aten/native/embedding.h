// aten::embedding (row gather) and aten::embedding_dense_backward for float32/float64 weights
// and int64/int32 indices. The backward is deterministic without atomics: positions are grouped
// by index with a stable counting sort, and each weight row, owned by one thread, sums its
// gradient rows in position order, so the result is the same at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

namespace rustorch::native {

at::Tensor embedding(const at::Tensor& weight, const at::Tensor& indices, int64_t padding_idx,
                     bool scale_grad_by_freq, bool sparse);
at::Tensor embedding_dense_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                                    int64_t num_weights, int64_t padding_idx,
                                    bool scale_grad_by_freq);

// Predicates: a 2-D float32/float64 weight (gradient of its dtype) and integer indices.
bool embedding_ok(const at::Tensor& weight, const at::Tensor& indices, int64_t padding_idx,
                  bool scale_grad_by_freq, bool sparse);
bool embedding_dense_backward_ok(const at::Tensor& grad_output, const at::Tensor& indices,
                                 int64_t num_weights, int64_t padding_idx,
                                 bool scale_grad_by_freq);

}  // namespace rustorch::native
