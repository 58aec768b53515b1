#include "runtime/host_allocator.h"

#include <ATen/core/CachingHostAllocator.h>
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

namespace rustorch {
namespace {

class HostAllocator final : public at::HostAllocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override {
    const c10::Device cpu(c10::DeviceType::CPU);
    if (nbytes == 0) return c10::DataPtr(nullptr, cpu);
    void* ptr = nullptr;
    const size_t size = (nbytes + 63) / 64 * 64;
    TORCH_CHECK_WITH(OutOfMemoryError, posix_memalign(&ptr, 64, size) == 0 && ptr != nullptr,
                     "rustorch: out of pinned host memory allocating ", nbytes, " bytes");
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks_[reinterpret_cast<uintptr_t>(ptr)] = size;
      stats_.active_requests.increase(1);
      stats_.allocations.increase(1);
      stats_.active_bytes.increase(size);
      stats_.allocated_bytes.increase(size);
      stats_.num_host_alloc += 1;
    }
    return c10::DataPtr(ptr, ptr, &HostAllocator::free_block, cpu);
  }
  c10::DeleterFnPtr raw_deleter() const override { return &HostAllocator::free_block; }
  void copy_data(void* dest, const void* src, size_t count) const override {
    if (count) std::memcpy(dest, src, count);
  }

  bool record_event(void* ptr, void* ctx, c10::Stream stream) override { return true; }
  void empty_cache() override {}  // blocks are freed when released; nothing is cached
  at::HostStats get_stats() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void reset_accumulated_stats() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* s : {&stats_.active_requests, &stats_.active_bytes, &stats_.allocations,
                    &stats_.allocated_bytes})
      s->reset_accumulated();
    stats_.num_host_alloc = 0;
    stats_.num_host_free = 0;
  }
  void reset_peak_stats() override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto* s : {&stats_.active_requests, &stats_.active_bytes, &stats_.allocations,
                    &stats_.allocated_bytes})
      s->reset_peak();
  }

  bool contains(const void* p) {
    const auto addr = reinterpret_cast<uintptr_t>(p);
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = blocks_.upper_bound(addr);
    if (it == blocks_.begin()) return false;
    --it;
    return addr < it->first + it->second;
  }

 private:
  static void free_block(void* ptr);

  std::mutex mutex_;
  std::map<uintptr_t, size_t> blocks_;  // start -> size of live blocks
  at::HostStats stats_;
};

HostAllocator& host_allocator() {
  static auto* alloc = new HostAllocator();  // leaked: pinned tensors may outlive statics
  return *alloc;
}

void HostAllocator::free_block(void* ptr) {
  HostAllocator& self = host_allocator();
  {
    std::lock_guard<std::mutex> lock(self.mutex_);
    auto it = self.blocks_.find(reinterpret_cast<uintptr_t>(ptr));
    TORCH_INTERNAL_ASSERT(it != self.blocks_.end(), "freeing an unknown pinned block");
    self.stats_.active_requests.decrease(1);
    self.stats_.allocations.decrease(1);
    self.stats_.active_bytes.decrease(it->second);
    self.stats_.allocated_bytes.decrease(it->second);
    self.stats_.num_host_free += 1;
    self.blocks_.erase(it);
  }
  std::free(ptr);
}

struct Registrar {
  Registrar() { at::setHostAllocator(c10::DeviceType::PrivateUse1, &host_allocator()); }
} registrar;

}  // namespace

bool is_pinned_ptr(const void* ptr) { return ptr != nullptr && host_allocator().contains(ptr); }

}  // namespace rustorch
