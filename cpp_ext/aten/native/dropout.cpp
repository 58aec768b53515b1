#include "aten/native/dropout.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <mutex>

#include "kernels/simd_math.h"
#include "runtime/generator.h"

namespace rustorch::native {
using namespace ::rustorch::kernels;  // raw compute: gemm, simd helpers
namespace {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
constexpr int kLanes = 8;  // blocks generated together so the rounds vectorize

// Philox4x32-10 on kLanes counters at once; plain loops the compiler vectorizes.
[[gnu::always_inline]] inline void philox_lanes(uint64_t seed, uint64_t first, int64_t n,
                                                uint32_t* out) {
  uint32_t c0[kLanes], c1[kLanes], c2[kLanes], c3[kLanes];
  for (int l = 0; l < kLanes; ++l) {
    const uint64_t ctr = first + uint64_t(l);
    c0[l] = uint32_t(ctr);
    c1[l] = uint32_t(ctr >> 32);
    c2[l] = 0;
    c3[l] = 0;
  }
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t p0 = uint64_t(kM0) * c0[l];
      const uint64_t p1 = uint64_t(kM1) * c2[l];
      const uint32_t n0 = uint32_t(p1 >> 32) ^ c1[l] ^ k0;
      const uint32_t n2 = uint32_t(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = uint32_t(p1);
      c3[l] = uint32_t(p0);
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int64_t l = 0; l < n; ++l) {
    out[4 * l + 0] = c0[l];
    out[4 * l + 1] = c1[l];
    out[4 * l + 2] = c2[l];
    out[4 * l + 3] = c3[l];
  }
}

RUSTORCH_AVX2 void philox_avx2(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out) {
  for (int64_t b = 0; b < n_blocks; b += kLanes)
    philox_lanes(seed, offset + uint64_t(b), std::min<int64_t>(kLanes, n_blocks - b), out + 4 * b);
}

void philox_default(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out) {
  for (int64_t b = 0; b < n_blocks; b += kLanes)
    philox_lanes(seed, offset + uint64_t(b), std::min<int64_t>(kLanes, n_blocks - b), out + 4 * b);
}

constexpr int64_t kChunkBlocks = 512;  // 2048 elements per unit of parallel work

template <typename T>
void dropout_kernel(const T* x, T* y, bool* mask, int64_t n, double p1m, uint64_t seed,
                    uint64_t offset) {
  // keep iff (r >> 8) * 2^-24 < p1m, i.e. (r >> 8) < ceil(p1m * 2^24).
  const uint32_t thr = static_cast<uint32_t>(std::ceil(p1m * 16777216.0));
  const T scale = p1m == 0 ? T(0) : static_cast<T>(1.0 / p1m);
  const int64_t blocks = (n + 3) / 4;
  const int64_t chunks = (blocks + kChunkBlocks - 1) / kChunkBlocks;
  // Below 16 chunks (32K elements) a parallel region costs more than it saves.
  at::parallel_for(0, chunks, 16, [&](int64_t cb, int64_t ce) {
    uint32_t rnd[4 * kChunkBlocks];
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t b0 = c * kChunkBlocks;
      const int64_t nb = std::min(kChunkBlocks, blocks - b0);
      philox_fill(seed, offset + uint64_t(b0), nb, rnd);
      const int64_t e0 = 4 * b0, e1 = std::min(n, 4 * (b0 + nb));
      for (int64_t i = e0; i < e1; ++i) {
        const bool keep = (rnd[i - e0] >> 8) < thr;
        mask[i] = keep;
        y[i] = x[i] * T(keep) * scale;
      }
    }
  });
}

}  // namespace

void philox_fill(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out) {
  if (simd::has_avx2()) {
    philox_avx2(seed, offset, n_blocks, out);
  } else {
    philox_default(seed, offset, n_blocks, out);
  }
}

bool dropout_supported(const at::Tensor& input) {
  const auto st = input.scalar_type();
  return input.layout() == at::kStrided && (st == at::kFloat || st == at::kDouble);
}

std::tuple<at::Tensor, at::Tensor> native_dropout(const at::Tensor& input, double p,
                                                  std::optional<bool> train, uint64_t seed,
                                                  uint64_t offset) {
  TORCH_CHECK(dropout_supported(input), "rustorch native_dropout: unsupported input");
  TORCH_CHECK(p >= 0 && p <= 1, "dropout probability has to be between 0 and 1, but got ", p);
  at::Tensor x = input.contiguous();
  at::Tensor mask = at::empty(input.sizes(), input.options().dtype(at::kBool));
  at::Tensor out = at::empty(input.sizes(), input.options());
  if (input.numel() == 0) return {out, mask};
  const bool training = !train.has_value() || *train;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rustorch_native_dropout", [&] {
    const scalar_t* xp = x.const_data_ptr<scalar_t>();
    scalar_t* yp = out.data_ptr<scalar_t>();
    bool* mp = mask.data_ptr<bool>();
    if (!training) {
      std::copy(xp, xp + x.numel(), yp);
      std::fill(mp, mp + x.numel(), true);
      return;
    }
    dropout_kernel<scalar_t>(xp, yp, mp, x.numel(), 1.0 - p, seed, offset);
  });
  return {out, mask};
}

std::tuple<at::Tensor, at::Tensor> native_dropout_op(const at::Tensor& input, double p,
                                                     std::optional<bool> train) {
  uint64_t seed = 0;
  if ((!train.has_value() || *train) && input.numel() > 0) {
    // Philox keyed by one 64-bit draw, counter = element index: same mask at any thread count.
    at::CPUGeneratorImpl* gen = ::rustorch::generator_impl(std::nullopt, input.device().index());
    std::lock_guard<std::mutex> lock(gen->mutex_);
    seed = gen->random64();
  }
  return native_dropout(input, p, train, seed, 0);
}

}  // namespace rustorch::native
