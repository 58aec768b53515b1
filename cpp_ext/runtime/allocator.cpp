#include "runtime/allocator.h"

#include <c10/core/Allocator.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <unistd.h>

#include "runtime/device.h"

namespace rustorch {

namespace {
constexpr size_t kAlignment = 64;
constexpr size_t kAllPools = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
constexpr size_t kSmallPool = static_cast<size_t>(c10::CachingAllocator::StatType::SMALL_POOL);
constexpr size_t kLargePool = static_cast<size_t>(c10::CachingAllocator::StatType::LARGE_POOL);
constexpr size_t kSmallLimit = 1 << 20;  // same split as CUDA's small/large pools

size_t cache_limit_bytes() {
  static const size_t limit = [] {
    const char* env = std::getenv("RUSTORCH_CACHE_LIMIT_MB");
    if (env == nullptr || *env == '\0') return static_cast<size_t>(1024) << 20;
    char* end = nullptr;
    unsigned long long mb = std::strtoull(env, &end, 10);
    if (end == env || *end != '\0') return static_cast<size_t>(1024) << 20;
    return static_cast<size_t>(mb) << 20;
  }();
  return limit;
}

void update(c10::CachingAllocator::StatArray& arr, size_t pool, int64_t delta) {
  for (size_t i : {kAllPools, pool}) {
    if (delta >= 0)
      arr[i].increase(static_cast<size_t>(delta));
    else
      arr[i].decrease(static_cast<size_t>(-delta));
  }
}
}  // namespace

// One system allocation. Blocks are reused through the free lists and deleted by empty_cache.
struct DeviceAllocator::Block {
  void* ptr;
  size_t size;       // size class
  size_t requested;  // bytes asked for by the current user
  c10::DeviceIndex device;
};

// Memory adopted from a CPU result; freed by its owner's release function.
struct AdoptedBlock {
  void* ctx;
  void (*release)(void*);
  size_t nbytes;
  c10::DeviceIndex device;
};

struct DeviceAllocator::DeviceState {
  std::map<size_t, std::vector<Block*>> free_lists;  // size class -> cached blocks
  size_t cached_bytes = 0;
  c10::CachingDeviceAllocator::DeviceStats stats;
};

size_t DeviceAllocator::round_size(size_t nbytes) {
  if (nbytes <= 1024) return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  // Four classes per power of two: at most 25 % padding.
  size_t p = size_t{1} << (63 - __builtin_clzll(nbytes - 1));  // largest power of two < nbytes
  size_t step = p / 4;
  return (nbytes + step - 1) / step * step;
}

DeviceAllocator::DeviceState& DeviceAllocator::state(c10::DeviceIndex device) {
  if (states_.empty()) {
    states_.resize(device_count());
    for (auto& s : states_) s = new DeviceState();  // never freed: blocks may outlive statics
  }
  return *states_.at(device);
}

c10::DataPtr DeviceAllocator::allocate(size_t nbytes) {
  const c10::DeviceIndex device = current_device();
  const c10::Device dev(c10::DeviceType::PrivateUse1, device);
  if (nbytes == 0) return c10::DataPtr(nullptr, dev);
  const size_t size = round_size(nbytes);
  const size_t pool = size <= kSmallLimit ? kSmallPool : kLargePool;
  std::unique_lock<std::mutex> lock(mutex_);
  DeviceState& st = state(device);
  Block* block = nullptr;
  auto it = st.free_lists.find(size);
  if (it != st.free_lists.end() && !it->second.empty()) {
    block = it->second.back();
    it->second.pop_back();
    st.cached_bytes -= size;
    update(st.stats.inactive_split_bytes, pool, -static_cast<int64_t>(size));
  } else {
    void* ptr = nullptr;
    if (posix_memalign(&ptr, kAlignment, size) != 0 || ptr == nullptr) {
      release_cached_locked(st);  // retry once with the cache emptied
      if (posix_memalign(&ptr, kAlignment, size) != 0 || ptr == nullptr) {
        st.stats.num_ooms += 1;
        TORCH_CHECK_WITH(OutOfMemoryError, false, "rustorch: out of memory allocating ", nbytes,
                         " bytes on rustorch:", static_cast<int>(device), " (",
                         st.stats.allocated_bytes[kAllPools].current, " bytes allocated)");
      }
    }
    block = new Block{ptr, size, 0, device};
    st.stats.num_device_alloc += 1;
    update(st.stats.segment, pool, 1);
    update(st.stats.reserved_bytes, pool, static_cast<int64_t>(size));
  }
  block->requested = nbytes;
  update(st.stats.allocation, pool, 1);
  update(st.stats.active, pool, 1);
  update(st.stats.allocated_bytes, pool, static_cast<int64_t>(size));
  update(st.stats.active_bytes, pool, static_cast<int64_t>(size));
  update(st.stats.requested_bytes, pool, static_cast<int64_t>(nbytes));
  const size_t allocated = st.stats.allocated_bytes[kAllPools].current;
  const size_t reserved = st.stats.reserved_bytes[kAllPools].current;
  lock.unlock();
  // torch.profiler(profile_memory=True) learns about device memory only from the allocator, as
  // CUDA's caching allocator reports it (a no-op unless the profiler records memory).
  c10::reportMemoryUsageToProfiler(block->ptr, static_cast<int64_t>(size), allocated, reserved,
                                   dev);
  return c10::DataPtr(block->ptr, block, &DeviceAllocator::free_block, dev);
}

void DeviceAllocator::free_block(void* ctx) {
  auto* block = static_cast<Block*>(ctx);
  DeviceAllocator& self = device_allocator();
  const size_t pool = block->size <= kSmallLimit ? kSmallPool : kLargePool;
  void* const ptr = block->ptr;
  const auto freed = static_cast<int64_t>(block->size);
  const c10::Device dev(c10::DeviceType::PrivateUse1, block->device);
  std::unique_lock<std::mutex> lock(self.mutex_);
  DeviceState& st = self.state(block->device);
  // Reported after unlocking, whichever way the block leaves (cached or returned to the system).
  struct Report {
    std::unique_lock<std::mutex>& lock;
    DeviceState& st;
    void* ptr;
    int64_t freed;
    c10::Device dev;
    ~Report() {
      const size_t allocated = st.stats.allocated_bytes[kAllPools].current;
      const size_t reserved = st.stats.reserved_bytes[kAllPools].current;
      lock.unlock();
      c10::reportMemoryUsageToProfiler(ptr, -freed, allocated, reserved, dev);
    }
  } report{lock, st, ptr, freed, dev};
  update(st.stats.allocation, pool, -1);
  update(st.stats.active, pool, -1);
  update(st.stats.allocated_bytes, pool, -static_cast<int64_t>(block->size));
  update(st.stats.active_bytes, pool, -static_cast<int64_t>(block->size));
  update(st.stats.requested_bytes, pool, -static_cast<int64_t>(block->requested));
  if (st.cached_bytes + block->size > cache_limit_bytes()) {
    update(st.stats.segment, pool, -1);
    update(st.stats.reserved_bytes, pool, -static_cast<int64_t>(block->size));
    st.stats.num_device_free += 1;
    std::free(block->ptr);
    delete block;
    return;
  }
  st.free_lists[block->size].push_back(block);
  st.cached_bytes += block->size;
  update(st.stats.inactive_split_bytes, pool, static_cast<int64_t>(block->size));
}

void DeviceAllocator::release_cached_locked(DeviceState& st) {
  for (auto& [size, blocks] : st.free_lists) {
    const size_t pool = size <= kSmallLimit ? kSmallPool : kLargePool;
    for (Block* b : blocks) {
      update(st.stats.segment, pool, -1);
      update(st.stats.reserved_bytes, pool, -static_cast<int64_t>(size));
      update(st.stats.inactive_split_bytes, pool, -static_cast<int64_t>(size));
      st.stats.num_device_free += 1;
      std::free(b->ptr);
      delete b;
    }
  }
  st.free_lists.clear();
  st.cached_bytes = 0;
}

c10::DataPtr DeviceAllocator::adopt(void* data, size_t nbytes, void* ctx, void (*release)(void*),
                                    c10::DeviceIndex device) {
  const size_t pool = nbytes <= kSmallLimit ? kSmallPool : kLargePool;
  auto* block = new AdoptedBlock{ctx, release, nbytes, device};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceState& st = state(device);
    update(st.stats.allocation, pool, 1);
    update(st.stats.active, pool, 1);
    update(st.stats.segment, pool, 1);
    update(st.stats.allocated_bytes, pool, static_cast<int64_t>(nbytes));
    update(st.stats.active_bytes, pool, static_cast<int64_t>(nbytes));
    update(st.stats.requested_bytes, pool, static_cast<int64_t>(nbytes));
    update(st.stats.reserved_bytes, pool, static_cast<int64_t>(nbytes));
  }
  return c10::DataPtr(data, block, &DeviceAllocator::free_adopted,
                      c10::Device(c10::DeviceType::PrivateUse1, device));
}

