#pragma once

namespace rustorch {

// Lets the autograd engine's device threads finish and go idle before the interpreter
// finalizes; see autograd_exit.cpp. Called from a Python atexit handler with the GIL held.
void quiesce_autograd_device_threads();

}  // namespace rustorch
