// The boxed CPU fallback (see fallback.h). One call:
//  1. rustorch tensors among the arguments (also inside lists) become CPU aliases of the same
//     memory; rustorch devices become CPU; a rustorch generator (or, for a random op called
//     without one, the device's default generator) lends its state to a CPU generator;
//  2. the op's CPU kernel runs (redispatch straight to the CPU key: no second trip through
//     autograd);
//  3. mutable arguments that the kernel resized or re-pointed (out=, resize_) are synced back to
//     the rustorch tensors, results are mapped back: the alias of an argument returns that
//     argument, a view of an argument's memory becomes a rustorch view of it, a CPU input
//     returned stays CPU, a new result becomes a rustorch tensor over the same memory.
#include "aten/fallback.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/StorageImpl.h>
#include <c10/util/Exception.h>
#include <c10/util/SmallVector.h>
#include <torch/library.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "aten/alias.h"
#include "aten/nested/nested.h"
#include "runtime/device.h"
#include "runtime/generator.h"
#include "runtime/op_stats.h"

namespace rustorch {
namespace {

std::atomic<int> g_output_mode{static_cast<int>(OutputMode::kAdopt)};
std::atomic<int> g_policy{static_cast<int>(FallbackPolicy::kSilent)};

// What the fallback needs to know about an op, computed once per op.
struct OpInfo {
  std::string name;  // "aten::add.Tensor", the key of op_stats
  OpCounter* counter = nullptr;
  std::atomic<bool> warned{false};
  std::vector<bool> arg_is_write;      // argument i is annotated Tensor(a!)
  std::vector<bool> arg_is_generator;  // argument i is a Generator?
  bool has_generator = false;
  // aten ops refuse CPU tensors (other than 0-dim ones) next to rustorch tensors, as CUDA's
  // kernels do; indexing ops accept CPU indices, and other namespaces decide for themselves.
  bool check_same_device = false;
};

std::string op_key(const c10::OperatorHandle& op) {
  const auto& name = op.operator_name();
  return name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
}

OpInfo& op_info(const c10::OperatorHandle& op) {
  thread_local std::unordered_map<const void*, OpInfo*> local;
  const void* key = &op.schema();
  auto it = local.find(key);
  if (it != local.end()) return *it->second;

  static std::mutex mu;
  static auto* shared = new std::unordered_map<const void*, std::unique_ptr<OpInfo>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = (*shared)[key];
  if (!slot) {
    slot = std::make_unique<OpInfo>();
    slot->name = op_key(op);
    slot->counter = &op_counter(slot->name);
    const auto& base = op.operator_name().name;
    slot->check_same_device = base.rfind("aten::", 0) == 0 && base != "aten::index" &&
                              base != "aten::index_put_" && base != "aten::index_put" &&
                              base != "aten::_index_put_impl_" && base != "aten::_unsafe_index" &&
                              base != "aten::_unsafe_index_put" &&
                              base != "aten::_foreach_copy_" && base != "aten::_foreach_copy";
    for (const auto& arg : op.schema().arguments()) {
      slot->arg_is_write.push_back(arg.alias_info() != nullptr && arg.alias_info()->isWrite());
      auto type = arg.real_type();
      if (type->kind() == c10::OptionalType::Kind)
        type = type->castRaw<c10::OptionalType>()->getElementType();
      const bool is_gen = type->kind() == c10::GeneratorType::Kind;
      slot->arg_is_generator.push_back(is_gen);
      slot->has_generator |= is_gen;
    }
  }
  local[key] = slot.get();
  return *slot;
}

void apply_policy(OpInfo& info) {
  const auto policy = static_cast<FallbackPolicy>(g_policy.load(std::memory_order_relaxed));
  if (policy == FallbackPolicy::kSilent) return;
  TORCH_CHECK_NOT_IMPLEMENTED(policy != FallbackPolicy::kError, "rustorch: ", info.name,
                              " has no native rustorch kernel (RUSTORCH_FALLBACK=error forbids "
                              "the CPU fallback)");
  if (!info.warned.exchange(true))
    TORCH_WARN("rustorch: ", info.name,
               " has no native rustorch kernel; it runs on the CPU fallback "
               "(RUSTORCH_FALLBACK=warn)");
}

// A rustorch argument replaced by its CPU alias.
struct Aliased {
  at::Tensor original;
  at::Tensor alias;
  bool is_write;
};

// Lends a rustorch generator's engine to a CPU generator for the duration of the call.
struct GeneratorLease {
  at::CPUGeneratorImpl* device_gen = nullptr;
  at::Generator cpu_gen;
  std::unique_lock<std::mutex> lock;

