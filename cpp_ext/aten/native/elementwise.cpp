// Element-wise kernels: the op math lives in small functors; loops::for_each runs them.
#include "aten/native/elementwise.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch_v2.h>
#include <ATen/Parallel.h>
#include <ATen/TensorIterator.h>
#include <ATen/native/Resize.h>

#include <cmath>
#include <limits>
#include <vector>

#include "aten/native/elementwise_loops.h"

namespace rustorch::native {
namespace {

bool is_float(at::ScalarType t) { return t == at::kFloat || t == at::kDouble; }

// dtype shared by the operands that decide the result dtype, in PyTorch's priority order:
// tensors with dims, else 0-dim tensors, else wrapped Python numbers. nullopt when they differ.
std::optional<at::ScalarType> deciding_dtype(c10::ArrayRef<at::Tensor> inputs) {
  auto rank = [](const at::Tensor& t) {
    return t.dim() > 0 ? 2 : t.unsafeGetTensorImpl()->is_wrapped_number() ? 0 : 1;
  };
  int top = 0;
  for (const auto& t : inputs) {
    if (!t.defined() || t.layout() != at::kStrided) return std::nullopt;
    top = std::max(top, rank(t));
  }
  std::optional<at::ScalarType> dt;
  for (const auto& t : inputs) {
    if (rank(t) != top) continue;
    if (dt && *dt != t.scalar_type()) return std::nullopt;
    dt = t.scalar_type();
  }
  return dt;
}

// A 0-dim operand of another real dtype, converted to `dtype` (type promotion lets the
// dimensioned operands decide the result dtype).
at::Tensor as_dtype(const at::Tensor& t, at::ScalarType dtype) {
  if (t.scalar_type() == dtype) return t;
  if (t.is_cpu()) return t.to(dtype);
  at::Tensor r = at::empty({}, t.options().dtype(dtype));
  fill(r, t.item());
  return r;
}

at::TensorIterator build(const at::Tensor& out, std::initializer_list<at::Tensor> inputs,
                         at::ScalarType in_dtype, at::ScalarType out_dtype) {
  // In-place (out is the first input): never resize self, raise on a broadcast mismatch.
  const bool inplace = out.defined() && inputs.size() > 0 && out.is_same(*inputs.begin());
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(true)
      .allow_cpu_scalars(true)
      .check_all_same_dtype(false)
      .resize_outputs(!inplace)
      .declare_static_dtype(out_dtype)
      .add_owned_output(out);
  for (const auto& t : inputs) cfg.add_owned_const_input(as_dtype(t, in_dtype));
  return cfg.build();
}

at::Tensor result(const at::TensorIterator& iter, const at::Tensor& out) {
  return out.defined() ? out : iter.output();
}

template <typename T>
struct AddF {
  T alpha;
  T operator()(T a, T b) const { return a + alpha * b; }
};
template <typename T>
struct SubF {
  T alpha;
  T operator()(T a, T b) const { return a - alpha * b; }
};
template <typename T>
struct MulF {
  T operator()(T a, T b) const { return a * b; }
};
template <typename T>
struct DivF {
  T operator()(T a, T b) const { return a / b; }
};

template <typename T>
T lerp_value(T self, T end, T w) {
  // PyTorch's formula: exact at both ends of the interval.
  return std::abs(w) < T(0.5) ? self + w * (end - self) : end - (end - self) * (T(1) - w);
}

}  // namespace

bool float_elementwise_supported(c10::ArrayRef<at::Tensor> inputs, const at::Tensor& out) {
  auto dt = deciding_dtype(inputs);
  if (!dt || !is_float(*dt)) return false;
  for (const auto& t : inputs) {
    const auto st = t.scalar_type();
    if (st != *dt && (at::isComplexType(st) || !(at::isFloatingType(st) || at::isIntegralType(st, true))))
      return false;
  }
  return !out.defined() || (out.scalar_type() == *dt && out.layout() == at::kStrided);
}

bool integer_elementwise_supported(c10::ArrayRef<at::Tensor> inputs, const at::Tensor& out) {
  // The signed and unsigned 8-bit to 64-bit types ATen's integer kernels dispatch over.
  auto integral = [](at::ScalarType t) {
    return t == at::kByte || t == at::kChar || t == at::kShort || t == at::kInt || t == at::kLong;
  };
  auto dt = deciding_dtype(inputs);
  if (!dt || !integral(*dt)) return false;
  for (const auto& t : inputs)
    if (!integral(t.scalar_type())) return false;
  return !out.defined() || (out.scalar_type() == *dt && out.layout() == at::kStrided);
}

bool float_scalar_supported(const at::Tensor& self, const at::Scalar& s, const at::Tensor& out) {
  return self.layout() == at::kStrided && is_float(self.scalar_type()) && !s.isComplex() &&
         !s.isBoolean() && (!out.defined() || out.scalar_type() == self.scalar_type());
}

at::Tensor binary(BinaryOp op, const at::Tensor& a, const at::Tensor& b, const at::Scalar& alpha,
                  const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({a, b});
  // Integer division is true division in PyTorch (a float result): never on integer operands.
  TORCH_CHECK(op != BinaryOp::Div || is_float(dt), "rustorch binary: div of integer tensors");
  auto iter = build(out, {a, b}, dt, dt);
  AT_DISPATCH_V2(dt, "rustorch_binary", AT_WRAP([&] {
    using T = scalar_t;
    switch (op) {
      case BinaryOp::Add: loops::for_each<T, T, T>(iter, AddF<T>{alpha.to<T>()}); break;
      case BinaryOp::Sub: loops::for_each<T, T, T>(iter, SubF<T>{alpha.to<T>()}); break;
      case BinaryOp::Mul: loops::for_each<T, T, T>(iter, MulF<T>{}); break;
      case BinaryOp::Div: loops::for_each<T, T, T>(iter, DivF<T>{}); break;
    }
  }), at::kFloat, at::kDouble, AT_EXPAND(AT_INTEGRAL_TYPES));
  return result(iter, out);
}

at::Tensor binary_scalar(BinaryOp op, const at::Tensor& a, const at::Scalar& b,
                         const at::Scalar& alpha, const at::Tensor& out) {
  const at::ScalarType dt = a.scalar_type();
  auto iter = build(out, {a}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_binary_scalar", [&] {
    using T = scalar_t;
    const T s = b.to<T>();
    switch (op) {
      case BinaryOp::Add: {
        const T v = alpha.to<T>() * s;
        loops::for_each<T, T>(iter, [v](T x) { return x + v; });
        break;
      }
      case BinaryOp::Sub: {
        const T v = alpha.to<T>() * s;
        loops::for_each<T, T>(iter, [v](T x) { return x - v; });
        break;
      }
      case BinaryOp::Mul: loops::for_each<T, T>(iter, [s](T x) { return x * s; }); break;
      case BinaryOp::Div: loops::for_each<T, T>(iter, [s](T x) { return x / s; }); break;
    }
  });
  return result(iter, out);
}

