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

}  // namespace rustorch

