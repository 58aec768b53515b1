#include "runtime/op_stats.h"

#include <memory>
#include <mutex>
#include <unordered_map>

namespace rustorch {
namespace {
std::mutex& registry_mutex() {
  static std::mutex mu;
  return mu;
}
// Slots are heap-allocated and never freed so references handed out stay valid.
std::unordered_map<std::string, std::unique_ptr<OpCounter>>& registry() {
  static auto* map = new std::unordered_map<std::string, std::unique_ptr<OpCounter>>();
  return *map;
}
}  // namespace

OpCounter& op_counter(const std::string& op) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& slot = registry()[op];
  if (!slot) slot = std::make_unique<OpCounter>();
  return *slot;
}

std::map<std::string, std::pair<uint64_t, uint64_t>> op_stats_snapshot() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::map<std::string, std::pair<uint64_t, uint64_t>> out;
  for (auto& [name, counter] : registry()) {
    uint64_t n = counter->native.load(std::memory_order_relaxed);
    uint64_t f = counter->fallback.load(std::memory_order_relaxed);
    if (n || f) out[name] = {n, f};
  }
  return out;
}

void reset_op_stats() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  for (auto& [name, counter] : registry()) {
    counter->native.store(0);
    counter->fallback.store(0);
  }
}

}  // namespace rustorch
