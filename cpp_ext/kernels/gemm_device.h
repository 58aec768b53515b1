// The rustorch (PrivateUse1) kernels of the GEMM-family aten ops: our GEMM where it applies
// (float32/float64, one dtype, one device, no negative-view bit), the counted CPU fallback
// otherwise (other dtypes, and ATen's own error for invalid mixes). Registered in
// aten/native_ops.cpp.
#pragma once

#include <ATen/core/Tensor.h>

namespace rustorch::kernels::device {

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

// True when every defined tensor has `like`'s float32/float64 dtype and device and no negative
// bit (a lazily negated view our kernels would read un-negated).
bool native_operands(const at::Tensor& like, std::initializer_list<const at::Tensor*> others);

}  // namespace rustorch::kernels::device
