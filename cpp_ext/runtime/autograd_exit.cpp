// Clean process exit after backward() on rustorch.
//
// Registering a device guard makes the autograd engine start one worker thread per device index
// on the first backward() of the process (any backward, CPU-only ones too). When a backward runs
// on rustorch, that worker usually drops the last reference to the GraphTask right after it has
// woken the caller. The GraphTask holds the caller's ThreadLocalState, which holds Python objects
// (torch.autograd stashes the contextvars context there for every backward), so dropping it takes
// the GIL. If the script ended right after backward(), the main thread may already be finalizing
// the interpreter: CPython then ends the worker with pthread_exit inside take_gil, the forced
// unwind meets a noexcept destructor and the process dies with "terminate called without an
// active exception" (exit 134). A worker that has not yet taken the GIL once (it does so when it
// starts) meets the same fate.
//
// The fix runs at Python exit (atexit, while the interpreter is intact): with the GIL released, it
// runs one tiny backward on every rustorch device index. Each worker serves its queue in order, so
// when that backward has completed the worker has finished every earlier task, dropped those
// GraphTasks and taken the GIL whenever it needed it. The sync backward runs on a fresh C++
// thread from C++-only tensors, so its GraphTask captures no Python object and dropping it later
// needs no GIL.
#include "runtime/autograd_exit.h"

#include <ATen/ATen.h>
#include <pybind11/pybind11.h>
#include <pthread.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/engine.h>

#include <atomic>
#include <exception>
#include <thread>

#include "runtime/device.h"

namespace rustorch {
namespace {

// Reads the engine's device queues: they exist once the device threads were started.
struct EngineAccess : torch::autograd::Engine {
  static bool device_threads_started(torch::autograd::Engine& engine) {
    return !(engine.*(&EngineAccess::device_ready_queues_)).empty();
  }
};

// A forked child inherits the queues but not the threads (and autograd refuses to run there), so
// it must not wait for them.
std::atomic<bool> threads_inherited_by_fork{false};

void after_fork_in_child() {
  threads_inherited_by_fork.store(
      EngineAccess::device_threads_started(torch::autograd::Engine::get_default_engine()));
}

struct ForkHook {
  ForkHook() { pthread_atfork(nullptr, nullptr, &after_fork_in_child); }
} fork_hook;

}  // namespace

void quiesce_autograd_device_threads() {
  auto& engine = torch::autograd::Engine::get_default_engine();
  if (threads_inherited_by_fork.load() || !EngineAccess::device_threads_started(engine)) return;
  std::exception_ptr failure;
  {
    pybind11::gil_scoped_release no_gil;
    // A fresh thread has an empty thread-local state: nothing Python-owned enters the GraphTask.
    std::thread sync([&failure] {
      try {
        for (c10::DeviceIndex d = 0; d < device_count(); ++d) {
          at::Tensor x =
              at::zeros({1}, at::TensorOptions().device(c10::DeviceType::PrivateUse1, d));
          x.set_requires_grad(true);
          torch::autograd::backward({x.sum()});
        }
      } catch (...) {
        failure = std::current_exception();
      }
    });
    sync.join();
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace rustorch