at::Tensor unary(UnaryOp op, const at::Tensor& a, const at::Tensor& out) {
  const at::ScalarType dt = a.scalar_type();
  auto iter = build(out, {a}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_unary", [&] {
    using T = scalar_t;
    switch (op) {
      case UnaryOp::Sqrt: loops::for_each<T, T>(iter, [](T x) { return std::sqrt(x); }); break;
      case UnaryOp::Neg: loops::for_each<T, T>(iter, [](T x) { return -x; }); break;
      // x < 0 ? 0 : x keeps NaN, like clamp_min(x, 0).
      case UnaryOp::Relu: loops::for_each<T, T>(iter, [](T x) { return x < T(0) ? T(0) : x; }); break;
      case UnaryOp::Reciprocal: loops::for_each<T, T>(iter, [](T x) { return T(1) / x; }); break;
    }
  });
  return result(iter, out);
}

at::Tensor addcmul(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                   const at::Scalar& value, const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({self, t1, t2});
  auto iter = build(out, {self, t1, t2}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_addcmul", [&] {
    using T = scalar_t;
    const T v = value.to<T>();
    loops::for_each<T, T, T, T>(iter, [v](T s, T a, T b) { return s + v * a * b; });
  });
  return result(iter, out);
}

at::Tensor addcdiv(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                   const at::Scalar& value, const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({self, t1, t2});
  auto iter = build(out, {self, t1, t2}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_addcdiv", [&] {
    using T = scalar_t;
    const T v = value.to<T>();
    loops::for_each<T, T, T, T>(iter, [v](T s, T a, T b) { return s + v * (a / b); });
  });
  return result(iter, out);
}

