// The importing thread keeps the intra-op thread count it has.
//
// at::parallel_for is inlined into this library together with its "this thread's thread count
// is initialised" flag (a function-local thread_local in an inline function: one per library).
// A thread's first parallel_for here therefore runs at::init_num_threads() again, which sets the
// thread's OpenMP count from the process-wide value. That value is not always this thread's:
// the DataLoader's pin-memory thread sets it to 1 (torch.set_num_threads(1) "for that thread"),
// and with rustorch as the accelerator it runs in CPU-only scripts too. The main thread then fell
// to one thread for every op, CPU ones included. Running the library's initialisation at load,
// in the importing thread, and keeping the count that thread already had avoids that.
#include <ATen/Parallel.h>
#include <omp.h>

namespace {

struct AdoptIntraOpThreads {
  AdoptIntraOpThreads() {
    const int current = at::get_num_threads();  // libtorch's own lazy initialisation
    at::internal::lazy_init_num_threads();      // this library's copy
    if (omp_get_max_threads() != current) omp_set_num_threads(current);
  }
} adopt_intra_op_threads;

}  // namespace
