#include "aten/native/activation.h"

#include <ATen/Dispatch.h>
#include <ATen/TensorIterator.h>

#include <cmath>

#include "aten/native/elementwise.h"
#include "aten/native/elementwise_loops.h"

namespace rustorch::native {
namespace {

// out = f(inputs...) element-wise; out is the structured op's output (resized if needed).
at::TensorIterator iter_of(at::Tensor& out, std::initializer_list<at::Tensor> inputs) {
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(true).add_output(out);
  for (const auto& t : inputs) cfg.add_const_input(t);
  return cfg.build();
}

template <typename T>
T gelu_exact(T x) {
  return x * T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
}

template <typename T>
T gelu_tanh(T x) {
  const T k_beta = T(M_SQRT2 * M_2_SQRTPI * 0.5), k_kappa = T(0.044715);
  return T(0.5) * x * (T(1) + std::tanh(k_beta * (x + k_kappa * x * x * x)));
}

template <typename T>
T gelu_exact_grad(T g, T x) {
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(M_SQRT1_2)));
  const T pdf = std::exp(T(-0.5) * x * x) * T(M_2_SQRTPI * M_SQRT1_2 * 0.5);
  return g * (cdf + x * pdf);
}

template <typename T>
T gelu_tanh_grad(T g, T x) {
  const T k_beta = T(M_SQRT2 * M_2_SQRTPI * 0.5), k_kappa = T(0.044715);
  const T x_sq = x * x;
  const T inner = k_beta * (x + k_kappa * x_sq * x);
  const T t = std::tanh(inner);
  const T left = T(0.5) * x, right = T(1) + t;
  const T left_d = T(0.5) * right;
  const T right_d = (T(1) - t * t) * k_beta * (T(1) + T(3) * k_kappa * x_sq);
  return g * (left_d + left * right_d);
}

bool tanh_approx(c10::string_view a) { return a == "tanh"; }

}  // namespace

bool gelu_out_ok(const at::Tensor& self, c10::string_view approximate, at::Tensor& out) {
  return (approximate == "none" || approximate == "tanh") &&
         FloatElementwise{}(self, out);
}

bool gelu_backward_out_ok(const at::Tensor& grad, const at::Tensor& self,
                          c10::string_view approximate, at::Tensor& grad_input) {
  return (approximate == "none" || approximate == "tanh") &&
         FloatElementwise{}(grad, self, grad_input);
}

at::Tensor& gelu_out(const at::Tensor& self, c10::string_view approximate, at::Tensor& out) {
  auto iter = iter_of(out, {self});
  const bool approx = tanh_approx(approximate);
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_gelu", [&] {
    using T = scalar_t;
    if (approx) loops::for_each<T, T>(iter, [](T x) { return gelu_tanh(x); });
    else loops::for_each<T, T>(iter, [](T x) { return gelu_exact(x); });
  });
  return out;
}

at::Tensor& gelu_backward_out(const at::Tensor& grad, const at::Tensor& self,
                              c10::string_view approximate, at::Tensor& grad_input) {
  auto iter = iter_of(grad_input, {grad, self});
  const bool approx = tanh_approx(approximate);
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_gelu_backward", [&] {
    using T = scalar_t;
    if (approx) loops::for_each<T, T, T>(iter, [](T g, T x) { return gelu_tanh_grad(g, x); });
    else loops::for_each<T, T, T>(iter, [](T g, T x) { return gelu_exact_grad(g, x); });
  });
  return grad_input;
}

at::Tensor& silu_out(const at::Tensor& self, at::Tensor& out) {
  auto iter = iter_of(out, {self});
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_silu", [&] {
    using T = scalar_t;
    loops::for_each<T, T>(iter, [](T x) { return x / (T(1) + std::exp(-x)); });
  });
  return out;
}

at::Tensor& silu_backward_out(const at::Tensor& grad, const at::Tensor& self,
                              at::Tensor& grad_input) {
  auto iter = iter_of(grad_input, {grad, self});
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_silu_backward", [&] {
    using T = scalar_t;
    loops::for_each<T, T, T>(iter, [](T g, T x) {
      const T s = T(1) / (T(1) + std::exp(-x));
      return g * s * (T(1) + x * (T(1) - s));
    });
  });
  return grad_input;
}

at::Tensor& tanh_out(const at::Tensor& self, at::Tensor& out) {
  auto iter = iter_of(out, {self});
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_tanh", [&] {
    using T = scalar_t;
    loops::for_each<T, T>(iter, [](T x) { return std::tanh(x); });
  });
  return out;
}

at::Tensor& tanh_backward_out(const at::Tensor& grad, const at::Tensor& output,
                              at::Tensor& grad_input) {
  auto iter = iter_of(grad_input, {grad, output});
  AT_DISPATCH_FLOATING_TYPES(output.scalar_type(), "rustorch_tanh_backward", [&] {
    using T = scalar_t;
    loops::for_each<T, T, T>(iter, [](T g, T y) { return g * (T(1) - y * y); });
  });
  return grad_input;
}

at::Tensor& sigmoid_out(const at::Tensor& self, at::Tensor& out) {
  auto iter = iter_of(out, {self});
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_sigmoid", [&] {
    using T = scalar_t;
    loops::for_each<T, T>(iter, [](T x) { return T(1) / (T(1) + std::exp(-x)); });
  });
  return out;
}

at::Tensor& sigmoid_backward_out(const at::Tensor& grad, const at::Tensor& output,
                                 at::Tensor& grad_input) {
  auto iter = iter_of(grad_input, {grad, output});
  AT_DISPATCH_FLOATING_TYPES(output.scalar_type(), "rustorch_sigmoid_backward", [&] {
    using T = scalar_t;
    loops::for_each<T, T, T>(iter, [](T g, T y) { return g * (T(1) - y) * y; });
  });
  return grad_input;
}

}  // namespace rustorch::native
