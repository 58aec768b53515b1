#include "kernels/gemm_device.h"

#include <ATen/ops/addmm_ops.h>
#include <ATen/ops/baddbmm_ops.h>
#include <ATen/ops/bmm_ops.h>
#include <ATen/ops/mm_ops.h>

#include "aten/fallback.h"
#include "kernels/gemm_ops.h"

namespace rustorch::kernels::device {

bool native_operands(const at::Tensor& like, std::initializer_list<const at::Tensor*> others) {
  if (!gemm_supports(like) || like.is_neg()) return false;
  for (const at::Tensor* t : others) {
    if (t == nullptr || !t->defined()) continue;
    if (t->scalar_type() != like.scalar_type() || t->device() != like.device() || t->is_neg())
      return false;
  }
  return true;
}

at::Tensor mm(const at::Tensor& self, const at::Tensor& mat2) {
  if (!native_operands(self, {&mat2})) return fallback<at::_ops::mm>(self, mat2);
  return kernels::mm(self, mat2);
}

at::Tensor& mm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {
  if (!native_operands(self, {&mat2, &out})) return fallback<at::_ops::mm_out>(self, mat2, out);
  return kernels::mm_out(self, mat2, out);
}

at::Tensor addmm(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                 const at::Scalar& beta, const at::Scalar& alpha) {
  if (!native_operands(mat1, {&mat2, &self}))
    return fallback<at::_ops::addmm>(self, mat1, mat2, beta, alpha);
  return kernels::addmm(self, mat1, mat2, beta, alpha);
}

at::Tensor& addmm_out(const at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                      const at::Scalar& beta, const at::Scalar& alpha, at::Tensor& out) {
  if (!native_operands(mat1, {&mat2, &self, &out}))
    return fallback<at::_ops::addmm_out>(self, mat1, mat2, beta, alpha, out);
  return kernels::addmm_out(self, mat1, mat2, beta, alpha, out);
}

at::Tensor& addmm_(at::Tensor& self, const at::Tensor& mat1, const at::Tensor& mat2,
                   const at::Scalar& beta, const at::Scalar& alpha) {
  if (!native_operands(mat1, {&mat2, &self}))
    return fallback<at::_ops::addmm_>(self, mat1, mat2, beta, alpha);
  return kernels::addmm_(self, mat1, mat2, beta, alpha);
}

at::Tensor bmm(const at::Tensor& self, const at::Tensor& mat2) {
  if (!native_operands(self, {&mat2})) return fallback<at::_ops::bmm>(self, mat2);
  return kernels::bmm(self, mat2);
}

at::Tensor& bmm_out(const at::Tensor& self, const at::Tensor& mat2, at::Tensor& out) {
  if (!native_operands(self, {&mat2, &out})) return fallback<at::_ops::bmm_out>(self, mat2, out);
  return kernels::bmm_out(self, mat2, out);
}

at::Tensor baddbmm(const at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                   const at::Scalar& beta, const at::Scalar& alpha) {
  if (!native_operands(batch1, {&batch2, &self}))
    return fallback<at::_ops::baddbmm>(self, batch1, batch2, beta, alpha);
  return kernels::baddbmm(self, batch1, batch2, beta, alpha);
}

at::Tensor& baddbmm_out(const at::Tensor& self, const at::Tensor& batch1,
                        const at::Tensor& batch2, const at::Scalar& beta,
                        const at::Scalar& alpha, at::Tensor& out) {
  if (!native_operands(batch1, {&batch2, &self, &out}))
    return fallback<at::_ops::baddbmm_out>(self, batch1, batch2, beta, alpha, out);
  return kernels::baddbmm_out(self, batch1, batch2, beta, alpha, out);
}

at::Tensor& baddbmm_(at::Tensor& self, const at::Tensor& batch1, const at::Tensor& batch2,
                     const at::Scalar& beta, const at::Scalar& alpha) {
  if (!native_operands(batch1, {&batch2, &self}))
    return fallback<at::_ops::baddbmm_>(self, batch1, batch2, beta, alpha);
  return kernels::baddbmm_(self, batch1, batch2, beta, alpha);
}

}  // namespace rustorch::kernels::device
