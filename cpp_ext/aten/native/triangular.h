// aten::tril.out / triu.out for any dtype (rows copied as bytes, the rest zeroed). Attention's
// causal mask is `ones(L, S, bool).tril()`, and the functional and in-place tril/triu reach these
// through their structured composites, so without them every causal SDPA call hit the fallback.
#pragma once

#include <ATen/core/Tensor.h>

namespace rustorch::native {

at::Tensor& tril_out(const at::Tensor& self, int64_t diagonal, at::Tensor& out);
at::Tensor& triu_out(const at::Tensor& self, int64_t diagonal, at::Tensor& out);

// self of rank >= 2; out of self's dtype and device, and either self itself (in place,
// contiguous) or a contiguous tensor of self's size (or empty, resized here) not overlapping it.
bool triangular_out_ok(const at::Tensor& self, int64_t diagonal, const at::Tensor& out);

}  // namespace rustorch::native
