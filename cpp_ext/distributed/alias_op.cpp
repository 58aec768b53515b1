// torch.ops.rustorch_dist.as_cpu: the zero-copy bridge the c10d backend (rustorch_device.distributed)
// hands to gloo. Device memory is host memory, so a rustorch tensor can be viewed as a CPU tensor
// over the same bytes; the alias keeps the rustorch storage alive while gloo holds it.
#include <torch/library.h>

#include "aten/alias.h"

namespace {

at::Tensor as_cpu(const at::Tensor& self) {
  TORCH_CHECK_VALUE(self.device().type() == c10::DeviceType::PrivateUse1,
                    "rustorch_dist::as_cpu expects a rustorch tensor, got one on ", self.device());
  return rustorch::as_cpu(self);
}

}  // namespace

TORCH_LIBRARY(rustorch_dist, m) {
  // A catch-all kernel: the alias is plain data for the collective, outside autograd.
  m.def("as_cpu(Tensor(a) self) -> Tensor(a)", &as_cpu);
}
