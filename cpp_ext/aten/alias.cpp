#include "aten/alias.h"

#include <ATen/core/TensorBody.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/StorageImpl.h>
#include <c10/core/TensorImpl.h>
#include <c10/util/intrusive_ptr.h>

#include <cstring>

#include "runtime/allocator.h"
#include "runtime/device.h"

namespace rustorch {
namespace {

void release_storage(void* ctx) {
  c10::raw::intrusive_ptr::decref(static_cast<c10::StorageImpl*>(ctx));
}

at::Tensor make_tensor(c10::Storage storage, c10::DispatchKey key, const at::Tensor& like) {
  auto out = at::detail::make_tensor<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(key),
                                                      like.dtype());
  out.unsafeGetTensorImpl()->set_sizes_and_strides(like.sizes(), like.strides(),
                                                   like.storage_offset());
  if (like.is_conj()) out._set_conj(true);
  if (like.is_neg()) out._set_neg(true);
  return out;
}

}  // namespace

c10::Storage cpu_storage_alias(const c10::Storage& storage) {
  c10::StorageImpl* impl = storage.unsafeGetStorageImpl();
  void* data = impl->mutable_data();
  c10::raw::intrusive_ptr::incref(impl);
  c10::DataPtr ptr(data, impl, &release_storage, c10::Device(c10::DeviceType::CPU));
  return c10::Storage(c10::make_intrusive<c10::StorageImpl>(
      c10::StorageImpl::use_byte_size_t(), impl->nbytes(), std::move(ptr), c10::GetCPUAllocator(),
      /*resizable=*/true));
}

c10::DataPtr adopt_data_ptr(const c10::Storage& cpu, c10::DeviceIndex device) {
  c10::StorageImpl* impl = cpu.unsafeGetStorageImpl();
  void* data = impl->mutable_data();
  c10::raw::intrusive_ptr::incref(impl);
  return device_allocator().adopt(data, impl->nbytes(), impl, &release_storage, device);
}

c10::Storage adopt_storage(const c10::Storage& cpu, c10::DeviceIndex device) {
  return c10::Storage(c10::make_intrusive<c10::StorageImpl>(
      c10::StorageImpl::use_byte_size_t(), cpu.nbytes(), adopt_data_ptr(cpu, device),
      &device_allocator(), /*resizable=*/true));
}

c10::Storage copy_storage(const c10::Storage& cpu, c10::DeviceIndex device) {
  const size_t nbytes = cpu.nbytes();
  const auto prev = exchange_device(device);
  c10::DataPtr ptr = device_allocator().allocate(nbytes);
  set_device(prev);
  if (nbytes > 0) std::memcpy(ptr.get(), cpu.data(), nbytes);
  return c10::Storage(c10::make_intrusive<c10::StorageImpl>(
      c10::StorageImpl::use_byte_size_t(), nbytes, std::move(ptr), &device_allocator(),
      /*resizable=*/true));
}

at::Tensor as_cpu(const at::Tensor& t) {
  if (!t.defined() || t.device().type() != c10::DeviceType::PrivateUse1) return t;
  return make_tensor(cpu_storage_alias(t.storage()), c10::DispatchKey::CPU, t);
}

at::Tensor tensor_on_storage(const c10::Storage& storage, const at::Tensor& like) {
  return make_tensor(storage, c10::DispatchKey::PrivateUse1, like);
}

}  // namespace rustorch
