// native_dropout forward with a counter-based generator (Philox4x32-10): element i's random
// number depends only on (seed, offset, i), so the mask is the same at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace rustorch::native {

bool dropout_supported(const at::Tensor& input);

// Returns (output, bool mask). train = false (or p = 0 with train) keeps everything.
std::tuple<at::Tensor, at::Tensor> native_dropout(const at::Tensor& input, double p,
                                                  std::optional<bool> train, uint64_t seed,
                                                  uint64_t offset);

// Fills `out` (4 * n_blocks words) with Philox4x32-10 output for counters offset..offset+n-1.
void philox_fill(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out);

// aten::native_dropout: one draw from the device's default generator keys the whole mask.
std::tuple<at::Tensor, at::Tensor> native_dropout_op(const at::Tensor& input, double p,
                                                     std::optional<bool> train);
inline bool native_dropout_ok(const at::Tensor& input, double, std::optional<bool>) {
  return dropout_supported(input);
}

}  // namespace rustorch::native
