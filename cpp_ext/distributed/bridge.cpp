// See bridge.h. Everything here runs CPU ATen on CPU views, so it never re-enters the rustorch
// dispatcher and can run on gloo's threads (future callbacks) as well as the caller's.
#include "distributed/bridge.h"

#include <ATen/ATen.h>

#include "aten/alias.h"

namespace rustorch::dist {

namespace {

bool gloo_runs(c10d::ReduceOp::RedOpType op) {
  switch (op) {
    case c10d::ReduceOp::SUM:
    case c10d::ReduceOp::PRODUCT:
    case c10d::ReduceOp::MIN:
    case c10d::ReduceOp::MAX:
    case c10d::ReduceOp::BAND:
    case c10d::ReduceOp::BOR:
    case c10d::ReduceOp::BXOR:
      return true;
    default:
      return false;
  }
}

at::Tensor cpu_view(const at::Tensor& t) {
  TORCH_CHECK_VALUE(t.defined(), "rgloo: expected a tensor, got an undefined one");
  TORCH_CHECK_VALUE(t.layout() == c10::kStrided,
                    "rgloo supports dense (strided) tensors only, got ", t.layout());
  const auto type = t.device().type();
  TORCH_CHECK_VALUE(type == c10::DeviceType::PrivateUse1 || type == c10::DeviceType::CPU,
                    "rgloo handles rustorch and cpu tensors, got a tensor on ", t.device());
  return type == c10::DeviceType::CPU ? t : rustorch::as_cpu(t);
}

}  // namespace

Reduction plan_reduction(const c10d::ReduceOp& op, int world_size,
                         const std::vector<at::Tensor>& tensors) {
  Reduction r{c10d::ReduceOp(op)};
  if (gloo_runs(op.op_)) return r;
  r.gloo_op = c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (op.op_ == c10d::ReduceOp::AVG) {
    for (const auto& t : tensors)
      TORCH_CHECK_VALUE(!t.defined() || t.scalar_type() != at::kBool,
                        "rgloo: ReduceOp.AVG is not defined for bool tensors");
    r.divisor = world_size;
    return r;
  }
  TORCH_CHECK_VALUE(op.op_ == c10d::ReduceOp::PREMUL_SUM, "rgloo: unsupported reduce op ",
                    static_cast<int>(op.op_));
  const auto* sup = dynamic_cast<const c10d::PreMulSumSupplement*>(op.supplement_.get());
  TORCH_CHECK_VALUE(sup != nullptr, "rgloo: PREMUL_SUM without its factor");
  r.premul = true;
  if (sup->tensor_factor.defined()) {
    TORCH_CHECK_VALUE(sup->tensor_factor.numel() == 1, "PREMUL_SUM needs a scalar factor");
    r.factor_tensor = cpu_view(sup->tensor_factor).reshape({});
  } else {
    r.factor = sup->double_factor;
  }
  return r;
}

at::Tensor Bridge::cpu(const at::Tensor& t, bool output, const Reduction* scale,
                       const Reduction* divide) {
  at::Tensor alias = cpu_view(t);
  at::Tensor staged = alias;
  if (scale != nullptr && scale->premul) {
    staged = scale->factor_tensor.defined() ? alias.mul(scale->factor_tensor)
                                            : alias.mul(scale->factor);
  } else if (!alias.is_contiguous()) {
    staged = alias.contiguous();
  }
  if (output && !staged.is_same(alias)) writebacks_.emplace_back(alias, staged);
  if (divide != nullptr && divide->divisor > 0) {
    divide_.push_back(alias);
    divisor_ = divide->divisor;
  }
  originals_.emplace_back(staged, t);
  return staged;
}

std::vector<at::Tensor> Bridge::cpu(const std::vector<at::Tensor>& ts, bool output,
                                    const Reduction* scale, const Reduction* divide) {
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(cpu(t, output, scale, divide));
  return out;
}

std::vector<std::vector<at::Tensor>> Bridge::cpu(const std::vector<std::vector<at::Tensor>>& ts,
                                                 bool output, const Reduction* scale) {
  std::vector<std::vector<at::Tensor>> out;
  out.reserve(ts.size());
  for (const auto& list : ts) out.push_back(cpu(list, output, scale));
  return out;
}

void Bridge::complete() {
  for (auto& [alias, staged] : writebacks_) alias.copy_(staged);
  for (auto& t : divide_) {
    if (t.is_floating_point() || t.is_complex()) {
      t.div_(divisor_);
    } else {  // integers: truncate toward zero, as C and NCCL do
      t.copy_(at::div(t, divisor_, "trunc"));
    }
  }
}

at::Tensor Bridge::original(const at::Tensor& cpu) const {
  for (const auto& [staged, user] : originals_)
    if (staged.is_same(cpu)) return user;
  return cpu;
}

c10::IValue Bridge::originals(const c10::IValue& value) const {
  if (value.isTensor()) return original(value.toTensor());
  if (value.isTensorList()) {
    c10::List<at::Tensor> out;
    for (const at::Tensor& t : value.toTensorList()) out.push_back(original(t));
    return out;
  }
  if (value.isList()) {
    auto in = value.toList();
    c10::impl::GenericList out(in.elementType());
    for (const c10::IValue& v : in) out.push_back(originals(v));
    return out;
  }
  return value;
}

}  // namespace rustorch::dist
