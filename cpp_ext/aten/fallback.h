// The counted CPU fallback of rustorch: every aten op without a native rustorch kernel runs on
// CPU ATen over zero-copy CPU views of the rustorch memory (device memory is host memory).
//
// Native kernels do not call it: aten/native_or_fallback.h checks their support once and
// sends unsupported calls here (`fallback<Op>(args...)`, counted as a fallback call).
//
// Convolution: aten::convolution / convolution_backward are CompositeExplicitAutograd and send
// unknown devices to convolution_overrideable / convolution_backward_overrideable, which this
// file routes to CPU. A native convolution should be registered on "convolution" and
// "convolution_backward" themselves (the PrivateUse1 kernel then wins over the composite one),
// not on the *_overrideable ops.
#pragma once

#include <ATen/core/boxing/KernelFunction.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>

#include <utility>

namespace rustorch {

// The boxed fallback registered for PrivateUse1 (counts a fallback call of `op`).
void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack);

// Typed form of cpu_fallback; Op is an at::_ops struct (at::_ops::add_Tensor, ...). Arguments
// must match Op::schema (SymInt ops take c10::SymIntArrayRef / c10::SymInt).
template <class Op, class... Args>
decltype(auto) fallback(Args&&... args) {
  using Schema = typename Op::schema;
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow(Op::name, Op::overload_name);
  return c10::impl::BoxedKernelWrapper<Schema>::call(
      c10::BoxedKernel::makeFromFunction<&cpu_fallback>(), op, c10::DispatchKeySet(),
      std::forward<Args>(args)...);
}

// How the fallback hands back new result tensors: adopt the CPU result's memory (zero-copy,
// default) or allocate on the device and copy (kept for measurement: benchmarks/fallback.py).
enum class OutputMode { kAdopt = 0, kCopy = 1 };
void set_output_mode(OutputMode mode);
OutputMode output_mode();

// RUSTORCH_FALLBACK: silent (default), warn (once per op), error (raise).
enum class FallbackPolicy { kSilent = 0, kWarn = 1, kError = 2 };
void set_fallback_policy(FallbackPolicy policy);
FallbackPolicy fallback_policy();
// Parses RUSTORCH_FALLBACK; raises on an unknown value.
FallbackPolicy policy_from_env();

}  // namespace rustorch