  explicit GeneratorLease(at::CPUGeneratorImpl* gen) : device_gen(gen), lock(gen->mutex_) {
    cpu_gen = at::make_generator<at::CPUGeneratorImpl>();
    copy_engine_state(*device_gen, *cpu_gen.get<at::CPUGeneratorImpl>());
  }
  ~GeneratorLease() { copy_engine_state(*cpu_gen.get<at::CPUGeneratorImpl>(), *device_gen); }
};

class FallbackCall {
 public:
  explicit FallbackCall(const OpInfo& info) : info_(info) {}

  void run(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
    const auto& schema = op.schema();
    const size_t num_args = schema.arguments().size();
    const size_t args_begin = stack->size() - num_args;

    for (size_t i = 0; i < num_args; ++i) {
      c10::IValue& iv = (*stack)[args_begin + i];
      const bool is_write = info_.arg_is_write[i];
      if (iv.isTensor()) {
        iv = to_cpu(iv.toTensor(), is_write);
      } else if (iv.isList()) {
        auto list = iv.toList();
        bool any = false;
        for (const c10::IValue& e : list) any |= e.isTensor() && is_device(e.toTensor());
        for (const c10::IValue& e : list) note_cpu_input(e);
        if (!any) continue;
        c10::impl::GenericList out(list.elementType());
        out.reserve(list.size());
        for (const c10::IValue& e : list)
          out.push_back(e.isTensor() ? c10::IValue(to_cpu(e.toTensor(), is_write)) : e);
        iv = c10::IValue(std::move(out));
      } else if (iv.isDevice() && iv.toDevice().type() == c10::DeviceType::PrivateUse1) {
        if (!target_) {
          const auto idx = iv.toDevice().index();  // "rustorch" without index: current device
          target_ = c10::Device(c10::DeviceType::PrivateUse1,
                                idx < 0 ? current_device() : (check_device_index(idx), idx));
        }
        iv = c10::IValue(c10::Device(c10::DeviceType::CPU));
      }
    }

    TORCH_CHECK(!info_.check_same_device || !target_ || cpu_tensor_args_.empty(),
                "Expected all tensors to be on the same device, but found at least two devices, ",
                *target_, " and cpu! (in ", info_.name, ")");

    // Generators last: a random op without one draws from the target device's default.
    if (info_.has_generator) {
      for (size_t i = 0; i < num_args; ++i) {
        if (!info_.arg_is_generator[i]) continue;
        c10::IValue& iv = (*stack)[args_begin + i];
        at::CPUGeneratorImpl* gen = nullptr;
        if (iv.isGenerator() && iv.toGenerator().device().type() == c10::DeviceType::PrivateUse1) {
          gen = generator_impl(iv.toGenerator(), iv.toGenerator().device().index());
        } else if (iv.isGenerator() && target_) {
          TORCH_CHECK(false, info_.name, ": expected a rustorch generator for an op on ",
                      *target_, ", but got a generator on ", iv.toGenerator().device());
        } else if (iv.isNone() && target_) {
          gen = generator_impl(std::nullopt, target_->index());
        }
        if (gen == nullptr) continue;
        leases_.push_back(std::make_unique<GeneratorLease>(gen));
        iv = c10::IValue(leases_.back()->cpu_gen);
      }
    }

    op.redispatchBoxed(c10::DispatchKeySet(c10::DispatchKey::CPU), stack);
    leases_.clear();

    sync_mutated_args();

    const size_t num_rets = schema.returns().size();
    const size_t rets_begin = stack->size() - num_rets;
    find_exclusive_results(*stack, rets_begin);
    for (size_t i = 0; i < num_rets; ++i) {
      c10::IValue& rv = (*stack)[rets_begin + i];
      if (rv.isTensor()) {
        rv = to_device(rv.toTensor());
      } else if (rv.isList()) {
        bool any = false;
        for (const c10::IValue& e : rv.toListRef()) any |= e.isTensor() && e.toTensor().defined();
        if (!any) continue;
        c10::impl::GenericList out(rv.toList().elementType());
        out.reserve(rv.toListRef().size());
        for (const c10::IValue& e : rv.toListRef())
          out.push_back(e.isTensor() ? c10::IValue(to_device(e.toTensor())) : e);
        rv = c10::IValue(std::move(out));
      }
    }
  }

