// aten::cat.out for contiguous tensors of one dtype (any dtype: rows are copied as bytes).
// nn.LSTM / GRU stack their per-step outputs with it, and the functional cat reaches it through
// its structured composite (which allocates `out`), so without it every cat was a fallback call.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/IListRef.h>

namespace rustorch::native {

at::Tensor& cat_out(const at::ITensorListRef& tensors, int64_t dim, at::Tensor& out);

// Contiguous inputs of out's dtype, one rank (>= 1), equal sizes except at dim, none aliasing
// out, and out already of the result's size and contiguous (what the composite allocates);
// anything else (legacy empty tensors, resizing, mixed dtypes) goes to CPU's kernel.
bool cat_out_ok(const at::ITensorListRef& tensors, int64_t dim, const at::Tensor& out);

}  // namespace rustorch::native
