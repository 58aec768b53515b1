// Reductions of the training path: sum / mean over any set of dims, argmax. Sums use a fixed
// order (per output: fixed-size chunks, fixed lanes, partials combined in chunk order), so
// results are bit-identical at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace rustorch::kernels {

// float32/float64 (same dtype out), or bool/int32/int64 summed into int64.
bool sum_supported(const at::Tensor& self, std::optional<at::ScalarType> dtype);
// float32/float64 only.
bool mean_supported(const at::Tensor& self, std::optional<at::ScalarType> dtype);
bool argmax_supported(const at::Tensor& self);

// `out`: undefined = allocate; defined = resized and written.
at::Tensor sum(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
               std::optional<at::ScalarType> dtype, const at::Tensor& out);
at::Tensor mean(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                std::optional<at::ScalarType> dtype, const at::Tensor& out);
at::Tensor argmax(const at::Tensor& self, std::optional<int64_t> dim, bool keepdim,
                  const at::Tensor& out);

}  // namespace rustorch::kernels
