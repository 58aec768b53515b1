// The one map from aten ops to rustorch's own kernels (PrivateUse1). Reading this file tells
// what is native; everything else goes through the counted fallback (aten/fallback.cpp).
// Device plumbing ops (empty, copy, views, set_, resize_) are in aten/minimal.cpp.
#include <torch/library.h>

#include "kernels/conv_device.h"
#include "kernels/gemm_device.h"
#include "runtime/op_stats.h"

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  // Register with RUSTORCH_NATIVE(m, "mm", rustorch::kernels::mm) so calls are counted.

  // --- GEMM family (kernels/gemm*) -------------------------------------------------
  // matmul, linear and their backward decompose into these (CompositeImplicitAutograd).
  namespace gd = rustorch::kernels::device;
  RUSTORCH_NATIVE(m, "mm", gd::mm);
  RUSTORCH_NATIVE(m, "mm.out", gd::mm_out);
  RUSTORCH_NATIVE(m, "addmm", gd::addmm);
  RUSTORCH_NATIVE(m, "addmm.out", gd::addmm_out);
  RUSTORCH_NATIVE(m, "addmm_", gd::addmm_);
  RUSTORCH_NATIVE(m, "bmm", gd::bmm);
  RUSTORCH_NATIVE(m, "bmm.out", gd::bmm_out);
  RUSTORCH_NATIVE(m, "baddbmm", gd::baddbmm);
  RUSTORCH_NATIVE(m, "baddbmm.out", gd::baddbmm_out);
  RUSTORCH_NATIVE(m, "baddbmm_", gd::baddbmm_);

  // --- Convolution (kernels/conv*) -------------------------------------------------
  // On the ops themselves (not *_overrideable): autograd and double backward stay ATen's.
  RUSTORCH_NATIVE(m, "convolution", gd::convolution);
  RUSTORCH_NATIVE(m, "convolution_backward", gd::convolution_backward);

  // --- Softmax, log_softmax, NLL / cross-entropy (kernels/softmax*, kernels/nll*) ---

  // --- Activations, pooling, dropout (kernels/activation*, kernels/pool*, ...) -----

  // --- Elementwise, reductions, optimizer _foreach_* ops (kernels/elementwise*, ...) -
}
