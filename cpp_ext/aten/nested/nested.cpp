// The NestedTensorPrivateUse1 fallback: runs CPU's nested-tensor kernels on rustorch nested
// tensors (see nested.h). Why a fallback of its own: ops on nested tensors dispatch on the
// NestedTensor functionality key, which the dense fallback (aten/fallback.cpp) does not cover,
// and nested tensors have no strides, so the dense aliasing cannot describe them.
//
// One call: nested rustorch arguments become CPU nested tensors over the same buffer (same
// sizes/strides/offsets tensors), dense rustorch arguments CPU aliases, rustorch devices CPU;
// the op runs on CPU below autograd (autograd, if any, already ran on the rustorch tensors);
// results over an argument's memory map back onto that argument's rustorch storage, new ones
// are adopted (sole owner) or copied.
#include "aten/nested/nested.h"

#include <ATen/ATen.h>
#include <ATen/NestedTensorImpl.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/intrusive_ptr.h>
#include <torch/library.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aten/alias.h"
#include "runtime/op_stats.h"

namespace rustorch {
namespace {

bool on_device(const at::Tensor& t) {
  return t.defined() && t.device().type() == c10::DeviceType::PrivateUse1;
}

// A flat buffer tensor of `storage` (dtype of `like`) with dispatch key `key`.
at::Tensor flat_buffer(c10::Storage storage, c10::DispatchKey key, const at::Tensor& like) {
  const auto itemsize = static_cast<int64_t>(like.dtype().itemsize());
  const auto numel = static_cast<int64_t>(storage.nbytes()) / itemsize;
  auto buf = at::detail::make_tensor<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(key),
                                                      like.dtype());
  buf.unsafeGetTensorImpl()->set_sizes_contiguous({numel});
  return buf;
}

// A nested tensor over `storage` with the structure (sizes, strides, offsets) of `like`.
at::Tensor nested_on_storage(c10::Storage storage, c10::DispatchKey key, const at::Tensor& like) {
  const auto* impl = at::native::get_nested_tensor_impl(like);
  return at::detail::make_tensor<at::native::NestedTensorImpl>(
      flat_buffer(std::move(storage), key, like), impl->get_nested_sizes(),
      impl->get_nested_strides(), impl->get_storage_offsets());
}

// Storage of a CPU result: adopted when only this result holds it, else copied.
c10::Storage to_device_storage(const c10::Storage& cpu, c10::DeviceIndex index) {
  if (c10::raw::intrusive_ptr::use_count(cpu.unsafeGetStorageImpl()) == 1)
    return adopt_storage(cpu, index);
  return copy_storage(cpu, index);
}

class NestedCall {
 public:
  void run(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
    const size_t n = op.schema().arguments().size();
    const size_t begin = stack->size() - n;
    for (size_t i = begin; i < stack->size(); ++i) {
      c10::IValue& iv = (*stack)[i];
      if (iv.isTensor()) {
        iv = to_cpu(iv.toTensor());
      } else if (iv.isTensorList()) {
        std::vector<at::Tensor> out;
        for (const at::Tensor& t : iv.toTensorVector()) out.push_back(to_cpu(t));
        iv = c10::IValue(out);
      } else if (iv.isOptionalTensorList()) {
        c10::List<std::optional<at::Tensor>> out;
        for (const std::optional<at::Tensor>& t : iv.toOptionalTensorList())
          out.push_back(t.has_value() ? std::optional<at::Tensor>(to_cpu(*t)) : std::nullopt);
        iv = c10::IValue(out);
      } else if (iv.isDevice() && iv.toDevice().type() == c10::DeviceType::PrivateUse1) {
        if (!device_) device_ = iv.toDevice();
        iv = c10::IValue(c10::Device(c10::DeviceType::CPU));
      }
    }
    TORCH_CHECK(device_.has_value(), "rustorch nested fallback: no rustorch tensor in ",
                op.schema().name());
    {
      // Autograd already ran above this key; run the CPU kernels without recording again.
      at::AutoDispatchBelowADInplaceOrView guard;
      op.callBoxed(stack);
    }
    const size_t r = op.schema().returns().size();
    for (size_t i = stack->size() - r; i < stack->size(); ++i) {
      c10::IValue& rv = (*stack)[i];
      if (rv.isTensor()) {
        rv = to_device(rv.toTensor());
      } else if (rv.isTensorList()) {
        std::vector<at::Tensor> out;
        for (const at::Tensor& t : rv.toTensorVector()) out.push_back(to_device(t));
        rv = c10::IValue(out);
      }
    }
  }

 private:
  at::Tensor to_cpu(const at::Tensor& t) {
    if (!on_device(t)) return t;
    if (!device_) device_ = t.device();
    c10::Storage alias = alias_of(t.storage());
    at::Tensor cpu = t.is_nested() ? nested_on_storage(alias, c10::DispatchKey::CPU, t)
                                   : tensor_on_cpu_storage(alias, t);
    args_.emplace_back(t, cpu);
    return cpu;
  }

