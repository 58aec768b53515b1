// GEMM-family aten ops on at::Tensors (float32 / float64), built on kernels/gemm.h. They do not
// care which device the memory belongs to: rustorch memory is host memory. Shapes and dtypes
// are checked with ATen's error messages; other dtypes raise NotImplementedError (callers that
// can fall back check gemm_supports() first).
#pragma once

#include <ATen/core/Tensor.h>

#include <initializer_list>

namespace rustorch::native {

bool gemm_supports(const at::Tensor& t);

at::Tensor mm(const at::Tensor& self, const at::Tensor& mat2);
at::Tensor& mm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out);
at::Tensor addmm(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                 const at::Scalar& beta, const at::Scalar& alpha);
at::Tensor& addmm_out(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                      const at::Scalar& beta, const at::Scalar& alpha, at::Tensor& out);
at::Tensor& addmm_(at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                   const at::Scalar& beta, const at::Scalar& alpha);

at::Tensor bmm(const at::Tensor& self, const at::Tensor& mat2);
at::Tensor& bmm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out);
at::Tensor baddbmm(const at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                   const at::Scalar& beta, const at::Scalar& alpha);
at::Tensor& baddbmm_out(const at::Tensor& self, const at::Tensor& batch1,
                        const at::Tensor& batch2, const at::Scalar& beta,
                        const at::Scalar& alpha, at::Tensor& out);
at::Tensor& baddbmm_(at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                     const at::Scalar& beta, const at::Scalar& alpha);

// Predicates of the aten ops (argument lists as registered): every defined operand has the
// float32/float64 dtype and the device of the first matrix operand.
bool same_gemm_operands(const at::Tensor& like, std::initializer_list<const at::Tensor*> others);
inline bool mm_ok(const at::Tensor& self, const at::Tensor& mat2) {
  return same_gemm_operands(self, {&mat2});
}
inline bool mm_out_ok(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {
  return same_gemm_operands(self, {&mat2, &out});
}
inline bool addmm_ok(const at::Tensor& self, const at::Tensor& m1, const at::Tensor& m2,
                     const at::Scalar&, const at::Scalar&) {
  return same_gemm_operands(m1, {&m2, &self});
}
inline bool addmm_out_ok(const at::Tensor& self, const at::Tensor& m1, const at::Tensor& m2,
                         const at::Scalar&, const at::Scalar&, at::Tensor& out) {
  return same_gemm_operands(m1, {&m2, &self, &out});
}
inline bool addmm__ok(at::Tensor& self, const at::Tensor& m1, const at::Tensor& m2,
                      const at::Scalar&, const at::Scalar&) {
  return same_gemm_operands(m1, {&m2, &self});
}

}  // namespace rustorch::native
