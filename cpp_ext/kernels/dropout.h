// native_dropout forward with a counter-based generator (Philox4x32-10): element i's random
// number depends only on (seed, offset, i), so the mask is the same at any thread count.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <tuple>

namespace rustorch::kernels {

bool dropout_supported(const at::Tensor& input);

// Philox counter blocks a call with `numel` elements consumes (4 random words per block);
// the caller advances its generator's offset by this much.
inline uint64_t dropout_offset_increment(int64_t numel) { return (uint64_t(numel) + 3) / 4; }

// Returns (output, bool mask). train = false (or p = 0 with train) keeps everything.
std::tuple<at::Tensor, at::Tensor> native_dropout(const at::Tensor& input, double p,
                                                  std::optional<bool> train, uint64_t seed,
                                                  uint64_t offset);

// Fills `out` (4 * n_blocks words) with Philox4x32-10 output for counters offset..offset+n-1.
void philox_fill(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out);

}  // namespace rustorch::kernels
