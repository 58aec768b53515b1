// native_layer_norm and native_group_norm run CPU's kernels on the fallback.
//
// Without a PrivateUse1 kernel both reach the device through their CompositeExplicitAutograd
// kernels (math_native_layer_norm / math_group_norm), which compute the statistics with
// batch_norm on a reshaped input. Those mean/rstd differ from CPU's in the last bits, and the
// difference is not harmless: over a one-element normalized shape x - mean is pure rounding
// noise scaled by 1/sqrt(eps), so the weight gradient differed from CPU's by up to 2.4e-4. The
// backward ops already run CPU's kernels (fallback), so with CPU's forward the saved statistics,
// the outputs and every gradient are CPU's.
#include <torch/library.h>

#include "aten/fallback.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("native_layer_norm", torch::CppFunction::makeFromBoxedFunction<&rustorch::cpu_fallback>());
  m.impl("native_group_norm", torch::CppFunction::makeFromBoxedFunction<&rustorch::cpu_fallback>());
}
