#include "aten/native/dropout.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <array>
#include <cmath>
#include <cstring>
#include <mutex>
#include <type_traits>

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

// mulhilo of 8 lanes: lo/hi 32 bits of a * m (m < 2^32). vpmuludq multiplies the even lanes;
// the odd ones are shifted down into even position and back.
RUSTORCH_AVX2 inline void mulhilo8(__m256i a, __m256i m, __m256i& lo, __m256i& hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

// Eight Philox blocks from counters offset + b .. offset + b + 7, written interleaved:
// out[4 * l + j] = c_j[l]. Returns the state registers through the callback-free arrays so
// that two independent groups can be interleaved by the caller (each round is a chain of
// dependent multiplies: one group alone waits on their latency).
template <int G>
RUSTORCH_AVX2 inline void philox8x(uint64_t seed, uint64_t offset, int64_t b, uint32_t* out) {
  const __m256i m0 = _mm256_set1_epi32(int(kM0)), m1 = _mm256_set1_epi32(int(kM1));
  __m256i c0[G], c1[G], c2[G], c3[G];
  for (int g = 0; g < G; ++g) {
    alignas(32) uint32_t lo[kLanes], hi[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      const uint64_t ctr = offset + uint64_t(b + g * kLanes + l);
      lo[l] = uint32_t(ctr);
      hi[l] = uint32_t(ctr >> 32);
    }
    c0[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(lo));
    c1[g] = _mm256_load_si256(reinterpret_cast<const __m256i*>(hi));
    c2[g] = _mm256_setzero_si256();
    c3[g] = _mm256_setzero_si256();
  }
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    const __m256i vk0 = _mm256_set1_epi32(int(k0)), vk1 = _mm256_set1_epi32(int(k1));
    for (int g = 0; g < G; ++g) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0[g], m0, lo0, hi0);
      mulhilo8(c2[g], m1, lo1, hi1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[g]), vk0);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[g]), vk1);
      c1[g] = lo1;
      c3[g] = lo0;
      c0[g] = n0;
      c2[g] = n2;
    }
    k0 += kW0;
    k1 += kW1;
  }
  for (int g = 0; g < G; ++g) {
    // 32-bit then 64-bit unpacks give, per 128-bit half, blocks {0,1} / {2,3} (low half) and
    // {4,5} / {6,7} (high half); the 128-bit permutes put them in order.
    const __m256i a01 = _mm256_unpacklo_epi32(c0[g], c1[g]), b01 = _mm256_unpackhi_epi32(c0[g], c1[g]);
    const __m256i a23 = _mm256_unpacklo_epi32(c2[g], c3[g]), b23 = _mm256_unpackhi_epi32(c2[g], c3[g]);
    const __m256i blk04 = _mm256_unpacklo_epi64(a01, a23), blk15 = _mm256_unpackhi_epi64(a01, a23);
    const __m256i blk26 = _mm256_unpacklo_epi64(b01, b23), blk37 = _mm256_unpackhi_epi64(b01, b23);
    __m256i* o = reinterpret_cast<__m256i*>(out + 4 * (b + g * kLanes));
    _mm256_storeu_si256(o + 0, _mm256_permute2x128_si256(blk04, blk15, 0x20));
    _mm256_storeu_si256(o + 1, _mm256_permute2x128_si256(blk26, blk37, 0x20));
    _mm256_storeu_si256(o + 2, _mm256_permute2x128_si256(blk04, blk15, 0x31));
    _mm256_storeu_si256(o + 3, _mm256_permute2x128_si256(blk26, blk37, 0x31));
  }
}

// The same Philox4x32-10 as philox_lanes with AVX2 registers (the compiler does not vectorize
// the 32x32->64 products of the plain loop well), two groups of eight counters at a time.
RUSTORCH_AVX2 void philox_avx2(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out) {
  int64_t b = 0;
  for (; b + 2 * kLanes <= n_blocks; b += 2 * kLanes) philox8x<2>(seed, offset, b, out);
  for (; b + kLanes <= n_blocks; b += kLanes) philox8x<1>(seed, offset, b, out);
  if (b < n_blocks) philox_lanes(seed, offset + uint64_t(b), n_blocks - b, out + 4 * b);
}

