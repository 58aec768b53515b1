// Python entry of rustorch_device._C. Runtime pieces register themselves at load time
// (static registrars in their own files); this file only exposes the Python bindings.
#include <torch/csrc/Generator.h>
#include <torch/extension.h>

#include "aten/fallback.h"
#include "distributed/bindings.h"
#include "runtime/autograd_exit.h"
#include "runtime/device.h"
#include "runtime/generator.h"
#include "runtime/op_stats.h"

namespace {

rustorch::FallbackPolicy parse_policy(const std::string& v) {
  if (v == "silent") return rustorch::FallbackPolicy::kSilent;
  if (v == "warn") return rustorch::FallbackPolicy::kWarn;
  if (v == "error") return rustorch::FallbackPolicy::kError;
  TORCH_CHECK_VALUE(false, "fallback policy must be 'silent', 'warn' or 'error', got '", v, "'");
}

const char* policy_name(rustorch::FallbackPolicy p) {
  switch (p) {
    case rustorch::FallbackPolicy::kWarn:
      return "warn";
    case rustorch::FallbackPolicy::kError:
      return "error";
    default:
      return "silent";
  }
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rustorch device runtime";
  // Bad RUSTORCH_DEVICE_COUNT / RUSTORCH_FALLBACK values fail the import with a clear message.
  rustorch::configured_device_count();
  rustorch::set_fallback_policy(rustorch::policy_from_env());

  m.def("_op_stats", [] {
    pybind11::dict out;
    for (auto& [name, counts] : rustorch::op_stats_snapshot())
      out[pybind11::str(name)] = pybind11::make_tuple(counts.first, counts.second);
    return out;
  }, "op -> (native calls, fallback calls)");
  m.def("_reset_op_stats", &rustorch::reset_op_stats);

  m.def("_device_count", [] { return static_cast<int>(rustorch::device_count()); });
  m.def("_current_device", [] { return static_cast<int>(rustorch::current_device()); });
  m.def("_set_device", [](int i) { rustorch::set_device(static_cast<c10::DeviceIndex>(i)); });
  m.def("_exchange_device", [](int i) {
    return static_cast<int>(rustorch::exchange_device(static_cast<c10::DeviceIndex>(i)));
  });

  m.def("_get_default_generator", [](int i) {
    const auto& gen = rustorch::default_generator(static_cast<c10::DeviceIndex>(i));
    return pybind11::reinterpret_steal<pybind11::object>(THPGenerator_initDefaultGenerator(gen));
  }, "the default torch.Generator of rustorch device i");

  m.def("_set_fallback_policy", [](const std::string& v) {
    rustorch::set_fallback_policy(parse_policy(v));
  });
  m.def("_fallback_policy", [] { return std::string(policy_name(rustorch::fallback_policy())); });
  m.def("_set_fallback_output_mode", [](const std::string& v) {
    TORCH_CHECK_VALUE(v == "adopt" || v == "copy", "output mode must be 'adopt' or 'copy'");
    rustorch::set_output_mode(v == "adopt" ? rustorch::OutputMode::kAdopt
                                           : rustorch::OutputMode::kCopy);
  });
  rustorch::dist::bind(m);  // the rgloo c10d backend
  m.def("_quiesce_autograd_device_threads", &rustorch::quiesce_autograd_device_threads,
        "wait until the autograd engine's device threads are idle (run at Python exit)");
}
