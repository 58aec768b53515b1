// Reductions of the training path: sum / mean over any set of dims, argmax. Sums use a fixed
// order (per output: fixed-size chunks, fixed lanes, partials combined in chunk order), so
// results are bit-identical at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace rustorch::native {

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

// aten-signature forms and their predicates (registered in aten/native_ops.cpp).
inline at::Tensor sum_dim(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                          std::optional<at::ScalarType> dtype) {
  return sum(self, dim, keepdim, dtype, at::Tensor());
}
inline at::Tensor& sum_out(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                           std::optional<at::ScalarType> dtype, at::Tensor& out) {
  sum(self, dim, keepdim, dtype, out);
  return out;
}
inline at::Tensor mean_dim(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                           std::optional<at::ScalarType> dtype) {
  return mean(self, dim, keepdim, dtype, at::Tensor());
}
inline at::Tensor& mean_out(const at::Tensor& self, at::OptionalIntArrayRef dim, bool keepdim,
                            std::optional<at::ScalarType> dtype, at::Tensor& out) {
  mean(self, dim, keepdim, dtype, out);
  return out;
}
inline at::Tensor argmax_op(const at::Tensor& self, std::optional<int64_t> dim, bool keepdim) {
  return argmax(self, dim, keepdim, at::Tensor());
}
inline at::Tensor& argmax_out(const at::Tensor& self, std::optional<int64_t> dim, bool keepdim,
                              at::Tensor& out) {
  argmax(self, dim, keepdim, out);
  return out;
}
inline bool sum_ok(const at::Tensor& self, at::OptionalIntArrayRef, bool,
                   std::optional<at::ScalarType> dtype) {
  return sum_supported(self, dtype);
}
inline bool sum_out_ok(const at::Tensor& self, at::OptionalIntArrayRef, bool,
                       std::optional<at::ScalarType> dtype, at::Tensor&) {
  return sum_supported(self, dtype);
}
inline bool mean_ok(const at::Tensor& self, at::OptionalIntArrayRef, bool,
                    std::optional<at::ScalarType> dtype) {
  return mean_supported(self, dtype);
}
inline bool mean_out_ok(const at::Tensor& self, at::OptionalIntArrayRef, bool,
                        std::optional<at::ScalarType> dtype, at::Tensor& out) {
  return mean_supported(self, dtype) && out.scalar_type() == self.scalar_type();
}
inline bool argmax_ok(const at::Tensor& self, std::optional<int64_t>, bool) {
  return argmax_supported(self);
}
inline bool argmax_out_ok(const at::Tensor& self, std::optional<int64_t>, bool, at::Tensor& out) {
  return argmax_supported(self) && out.scalar_type() == at::kLong;
}

}  // namespace rustorch::native
