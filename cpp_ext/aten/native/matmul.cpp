#include "aten/native/matmul.h"

#include <ATen/Dispatch.h>
#include <ATen/ExpandUtils.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/ops/empty.h>
#include <ATen/native/Resize.h>

#include "kernels/gemm.h"

namespace rustorch::native {
using namespace ::rustorch::kernels;  // raw compute: gemm, simd helpers
namespace {

void check_dtypes(const at::Tensor& a, const at::Tensor& b, const char* an, const char* bn) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "expected ", an, " and ", bn,
              " to have the same dtype, but got: ", a.scalar_type(), " != ", b.scalar_type());
  TORCH_CHECK_NOT_IMPLEMENTED(gemm_supports(a),
                              "rustorch GEMM supports float32 and float64, not ",
                              a.scalar_type());
}

void check_out_dtype(const at::Tensor& out, const at::Tensor& like) {
  TORCH_CHECK(out.scalar_type() == like.scalar_type(), "Expected out tensor to have dtype ",
              like.scalar_type(), ", but got ", out.scalar_type(), " instead");
}

bool overlaps(const at::Tensor& out, const at::Tensor& in) {
  return at::get_overlap_status(out, in) != at::MemOverlapStatus::No;
}

// c[(batch,) m, n] = alpha * a . b + beta * c for 2-D or 3-D tensors with any strides.
void run(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c, const at::Scalar& alpha,
         const at::Scalar& beta) {
  const bool batched = a.dim() == 3;
  const int64_t o = batched ? 1 : 0;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rustorch_gemm", [&] {
    GemmArgs<scalar_t> g;
    g.m = a.size(o);
    g.k = a.size(o + 1);
    g.n = b.size(o + 1);
    g.alpha = alpha.to<scalar_t>();
    g.beta = beta.to<scalar_t>();
    g.a = a.const_data_ptr<scalar_t>();
    g.rsa = a.stride(o), g.csa = a.stride(o + 1);
    g.b = b.const_data_ptr<scalar_t>();
    g.rsb = b.stride(o), g.csb = b.stride(o + 1);
    g.c = c.mutable_data_ptr<scalar_t>();
    g.rsc = c.stride(o), g.csc = c.stride(o + 1);
    if (batched)
      gemm_batched(g, a.size(0), a.stride(0), b.stride(0), c.stride(0));
    else
      gemm(g);
  });
}

// Shared tail of every op: out (already resized) = beta * self + alpha * a . b, where `self`
// is undefined for the plain products. Computes into a temporary when out overlaps an input.
void product_into(const at::Tensor& self, const at::Tensor& a, const at::Tensor& b,
                  const at::Scalar& beta, const at::Scalar& alpha, const at::Tensor& out) {
  at::assert_no_internal_overlap(out);
  const bool use_self = self.defined() && beta.toComplexDouble() != 0.0;
  const bool in_place = use_self && out.is_same(self);
  const bool clash = overlaps(out, a) || overlaps(out, b) ||
                     (use_self && !in_place && overlaps(out, self));
  const at::Tensor c = clash ? at::empty(out.sizes(), out.options()) : out;
  if (use_self && !in_place) c.copy_(self.expand(out.sizes()));
  run(a, b, c, alpha, use_self ? beta : at::Scalar(0.0));
  if (clash) out.copy_(c);
}

void check_mm(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 2, "self must be a matrix");
  TORCH_CHECK(b.dim() == 2, "mat2 must be a matrix");
  TORCH_CHECK(a.size(1) == b.size(0), "mat1 and mat2 shapes cannot be multiplied (", a.size(0),
              "x", a.size(1), " and ", b.size(0), "x", b.size(1), ")");
  check_dtypes(a, b, "m1", "m2");
}

void check_bmm(const at::Tensor& a, const at::Tensor& b) {
  TORCH_CHECK(a.dim() == 3, "batch1 must be a 3D tensor");
  TORCH_CHECK(b.dim() == 3, "batch2 must be a 3D tensor");
  TORCH_CHECK(b.size(0) == a.size(0) && b.size(1) == a.size(2),
              "Expected size for first two dimensions of batch2 tensor to be: [", a.size(0), ", ",
              a.size(2), "] but got: [", b.size(0), ", ", b.size(1), "].");
  check_dtypes(a, b, "batch1", "batch2");
}

