// Per-thread, 64-byte aligned scratch buffers that grow and are kept for the thread's life:
// packing buffers (gemm.cpp) and im2col buffers (conv.cpp) without an allocation, page faults
// or zero-fill per call. `Slot` tells apart buffers that are live at the same time.
#pragma once

#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdlib>
#include <memory>

namespace rustorch::kernels {

template <typename T, int Slot>
T* thread_scratch(int64_t elems) {
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<T, Free> buf;
  thread_local int64_t cap = 0;
  if (elems > cap) {
    const size_t bytes = (static_cast<size_t>(elems) * sizeof(T) + 63) / 64 * 64;
    buf.reset();
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
    TORCH_CHECK(p != nullptr, "rustorch: out of memory for a ", bytes, "-byte scratch buffer");
    buf.reset(p);
    cap = elems;
  }
  return buf.get();
}

}  // namespace rustorch::kernels
