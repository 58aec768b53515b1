// Ops routed to the CPU fallback on purpose. Without a PrivateUse1 kernel each of these would
// reach the device through a composite kernel whose result or side effects differ from CPU's;
// registering the op itself to the boxed fallback gives CPU's result, zero-copy and counted like
// every fallback call. Ops with native kernels are in aten/native_ops.cpp.
#include <torch/library.h>

#include "aten/fallback.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  const auto to_fallback = [] {
    return torch::CppFunction::makeFromBoxedFunction<&rustorch::cpu_fallback>();
  };
  // mse_loss, smooth_l1_loss: structured ops whose meta sizes the output like the elementwise
  // loss and then resizes it to a scalar. Through CompositeExplicitAutogradNonFunctional the
  // functional op allocates the scalar and calls .out; CPU's .out wrapper then re-runs the meta
  // on it and warns "An output with one or more elements was resized" (CPU's own functional path
  // never has an out tensor).
  m.impl("mse_loss", to_fallback());
  m.impl("smooth_l1_loss", to_fallback());
}