void check_self(const at::Tensor& self, const at::Tensor& a, at::IntArrayRef sizes) {
  TORCH_CHECK(self.scalar_type() == a.scalar_type(), "self and mat2 must have the same dtype, ",
              "but got ", self.scalar_type(), " and ", a.scalar_type());
  TORCH_CHECK(at::is_expandable_to(self.sizes(), sizes), "The expanded size of self ",
              self.sizes(), " must match the product's size ", sizes);
}

}  // namespace

bool gemm_supports(const at::Tensor& t) {
  return t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble;
}

at::Tensor& mm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {
  check_mm(self, mat2);
  check_out_dtype(out, self);
  at::native::resize_output(out, {self.size(0), mat2.size(1)});
  product_into({}, self, mat2, 0, 1, out);
  return out;
}

at::Tensor mm(const at::Tensor& self, const at::Tensor& mat2) {
  check_mm(self, mat2);
  at::Tensor out = at::empty({self.size(0), mat2.size(1)}, self.options());
  product_into({}, self, mat2, 0, 1, out);
  return out;
}

at::Tensor& addmm_out(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                      const at::Scalar& beta, const at::Scalar& alpha, at::Tensor& out) {
  check_mm(mat1, mat2);
  const std::vector<int64_t> sizes{mat1.size(0), mat2.size(1)};
  check_self(self, mat1, sizes);
  check_out_dtype(out, mat1);
  at::native::resize_output(out, sizes);
  product_into(self, mat1, mat2, beta, alpha, out);
  return out;
}

at::Tensor addmm(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                 const at::Scalar& beta, const at::Scalar& alpha) {
  at::Tensor out = at::empty({0}, mat1.options());
  return addmm_out(self, mat1, mat2, beta, alpha, out);
}

at::Tensor& addmm_(at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                   const at::Scalar& beta, const at::Scalar& alpha) {
  check_mm(mat1, mat2);
  TORCH_CHECK(self.dim() == 2 && self.size(0) == mat1.size(0) && self.size(1) == mat2.size(1),
              "addmm_: self of size ", self.sizes(), " cannot hold the product of size [",
              mat1.size(0), ", ", mat2.size(1), "]");
  check_self(self, mat1, self.sizes());
  product_into(self, mat1, mat2, beta, alpha, self);
  return self;
}

at::Tensor& bmm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {
  check_bmm(self, mat2);
  check_out_dtype(out, self);
  at::native::resize_output(out, {self.size(0), self.size(1), mat2.size(2)});
  product_into({}, self, mat2, 0, 1, out);
  return out;
}

at::Tensor bmm(const at::Tensor& self, const at::Tensor& mat2) {
  check_bmm(self, mat2);
  at::Tensor out = at::empty({self.size(0), self.size(1), mat2.size(2)}, self.options());
  product_into({}, self, mat2, 0, 1, out);
  return out;
}

at::Tensor& baddbmm_out(const at::Tensor& self, const at::Tensor& batch1,
                        const at::Tensor& batch2, const at::Scalar& beta,
                        const at::Scalar& alpha, at::Tensor& out) {
  check_bmm(batch1, batch2);
  const std::vector<int64_t> sizes{batch1.size(0), batch1.size(1), batch2.size(2)};
  check_self(self, batch1, sizes);
  check_out_dtype(out, batch1);
  at::native::resize_output(out, sizes);
  product_into(self, batch1, batch2, beta, alpha, out);
  return out;
}

at::Tensor baddbmm(const at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                   const at::Scalar& beta, const at::Scalar& alpha) {
  at::Tensor out = at::empty({0}, batch1.options());
  return baddbmm_out(self, batch1, batch2, beta, alpha, out);
}

at::Tensor& baddbmm_(at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                     const at::Scalar& beta, const at::Scalar& alpha) {
  check_bmm(batch1, batch2);
  TORCH_CHECK(self.dim() == 3 && self.size(0) == batch1.size(0) &&
                  self.size(1) == batch1.size(1) && self.size(2) == batch2.size(2),
              "baddbmm_: self of size ", self.sizes(), " cannot hold the product of size [",
              batch1.size(0), ", ", batch1.size(1), ", ", batch2.size(2), "]");
  check_self(self, batch1, self.sizes());
  product_into(self, batch1, batch2, beta, alpha, self);
  return self;
}

bool same_gemm_operands(const at::Tensor& like, std::initializer_list<const at::Tensor*> others) {
  if (!gemm_supports(like)) return false;
  for (const at::Tensor* t : others) {
    if (t == nullptr || !t->defined()) continue;
    if (t->scalar_type() != like.scalar_type() || t->device() != like.device()) return false;
  }
  return true;
}

}  // namespace rustorch::native
