// Python entry of rustorch_device._C. Runtime pieces register themselves at load time
// (static registrars in their own files); this file only exposes the Python bindings.
#include <torch/extension.h>

#include "runtime/op_stats.h"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rustorch device runtime";
  m.def("_op_stats", [] {
    pybind11::dict out;
    for (auto& [name, counts] : rustorch::op_stats_snapshot())
      out[pybind11::str(name)] = pybind11::make_tuple(counts.first, counts.second);
    return out;
  }, "op -> (native calls, fallback calls)");
  m.def("_reset_op_stats", &rustorch::reset_op_stats);
}
