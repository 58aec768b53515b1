#include "aten/native/cat.h"

#include <ATen/Parallel.h>
#include <ATen/WrapDimUtils.h>

#include <cstring>
#include <vector>

namespace rustorch::native {

bool cat_out_ok(const at::ITensorListRef& tensors, int64_t dim, const at::Tensor& out) {
  const at::Tensor* first = nullptr;
  int64_t total = 0, d = 0;
  for (const at::Tensor& t : tensors) {
    if (!t.defined() || t.scalar_type() != out.scalar_type() || !t.is_contiguous() ||
        t.device() != out.device() || (t.numel() > 0 && t.is_alias_of(out)))
      return false;
    // Legacy empty tensors (1-D, size 0) are skipped by cat whatever their rank: CPU's kernel.
    if (t.dim() == 1 && t.size(0) == 0) return false;
    if (first == nullptr) {
      if (t.dim() == 0 || dim < -t.dim() || dim >= t.dim()) return false;
      first = &t;
      d = c10::maybe_wrap_dim(dim, t.dim());
    } else if (t.dim() != first->dim()) {
      return false;
    } else {
      for (int64_t i = 0; i < t.dim(); ++i)
        if (i != d && t.size(i) != first->size(i)) return false;
    }
    total += t.size(d);
  }
  if (first == nullptr || !out.is_contiguous() || out.dim() != first->dim()) return false;
  for (int64_t i = 0; i < out.dim(); ++i)
    if (out.size(i) != (i == d ? total : first->size(i))) return false;
  return true;
}

at::Tensor& cat_out(const at::ITensorListRef& tensors, int64_t dim, at::Tensor& out) {
  const auto list = tensors.materialize();
  const int64_t d = c10::maybe_wrap_dim(dim, list[0].get().dim());
  const int64_t elem = static_cast<int64_t>(out.element_size());
  int64_t outer = 1, inner = elem;
  for (int64_t i = 0; i < d; ++i) outer *= out.size(i);
  for (int64_t i = d + 1; i < out.dim(); ++i) inner *= out.size(i);
  if (out.numel() == 0) return out;
  // Per input: its bytes per outer index and where they start inside an output row.
  std::vector<const char*> src;
  std::vector<int64_t> bytes, offset;
  int64_t row = 0;
  for (const at::Tensor& t : list) {
    const int64_t b = t.size(d) * inner;
    if (b > 0) {
      src.push_back(static_cast<const char*>(t.const_data_ptr()));
      bytes.push_back(b);
      offset.push_back(row);
    }
    row += b;
  }
  char* dst = static_cast<char*>(out.mutable_data_ptr());
  at::parallel_for(0, outer, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, row)),
                   [&](int64_t begin, int64_t end) {
                     for (int64_t o = begin; o < end; ++o)
                       for (size_t k = 0; k < src.size(); ++k)
                         std::memcpy(dst + o * row + offset[k], src[k] + o * bytes[k], bytes[k]);
                   });
  return out;
}

}  // namespace rustorch::native