 private:
  static bool is_device(const at::Tensor& t) {
    return t.defined() && t.device().type() == c10::DeviceType::PrivateUse1;
  }

  void note_cpu_input(const c10::IValue& iv) {
    if (!iv.isTensor() || !iv.toTensor().defined() || is_device(iv.toTensor())) return;
    const at::Tensor& t = iv.toTensor();
    if (t.has_storage()) cpu_inputs_.push_back(t.storage().unsafeGetStorageImpl());
    if (t.dim() > 0 && t.device().is_cpu()) cpu_tensor_args_.push_back(t);
  }

  at::Tensor to_cpu(const at::Tensor& t, bool is_write) {
    if (!is_device(t)) {
      note_cpu_input(c10::IValue(t));
      return t;
    }
    if (!target_) target_ = t.device();
    // Tensors of one storage share one CPU storage alias, so the CPU kernel sees the same
    // aliasing relations as the rustorch tensors have.
    c10::StorageImpl* key = t.storage().unsafeGetStorageImpl();
    c10::Storage alias_storage;
    for (auto& [orig, alias] : storages_)
      if (orig.unsafeGetStorageImpl() == key) alias_storage = alias;
    if (!alias_storage) {
      alias_storage = cpu_storage_alias(t.storage());
      storages_.emplace_back(t.storage(), alias_storage);
    }
    auto alias = at::detail::make_tensor<c10::TensorImpl>(
        c10::Storage(alias_storage), c10::DispatchKeySet(c10::DispatchKey::CPU), t.dtype());
    alias.unsafeGetTensorImpl()->set_sizes_and_strides(t.sizes(), t.strides(),
                                                       t.storage_offset());
    if (t.is_conj()) alias._set_conj(true);
    if (t.is_neg()) alias._set_neg(true);
    args_.push_back({t, alias, is_write});
    return alias;
  }

  // out= and resize_-style arguments: the CPU kernel may have resized the alias (reallocating
  // its CPU storage) or pointed it at another storage. Carry that over to the rustorch tensor
  // without copying: the rustorch storage adopts the CPU memory.
  void sync_mutated_args() {
    for (auto& a : args_) {
      if (!a.is_write) continue;
      c10::TensorImpl* orig = a.original.unsafeGetTensorImpl();
      const at::Tensor& alias = a.alias;
      c10::StorageImpl* alias_impl = alias.storage().unsafeGetStorageImpl();
      const c10::Storage* known = nullptr;
      for (auto& [o, al] : storages_)
        if (al.unsafeGetStorageImpl() == alias_impl) known = &o;
      if (known == nullptr) {
        // Re-pointed at a storage of its own (set_-like): adopt it.
        orig->set_storage_keep_dtype(adopt_storage(alias.storage(), a.original.device().index()));
      } else if (alias_impl->data() != known->unsafeGetStorageImpl()->data() ||
                 alias_impl->nbytes() != known->unsafeGetStorageImpl()->nbytes()) {
        // The CPU alias storage was reallocated by a resize: the rustorch storage adopts the new
        // memory (same StorageImpl, so every view of it follows, as on CPU).
        c10::StorageImpl* target = known->unsafeGetStorageImpl();
        target->set_data_ptr_noswap(adopt_data_ptr(alias.storage(), a.original.device().index()));
        target->set_nbytes(alias_impl->nbytes());
      }
      if (alias.sizes() != a.original.sizes() || alias.strides() != a.original.strides() ||
          alias.storage_offset() != a.original.storage_offset())
        orig->set_sizes_and_strides(alias.sizes(), alias.strides(), alias.storage_offset());
    }
  }

