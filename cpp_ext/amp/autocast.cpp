// Autocast for rustorch: the AutocastPrivateUse1 kernels that torch.autocast("rustorch") runs.
//
// The cast policy is CUDA's, taken from the op lists that ATen/autocast_mode.h exports for other
// backends (AT_FORALL_*), so rustorch casts exactly the ops CUDA casts: matmul/conv-like ops to
// the autocast dtype, numerically sensitive ops (exp, log, pow, softmax, norms, losses, sum, ...)
// to float32, and mixed-dtype ops (addcmul, cat-like, index_put, ...) to the widest input type.
// Every other op falls through to the next dispatch key unchanged.
#include <ATen/autocast_mode.h>
#include <torch/library.h>

namespace rustorch {
namespace {

// The AT_FORALL_* lists spell types unqualified (Tensor, Scalar, ScalarType), as inside ATen.
using namespace at;

// CUDA bans binary_cross_entropy under autocast (its backward is unsafe in float16) with the
// same message; ATen's own banned kernel is internal, so it is restated here.
Tensor binary_cross_entropy_banned(const Tensor&, const Tensor&, const std::optional<Tensor>&,
                                   int64_t) {
  TORCH_CHECK(false,
              "torch.nn.functional.binary_cross_entropy and torch.nn.BCELoss are unsafe to "
              "autocast.\nMany models use a sigmoid layer right before the binary cross entropy "
              "layer.\nIn this case, combine the two layers using "
              "torch.nn.functional.binary_cross_entropy_with_logits\nor "
              "torch.nn.BCEWithLogitsLoss.  binary_cross_entropy_with_logits and "
              "BCEWithLogits are\nsafe to autocast.");
}

// Without a fallback for the key, every op that has no AutocastPrivateUse1 kernel would fail
// while autocast is on; ATen registers this fallthrough for CUDA/CPU/XPU/... but not for
// PrivateUse1.
TORCH_LIBRARY_IMPL(_, AutocastPrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFallthrough());
}

TORCH_LIBRARY_IMPL(aten, AutocastPrivateUse1, m) {
#define RUSTORCH_AUTOCAST_LOWER(...) KERNEL_PRIVATEUSEONE(__VA_ARGS__, lower_precision_fp)
  AT_FORALL_LOWER_PRECISION_FP(RUSTORCH_AUTOCAST_LOWER)
#undef RUSTORCH_AUTOCAST_LOWER

#define RUSTORCH_AUTOCAST_FP32(...) KERNEL_PRIVATEUSEONE(__VA_ARGS__, fp32)
  AT_FORALL_FP32(RUSTORCH_AUTOCAST_FP32)
#undef RUSTORCH_AUTOCAST_FP32

#define RUSTORCH_AUTOCAST_FP32_OPT_DTYPE(...) \
  KERNEL_PRIVATEUSEONE(__VA_ARGS__, fp32_set_opt_dtype)
  AT_FORALL_FP32_SET_OPT_DTYPE(RUSTORCH_AUTOCAST_FP32_OPT_DTYPE)
#undef RUSTORCH_AUTOCAST_FP32_OPT_DTYPE

  AT_FORALL_DIFFERENT_REDISPATCH_SIGNATURE(KERNEL_DIFFERENT_REDISPATCH_SIGNATURE_PRIVATEUSEONE)

#define RUSTORCH_AUTOCAST_PROMOTE(...) KERNEL_PRIVATEUSEONE(__VA_ARGS__, promote)
  AT_FORALL_PROMOTE(RUSTORCH_AUTOCAST_PROMOTE)
#undef RUSTORCH_AUTOCAST_PROMOTE

  m.impl(TORCH_SELECTIVE_NAME("aten::binary_cross_entropy"),
         TORCH_FN(binary_cross_entropy_banned));
}

}  // namespace
}  // namespace rustorch
