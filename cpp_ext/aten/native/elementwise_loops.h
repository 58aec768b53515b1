// Element-wise loop driver on top of at::TensorIterator: TensorIterator does broadcasting,
// shapes, strides, output allocation and splitting across threads (at::parallel_for); the inner
// loops here are ours. Contiguous runs go to an AVX2-compiled copy of the loop when the CPU has
// it (the compiler vectorizes the plain loop under the target attribute); anything else runs
// the strided scalar loop. Each element is computed independently, so results are identical at
// any thread count.
#pragma once

#include <ATen/TensorIterator.h>

#include <cstdint>
#include <tuple>
#include <utility>

#include "kernels/simd_math.h"

namespace rustorch::native::loops {
namespace simd = ::rustorch::kernels::simd;

template <typename Out, typename... In, typename Op, size_t... I>
[[gnu::always_inline]] inline void contig_body(char** p, int64_t n, const Op& op,
                                               std::index_sequence<I...>) {
  Out* __restrict o = reinterpret_cast<Out*>(p[0]);
  std::tuple<const In*...> in{reinterpret_cast<const In*>(p[I + 1])...};
  for (int64_t i = 0; i < n; ++i) o[i] = op(std::get<I>(in)[i]...);
}

template <typename Out, typename... In, typename Op>
RUSTORCH_AVX2 void contig_avx2(char** p, int64_t n, const Op& op) {
  contig_body<Out, In...>(p, n, op, std::index_sequence_for<In...>{});
}

template <typename Out, typename... In, typename Op>
void contig_default(char** p, int64_t n, const Op& op) {
  contig_body<Out, In...>(p, n, op, std::index_sequence_for<In...>{});
}

template <typename Out, typename... In, typename Op, size_t... I>
void strided(char** p, const int64_t* s, int64_t n, const Op& op, std::index_sequence<I...>) {
  char* o = p[0];
  [[maybe_unused]] char* in[sizeof...(In) + 1] = {p[I + 1]...};
  for (int64_t i = 0; i < n; ++i) {
    *reinterpret_cast<Out*>(o) = op(*reinterpret_cast<const In*>(in[I])...);
    o += s[0];
    ((in[I] += s[I + 1]), ...);
  }
}

// Runs out = op(in...) over `iter` (operand 0 is the output, then the inputs in order).
template <typename Out, typename... In, typename Op>
void for_each(at::TensorIteratorBase& iter, const Op& op) {
  constexpr int kN = 1 + sizeof...(In);
  constexpr int64_t kSizes[kN] = {int64_t(sizeof(Out)), int64_t(sizeof(In))...};
  const bool avx2 = simd::has_avx2();
  iter.for_each([&](char** data, const int64_t* strides, int64_t n0, int64_t n1) {
    char* p[kN];
    for (int k = 0; k < kN; ++k) p[k] = data[k];
    bool contiguous = true;
    for (int k = 0; k < kN; ++k) contiguous = contiguous && strides[k] == kSizes[k];
    for (int64_t j = 0; j < n1; ++j) {
      if (contiguous) {
        if (avx2) {
          contig_avx2<Out, In...>(p, n0, op);
        } else {
          contig_default<Out, In...>(p, n0, op);
        }
      } else {
        strided<Out, In...>(p, strides, n0, op, std::index_sequence_for<In...>{});
      }
      for (int k = 0; k < kN; ++k) p[k] += strides[kN + k];
    }
  });
}

}  // namespace rustorch::native::loops
