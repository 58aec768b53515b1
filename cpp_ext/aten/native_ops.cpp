// The one map from aten ops to rustorch's own kernels (PrivateUse1). Reading this file tells
// what is native; everything else goes through the counted fallback (aten/fallback.cpp).
// Device plumbing ops (empty, copy, views, set_, resize_) are in aten/minimal.cpp.
#include <torch/library.h>

#include "runtime/op_stats.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  // Register with RUSTORCH_NATIVE(m, "mm", rustorch::kernels::mm) so calls are counted.

  // --- GEMM family (kernels/gemm*) -------------------------------------------------

  // --- Convolution (kernels/conv*) -------------------------------------------------

  // --- Softmax, log_softmax, NLL / cross-entropy (kernels/softmax*, kernels/nll*) ---

  // --- Activations, pooling, dropout (kernels/activation*, kernels/pool*, ...) -----

  // --- Elementwise, reductions, optimizer _foreach_* ops (kernels/elementwise*, ...) -
}