at::Tensor lerp_scalar(const at::Tensor& self, const at::Tensor& end, const at::Scalar& weight,
                       const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({self, end});
  auto iter = build(out, {self, end}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_lerp", [&] {
    using T = scalar_t;
    const T w = weight.to<T>();
    loops::for_each<T, T, T>(iter, [w](T s, T e) { return lerp_value(s, e, w); });
  });
  return result(iter, out);
}

at::Tensor lerp_tensor(const at::Tensor& self, const at::Tensor& end, const at::Tensor& weight,
                       const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({self, end, weight});
  auto iter = build(out, {self, end, weight}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_lerp", [&] {
    using T = scalar_t;
    loops::for_each<T, T, T, T>(iter, [](T s, T e, T w) { return lerp_value(s, e, w); });
  });
  return result(iter, out);
}

at::Tensor threshold_backward(const at::Tensor& grad, const at::Tensor& self,
                              const at::Scalar& threshold, const at::Tensor& out) {
  const at::ScalarType dt = *deciding_dtype({grad, self});
  auto iter = build(out, {grad, self}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_threshold_backward", [&] {
    using T = scalar_t;
    const T th = threshold.to<T>();
    loops::for_each<T, T, T>(iter, [th](T g, T x) { return x <= th ? T(0) : g; });
  });
  return result(iter, out);
}

bool dropout_backward_supported(const at::Tensor& grad, const at::Tensor& mask) {
  return grad.layout() == at::kStrided && mask.layout() == at::kStrided &&
         is_float(grad.scalar_type()) &&
         (mask.scalar_type() == at::kBool || mask.scalar_type() == grad.scalar_type());
}

at::Tensor dropout_backward(const at::Tensor& grad, const at::Tensor& mask, double scale) {
  const at::ScalarType dt = grad.scalar_type();
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(true)
      .check_all_same_dtype(false)
      .declare_static_dtype(dt)
      .add_owned_output(at::Tensor())
      .add_owned_const_input(grad)
      .add_owned_const_input(mask);
  auto iter = cfg.build();
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_dropout_backward", [&] {
    using T = scalar_t;
    const T s = static_cast<T>(scale);
    if (mask.scalar_type() == at::kBool) {
      loops::for_each<T, T, bool>(iter, [s](T g, bool m) { return g * (T(m) * s); });
    } else {
      loops::for_each<T, T, T>(iter, [s](T g, T m) { return g * (m * s); });
    }
  });
  return iter.output();
}

namespace {
bool eq_dtype_ok(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kLong || t == at::kInt || t == at::kBool;
}
}  // namespace

bool eq_supported(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out) {
  return a.layout() == at::kStrided && b.layout() == at::kStrided &&
         a.scalar_type() == b.scalar_type() && eq_dtype_ok(a.scalar_type()) &&
         (!out.defined() || out.scalar_type() == at::kBool);
}

bool eq_scalar_supported(const at::Tensor& a, const at::Scalar& s, const at::Tensor& out) {
  // Integral tensors against a floating Scalar promote to float: leave that to the fallback.
  return a.layout() == at::kStrided && eq_dtype_ok(a.scalar_type()) && !s.isComplex() &&
         (is_float(a.scalar_type()) || !s.isFloatingPoint()) &&
         (!out.defined() || out.scalar_type() == at::kBool);
}

at::Tensor eq(const at::Tensor& a, const at::Tensor& b, const at::Tensor& out) {
  const at::ScalarType dt = a.scalar_type();
  auto iter = build(out, {a, b}, dt, at::kBool);
  AT_DISPATCH_V2(dt, "rustorch_eq", AT_WRAP([&] {
    loops::for_each<bool, scalar_t, scalar_t>(iter, [](scalar_t x, scalar_t y) { return x == y; });
  }), at::kFloat, at::kDouble, at::kLong, at::kInt, at::kBool);
  return result(iter, out);
}