void DeviceAllocator::free_adopted(void* ctx) {
  auto* block = static_cast<AdoptedBlock*>(ctx);
  DeviceAllocator& self = device_allocator();
  const size_t pool = block->nbytes <= kSmallLimit ? kSmallPool : kLargePool;
  {
    std::lock_guard<std::mutex> lock(self.mutex_);
    DeviceState& st = self.state(block->device);
    update(st.stats.allocation, pool, -1);
    update(st.stats.active, pool, -1);
    update(st.stats.segment, pool, -1);
    update(st.stats.allocated_bytes, pool, -static_cast<int64_t>(block->nbytes));
    update(st.stats.active_bytes, pool, -static_cast<int64_t>(block->nbytes));
    update(st.stats.requested_bytes, pool, -static_cast<int64_t>(block->nbytes));
    update(st.stats.reserved_bytes, pool, -static_cast<int64_t>(block->nbytes));
  }
  block->release(block->ctx);
  delete block;
}

void DeviceAllocator::copy_data(void* dest, const void* src, size_t count) const {
  if (count) std::memcpy(dest, src, count);
}

void DeviceAllocator::emptyCache(c10::MempoolId_t) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (c10::DeviceIndex d = 0; d < device_count(); ++d) release_cached_locked(state(d));
}

c10::CachingDeviceAllocator::DeviceStats DeviceAllocator::getDeviceStats(c10::DeviceIndex device) {
  check_device_index(device);
  std::lock_guard<std::mutex> lock(mutex_);
  return state(device).stats;
}

