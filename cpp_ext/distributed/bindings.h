// Python bindings of the rgloo backend (called from module.cpp's PYBIND11_MODULE).
#pragma once

#include <pybind11/pybind11.h>

namespace rustorch::dist {

void bind(pybind11::module& m);

}  // namespace rustorch::dist