at::Tensor eq_scalar(const at::Tensor& a, const at::Scalar& s, const at::Tensor& out) {
  const at::ScalarType dt = a.scalar_type();
  auto iter = build(out, {a}, dt, at::kBool);
  AT_DISPATCH_V2(dt, "rustorch_eq_scalar", AT_WRAP([&] {
    const scalar_t v = s.to<scalar_t>();
    loops::for_each<bool, scalar_t>(iter, [v](scalar_t x) { return x == v; });
  }), at::kFloat, at::kDouble, at::kLong, at::kInt, at::kBool);
  return result(iter, out);
}

bool fill_supported(const at::Tensor& self) {
  const auto st = self.scalar_type();
  return self.layout() == at::kStrided &&
         (st == at::kBool || (at::isIntegralType(st, false) || st == at::kFloat || st == at::kDouble));
}

at::Tensor& fill(at::Tensor& self, const at::Scalar& value) {
  if (self.numel() == 0) return self;
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(false)
      .resize_outputs(false)
      .check_all_same_dtype(false)
      .add_output(self);
  auto iter = cfg.build();
  AT_DISPATCH_V2(self.scalar_type(), "rustorch_fill", AT_WRAP([&] {
    const scalar_t v = value.to<scalar_t>();
    loops::for_each<scalar_t>(iter, [v]() { return v; });
  }), AT_EXPAND(AT_INTEGRAL_TYPES), at::kFloat, at::kDouble, at::kBool);
  return self;
}

// ---- aten-signature forms -----------------------------------------------------------------

at::Tensor addcmul_op(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                      const at::Scalar& value) {
  return addcmul(self, t1, t2, value, at::Tensor());
}
at::Tensor& addcmul_op_(at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                        const at::Scalar& value) {
  addcmul(self, t1, t2, value, self);
  return self;
}
at::Tensor addcdiv_op(const at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                      const at::Scalar& value) {
  return addcdiv(self, t1, t2, value, at::Tensor());
}
at::Tensor& addcdiv_op_(at::Tensor& self, const at::Tensor& t1, const at::Tensor& t2,
                        const at::Scalar& value) {
  addcdiv(self, t1, t2, value, self);
  return self;
}
at::Tensor lerp_scalar_op(const at::Tensor& self, const at::Tensor& end, const at::Scalar& w) {
  return lerp_scalar(self, end, w, at::Tensor());
}
at::Tensor& lerp_scalar_op_(at::Tensor& self, const at::Tensor& end, const at::Scalar& w) {
  lerp_scalar(self, end, w, self);
  return self;
}
at::Tensor lerp_tensor_op(const at::Tensor& self, const at::Tensor& end, const at::Tensor& w) {
  return lerp_tensor(self, end, w, at::Tensor());
}
at::Tensor& lerp_tensor_op_(at::Tensor& self, const at::Tensor& end, const at::Tensor& w) {
  lerp_tensor(self, end, w, self);
  return self;
}
at::Tensor threshold_backward_op(const at::Tensor& grad, const at::Tensor& self,
                                 const at::Scalar& threshold) {
  return threshold_backward(grad, self, threshold, at::Tensor());
}

at::Tensor eq_tensor_op(const at::Tensor& self, const at::Tensor& other) {
  return eq(self, other, at::Tensor());
}
at::Tensor& eq_tensor_out(const at::Tensor& self, const at::Tensor& other, at::Tensor& out) {
  eq(self, other, out);
  return out;
}
at::Tensor eq_scalar_op(const at::Tensor& self, const at::Scalar& other) {
  return eq_scalar(self, other, at::Tensor());
}
at::Tensor& eq_scalar_out(const at::Tensor& self, const at::Scalar& other, at::Tensor& out) {
  eq_scalar(self, other, out);
  return out;
}
bool eq_tensor_ok(const at::Tensor& self, const at::Tensor& other) {
  return eq_supported(self, other, at::Tensor());
}
bool eq_tensor_out_ok(const at::Tensor& self, const at::Tensor& other, at::Tensor& out) {
  return eq_supported(self, other, out);
}
bool eq_scalar_ok(const at::Tensor& self, const at::Scalar& other) {
  return eq_scalar_supported(self, other, at::Tensor());
}
bool eq_scalar_out_ok(const at::Tensor& self, const at::Scalar& other, at::Tensor& out) {
  return eq_scalar_supported(self, other, out);
}

