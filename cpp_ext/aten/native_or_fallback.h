// The one registration mechanism of rustorch's native kernels:
//
//   RUSTORCH_OP(m, add_Tensor, native::binary_alpha<Add>, native::FloatElementwise{});
//
// registers `native::binary_alpha<Add>` as the PrivateUse1 kernel of aten::add.Tensor
// (`at::_ops::add_Tensor`). Each call first checks, once, that the native kernel can take it:
//   1. every tensor argument is plain memory (see plain_tensor below), and
//   2. the op's own predicate (dtypes, layouts, dims) accepts the arguments;
// then the native kernel runs and the call counts as native; otherwise the same call runs on the
// counted CPU fallback (aten/fallback.h) and counts as fallback. Native kernels never re-check
// and never fall back themselves: an unsupported input is slower, never wrong.
//
// The predicate is any callable taking the kernel's arguments (a function pointer, or an empty
// struct with operator() for generic checks shared by many ops). Kernel signatures may use
// int64_t / IntArrayRef where the schema says SymInt / SymInt[]; the fallback call converts.
#pragma once

#include <ATen/core/IListRef.h>
#include <ATen/core/Tensor.h>
#include <c10/core/SymIntArrayRef.h>
#include <c10/util/Metaprogramming.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "aten/fallback.h"
#include "runtime/op_stats.h"

namespace rustorch {

// What no native kernel handles, whatever the op: tensors whose values are not simply their
// memory (ZeroTensor without storage, lazily conjugated or negated views), non-strided layouts,
// and storage without data (numel > 0 but never allocated). ATen's fallback knows them all.
inline bool plain_tensor(const at::Tensor& t) {
  if (!t.defined()) return true;
  if (t.layout() != at::kStrided || t._is_zerotensor() || t.is_conj() || t.is_neg()) return false;
  return t.numel() == 0 || (t.has_storage() && t.storage().data() != nullptr);
}

namespace registration {

template <class T>
bool plain_arg(const T& v) {
  using D = std::decay_t<T>;
  if constexpr (std::is_same_v<D, at::Tensor>) {
    return plain_tensor(v);
  } else if constexpr (std::is_same_v<D, std::optional<at::Tensor>>) {
    return !v.has_value() || plain_tensor(*v);
  } else if constexpr (std::is_same_v<D, at::TensorList>) {
    for (const auto& t : v)
      if (!plain_tensor(t)) return false;
    return true;
  } else if constexpr (std::is_same_v<D, at::ITensorListRef>) {
    for (const at::Tensor& t : v)
      if (!plain_tensor(t)) return false;
    return true;
  } else {
    return true;
  }
}

// A kernel argument as the op's schema type for the boxed fallback (int64_t -> SymInt, ...).
template <class To, class From>
decltype(auto) as_schema_arg(From&& v) {
  using T = std::decay_t<To>;
  using F = std::decay_t<From>;
  if constexpr (std::is_same_v<T, c10::SymIntArrayRef> && std::is_same_v<F, at::IntArrayRef>) {
    return c10::fromIntArrayRefSlow(v);
  } else if constexpr (std::is_same_v<T, c10::SymInt> && std::is_integral_v<F>) {
    return c10::SymInt(v);
  } else if constexpr (std::is_same_v<T, at::OptionalSymIntArrayRef> &&
                       std::is_same_v<F, at::OptionalIntArrayRef>) {
    return v.has_value() ? at::OptionalSymIntArrayRef(c10::fromIntArrayRefSlow(*v))
                         : at::OptionalSymIntArrayRef();
  } else {
    return std::forward<From>(v);
  }
}

template <class Op, class Params, size_t... I, class... Args>
decltype(auto) fallback_with(std::index_sequence<I...>, Args&&... args) {
  return fallback<Op>(
      as_schema_arg<c10::guts::typelist::element_t<I, Params>>(std::forward<Args>(args))...);
}

template <class Op>
std::string op_key() {
  const std::string overload = Op::overload_name;
  return overload.empty() ? std::string(Op::name) : std::string(Op::name) + "." + overload;
}

template <class Op, auto Native, auto Supported, class Sig>
struct NativeOrFallback;

template <class Op, auto Native, auto Supported, class R, class... Args>
struct NativeOrFallback<Op, Native, Supported, R (*)(Args...)> {
  static R call(Args... args) {
    if ((plain_arg(args) && ...) && Supported(args...)) {
      static OpCounter& counter = op_counter(op_key<Op>());
      counter.native.fetch_add(1, std::memory_order_relaxed);
      return Native(std::forward<Args>(args)...);
    }
    using Params = typename c10::guts::infer_function_traits_t<typename Op::schema>::parameter_types;
    return fallback_with<Op, Params>(std::index_sequence_for<Args...>{},
                                     std::forward<Args>(args)...);
  }
};

// Always true: for ops whose kernel takes every plain input (fill_ of any dtype is not one).
struct AnyPlain {
  template <class... A>
  bool operator()(const A&...) const { return true; }
};

}  // namespace registration
}  // namespace rustorch

// Registers `native_fn` for at::_ops::OP (inside TORCH_LIBRARY_IMPL(aten, PrivateUse1, m)):
// native when plain_tensor() and `supported(args...)` hold, the counted CPU fallback otherwise.
#define RUSTORCH_OP(m, OP, native_fn, supported)                                                \
  m.impl(::rustorch::registration::op_key<at::_ops::OP>().c_str(),                            \
         TORCH_FN((::rustorch::registration::NativeOrFallback<                                 \
                   at::_ops::OP, &native_fn, supported, decltype(&native_fn)>::call)))
