// Nested tensors (torch.nested, the Transformer fast path's padding-free batches) on rustorch.
// A nested tensor is a flat buffer plus per-component sizes, strides and offsets (CPU int64
// tensors). Device memory is host memory, so a rustorch nested tensor becomes a CPU nested
// tensor over the same buffer bytes and back, without copies; nested.cpp registers the boxed
// fallback of the NestedTensorPrivateUse1 key that runs CPU's nested kernels that way.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace rustorch {

// A rustorch nested tensor from a CPU nested result (adopts its buffer when only the result holds
// it, else copies it). Used by the dense fallback for ops that create nested tensors from dense
// rustorch inputs (e.g. _nested_tensor_from_mask).
at::Tensor nested_to_device(const at::Tensor& cpu_nested, c10::Device device);

}  // namespace rustorch
