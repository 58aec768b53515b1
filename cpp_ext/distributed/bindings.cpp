// rustorch_device._C.ProcessGroupRGloo and its creator. The class is a pybind subclass of torch's
// own c10d Backend binding (shared pybind registry), so torch.distributed takes it wherever it
// takes a backend. The holder mirrors torch's for Backend: it drops its reference without the
// GIL, because destroying the inner gloo group joins gloo's threads, which may need the GIL.
#include "distributed/bindings.h"

#include <torch/csrc/utils/pybind.h>

#include "distributed/backend.h"

namespace {

template <typename T>
class NoGilHolder {
 public:
  NoGilHolder() = default;
  NoGilHolder(const NoGilHolder&) = default;
  NoGilHolder(NoGilHolder&&) noexcept = default;
  NoGilHolder& operator=(const NoGilHolder&) = default;
  NoGilHolder& operator=(NoGilHolder&&) noexcept = default;
  /* implicit */ NoGilHolder(c10::intrusive_ptr<T> impl) : impl_(std::move(impl)) {}
  explicit NoGilHolder(T* impl) : impl_(c10::intrusive_ptr<T>::unsafe_steal_from_new(impl)) {}
  ~NoGilHolder() {
    if (impl_ && PyGILState_Check()) {
      pybind11::gil_scoped_release release;
      impl_.reset();
    }
  }
  T& operator*() const noexcept { return *impl_; }
  T* operator->() const noexcept { return impl_.get(); }
  T* get() const noexcept { return impl_.get(); }

 private:
  c10::intrusive_ptr<T> impl_;
};

}  // namespace

PYBIND11_DECLARE_HOLDER_TYPE(T, NoGilHolder<T>, true)

namespace rustorch::dist {

void bind(pybind11::module& m) {
  namespace py = pybind11;
  using RGloo = ProcessGroupRGloo;
  // torch registers its c10d classes when torch.distributed is imported; a torch built without
  // distributed has no Backend class to derive from: then there is no rgloo (the Python side
  // says so), and the rest of the device still loads.
  py::module_::import("torch.distributed");
  if (py::detail::get_type_info(typeid(c10d::Backend)) == nullptr) return;
  py::class_<RGloo, c10d::Backend, NoGilHolder<RGloo>>(
      m, "ProcessGroupRGloo",
      "The rgloo c10d backend: gloo's collectives on rustorch (and CPU) tensors, zero-copy.")
      .def_property_readonly(
          "gloo", [](const RGloo& self) { return self.gloo(); },
          "The inner ProcessGroupGloo (for diagnostics).");
  m.def(
      "_rgloo_backend",
      [](py::object gloo, int rank, int size) {
        // Taken as a plain Backend pointer: torch's holder type for it is private to torch.
        auto* raw = gloo.cast<c10d::Backend*>();
        auto inner = c10::intrusive_ptr<c10d::Backend>::reclaim_copy(raw);
        return NoGilHolder<RGloo>(c10::make_intrusive<RGloo>(std::move(inner), rank, size));
      },
      py::arg("gloo"), py::arg("rank"), py::arg("size"),
      "Wraps a ProcessGroupGloo into the rgloo backend of the rustorch device.");
}

}  // namespace rustorch::dist