  at::Tensor to_device(const at::Tensor& t) {
    if (!t.defined() || is_device(t)) return t;
    // A new nested tensor (e.g. _nested_tensor_from_mask): nested tensors have no strides, so
    // aten/nested/ carries their buffer and structure over.
    if (t.is_nested() && target_) return nested_to_device(t, *target_);
    // The alias of an argument: that argument (in-place and out= results).
    for (auto& a : args_)
      if (a.alias.unsafeGetTensorImpl() == t.unsafeGetTensorImpl()) return a.original;
    if (!t.has_storage()) return t;
    c10::StorageImpl* impl = t.storage().unsafeGetStorageImpl();
    // A view of an argument's memory: the same view of the rustorch storage.
    for (auto& [orig, alias] : storages_)
      if (alias.unsafeGetStorageImpl() == impl) return tensor_on_storage(orig, t);
    // A CPU input returned (or a view of one): stays on the CPU.
    for (c10::StorageImpl* cpu : cpu_inputs_)
      if (cpu == impl) return t;
    TORCH_INTERNAL_ASSERT(target_.has_value(), "rustorch fallback: no rustorch device in ",
                          info_.name);
    // Several results over one new storage stay one storage.
    for (auto& [cpu, dev] : adopted_)
      if (cpu.unsafeGetStorageImpl() == impl) return tensor_on_storage(dev, t);
    const auto mode = static_cast<OutputMode>(g_output_mode.load(std::memory_order_relaxed));
    // Adopt only memory that nobody but these results holds (a CPU kernel could keep a cache);
    // otherwise, or in copy mode, copy the storage once.
    c10::Storage dev = mode == OutputMode::kAdopt && exclusively_owned(impl)
                           ? adopt_storage(t.storage(), target_->index())
                           : copy_storage(t.storage(), target_->index());
    adopted_.emplace_back(t.storage(), dev);
    return tensor_on_storage(dev, t);
  }

  // Decides, before any result is converted, which result storages only the results hold
  // (each result tensor referenced only by the stack, the storage only by those tensors).
  void find_exclusive_results(const torch::jit::Stack& stack, size_t begin) {
    // (tensor, storage, occurrences on the stack); results are few, so linear scans.
    struct Ref {
      c10::TensorImpl* tensor;
      c10::StorageImpl* storage;
      size_t count;
    };
    c10::SmallVector<Ref, 4> refs;
    auto note = [&](const c10::IValue& e) {
      if (!e.isTensor()) return;
      const at::Tensor& t = e.toTensor();
      if (!t.defined() || !t.has_storage() || is_device(t)) return;
      c10::TensorImpl* ti = t.unsafeGetTensorImpl();
      for (Ref& r : refs)
        if (r.tensor == ti) return void(++r.count);
      refs.push_back({ti, t.storage().unsafeGetStorageImpl(), 1});
    };
    for (size_t i = begin; i < stack.size(); ++i) {
      if (stack[i].isTensor()) note(stack[i]);
      if (stack[i].isList())
        for (const c10::IValue& e : stack[i].toListRef()) note(e);
    }
    for (const Ref& r : refs) {
      size_t tensors = 0;
      bool only = true;
      for (const Ref& o : refs) {
        if (o.storage != r.storage) continue;
        ++tensors;
        only &= c10::raw::intrusive_ptr::use_count(o.tensor) == o.count;
      }
      if (only && c10::raw::intrusive_ptr::use_count(r.storage) == tensors)
        exclusive_.push_back(r.storage);
    }
  }

  bool exclusively_owned(c10::StorageImpl* impl) const {
    for (c10::StorageImpl* e : exclusive_)
      if (e == impl) return true;
    return false;
  }

