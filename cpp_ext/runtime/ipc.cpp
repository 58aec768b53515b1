// Sharing rustorch memory between processes (torch.multiprocessing, DataLoader workers, Hogwild).
// Device memory is host memory, so a rustorch storage can live in the same POSIX shared memory
// that CPU sharing uses: share_memory_() copies the bytes once into a CPU shared storage and the
// rustorch storage adopts that memory (every view of it follows); the pickled handle is the CPU
// one; the receiving process maps it and adopts it as a rustorch storage, with no copy, so both
// processes see each other's writes. rustorch_device/sharing.py drives these ops.
//
// torch.ops.rustorch_ipc:
//   move_to_shared(dev, shared)  dev: uint8 rustorch tensor over a whole storage; shared: uint8
//                                CPU tensor over a shared-memory storage of the same size.
//   shared_cpu(dev) -> Tensor[]  the CPU shared storage behind dev's storage ([] if none).
//   adopt_shared(shared, index)  a uint8 rustorch tensor over the shared CPU memory (one
//                                rustorch storage per shared memory block while it lives).
#include <ATen/ATen.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/library.h>

#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "aten/alias.h"

namespace rustorch {
namespace {

using WeakStorage = c10::weak_intrusive_ptr<c10::StorageImpl>;

struct Entry {
  WeakStorage cpu;     // the shared-memory CPU storage
  WeakStorage device;  // the rustorch storage over it
};

// Keyed by the data address; an entry is valid while both weak pointers lock and the address
// still matches (a dead block's address can be reused by a new allocation).
std::mutex g_mu;
std::unordered_map<const void*, Entry>& registry() {
  static auto* r = new std::unordered_map<const void*, Entry>();
  return *r;
}

void check_whole_storage(const at::Tensor& t, c10::DeviceType type, const char* what) {
  TORCH_CHECK(t.device().type() == type && t.scalar_type() == at::kByte && t.dim() == 1 &&
                  t.storage_offset() == 0 &&
                  static_cast<size_t>(t.numel()) == t.storage().nbytes(),
              "rustorch_ipc: ", what, " must be a uint8 ", c10::DeviceTypeName(type),
              " tensor over a whole storage");
}

void remember(const c10::Storage& cpu, const c10::Storage& dev) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto& r = registry();
  for (auto it = r.begin(); it != r.end();)  // drop dead entries (few: one per shared block)
    it = it->second.cpu.expired() ? r.erase(it) : std::next(it);
  r.insert_or_assign(cpu.data(), Entry{WeakStorage(cpu.getWeakStorageImpl()),
                                       WeakStorage(dev.getWeakStorageImpl())});
}

void move_to_shared(const at::Tensor& dev, const at::Tensor& shared) {
  check_whole_storage(dev, c10::DeviceType::PrivateUse1, "dev");
  check_whole_storage(shared, c10::DeviceType::CPU, "shared");
  TORCH_CHECK(dev.numel() == shared.numel(), "rustorch_ipc: sizes differ (", dev.numel(), " vs ",
              shared.numel(), " bytes)");
  c10::StorageImpl* target = dev.storage().unsafeGetStorageImpl();
  const c10::Storage cpu = shared.storage();
  if (dev.numel() > 0) std::memcpy(cpu.mutable_data(), target->data(), dev.numel());
  // Same StorageImpl, new memory: every tensor viewing this storage now reads the shared block.
  target->set_data_ptr_noswap(adopt_data_ptr(cpu, dev.device().index()));
  remember(cpu, dev.storage());
}

std::vector<at::Tensor> shared_cpu(const at::Tensor& dev) {
  check_whole_storage(dev, c10::DeviceType::PrivateUse1, "dev");
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = registry().find(dev.storage().data());
  if (it == registry().end()) return {};
  auto cpu = it->second.cpu.lock();
  auto owner = it->second.device.lock();
  if (!cpu || !owner || owner.get() != dev.storage().unsafeGetStorageImpl()) return {};
  c10::Storage storage(std::move(cpu));
  return {at::empty({0}, at::kByte).set_(storage, 0, {static_cast<int64_t>(storage.nbytes())})};
}

at::Tensor adopt_shared(const at::Tensor& shared, int64_t index) {
  check_whole_storage(shared, c10::DeviceType::CPU, "shared");
  const c10::Storage cpu = shared.storage();
  c10::Storage dev;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = registry().find(cpu.data());
    if (it != registry().end()) {
      auto owner = it->second.device.lock();
      auto known = it->second.cpu.lock();
      if (owner && known && known->data() == cpu.data()) dev = c10::Storage(std::move(owner));
    }
  }
  if (!dev) {
    dev = adopt_storage(cpu, static_cast<c10::DeviceIndex>(index));
    remember(cpu, dev);
  }
  return tensor_on_storage(dev, shared);
}

}  // namespace
}  // namespace rustorch

TORCH_LIBRARY(rustorch_ipc, m) {
  // Catch-all kernels: plumbing on whole storages, outside autograd.
  m.def("move_to_shared(Tensor(a!) dev, Tensor shared) -> ()", &rustorch::move_to_shared);
  m.def("shared_cpu(Tensor dev) -> Tensor[]", &rustorch::shared_cpu);
  m.def("adopt_shared(Tensor shared, int index) -> Tensor", &rustorch::adopt_shared);
}
