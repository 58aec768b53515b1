// Test-only op library: the GEMM and conv kernels on CPU tensors, so they can be tested and
// benchmarked against ATen independently of the device runtime:
//   torch.ops.rustorch_kernels.mm(a, b)
// Other kernel files may add their ops with their own TORCH_LIBRARY_FRAGMENT.
#include <torch/library.h>

#include "kernels/conv.h"
#include "kernels/cpu_info.h"
#include "kernels/gemm.h"
#include "kernels/gemm_ops.h"

namespace {

std::string gemm_config(c10::ScalarType dtype) {
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, "gemm_config: float or double");
  return dtype == at::kFloat ? rustorch::kernels::gemm_config<float>()
                             : rustorch::kernels::gemm_config<double>();
}

double cpu_clock_ghz() { return rustorch::cpu::measure_clock_ghz(); }

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
  m.def("cpu_clock_ghz() -> float", &cpu_clock_ghz);
}

TORCH_LIBRARY_IMPL(rustorch_kernels, CPU, m) {
  m.impl("mm", &rustorch::kernels::mm);
  m.impl("mm.out", &rustorch::kernels::mm_out);
  m.impl("addmm", &rustorch::kernels::addmm);
  m.impl("addmm.out", &rustorch::kernels::addmm_out);
  m.impl("bmm", &rustorch::kernels::bmm);
  m.impl("baddbmm", &rustorch::kernels::baddbmm);
  m.impl("conv2d", &rustorch::kernels::conv2d_forward);
  m.impl("conv2d_backward", &rustorch::kernels::conv2d_backward);
}
