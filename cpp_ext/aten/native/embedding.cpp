#include "aten/native/embedding.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include <cstring>
#include <vector>

namespace rustorch::native {
namespace {

bool float_type(at::ScalarType st) { return st == at::kFloat || st == at::kDouble; }
bool index_type(at::ScalarType st) { return st == at::kLong || st == at::kInt; }

// The indices as int64 values, checked against [0, rows).
std::vector<int64_t> read_indices(const at::Tensor& indices, int64_t rows) {
  const at::Tensor idx = indices.contiguous();
  std::vector<int64_t> out(idx.numel());
  AT_DISPATCH_INDEX_TYPES(idx.scalar_type(), "rustorch_embedding_indices", [&] {
    const index_t* p = idx.const_data_ptr<index_t>();
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t v = p[i];
      TORCH_CHECK_INDEX(v >= 0 && v < rows, "index out of range in self");
      out[i] = v;
    }
  });
  return out;
}

}  // namespace

bool embedding_ok(const at::Tensor& weight, const at::Tensor& indices, int64_t, bool, bool) {
  return weight.dim() == 2 && float_type(weight.scalar_type()) &&
         index_type(indices.scalar_type());
}

bool embedding_dense_backward_ok(const at::Tensor& grad_output, const at::Tensor& indices,
                                 int64_t num_weights, int64_t, bool) {
  return grad_output.dim() >= 1 && float_type(grad_output.scalar_type()) &&
         index_type(indices.scalar_type()) && num_weights >= 0 &&
         grad_output.numel() == indices.numel() * grad_output.size(-1);
}

at::Tensor embedding(const at::Tensor& weight, const at::Tensor& indices, int64_t, bool, bool) {
  const int64_t rows = weight.size(0), dim = weight.size(1);
  const std::vector<int64_t> idx = read_indices(indices, rows);
  std::vector<int64_t> shape(indices.sizes().begin(), indices.sizes().end());
  shape.push_back(dim);
  at::Tensor out = at::empty(shape, weight.options());
  if (out.numel() == 0) return out;
  const at::Tensor w = weight.contiguous();
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "rustorch_embedding", [&] {
    const scalar_t* src = w.const_data_ptr<scalar_t>();
    scalar_t* dst = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, static_cast<int64_t>(idx.size()), std::max<int64_t>(1, 8192 / dim),
                     [&](int64_t b, int64_t e) {
                       for (int64_t i = b; i < e; ++i)
                         std::memcpy(dst + i * dim, src + idx[i] * dim, dim * sizeof(scalar_t));
                     });
  });
  return out;
}

at::Tensor embedding_dense_backward(const at::Tensor& grad_output, const at::Tensor& indices,
                                    int64_t num_weights, int64_t padding_idx,
                                    bool scale_grad_by_freq) {
  const int64_t dim = grad_output.size(-1);
  at::Tensor gw = at::zeros({num_weights, dim}, grad_output.options());
  const std::vector<int64_t> idx = read_indices(indices, num_weights);
  const int64_t count = static_cast<int64_t>(idx.size());
  if (count == 0 || dim == 0) return gw;
  // Stable counting sort: order[start[r] .. start[r + 1]) are the positions of row r, ascending.
  std::vector<int64_t> start(num_weights + 1, 0), order(count);
  for (int64_t v : idx) ++start[v + 1];
  for (int64_t r = 0; r < num_weights; ++r) start[r + 1] += start[r];
  {
    std::vector<int64_t> next(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < count; ++i) order[next[idx[i]]++] = i;
  }
  const at::Tensor g = grad_output.contiguous();
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "rustorch_embedding_backward", [&] {
    const scalar_t* src = g.const_data_ptr<scalar_t>();
    scalar_t* dst = gw.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, num_weights, std::max<int64_t>(1, 4096 / dim), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t n = start[r + 1] - start[r];
        if (n == 0 || r == padding_idx) continue;
        // As CPU: each contribution scaled by 1 / (occurrences of the index).
        const scalar_t scale = scale_grad_by_freq ? scalar_t(1) / scalar_t(n) : scalar_t(1);
        scalar_t* row = dst + r * dim;
        for (int64_t k = start[r]; k < start[r + 1]; ++k) {
          const scalar_t* s = src + order[k] * dim;
          for (int64_t j = 0; j < dim; ++j) row[j] += s[j] * scale;
        }
      }
    });
  });
  return gw;
}

}  // namespace rustorch::native
