#include "runtime/device.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

namespace rustorch {
namespace {
constexpr int kMaxDevices = 16;

}  // namespace

c10::DeviceIndex configured_device_count() {
  const char* env = std::getenv("RUSTORCH_DEVICE_COUNT");
  if (env == nullptr || *env == '\0') return 1;
  char* end = nullptr;
  long n = std::strtol(env, &end, 10);
  TORCH_CHECK(end != env && *end == '\0' && n >= 1 && n <= kMaxDevices,
              "RUSTORCH_DEVICE_COUNT must be an integer in [1, ", kMaxDevices, "], got '", env,
              "'");
  return static_cast<c10::DeviceIndex>(n);
}

namespace {
thread_local c10::DeviceIndex tls_current_device = 0;
}  // namespace

c10::DeviceIndex device_count() noexcept {
  static const c10::DeviceIndex count = [] {
    try {
      return configured_device_count();
    } catch (const c10::Error&) {
      return static_cast<c10::DeviceIndex>(1);
    }
  }();
  return count;
}

void check_device_index(c10::DeviceIndex index) {
  const auto count = device_count();
  TORCH_CHECK_INDEX(index >= 0 && index < count, "rustorch device index ", static_cast<int>(index),
                    " is out of range: ", static_cast<int>(count), " rustorch device",
                    count == 1 ? " is" : "s are", " available (valid indices 0..",
                    static_cast<int>(count - 1), "; set RUSTORCH_DEVICE_COUNT for more)");
}

c10::DeviceIndex resolve_device_index(c10::DeviceIndex index) {
  if (index == -1) return current_device();
  check_device_index(index);
  return index;
}

c10::DeviceIndex current_device() noexcept { return tls_current_device; }

void set_device(c10::DeviceIndex index) {
  check_device_index(index);
  tls_current_device = index;
}

c10::DeviceIndex exchange_device(c10::DeviceIndex index) {
  check_device_index(index);
  auto prev = tls_current_device;
  tls_current_device = index;
  return prev;
}

}  // namespace rustorch
