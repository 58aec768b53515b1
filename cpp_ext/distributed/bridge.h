// The CPU view of rustorch tensors that gloo works on (one Bridge per collective call).
//
// Device memory is host memory: a contiguous rustorch tensor goes to gloo as a CPU tensor over the
// same bytes (rustorch::as_cpu, no copy). Any other layout, and inputs that PREMUL_SUM scales, go
// through a contiguous CPU copy; staged outputs are copied back when the collective completes.
// ReduceOps gloo lacks are composed here: AVG is SUM then a division, PREMUL_SUM is scaled inputs
// then SUM.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Types.hpp>

#include <utility>
#include <vector>

namespace rustorch::dist {

// How one c10d ReduceOp runs on gloo.
struct Reduction {
  c10d::ReduceOp gloo_op;      // what gloo runs
  bool premul = false;         // PREMUL_SUM: inputs are scaled copies
  double factor = 1.0;         // PREMUL_SUM factor given as a number
  at::Tensor factor_tensor;    // PREMUL_SUM factor given as a tensor (CPU view)
  int64_t divisor = 0;         // AVG: divide the result by this (0: no division)
};

// Checks `op` against `tensors` and says how gloo runs it (AVG and PREMUL_SUM on SUM).
// Throws c10::ValueError for what no rgloo collective can do (AVG on bool, an unknown op).
Reduction plan_reduction(const c10d::ReduceOp& op, int world_size,
                         const std::vector<at::Tensor>& tensors);

class Bridge {
 public:
  // The CPU tensor gloo gets for the caller's tensor `t` (rustorch or CPU, dense).
  // output: gloo writes it, so a staged copy is written back into `t` on completion.
  // scale: PREMUL_SUM of this reduction scales what gloo reads (a copy: `t` changes only through
  //   a write-back).
  // divide: AVG of this reduction divides `t` on completion.
  at::Tensor cpu(const at::Tensor& t, bool output, const Reduction* scale = nullptr,
                 const Reduction* divide = nullptr);
  std::vector<at::Tensor> cpu(const std::vector<at::Tensor>& ts, bool output,
                              const Reduction* scale = nullptr, const Reduction* divide = nullptr);
  std::vector<std::vector<at::Tensor>> cpu(const std::vector<std::vector<at::Tensor>>& ts,
                                           bool output, const Reduction* scale = nullptr);

  // Copies staged outputs back into the caller's tensors, then divides (AVG). Call once, after
  // the collective completed successfully.
  void complete();

  // `value` (gloo's future result) with every CPU tensor gloo got replaced by the caller's.
  c10::IValue originals(const c10::IValue& value) const;

 private:
  at::Tensor original(const at::Tensor& cpu) const;

  // (tensor gloo got, caller's tensor); few per call, so a linear search is the fastest map.
  std::vector<std::pair<at::Tensor, at::Tensor>> originals_;
  std::vector<std::pair<at::Tensor, at::Tensor>> writebacks_;  // (CPU view of caller's, staged)
  std::vector<at::Tensor> divide_;                             // CPU views to divide (AVG)
  int64_t divisor_ = 0;
};

}  // namespace rustorch::dist
