// Random number generators of rustorch devices: one default generator per device, seeded by
// torch.manual_seed (through torch.rustorch.manual_seed_all) and saved/restored with
// torch.rustorch.get_rng_state / set_rng_state.
//
// The engine is the CPU's (mt19937 + cached normal samples), so a seeded rustorch run draws the
// same numbers as a CPU run seeded alike.
//
// How a kernel draws random numbers (e.g. dropout, normal_, bernoulli_):
//
//   #include "runtime/generator.h"
//   at::CPUGeneratorImpl* gen = rustorch::generator_impl(generator_arg, self.device().index());
//   std::lock_guard<std::mutex> lock(gen->mutex_);
//   uint32_t r = gen->random();           // or at::uniform_real_distribution<float>(0, 1)(gen)
//
// `generator_arg` is the op's `std::optional<at::Generator>`: when given it must be a rustorch
// generator (a clear error otherwise), when empty the device's default generator is used. Hold
// the mutex for the whole draw so concurrent ops see disjoint streams; draw sequentially (not
// inside at::parallel_for) so results do not depend on the thread count.
#pragma once

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>

#include <optional>

namespace rustorch {

class GeneratorImpl final : public at::CPUGeneratorImpl {
 public:
  explicit GeneratorImpl(c10::DeviceIndex device);
  static c10::DeviceType device_type() { return c10::DeviceType::PrivateUse1; }

 private:
  GeneratorImpl* clone_impl() const override;
};

// The default generator of `device` (-1: the current device).
const at::Generator& default_generator(c10::DeviceIndex device);

// A new, independently seeded generator on `device` (torch.Generator(device="rustorch")).
at::Generator make_generator(c10::DeviceIndex device);

// The generator a kernel draws from; see the header comment.
at::CPUGeneratorImpl* generator_impl(const std::optional<at::Generator>& gen,
                                     c10::DeviceIndex device);

// Copies the engine state between two CPU-engine generators (used by the fallback to let CPU
// kernels draw from a rustorch generator: load into a CPU generator, run, store back).
void copy_engine_state(at::CPUGeneratorImpl& from, at::CPUGeneratorImpl& to);

}  // namespace rustorch
