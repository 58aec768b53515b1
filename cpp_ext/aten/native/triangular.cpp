#include "aten/native/triangular.h"

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/Parallel.h>
#include <ATen/native/Resize.h>

#include <algorithm>
#include <cstring>

namespace rustorch::native {
namespace {

enum class Part { Lower, Upper };

// Row r of a (rows x cols) matrix keeps columns [begin, end); every other byte becomes zero
// (all-zero bytes are 0 / 0.0 / false in every dtype these ops take).
template <Part P>
void keep_range(int64_t r, int64_t cols, int64_t diagonal, int64_t& begin, int64_t& end) {
  if constexpr (P == Part::Lower) {
    begin = 0;
    end = std::clamp<int64_t>(r + diagonal + 1, 0, cols);
  } else {
    begin = std::clamp<int64_t>(r + diagonal, 0, cols);
    end = cols;
  }
}

template <Part P>
at::Tensor& triangular(const at::Tensor& self, int64_t diagonal, at::Tensor& out) {
  const bool inplace = out.is_same(self);
  if (!inplace) at::native::resize_output(out, self.sizes());
  if (self.numel() == 0) return out;
  const at::Tensor src = inplace ? self : self.contiguous();
  const int64_t rows = self.size(-2), cols = self.size(-1);
  const int64_t mats = self.numel() / (rows * cols);
  const int64_t es = static_cast<int64_t>(self.element_size());
  const char* in = static_cast<const char*>(src.const_data_ptr());
  char* o = static_cast<char*>(out.data_ptr());
  // Each (matrix, row) is written by exactly one thread: same bytes at any thread count.
  at::parallel_for(0, mats * rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(1, cols * es)),
                   [&](int64_t b, int64_t e) {
                     for (int64_t k = b; k < e; ++k) {
                       int64_t begin, end;
                       keep_range<P>(k % rows, cols, diagonal, begin, end);
                       char* row = o + k * cols * es;
                       if (begin > 0) std::memset(row, 0, begin * es);
                       if (!inplace && end > begin)
                         std::memcpy(row + begin * es, in + (k * cols + begin) * es,
                                     (end - begin) * es);
                       if (end < cols) std::memset(row + end * es, 0, (cols - end) * es);
                     }
                   });
  return out;
}

}  // namespace

bool triangular_out_ok(const at::Tensor& self, int64_t, const at::Tensor& out) {
  if (self.dim() < 2 || out.scalar_type() != self.scalar_type() ||
      out.device() != self.device() || at::isComplexType(self.scalar_type()))
    return false;
  if (out.is_same(self)) return self.is_contiguous();
  if (!out.is_contiguous() || (out.sizes() != self.sizes() && out.numel() != 0)) return false;
  return out.numel() == 0 || at::get_overlap_status(out, self) == at::MemOverlapStatus::No;
}

at::Tensor& tril_out(const at::Tensor& self, int64_t diagonal, at::Tensor& out) {
  return triangular<Part::Lower>(self, diagonal, out);
}

at::Tensor& triu_out(const at::Tensor& self, int64_t diagonal, at::Tensor& out) {
  return triangular<Part::Upper>(self, diagonal, out);
}

}  // namespace rustorch::native
