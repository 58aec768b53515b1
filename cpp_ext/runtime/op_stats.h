// Per-op call counters: how often each aten op ran on a native rustorch kernel and how often
// it went through the CPU fallback. Exposed to Python as rustorch_device.op_stats().
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace rustorch {

struct OpCounter {
  std::atomic<uint64_t> native{0};
  std::atomic<uint64_t> fallback{0};
};

// Returns the counter slot of `op` ("aten::mm"); the pointer stays valid for the process.
OpCounter& op_counter(const std::string& op);

// Snapshot: op -> (native, fallback).
std::map<std::string, std::pair<uint64_t, uint64_t>> op_stats_snapshot();
void reset_op_stats();

namespace detail {
template <typename Name, auto Fn, typename Sig>
struct CountedKernel;

template <typename Name, auto Fn, typename R, typename... Args>
struct CountedKernel<Name, Fn, R (*)(Args...)> {
  static R call(Args... args) {
    static OpCounter& counter = op_counter(Name::value());
    counter.native.fetch_add(1, std::memory_order_relaxed);
    return Fn(std::forward<Args>(args)...);
  }
};
}  // namespace detail

}  // namespace rustorch

// Registers `fn` as the PrivateUse1 kernel of aten op `schema_name` ("mm", "add.Tensor") and
// counts its calls as native. Use inside TORCH_LIBRARY_IMPL(aten, PrivateUse1, m).
#define RUSTORCH_NATIVE(m, schema_name, fn)                                                   \
  do {                                                                                        \
    struct _RustorchOpName {                                                                  \
      static std::string value() { return std::string("aten::") + schema_name; }             \
    };                                                                                        \
    m.impl(schema_name,                                                                       \
           TORCH_FN((::rustorch::detail::CountedKernel<_RustorchOpName, &fn,                  \
                                                       decltype(&fn)>::call)));               \
  } while (0)