void philox_default(uint64_t seed, uint64_t offset, int64_t n_blocks, uint32_t* out) {
  for (int64_t b = 0; b < n_blocks; b += kLanes)
    philox_lanes(seed, offset + uint64_t(b), std::min<int64_t>(kLanes, n_blocks - b), out + 4 * b);
}

constexpr int64_t kChunkBlocks = 512;  // 2048 elements per unit of parallel work

// keep = (r >> 8) < thr; y = x * keep * scale. Compiled twice (baseline and AVX2, picked at run
// time) like the element-wise loops: the same operations in the same order, so the same bits.
template <typename T>
[[gnu::always_inline]] inline void apply_body(const uint32_t* r, const T* x, T* y, bool* mask,
                                              int64_t n, uint32_t thr, T scale) {
  for (int64_t i = 0; i < n; ++i) {
    const bool keep = (r[i] >> 8) < thr;
    mask[i] = keep;
    y[i] = x[i] * T(keep) * scale;
  }
}
// 8 keep bits -> 8 bool bytes.
constexpr std::array<uint64_t, 256> kBitsToBytes = [] {
  std::array<uint64_t, 256> t{};
  for (int b = 0; b < 256; ++b)
    for (int k = 0; k < 8; ++k) t[b] |= uint64_t((b >> k) & 1) << (8 * k);
  return t;
}();

template <typename T>
RUSTORCH_AVX2 void apply_avx2(const uint32_t* r, const T* x, T* y, bool* mask, int64_t n,
                              uint32_t thr, T scale) {
  int64_t i = 0;
  if constexpr (std::is_same_v<T, float>) {
    // The compiler does not vectorize the bool stores; by hand: same products in the same order.
    const __m256i vthr = _mm256_set1_epi32(int(thr));  // thr <= 2^24: signed compare is exact
    const __m256 one = _mm256_set1_ps(1.0f), vscale = _mm256_set1_ps(scale);
    for (; i + 8 <= n; i += 8) {
      const __m256i rs = _mm256_srli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + i)), 8);
      const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vthr, rs));
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_and_ps(keep, one));
      _mm256_storeu_ps(y + i, _mm256_mul_ps(v, vscale));
      const uint64_t bytes = kBitsToBytes[_mm256_movemask_ps(keep)];
      std::memcpy(mask + i, &bytes, 8);
    }
  }
  apply_body(r + i, x + i, y + i, mask + i, n - i, thr, scale);
}
template <typename T>
void apply_default(const uint32_t* r, const T* x, T* y, bool* mask, int64_t n, uint32_t thr,
                   T scale) {
  apply_body(r, x, y, mask, n, thr, scale);
}

template <typename T>
void dropout_kernel(const T* x, T* y, bool* mask, int64_t n, double p1m, uint64_t seed,
                    uint64_t offset) {
  // keep iff (r >> 8) * 2^-24 < p1m, i.e. (r >> 8) < ceil(p1m * 2^24).
  const uint32_t thr = static_cast<uint32_t>(std::ceil(p1m * 16777216.0));
  const T scale = p1m == 0 ? T(0) : static_cast<T>(1.0 / p1m);
  const int64_t blocks = (n + 3) / 4;
  const int64_t chunks = (blocks + kChunkBlocks - 1) / kChunkBlocks;
  const bool avx2 = simd::has_avx2();
  // Below 16 chunks (32K elements) a parallel region costs more than it saves.
  at::parallel_for(0, chunks, 16, [&](int64_t cb, int64_t ce) {
    uint32_t rnd[4 * kChunkBlocks];
    for (int64_t c = cb; c < ce; ++c) {
      const int64_t b0 = c * kChunkBlocks;
      const int64_t nb = std::min(kChunkBlocks, blocks - b0);
      philox_fill(seed, offset + uint64_t(b0), nb, rnd);
      const int64_t e0 = 4 * b0, e1 = std::min(n, 4 * (b0 + nb));
      if (avx2) {
        apply_avx2(rnd, x + e0, y + e0, mask + e0, e1 - e0, thr, scale);
      } else {
        apply_default(rnd, x + e0, y + e0, mask + e0, e1 - e0, thr, scale);
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
