// mse_loss and smooth_l1_loss run on the CPU fallback as the functional op, not the out= op.
//
// Both are structured ops whose meta function first sizes the output like the elementwise loss
// and then resizes it to a scalar. Without a PrivateUse1 kernel the functional op reaches the
// device through the CompositeExplicitAutogradNonFunctional kernel, which allocates the scalar
// result and calls the .out op; on the fallback CPU's .out wrapper then re-runs the meta on that
// scalar out tensor and warns "An output with one or more elements was resized" (CPU's own
// functional path never has an out tensor). Routing the functional op itself to the boxed
// fallback gives CPU's result with no warning, zero-copy like every fallback call.
#include <torch/library.h>

#include "aten/fallback.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("mse_loss", torch::CppFunction::makeFromBoxedFunction<&rustorch::cpu_fallback>());
  m.impl("smooth_l1_loss", torch::CppFunction::makeFromBoxedFunction<&rustorch::cpu_fallback>());
}
