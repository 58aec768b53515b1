#include "runtime/generator.h"

#include <ATen/Utils.h>

#include <mutex>
#include <vector>

#include "runtime/device.h"

namespace rustorch {

GeneratorImpl::GeneratorImpl(c10::DeviceIndex device) : at::CPUGeneratorImpl(at::default_rng_seed_val) {
  device_ = c10::Device(c10::DeviceType::PrivateUse1, device);
  key_set_ = c10::DispatchKeySet(c10::DispatchKey::PrivateUse1);
}

GeneratorImpl* GeneratorImpl::clone_impl() const {
  auto* gen = new GeneratorImpl(device_.index());
  auto* self = const_cast<GeneratorImpl*>(this);
  gen->set_engine(self->engine());  // the engine carries the seed too
  gen->set_next_float_normal_sample(self->next_float_normal_sample());
  gen->set_next_double_normal_sample(self->next_double_normal_sample());
  return gen;
}

namespace {
std::vector<at::Generator>& default_generators() {
  static auto* gens = [] {
    auto* v = new std::vector<at::Generator>();
    for (c10::DeviceIndex i = 0; i < device_count(); ++i) {
      v->push_back(at::make_generator<GeneratorImpl>(i));
      // Like CUDA, unseeded default generators start from the default seed; torch.manual_seed
      // seeds them through torch.rustorch.manual_seed_all.
    }
    return v;
  }();
  return *gens;
}
}  // namespace

const at::Generator& default_generator(c10::DeviceIndex device) {
  return default_generators().at(resolve_device_index(device));
}

at::Generator make_generator(c10::DeviceIndex device) {
  auto gen = at::make_generator<GeneratorImpl>(resolve_device_index(device));
  return gen;
}

at::CPUGeneratorImpl* generator_impl(const std::optional<at::Generator>& gen,
                                     c10::DeviceIndex device) {
  if (gen.has_value() && gen->defined()) {
    TORCH_CHECK(gen->device().type() == c10::DeviceType::PrivateUse1,
                "expected a rustorch generator for an op on rustorch tensors, got a generator "
                "on ",
                gen->device());
    return static_cast<at::CPUGeneratorImpl*>(gen->unsafeGetGeneratorImpl());
  }
  return static_cast<at::CPUGeneratorImpl*>(
      default_generator(device).unsafeGetGeneratorImpl());
}

void copy_engine_state(at::CPUGeneratorImpl& from, at::CPUGeneratorImpl& to) {
  to.set_engine(from.engine());
  to.set_next_float_normal_sample(from.next_float_normal_sample());
  to.set_next_double_normal_sample(from.next_double_normal_sample());
}

}  // namespace rustorch