at::Tensor& fill_scalar_(at::Tensor& self, const at::Scalar& value) { return fill(self, value); }
at::Tensor& fill_tensor_(at::Tensor& self, const at::Tensor& value) {
  return fill(self, value.item());
}
at::Tensor& zero_op_(at::Tensor& self) { return fill(self, 0); }
bool fill_scalar_ok(at::Tensor& self, const at::Scalar& value) {
  return fill_supported(self) && !value.isComplex();
}
bool fill_tensor_ok(at::Tensor& self, const at::Tensor& value) {
  return fill_supported(self) && value.dim() == 0 && !at::isComplexType(value.scalar_type());
}
bool zero_ok(at::Tensor& self) { return fill_supported(self); }

at::Tensor native_dropout_backward(const at::Tensor& grad, const at::Tensor& mask, double scale) {
  return dropout_backward(grad, mask, scale);
}
bool native_dropout_backward_ok(const at::Tensor& grad, const at::Tensor& mask, double) {
  return dropout_backward_supported(grad, mask);
}

namespace {

at::Tensor pow_impl(const at::Tensor& self, const at::Scalar& exponent, const at::Tensor& out) {
  const at::ScalarType dt = self.scalar_type();
  auto iter = build(out, {self}, dt, dt);
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_pow_scalar", [&] {
    using T = scalar_t;
    const double e = exponent.to<double>();
    // ATen's special cases (same results as its CPU kernel), then std::pow.
    if (e == 2) {
      loops::for_each<T, T>(iter, [](T x) { return x * x; });
    } else if (e == 3) {
      loops::for_each<T, T>(iter, [](T x) { return x * x * x; });
    } else if (e == 0.5) {
      loops::for_each<T, T>(iter, [](T x) { return std::sqrt(x); });
    } else if (e == -0.5) {
      loops::for_each<T, T>(iter, [](T x) { return T(1) / std::sqrt(x); });
    } else if (e == -1) {
      loops::for_each<T, T>(iter, [](T x) { return T(1) / x; });
    } else if (e == -2) {
      loops::for_each<T, T>(iter, [](T x) { return T(1) / (x * x); });
    } else if (e == 1) {
      loops::for_each<T, T>(iter, [](T x) { return x; });
    } else {
      const T et = static_cast<T>(e);
      loops::for_each<T, T>(iter, [et](T x) { return std::pow(x, et); });
    }
  });
  return result(iter, out);
}

}  // namespace

at::Tensor pow_scalar(const at::Tensor& self, const at::Scalar& exponent) {
  return pow_impl(self, exponent, at::Tensor());
}
at::Tensor& pow_scalar_out(const at::Tensor& self, const at::Scalar& exponent, at::Tensor& out) {
  pow_impl(self, exponent, out);
  return out;
}
at::Tensor& pow_scalar_(at::Tensor& self, const at::Scalar& exponent) {
  pow_impl(self, exponent, self);
  return self;
}

bool isneginf_out_ok(const at::Tensor& self, at::Tensor& out) {
  return is_float(self.scalar_type()) && out.scalar_type() == at::kBool &&
         self.device() == out.device();
}

at::Tensor& isneginf_out(const at::Tensor& self, at::Tensor& out) {
  auto iter = build(out, {self}, self.scalar_type(), at::kBool);
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_isneginf", [&] {
    loops::for_each<bool, scalar_t>(
        iter, [](scalar_t x) { return x == -std::numeric_limits<scalar_t>::infinity(); });
  });
  return out;
}

bool all_dim_out_ok(const at::Tensor& self, int64_t dim, bool, at::Tensor& out) {
  return self.scalar_type() == at::kBool && out.scalar_type() == at::kBool && self.dim() > 0 &&
         dim >= -self.dim() && dim < self.dim() && self.device() == out.device();
}

