// Test-only op library (not in the shipped extension; tests/testing_ext.py builds it on demand
// and links it against rustorch_device._C): the GEMM and conv kernels on CPU tensors, so they
// can be tested and benchmarked against ATen independently of the device runtime:
//   torch.ops.rustorch_kernels.mm(a, b)
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "aten/native/conv.h"
#include "aten/native/dropout.h"
#include "aten/native/matmul.h"
#include "kernels/cpu_info.h"
#include "kernels/gemm.h"
#include "runtime/allocator.h"

namespace {

std::string gemm_config(c10::ScalarType dtype) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "gemm_config: float or double");
  return dtype == at::kFloat ? rustorch::kernels::gemm_config<float>()
                             : rustorch::kernels::gemm_config<double>();
}

// a @ b through kernels::gemm with the operands' own strides, either as gemm picks (direct
// paths for small M) or with both operands packed: tests compare the two bit for bit.
at::Tensor mm_packing(const at::Tensor& a, const at::Tensor& b, bool force_packing) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "mm_packing: shapes");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() &&
                  (a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble),
              "mm_packing: float or double");
  at::Tensor c = at::empty({a.size(0), b.size(1)}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "mm_packing", [&] {
    rustorch::kernels::GemmArgs<scalar_t> g;
    g.m = a.size(0), g.n = b.size(1), g.k = a.size(1);
    g.a = a.const_data_ptr<scalar_t>(), g.rsa = a.stride(0), g.csa = a.stride(1);
    g.b = b.const_data_ptr<scalar_t>(), g.rsb = b.stride(0), g.csb = b.stride(1);
    g.c = c.mutable_data_ptr<scalar_t>(), g.rsc = c.stride(0), g.csc = c.stride(1);
    g.force_packing = force_packing;
    rustorch::kernels::gemm(g);
  });
  return c;
}

// `blocks` Philox4x32-10 blocks of dropout's generator from counter `offset` under key `seed`
// (tests/test_dropout_philox.py compares them with a reference): the 32-bit words as int64.
at::Tensor philox_fill(int64_t seed, int64_t offset, int64_t blocks) {
  TORCH_CHECK_VALUE(blocks >= 0, "philox_fill: blocks must be >= 0");
  std::vector<uint32_t> words(static_cast<size_t>(4 * blocks));
  rustorch::native::philox_fill(static_cast<uint64_t>(seed), static_cast<uint64_t>(offset), blocks,
                                words.data());
  at::Tensor out = at::empty({4 * blocks}, at::kLong);
  auto* o = out.mutable_data_ptr<int64_t>();
  for (size_t i = 0; i < words.size(); ++i) o[i] = words[i];
  return out;
}

double cpu_clock_ghz() { return rustorch::cpu::measure_clock_ghz(); }

// The allocator's size class of an n-byte request (tests/test_memory.py).
int64_t round_size(int64_t n) {
  TORCH_CHECK_VALUE(n >= 0, "round_size: n must be >= 0");
  return static_cast<int64_t>(rustorch::DeviceAllocator::round_size(static_cast<size_t>(n)));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rustorch_kernels, m) {
  m.def("mm(Tensor self, Tensor mat2) -> Tensor");
  m.def("mm.out(Tensor self, Tensor mat2, *, Tensor(a!) out) -> Tensor(a!)");
  m.def("addmm(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1) -> Tensor");
  m.def("addmm.out(Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1, "
        "Tensor(a!) out) -> Tensor(a!)");
  m.def("bmm(Tensor self, Tensor mat2) -> Tensor");
  m.def("baddbmm(Tensor self, Tensor batch1, Tensor batch2, *, Scalar beta=1, Scalar alpha=1) "
        "-> Tensor");
  m.def("conv2d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, "
        "int[] dilation, int groups) -> Tensor");
  m.def("conv2d_backward(Tensor grad_output, Tensor input, Tensor weight, int[] stride, "
        "int[] padding, int[] dilation, int groups, bool[3] output_mask) -> (Tensor, Tensor, Tensor)");
  m.def("gemm_config(ScalarType dtype) -> str", &gemm_config);
  m.def("mm_packing(Tensor a, Tensor b, bool force_packing) -> Tensor", &mm_packing);
  m.def("philox_fill(int seed, int offset, int blocks) -> Tensor", &philox_fill);
  m.def("cpu_clock_ghz() -> float", &cpu_clock_ghz);
  m.def("round_size(int n) -> int", &round_size);
}

TORCH_LIBRARY_IMPL(rustorch_kernels, CPU, m) {
  m.impl("mm", &rustorch::native::mm);
  m.impl("mm.out", &rustorch::native::mm_out);
  m.impl("addmm", &rustorch::native::addmm);
  m.impl("addmm.out", &rustorch::native::addmm_out);
  m.impl("bmm", &rustorch::native::bmm);
  m.impl("baddbmm", &rustorch::native::baddbmm);
  m.impl("conv2d", &rustorch::native::conv2d_forward);
  m.impl("conv2d_backward", &rustorch::native::conv2d_backward);
}
