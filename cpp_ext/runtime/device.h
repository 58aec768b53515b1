// Device count and the calling thread's current device. rustorch devices are host memory, so
// "devices" are logical partitions: RUSTORCH_DEVICE_COUNT (default 1, at most 16) of them.
#pragma once

#include <c10/core/Device.h>

namespace rustorch {

c10::DeviceIndex device_count() noexcept;

// Parses RUSTORCH_DEVICE_COUNT and raises on a bad value (called when the module loads, so a
// typo is reported instead of silently meaning one device).
c10::DeviceIndex configured_device_count();

// The calling thread's current device (like CUDA, the current device is per thread).
c10::DeviceIndex current_device() noexcept;

// Raises a clear error naming the device count when `index` is out of range.
void set_device(c10::DeviceIndex index);

// Sets the current device and returns the previous one.
c10::DeviceIndex exchange_device(c10::DeviceIndex index);

// Checks `index` (>= 0) against the device count; the error names the count.
void check_device_index(c10::DeviceIndex index);

// -1 means "the current device".
c10::DeviceIndex resolve_device_index(c10::DeviceIndex index);

}  // namespace rustorch
