// Portable half of GEMM (BLIS/GotoBLAS design): cache blocking, packing of A and B into
// micro-panels, threading. The ISA-specific micro-kernels live in gemm_microkernel_*.cpp.
//
//   C[m x n] = alpha * sum_s A_s[m x kseg] . B_s[kseg x n] + beta * C
//
// Every operand is addressed through (row stride, column stride), so transposed or sliced
// views are read in place by the packing routines, never copied. The segment sum
// ("batch-reduce") lets conv's weight gradient reduce over the batch inside one GEMM.
//
// Small M (a few rows against a large B with contiguous rows, as in a recurrent step's input
// gradient): B is read in place instead of packed (gemm.cpp, kDirectMaxM). Same FMAs in the
// same order as the packed path: the results are identical.
//
// Determinism: each C element is computed by one thread, and its K loop runs over the same
// blocks (KC depends on the cache sizes, never on the number of threads) in the same order, so
// results are bit-identical for any thread count.
#pragma once

#include <cstdint>
#include <string>

namespace rustorch::kernels {

template <typename T>
struct GemmArgs {
  int64_t m = 0, n = 0, k = 0;  // k = length of one segment
  T alpha = T(1);
  const T* a = nullptr;
  int64_t rsa = 0, csa = 0;
  const T* b = nullptr;
  int64_t rsb = 0, csb = 0;
  T beta = T(0);  // 0: C is write-only (NaN/garbage in C does not propagate)
  T* c = nullptr;
  int64_t rsc = 0, csc = 0;
  // Batch-reduce: segment s reads A at a + s * bsa and B at b + s * bsb.
  int64_t segments = 1;
  int64_t bsa = 0, bsb = 0;
  // Tests: always pack both operands (the classic path the direct paths must match bit for bit).
  bool force_packing = false;
};

// Runs on up to at::get_num_threads() threads (inline when called from a parallel region or
// with parallel = false). C must not overlap A or B and must not alias itself.
template <typename T>
void gemm(const GemmArgs<T>& args, bool parallel = true);

// `batch` independent GEMMs: problem i uses a + i * batch_a, b + i * batch_b, c + i * batch_c.
// Small problems run one per thread, large ones one after the other on all threads.
template <typename T>
void gemm_batched(const GemmArgs<T>& args, int64_t batch, int64_t batch_a, int64_t batch_b,
                  int64_t batch_c);

// "avx2 6x16 KC=256 MC=252 NC=4096" — for benchmarks and bug reports.
template <typename T>
std::string gemm_config();

}  // namespace rustorch::kernels
