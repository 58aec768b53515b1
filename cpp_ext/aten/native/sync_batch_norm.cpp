// SyncBatchNorm's statistics ops on rustorch: aten::batch_norm_stats, batch_norm_elemt,
// batch_norm_gather_stats[_with_counts], batch_norm_backward_reduce, batch_norm_backward_elemt.
//
// Why: nn.SyncBatchNorm accepts the PrivateUse1 device and, in training with a process group of
// two or more ranks, calls these ops (torch/nn/modules/_functions.py). PyTorch implements them
// only for CUDA, so the CPU fallback has nothing to run. They are small compositions of aten ops
// (which run on rustorch's kernels or its fallback), with the semantics of CUDA's kernels
// (aten/src/ATen/native/cuda/Normalization.cu): statistics in float for half/bfloat16 inputs,
// variances combined across ranks by their counts (parallel Welford), running_var updated with
// the unbiased variance.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>
#include <tuple>
#include <vector>

#include "aten/native/sync_batch_norm.h"

namespace rustorch::native {
namespace {

using at::Tensor;

at::ScalarType stat_type(const Tensor& input) {
  return at::isReducedFloatingType(input.scalar_type()) ? at::kFloat : input.scalar_type();
}

// Every dimension but the channel dimension (1): the reduction dims of batch norm.
std::vector<int64_t> reduce_dims(const Tensor& input) {
  TORCH_CHECK(input.dim() >= 2, "batch norm: expected an input with at least 2 dims, got ",
              input.dim());
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < input.dim(); ++d) dims.push_back(d);
  return dims;
}

// A [C] tensor shaped to broadcast against the input ([1, C, 1, ...]).
Tensor per_channel(const Tensor& t, const Tensor& input) {
  std::vector<int64_t> shape(input.dim(), 1);
  shape[1] = input.size(1);
  return t.reshape(shape);
}

bool given(const std::optional<Tensor>& t) { return t.has_value() && t->defined(); }

}  // namespace

std::tuple<Tensor, Tensor> batch_norm_stats(const Tensor& input, double eps) {
  const Tensor x = input.to(stat_type(input));
  auto [var, mean] = at::var_mean(x, reduce_dims(input), /*correction=*/0, /*keepdim=*/false);
  return {mean, (var + eps).rsqrt()};
}

Tensor batch_norm_elemt(const Tensor& input, const std::optional<Tensor>& weight,
             const std::optional<Tensor>& bias, const Tensor& mean, const Tensor& invstd,
             double eps) {
  const auto st = stat_type(input);
  Tensor out = (input.to(st) - per_channel(mean.to(st), input)) * per_channel(invstd.to(st), input);
  if (given(weight)) out = out * per_channel(weight->to(st), input);
  if (given(bias)) out = out + per_channel(bias->to(st), input);
  // Keep the input's memory format (channels_last inputs stay channels_last, as on CUDA).
  return out.to(input.scalar_type()).contiguous(input.suggest_memory_format());
}

std::tuple<Tensor, Tensor> batch_norm_gather_stats_with_counts(const Tensor& input, const Tensor& mean,
                                              const Tensor& invstd,
                                              const std::optional<Tensor>& running_mean,
                                              const std::optional<Tensor>& running_var,
                                              double momentum, double eps, const Tensor& counts) {
  TORCH_CHECK(mean.dim() == 2 && invstd.sizes() == mean.sizes(),
              "batch_norm_gather_stats_with_counts: expected mean and invstd of shape "
              "[world_size, C], got ", mean.sizes(), " and ", invstd.sizes());
  const auto st = mean.scalar_type();
  const Tensor n = counts.to(st).reshape({-1, 1});  // [W, 1]
  const Tensor total = n.sum();
  const Tensor global_mean = (mean * n).sum(0) / total;
  // Each rank's biased variance, back from its invstd; then the pooled second moment.
  const Tensor var_r = invstd.pow(-2) - eps;
  const Tensor m2 = (n * (var_r + (mean - global_mean).pow(2))).sum(0);
  const Tensor var = m2 / total;
  const Tensor global_invstd = (var + eps).rsqrt();
  if (given(running_mean)) {
    const Tensor upd = global_mean.to(running_mean->scalar_type());
    running_mean->mul_(1 - momentum).add_(upd, momentum);
  }
  if (given(running_var)) {
    const Tensor unbiased = (m2 / (total - 1)).to(running_var->scalar_type());
    running_var->mul_(1 - momentum).add_(unbiased, momentum);
  }
  return {global_mean, global_invstd};
}

std::tuple<Tensor, Tensor> batch_norm_gather_stats(const Tensor& input, const Tensor& mean, const Tensor& invstd,
                                  const std::optional<Tensor>& running_mean,
                                  const std::optional<Tensor>& running_var, double momentum,
                                  double eps, int64_t count) {
  const Tensor counts = at::full({mean.size(0)}, static_cast<double>(count), mean.options());
  return native::batch_norm_gather_stats_with_counts(input, mean, invstd, running_mean, running_var, momentum, eps, counts);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> batch_norm_backward_reduce(
    const Tensor& grad_out, const Tensor& input, const Tensor& mean, const Tensor& invstd,
    const std::optional<Tensor>& weight, bool input_g, bool weight_g, bool bias_g) {
  const auto st = stat_type(input);
  const auto dims = reduce_dims(input);
  const Tensor dy = grad_out.to(st);
  const Tensor xmu = input.to(st) - per_channel(mean.to(st), input);
  const Tensor sum_dy = dy.sum(dims);
  const Tensor sum_dy_xmu = (dy * xmu).sum(dims);
  // Weight/bias gradients come back in the parameter dtype, as on CUDA.
  const auto pt = given(weight) ? weight->scalar_type() : st;
  Tensor grad_weight = weight_g ? (sum_dy_xmu * invstd.to(st)).to(pt) : Tensor();
  Tensor grad_bias = bias_g ? sum_dy.to(pt) : Tensor();
  if (!input_g) return {Tensor(), Tensor(), grad_weight, grad_bias};
  return {sum_dy, sum_dy_xmu, grad_weight, grad_bias};
}

Tensor batch_norm_backward_elemt(const Tensor& grad_out, const Tensor& input, const Tensor& mean,
                      const Tensor& invstd, const std::optional<Tensor>& weight,
                      const Tensor& sum_dy, const Tensor& sum_dy_xmu, const Tensor& count) {
  const auto st = stat_type(input);
  const Tensor total = count.to(st).sum();
  const Tensor is = per_channel(invstd.to(st), input);
  const Tensor xmu = input.to(st) - per_channel(mean.to(st), input);
  const Tensor mean_dy = per_channel(sum_dy.to(st), input) / total;
  const Tensor mean_dy_xmu = per_channel(sum_dy_xmu.to(st), input) / total;
  Tensor gi = (grad_out.to(st) - mean_dy - xmu * is * is * mean_dy_xmu) * is;
  if (given(weight)) gi = gi * per_channel(weight->to(st), input);
  return gi.to(input.scalar_type()).contiguous(input.suggest_memory_format());
}

}  // namespace rustorch::native
