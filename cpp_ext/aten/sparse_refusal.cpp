// Sparse rustorch tensors are refused with a message that names the op and the device.
//
// No SparsePrivateUse1 kernels exist, so without this fallback the first sparse op (typically
// the sparse gradient of nn.Embedding(sparse=True) in backward) failed with the dispatcher's
// generic "Could not run ... from the 'Sparserustorch' backend" list. Composite kernels still
// take precedence over this fallback, so nothing that worked before changes.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace rustorch {
namespace {

void refuse_sparse(const c10::OperatorHandle& op, torch::jit::Stack*) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      false, "rustorch: sparse tensors are not supported on the rustorch device (",
      op.schema().operator_name(),
      " was called for a sparse rustorch tensor). nn.Embedding(sparse=True) and "
      "nn.EmbeddingBag(sparse=True) produce sparse gradients: use sparse=False on rustorch, or "
      "keep that module on the CPU.");
}

}  // namespace

TORCH_LIBRARY_IMPL(_, SparsePrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&refuse_sparse>());
}

}  // namespace rustorch
