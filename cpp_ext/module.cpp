// Python entry of rustorch_device._C. Runtime pieces register themselves at load time
// (static registrars in their own files); this file only exposes the Python bindings.
#include <torch/extension.h>

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "rustorch device runtime";
}