  const OpInfo& info_;
  std::optional<c10::Device> target_;
  // Small inline buffers: most ops have a handful of tensors, so no heap traffic per call.
  c10::SmallVector<Aliased, 4> args_;
  c10::SmallVector<std::pair<c10::Storage, c10::Storage>, 4> storages_;  // rustorch -> CPU
  c10::SmallVector<std::pair<c10::Storage, c10::Storage>, 2> adopted_;   // CPU result -> rustorch
  c10::SmallVector<c10::StorageImpl*, 4> cpu_inputs_;
  c10::SmallVector<at::Tensor, 2> cpu_tensor_args_;  // CPU tensors with dim > 0 among the args
  std::vector<std::unique_ptr<GeneratorLease>> leases_;
  c10::SmallVector<c10::StorageImpl*, 4> exclusive_;  // result storages safe to adopt
};

// The device of the first rustorch tensor argument (for error messages).
std::string device_of_args(const c10::OperatorHandle& op, const torch::jit::Stack& stack) {
  const size_t n = op.schema().arguments().size();
  for (size_t i = stack.size() - n; i < stack.size(); ++i) {
    const c10::IValue& iv = stack[i];
    if (iv.isTensor() && iv.toTensor().defined() && !iv.toTensor().device().is_cpu())
      return iv.toTensor().device().str();
    if (iv.isTensorList())
      for (const at::Tensor& t : iv.toTensorVector())
        if (t.defined() && !t.device().is_cpu()) return t.device().str();
  }
  return "rustorch";
}

// Ops that PyTorch implements only for other devices (e.g. CUDA's fused RNN cells) cannot run
// on the CPU fallback: say so, naming the op and the user's device, instead of the dispatcher's
// "Could not run ... with arguments from the 'CPU' backend".
void check_cpu_kernel(const c10::OperatorHandle& op, const torch::jit::Stack& stack,
                      const OpInfo& info) {
  if (op.hasComputedKernelForDispatchKey(c10::DispatchKey::CPU)) return;
  std::string others;
  for (auto k : {c10::DispatchKey::CUDA, c10::DispatchKey::XPU, c10::DispatchKey::MPS,
                 c10::DispatchKey::Meta})
    if (op.hasKernelForDispatchKey(k)) {
      if (!others.empty()) others += ", ";
      others += c10::toString(k);
    }
  TORCH_CHECK_NOT_IMPLEMENTED(false, "rustorch: ", info.name, " is not supported on ",
                              device_of_args(op, stack),
                              ": rustorch has no kernel for it and PyTorch has no CPU kernel "
                              "for its CPU fallback to run (PyTorch implements it for: ",
                              others.empty() ? std::string("no device") : others, ")");
}

void run_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack, OpInfo& info) {
  info.counter->fallback.fetch_add(1, std::memory_order_relaxed);
  check_cpu_kernel(op, *stack, info);
  apply_policy(info);
  FallbackCall(info).run(op, stack);
}

// convolution_overrideable has the argument list of aten::convolution: run convolution's CPU
// kernel on the same stack.
void convolution_overrideable(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  static const auto conv =
      c10::Dispatcher::singleton().findSchemaOrThrow("aten::convolution", "");
  OpInfo& info = op_info(op);
  info.counter->fallback.fetch_add(1, std::memory_order_relaxed);
  apply_policy(info);
  FallbackCall(info).run(conv, stack);
}

// convolution_backward_overrideable lacks convolution_backward's bias_sizes (argument 3): the
// bias has one entry per output channel, grad_output.size(1).
void convolution_backward_overrideable(const c10::OperatorHandle& op,
                                       torch::jit::Stack* stack) {
  static const auto conv_bwd =
      c10::Dispatcher::singleton().findSchemaOrThrow("aten::convolution_backward", "");
  OpInfo& info = op_info(op);
  info.counter->fallback.fetch_add(1, std::memory_order_relaxed);
  apply_policy(info);
  const size_t num_args = op.schema().arguments().size();
  const size_t begin = stack->size() - num_args;
  const at::Tensor& grad_output = (*stack)[begin].toTensor();
  std::vector<int64_t> bias_sizes{grad_output.dim() > 1 ? grad_output.size(1) : 0};
  stack->insert(stack->begin() + static_cast<std::ptrdiff_t>(begin + 3),
                c10::IValue(bias_sizes));
  FallbackCall(op_info(conv_bwd)).run(conv_bwd, stack);
}

}  // namespace

void cpu_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  run_fallback(op, stack, op_info(op));
}

void set_output_mode(OutputMode mode) { g_output_mode.store(static_cast<int>(mode)); }
OutputMode output_mode() { return static_cast<OutputMode>(g_output_mode.load()); }
void set_fallback_policy(FallbackPolicy policy) { g_policy.store(static_cast<int>(policy)); }
FallbackPolicy fallback_policy() { return static_cast<FallbackPolicy>(g_policy.load()); }

FallbackPolicy policy_from_env() {
  const char* env = std::getenv("RUSTORCH_FALLBACK");
  if (env == nullptr || *env == '\0') return FallbackPolicy::kSilent;
  const std::string v(env);
  if (v == "silent" || v == "allow" || v == "0") return FallbackPolicy::kSilent;
  if (v == "warn") return FallbackPolicy::kWarn;
  if (v == "error") return FallbackPolicy::kError;
  TORCH_CHECK(false, "RUSTORCH_FALLBACK must be one of silent, warn, error; got '", v, "'");
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&cpu_fallback>());
}

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("convolution_overrideable",
         torch::CppFunction::makeFromBoxedFunction<&convolution_overrideable>());
  m.impl("convolution_backward_overrideable",
         torch::CppFunction::makeFromBoxedFunction<&convolution_backward_overrideable>());
}

}  // namespace rustorch