  static at::Tensor tensor_on_cpu_storage(const c10::Storage& storage, const at::Tensor& like) {
    auto out = at::detail::make_tensor<c10::TensorImpl>(
        c10::Storage(storage), c10::DispatchKeySet(c10::DispatchKey::CPU), like.dtype());
    out.unsafeGetTensorImpl()->set_sizes_and_strides(like.sizes(), like.strides(),
                                                     like.storage_offset());
    return out;
  }

  // One CPU alias per rustorch storage, so arguments sharing memory keep sharing it.
  c10::Storage alias_of(const c10::Storage& dev) {
    for (auto& [d, c] : storages_)
      if (d.unsafeGetStorageImpl() == dev.unsafeGetStorageImpl()) return c;
    storages_.emplace_back(dev, cpu_storage_alias(dev));
    return storages_.back().second;
  }

  at::Tensor to_device(const at::Tensor& t) {
    if (!t.defined() || on_device(t) || !t.has_storage()) return t;
    for (auto& [orig, cpu] : args_)  // in-place / out= results: the argument itself
      if (cpu.unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) return orig;
    c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
    std::optional<c10::Storage> dev;
    for (auto& [d, c] : storages_)
      if (c.unsafeGetStorageImpl() == impl) dev = d;
    if (!dev) {
      dev = to_device_storage(t.storage(), device_->index());
      storages_.emplace_back(*dev, t.storage());
    }
    return t.is_nested() ? nested_on_storage(*dev, c10::DispatchKey::PrivateUse1, t)
                         : tensor_on_storage(*dev, t);
  }

  std::optional<c10::Device> device_;
  std::vector<std::pair<at::Tensor, at::Tensor>> args_;              // rustorch -> CPU
  std::vector<std::pair<c10::Storage, c10::Storage>> storages_;      // rustorch <-> CPU
};

std::string op_key(const c10::OperatorHandle& op) {
  const auto& name = op.operator_name();
  return name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
}

void nested_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const std::string name = op_key(op);
  op_counter(name).fallback.fetch_add(1, std::memory_order_relaxed);
  // Say which op and device, instead of the dispatcher's "... from the 'NestedTensorCPU'
  // backend" for a call the user made on rustorch.
  if (!op.hasComputedKernelForDispatchKey(c10::DispatchKey::NestedTensorCPU)) {
    std::string device = "rustorch";
    const size_t n = op.schema().arguments().size();
    for (size_t i = stack->size() - n; i < stack->size(); ++i)
      if ((*stack)[i].isTensor() && on_device((*stack)[i].toTensor())) {
        device = (*stack)[i].toTensor().device().str();
        break;
      }
    TORCH_CHECK_NOT_IMPLEMENTED(false, "rustorch: ", name,
                                " is not supported for nested tensors on ", device,
                                ": PyTorch has no CPU nested-tensor kernel for it, so rustorch's "
                                "nested fallback cannot run it");
  }
  NestedCall().run(op, stack);
}

}  // namespace

at::Tensor nested_to_device(const at::Tensor& cpu_nested, c10::Device device) {
  return nested_on_storage(to_device_storage(cpu_nested.storage(), device.index()),
                           c10::DispatchKey::PrivateUse1, cpu_nested);
}

TORCH_LIBRARY_IMPL(_, NestedTensorPrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&nested_fallback>());
}

namespace {

// Ops like matmul and linear are CompositeImplicitAutograd with explicit NestedTensorCPU /
// NestedTensorCUDA kernels. A backend fallback does not count as a kernel, so on rustorch the
// composite would decompose them at the autograd key into dense ops that ask a nested tensor
// for its sizes ("NestedTensorImpl doesn't support sizes"). Registering the nested fallback as
// their NestedTensorPrivateUse1 kernel makes them take the CPU nested kernel, as on CPU.
struct NestedOverrides {
  std::unique_ptr<torch::Library> lib;
  NestedOverrides() {
    lib = std::make_unique<torch::Library>(torch::Library::IMPL, "aten",
                                           c10::DispatchKey::NestedTensorPrivateUse1, __FILE__,
                                           __LINE__);
    auto& dispatcher = c10::Dispatcher::singleton();
    for (const c10::OperatorName& name : dispatcher.getAllOpNames()) {
      if (name.name.rfind("aten::", 0) != 0) continue;
      auto op = dispatcher.findOp(name);
      if (!op || !op->hasKernelForDispatchKey(c10::DispatchKey::NestedTensorCPU) ||
          !op->hasKernelForDispatchKey(c10::DispatchKey::CompositeImplicitAutograd) ||
          op->hasKernelForDispatchKey(c10::DispatchKey::NestedTensorPrivateUse1))
        continue;
      const std::string schema_name = name.name.substr(6) +
                                      (name.overload_name.empty() ? "" : "." + name.overload_name);
      lib->impl(schema_name.c_str(),
                torch::CppFunction::makeFromBoxedFunction<&nested_fallback>());
    }
  }
};
const NestedOverrides nested_overrides;

}  // namespace

}  // namespace rustorch