void DeviceAllocator::resetAccumulatedStats(c10::DeviceIndex device) {
  check_device_index(device);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& s = state(device).stats;
  for (auto* arr : {&s.allocation, &s.segment, &s.active, &s.inactive_split, &s.allocated_bytes,
                    &s.reserved_bytes, &s.active_bytes, &s.inactive_split_bytes,
                    &s.requested_bytes})
    for (auto& stat : *arr) stat.reset_accumulated();
  s.num_alloc_retries = 0;
  s.num_ooms = 0;
  s.num_device_alloc = 0;
  s.num_device_free = 0;
}

void DeviceAllocator::resetPeakStats(c10::DeviceIndex device) {
  check_device_index(device);
  std::lock_guard<std::mutex> lock(mutex_);
  auto& s = state(device).stats;
  for (auto* arr : {&s.allocation, &s.segment, &s.active, &s.inactive_split, &s.allocated_bytes,
                    &s.reserved_bytes, &s.active_bytes, &s.inactive_split_bytes,
                    &s.requested_bytes})
    for (auto& stat : *arr) stat.reset_peak();
}

std::pair<size_t, size_t> DeviceAllocator::getMemoryInfo(c10::DeviceIndex device) {
  check_device_index(device);
  // Device memory is host memory: report the machine's physical memory.
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long avail = sysconf(_SC_AVPHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return {static_cast<size_t>(avail) * page, static_cast<size_t>(pages) * page};
}

DeviceAllocator& device_allocator() {
  static auto* alloc = new DeviceAllocator();  // leaked: tensors may be freed after exit
  return *alloc;
}

namespace {
struct Registrar {
  Registrar() { c10::SetAllocator(c10::DeviceType::PrivateUse1, &device_allocator()); }
} registrar;
}  // namespace

}  // namespace rustorch
