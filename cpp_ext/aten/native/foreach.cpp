#include "aten/native/foreach.h"

#include <ATen/ATen.h>

namespace rustorch::native {
namespace {

void check_lengths(at::TensorList a, at::TensorList b) {
  TORCH_CHECK(a.size() == b.size(), "Tensor lists must have the same number of tensors, got ",
              a.size(), " and ", b.size());
}

template <typename Fn>
std::vector<at::Tensor> each(at::TensorList self, bool inplace, Fn&& fn) {
  std::vector<at::Tensor> out;
  if (!inplace) out.reserve(self.size());
  for (size_t i = 0; i < self.size(); ++i) {
    at::Tensor r = fn(i, inplace ? self[i] : at::Tensor());
    if (!inplace) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

bool foreach_supported(c10::ArrayRef<at::TensorList> lists) {
  if (lists.empty()) return true;
  const at::TensorList first = lists.front();
  for (const auto& l : lists)
    if (l.size() != first.size()) return true;  // let the kernel raise the length error
  for (size_t i = 0; i < first.size(); ++i) {
    for (const auto& l : lists) {
      const at::Tensor& t = l[i];
      if (!t.defined() || t.layout() != at::kStrided ||
          t.scalar_type() != first[i].scalar_type() ||
          (t.scalar_type() != at::kFloat && t.scalar_type() != at::kDouble))
        return false;
    }
  }
  return true;
}

bool foreach_scalar_tensor_supported(const at::Tensor& t) {
  return t.defined() && t.numel() == 1 && t.dim() == 0 && !at::isComplexType(t.scalar_type());
}

at::Scalar scalar_of(const at::Tensor& t) {
  TORCH_CHECK(t.dim() == 0 && t.numel() == 1,
              "scalar tensor expected to be 0 dim but it has ", t.dim(), " dimensions and ",
              t.numel(), " elements.");
  return t.item();
}

std::vector<at::Scalar> expand_scalars(at::ArrayRef<at::Scalar> s, size_t n) {
  if (s.size() == 1 && n != 1) return std::vector<at::Scalar>(n, s[0]);
  TORCH_CHECK(s.size() == n, "Tensor list must have same number of elements as scalar list, got ",
              n, " and ", s.size());
  return std::vector<at::Scalar>(s.begin(), s.end());
}

std::vector<at::Tensor> foreach_binary_list(BinaryOp op, at::TensorList self,
                                            at::TensorList other, const at::Scalar& alpha,
                                            bool inplace) {
  check_lengths(self, other);
  return each(self, inplace,
              [&](size_t i, const at::Tensor& out) { return binary(op, self[i], other[i], alpha, out); });
}

std::vector<at::Tensor> foreach_binary_scalar(BinaryOp op, at::TensorList self,
                                              const at::Scalar& s, bool inplace) {
  return each(self, inplace, [&](size_t i, const at::Tensor& out) {
    return binary_scalar(op, self[i], s, 1, out);
  });
}

std::vector<at::Tensor> foreach_binary_scalarlist(BinaryOp op, at::TensorList self,
                                                  at::ArrayRef<at::Scalar> s, bool inplace) {
  TORCH_CHECK(s.size() == self.size(),
              "Tensor list must have same number of elements as scalar list, got ", self.size(),
              " and ", s.size());
  return each(self, inplace, [&](size_t i, const at::Tensor& out) {
    return binary_scalar(op, self[i], s[i], 1, out);
  });
}

std::vector<at::Tensor> foreach_unary(UnaryOp op, at::TensorList self, bool inplace) {
  return each(self, inplace,
              [&](size_t i, const at::Tensor& out) { return unary(op, self[i], out); });
}

std::vector<at::Tensor> foreach_pointwise(PointwiseOp op, at::TensorList self,
                                          at::TensorList t1, at::TensorList t2,
                                          at::ArrayRef<at::Scalar> values, bool inplace) {
  check_lengths(self, t1);
  check_lengths(self, t2);
  const auto v = expand_scalars(values, self.size());
  return each(self, inplace, [&](size_t i, const at::Tensor& out) {
    return op == PointwiseOp::Addcmul ? addcmul(self[i], t1[i], t2[i], v[i], out)
                                      : addcdiv(self[i], t1[i], t2[i], v[i], out);
  });
}

std::vector<at::Tensor> foreach_lerp_scalar(at::TensorList self, at::TensorList end,
                                            const at::Scalar& weight, bool inplace) {
  check_lengths(self, end);
  return each(self, inplace, [&](size_t i, const at::Tensor& out) {
    return lerp_scalar(self[i], end[i], weight, out);
  });
}

std::vector<at::Tensor> foreach_lerp_list(at::TensorList self, at::TensorList end,
                                          at::TensorList weight, bool inplace) {
  check_lengths(self, end);
  check_lengths(self, weight);
  return each(self, inplace, [&](size_t i, const at::Tensor& out) {
    return lerp_tensor(self[i], end[i], weight[i], out);
  });
}

void foreach_zero(at::TensorList self) {
  for (const auto& t : self) {
    at::Tensor x = t;
    fill(x, 0);
  }
}

std::vector<at::Tensor> foreach_add_tensor(at::TensorList self, const at::Tensor& other,
                                           const at::Scalar& alpha) {
  const at::Scalar s = scalar_of(other);
  std::vector<at::Tensor> out;
  out.reserve(self.size());
  for (const auto& t : self) out.push_back(binary_scalar(BinaryOp::Add, t, s, alpha, at::Tensor()));
  return out;
}

void foreach_add_tensor_(at::TensorList self, const at::Tensor& other, const at::Scalar& alpha) {
  const at::Scalar s = scalar_of(other);
  for (const auto& t : self) binary_scalar(BinaryOp::Add, t, s, alpha, t);
}

bool foreach_zero_ok(at::TensorList self) {
  for (const auto& t : self)
    if (!fill_supported(t)) return false;
  return true;
}

}  // namespace rustorch::native
