// Portable micro-kernels (no SIMD intrinsics): used on CPUs without AVX2+FMA, or with
// RUSTORCH_ISA=scalar. 4 x 8 keeps 32 accumulators, which the compiler maps to SSE2 registers.
#include "kernels/gemm_microkernel.h"

namespace rustorch::kernels::gemm_detail {
namespace {

constexpr int64_t kMr = 4;
constexpr int64_t kNr = 8;

template <typename T>
void ukr_scalar(int64_t k, const T* a, const T* b, T* c, int64_t rsc, int64_t csc, T alpha,
                T beta) {
  T acc[kMr * kNr] = {};
  for (int64_t p = 0; p < k; ++p) {
    for (int64_t i = 0; i < kMr; ++i) {
      const T ai = a[i];
      for (int64_t j = 0; j < kNr; ++j) acc[i * kNr + j] += ai * b[j];
    }
    a += kMr;
    b += kNr;
  }
  store_tile_generic(acc, kMr, kNr, kNr, c, rsc, csc, alpha, beta);
}

}  // namespace

MicroKernel<float> microkernel_f32_scalar() { return {kMr, kNr, &ukr_scalar<float>, "scalar 4x8"}; }
MicroKernel<double> microkernel_f64_scalar() {
  return {kMr, kNr, &ukr_scalar<double>, "scalar 4x8"};
}

}  // namespace rustorch::kernels::gemm_detail
