// Test-only op library: exposes the training-path kernels on CPU tensors as
// torch.ops.rustorch_ops_testing.*, so the kernels can be checked against CPU ATen without the
// device (device memory is host memory, so the kernels do not care which one they get).
#include <torch/library.h>

#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/nll.h"
#include "kernels/pool.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"

namespace {
namespace k = rustorch::kernels;

at::Tensor log_softmax(const at::Tensor& x, int64_t dim) { return k::log_softmax(x, dim, false); }
at::Tensor softmax(const at::Tensor& x, int64_t dim) { return k::softmax(x, dim, false); }
at::Tensor log_softmax_backward(const at::Tensor& g, const at::Tensor& y, int64_t dim) {
  return k::log_softmax_backward(g, y, dim, y.scalar_type());
}
at::Tensor softmax_backward(const at::Tensor& g, const at::Tensor& y, int64_t dim) {
  return k::softmax_backward(g, y, dim, y.scalar_type());
}
std::tuple<at::Tensor, at::Tensor> dropout(const at::Tensor& x, double p, std::optional<bool> train,
                                           int64_t seed) {
  return k::native_dropout(x, p, train, static_cast<uint64_t>(seed), 0);
}
at::Tensor sum(const at::Tensor& x, at::OptionalIntArrayRef dim, bool keepdim) {
  return k::sum(x, dim, keepdim, std::nullopt, at::Tensor());
}
at::Tensor mean(const at::Tensor& x, at::OptionalIntArrayRef dim, bool keepdim) {
  return k::mean(x, dim, keepdim, std::nullopt, at::Tensor());
}
at::Tensor argmax(const at::Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return k::argmax(x, dim, keepdim, at::Tensor());
}
at::Tensor add(const at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha) {
  return k::binary(k::BinaryOp::Add, a, b, alpha, at::Tensor());
}
at::Tensor addcdiv(const at::Tensor& s, const at::Tensor& a, const at::Tensor& b,
                   const at::Scalar& v) {
  return k::addcdiv(s, a, b, v, at::Tensor());
}
at::Tensor relu(const at::Tensor& a) { return k::unary(k::UnaryOp::Relu, a, at::Tensor()); }

}  // namespace

TORCH_LIBRARY(rustorch_ops_testing, m) {
  m.def("log_softmax(Tensor self, int dim) -> Tensor");
  m.def("softmax(Tensor self, int dim) -> Tensor");
  m.def("log_softmax_backward(Tensor grad, Tensor output, int dim) -> Tensor");
  m.def("softmax_backward(Tensor grad, Tensor output, int dim) -> Tensor");
  m.def("nll_loss_forward(Tensor self, Tensor target, Tensor? weight, int reduction, "
        "int ignore_index) -> (Tensor, Tensor)");
  m.def("nll_loss_backward(Tensor grad_output, Tensor self, Tensor target, Tensor? weight, "
        "int reduction, int ignore_index, Tensor total_weight) -> Tensor");
  m.def("max_pool2d_with_indices(Tensor self, int[2] kernel_size, int[2] stride, "
        "int[2] padding, int[2] dilation, bool ceil_mode) -> (Tensor, Tensor)");
  m.def("max_pool2d_with_indices_backward(Tensor grad_output, Tensor self, int[2] kernel_size, "
        "int[2] stride, int[2] padding, int[2] dilation, bool ceil_mode, Tensor indices) -> Tensor");
  m.def("native_dropout(Tensor input, float p, bool? train, int seed) -> (Tensor, Tensor)");
  m.def("sum(Tensor self, int[]? dim, bool keepdim) -> Tensor");
  m.def("mean(Tensor self, int[]? dim, bool keepdim) -> Tensor");
  m.def("argmax(Tensor self, int? dim, bool keepdim) -> Tensor");
  m.def("add(Tensor self, Tensor other, Scalar alpha) -> Tensor");
  m.def("addcdiv(Tensor self, Tensor t1, Tensor t2, Scalar value) -> Tensor");
  m.def("relu(Tensor self) -> Tensor");
}

TORCH_LIBRARY_IMPL(rustorch_ops_testing, CPU, m) {
  m.impl("log_softmax", log_softmax);
  m.impl("softmax", softmax);
  m.impl("log_softmax_backward", log_softmax_backward);
  m.impl("softmax_backward", softmax_backward);
  m.impl("nll_loss_forward", k::nll_loss_forward);
  m.impl("nll_loss_backward", k::nll_loss_backward);
  m.impl("max_pool2d_with_indices", k::max_pool2d_with_indices);
  m.impl("max_pool2d_with_indices_backward", k::max_pool2d_with_indices_backward);
  m.impl("native_dropout", dropout);
  m.impl("sum", sum);
  m.impl("mean", mean);
  m.impl("argmax", argmax);
  m.impl("add", add);
  m.impl("addcdiv", addcdiv);
  m.impl("relu", relu);
}
