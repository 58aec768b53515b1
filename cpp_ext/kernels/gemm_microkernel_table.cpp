// The {isa, dtype} -> micro-kernel table of GEMM, best ISA first. The scalar kernels run on
// every CPU and end each list. Adding an ISA (say AVX-512): a gemm_microkernel_avx512.cpp with
// its kernels (target attributes, no -march flags) and one entry per dtype here.
#include "kernels/gemm_microkernel.h"

#include <cstddef>

namespace rustorch::kernels::gemm_detail {
namespace {

template <typename T>
struct Entry {
  cpu::Isa isa;
  MicroKernel<T> (*make)();
};

constexpr Entry<float> kFloat[] = {
    {cpu::Isa::avx2, &microkernel_f32_avx2},
    {cpu::Isa::scalar, &microkernel_f32_scalar},
};
constexpr Entry<double> kDouble[] = {
    {cpu::Isa::avx2, &microkernel_f64_avx2},
    {cpu::Isa::scalar, &microkernel_f64_scalar},
};

template <typename T, std::size_t N>
MicroKernel<T> first_runnable(const Entry<T> (&table)[N], cpu::Isa isa) {
  for (const auto& e : table)
    if (static_cast<int>(isa) >= static_cast<int>(e.isa)) return e.make();
  return table[N - 1].make();
}

}  // namespace

template <>
MicroKernel<float> microkernel<float>(cpu::Isa isa) {
  return first_runnable(kFloat, isa);
}
template <>
MicroKernel<double> microkernel<double>(cpu::Isa isa) {
  return first_runnable(kDouble, isa);
}

}  // namespace rustorch::kernels::gemm_detail
