// Zero-copy bridges between rustorch tensors and CPU tensors. Device memory is host memory, so a
// rustorch tensor can be handed to CPU ATen as a CPU tensor over the same bytes, and a CPU result
// can become a rustorch tensor without a copy.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Storage.h>

namespace rustorch {

// A CPU tensor over the memory of rustorch tensor `t` (same storage bytes, sizes, strides,
// offset, conj/neg bits). It keeps t's storage alive; writes through it are writes to `t`.
// Undefined or non-rustorch tensors are returned unchanged.
at::Tensor as_cpu(const at::Tensor& t);

// A CPU storage over the bytes of rustorch storage `storage` (keeps it alive). Resizable: a CPU
// resize reallocates with the CPU allocator and leaves `storage` untouched.
c10::Storage cpu_storage_alias(const c10::Storage& storage);

// A rustorch storage that takes over CPU storage `cpu` without copying (keeps it alive; the
// bytes count in the device allocator's stats while it lives).
c10::Storage adopt_storage(const c10::Storage& cpu, c10::DeviceIndex device);

// The device DataPtr of adopt_storage, to install into an existing rustorch storage.
c10::DataPtr adopt_data_ptr(const c10::Storage& cpu, c10::DeviceIndex device);

// A rustorch storage holding a copy of the bytes of CPU storage `cpu`.
c10::Storage copy_storage(const c10::Storage& cpu, c10::DeviceIndex device);

// A rustorch tensor with the metadata (dtype, sizes, strides, offset, conj/neg) of `like` over
// rustorch storage `storage`.
at::Tensor tensor_on_storage(const c10::Storage& storage, const at::Tensor& like);

}  // namespace rustorch