at::Tensor& all_dim_out(const at::Tensor& self, int64_t dim, bool keepdim, at::Tensor& out) {
  const int64_t d = c10::maybe_wrap_dim(dim, self.dim());
  std::vector<int64_t> shape(self.sizes().begin(), self.sizes().end());
  const int64_t len = shape[d];
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= shape[i];
  for (int64_t i = d + 1; i < self.dim(); ++i) inner *= shape[i];
  if (keepdim) {
    shape[d] = 1;
  } else {
    shape.erase(shape.begin() + d);
  }
  at::native::resize_output(out, shape);
  const at::Tensor x = self.contiguous();
  at::Tensor r = out.is_contiguous() ? out : at::empty(shape, out.options());
  const bool* xp = x.const_data_ptr<bool>();
  bool* rp = r.data_ptr<bool>();
  at::parallel_for(0, outer * inner, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t idx = begin; idx < end; ++idx) {
      const int64_t o = idx / inner, i = idx % inner;
      bool v = true;
      for (int64_t k = 0; k < len && v; ++k) v = xp[(o * len + k) * inner + i];
      rp[idx] = v;
    }
  });
  if (!r.is_same(out)) out.copy_(r);
  return out;
}

bool where_self_out_ok(const at::Tensor& condition, const at::Tensor& self,
                       const at::Tensor& other, at::Tensor& out) {
  return condition.scalar_type() == at::kBool && is_float(self.scalar_type()) &&
         other.scalar_type() == self.scalar_type() && out.scalar_type() == self.scalar_type() &&
         condition.device() == out.device() && self.device() == out.device() &&
         other.device() == out.device();
}

at::Tensor& where_self_out(const at::Tensor& condition, const at::Tensor& self,
                           const at::Tensor& other, at::Tensor& out) {
  at::TensorIteratorConfig cfg;
  cfg.set_check_mem_overlap(true)
      .check_all_same_dtype(false)
      .add_output(out)
      .add_const_input(condition)
      .add_const_input(self)
      .add_const_input(other);
  auto iter = cfg.build();
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_where", [&] {
    using T = scalar_t;
    loops::for_each<T, bool, T, T>(iter, [](bool c, T a, T b) { return c ? a : b; });
  });
  return out;
}

namespace {
// The device of where's result: that of the first operand that is not a 0-dim CPU tensor.
std::optional<at::Device> where_device(std::initializer_list<const at::Tensor*> ts) {
  for (const at::Tensor* t : ts)
    if (!(t->is_cpu() && t->dim() == 0)) return t->device();
  return std::nullopt;
}
}  // namespace

bool where_self_ok(const at::Tensor& condition, const at::Tensor& self, const at::Tensor& other) {
  if (condition.scalar_type() != at::kBool) return false;
  const auto dev = where_device({&condition, &self, &other});
  if (!dev || dev->type() != c10::DeviceType::PrivateUse1) return false;
  const at::ScalarType dt = at::result_type(self, other);
  if (!is_float(dt)) return false;
  for (const at::Tensor* t : {&condition, &self, &other}) {
    const bool cpu_scalar = t->is_cpu() && t->dim() == 0;
    if (!cpu_scalar && t->device() != *dev) return false;
    // Operands other than the condition: of the result dtype, or a real 0-dim value to convert.
    if (t != &condition && t->scalar_type() != dt &&
        (t->dim() != 0 || at::isComplexType(t->scalar_type())))
      return false;
  }
  return true;
}

at::Tensor where_self(const at::Tensor& condition, const at::Tensor& self,
                      const at::Tensor& other) {
  const at::ScalarType dt = at::result_type(self, other);
  const at::Device dev = *where_device({&condition, &self, &other});
  at::TensorIteratorConfig cfg;
  cfg.check_all_same_dtype(false)
      .allow_cpu_scalars(true)
      .declare_static_dtype(dt)
      .declare_static_device(dev)
      .add_owned_output(at::Tensor())
      .add_owned_const_input(condition)
      .add_owned_const_input(as_dtype(self, dt))
      .add_owned_const_input(as_dtype(other, dt));
  auto iter = cfg.build();
  AT_DISPATCH_FLOATING_TYPES(dt, "rustorch_where", [&] {
    using T = scalar_t;
    loops::for_each<T, bool, T, T>(iter, [](bool c, T a, T b) { return c ? a : b; });
  });
  return iter.output();
}

}  // namespace rustorch::native
