// The rustorch device allocator: a caching allocator over 64-byte aligned host memory.
//
// Requests are rounded up to a size class (64-byte multiples up to 1 KiB, then four classes per
// power of two); freed blocks go to a per-device free list of their class and are handed out
// again for the same class. Cached memory beyond RUSTORCH_CACHE_LIMIT_MB (default 1024) is
// returned to the system at once; empty_cache() returns all of it. Stats follow the CUDA
// caching allocator's names (allocated/reserved/active/requested bytes, allocation and segment
// counts) so torch.accelerator.memory_* work unchanged.
#pragma once

#include <c10/core/CachingDeviceAllocator.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace rustorch {

class DeviceAllocator final : public c10::DeviceAllocator {
 public:
  c10::DataPtr allocate(size_t nbytes) override;
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
  void copy_data(void* dest, const void* src, size_t count) const override;

  bool initialized() override { return true; }
  void emptyCache(c10::MempoolId_t mempool_id = {0, 0}) override;
  void recordStream(const c10::DataPtr& ptr, c10::Stream stream) override {}
  c10::CachingDeviceAllocator::DeviceStats getDeviceStats(c10::DeviceIndex device) override;
  void resetAccumulatedStats(c10::DeviceIndex device) override;
  void resetPeakStats(c10::DeviceIndex device) override;
  std::pair<size_t, size_t> getMemoryInfo(c10::DeviceIndex device) override;

  // Wraps memory owned elsewhere (a CPU kernel's result adopted by the fallback without a copy)
  // as a device DataPtr: `release(ctx)` frees it; the bytes count as allocated and reserved on
  // `device` while the DataPtr lives.
  c10::DataPtr adopt(void* data, size_t nbytes, void* ctx, void (*release)(void*),
                     c10::DeviceIndex device);

  // Size class of a request (exposed for tests).
  static size_t round_size(size_t nbytes);

 private:
  struct Block;
  struct DeviceState;
  static void free_block(void* ctx);
  static void free_adopted(void* ctx);
  DeviceState& state(c10::DeviceIndex device);
  void release_cached_locked(DeviceState& st);

  std::mutex mutex_;
  std::vector<DeviceState*> states_;
};

// The registered device allocator (also reachable through c10::GetAllocator(kPrivateUse1)).
DeviceAllocator& device_allocator();

}  // namespace rustorch
