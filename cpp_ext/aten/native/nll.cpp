// NLL loss on a (N, C, S) view of the input: S = 1 for nll_loss, H*W for nll_loss2d.
// Reductions sum fixed-size chunks in parallel and combine the partial sums in chunk order,
// so the result is the same at any thread count.
#include "aten/native/nll.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/Reduction.h>

#include <cstring>
#include <vector>

namespace rustorch::native {
namespace {

constexpr int64_t kChunk = 4096;

struct NllShape {
  int64_t n = 1, c = 1, s = 1;
};

template <typename T>
struct Acc {
  double loss = 0, weight = 0;
};

template <typename T>
void forward_kernel(const T* x, const int64_t* tgt, const T* w, T* out, T* total_weight,
                    const NllShape& sh, int64_t reduction, int64_t ignore_index) {
  const int64_t count = sh.n * sh.s;
  auto element = [&](int64_t i, T& loss, T& wt) -> bool {
    const int64_t t = tgt[i];
    if (t == ignore_index) return false;
    TORCH_CHECK(t >= 0 && t < sh.c, "Target ", t, " is out of bounds.");
    const int64_t b = i / sh.s, sp = i % sh.s;
    wt = w ? w[t] : T(1);
    loss = -x[(b * sh.c + t) * sh.s + sp] * wt;
    return true;
  };
  if (reduction == at::Reduction::None && out != nullptr && total_weight == nullptr) {
    at::parallel_for(0, count, kChunk, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        T loss, wt;
        out[i] = element(i, loss, wt) ? loss : T(0);
      }
    });
    return;
  }
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  std::vector<Acc<T>> part(std::max<int64_t>(chunks, 1));
  // grain 2: a single chunk runs inline, without entering a parallel region.
  at::parallel_for(0, chunks, 2, [&](int64_t cb, int64_t ce) {
    for (int64_t c = cb; c < ce; ++c) {
      Acc<T> a;
      for (int64_t i = c * kChunk, e = std::min(count, (c + 1) * kChunk); i < e; ++i) {
        T loss, wt;
        if (element(i, loss, wt)) {
          a.loss += loss;
          a.weight += wt;
        }
      }
      part[c] = a;
    }
  });
  double loss = 0, weight = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    loss += part[c].loss;
    weight += part[c].weight;
  }
  *total_weight = static_cast<T>(weight);
  *out = reduction == at::Reduction::Mean ? static_cast<T>(loss / weight) : static_cast<T>(loss);
}

template <typename T>
void backward_kernel(const T* g, const int64_t* tgt, const T* w, T* gi, const NllShape& sh,
                     int64_t reduction, int64_t ignore_index, T total_weight) {
  const int64_t count = sh.n * sh.s;
  const bool per_element = reduction == at::Reduction::None;
  const T scale = per_element ? T(0)
                  : reduction == at::Reduction::Mean ? g[0] / total_weight
                                                     : g[0];
  at::parallel_for(0, count, kChunk, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t t = tgt[i];
      if (t == ignore_index) continue;
      TORCH_CHECK(t >= 0 && t < sh.c, "Target ", t, " is out of bounds.");
      const int64_t bi = i / sh.s, sp = i % sh.s;
      gi[(bi * sh.c + t) * sh.s + sp] = -(w ? w[t] : T(1)) * (per_element ? g[i] : scale);
    }
  });
}

at::Tensor weight_or_undefined(const std::optional<at::Tensor>& weight, int64_t classes) {
  if (!weight.has_value() || !weight->defined()) return at::Tensor();
  TORCH_CHECK(weight->dim() == 1 && weight->numel() == classes,
              "weight tensor should be defined either for all ", classes,
              " classes or no classes but got weight tensor of shape: ", weight->sizes());
  return weight->contiguous();
}

void check_reduction(int64_t reduction) {
  TORCH_CHECK(reduction == at::Reduction::None || reduction == at::Reduction::Mean ||
                  reduction == at::Reduction::Sum,
              "nll_loss: invalid reduction ", reduction);
}

std::tuple<at::Tensor, at::Tensor> forward_common(const at::Tensor& self, const at::Tensor& target,
                                                  const std::optional<at::Tensor>& weight,
                                                  int64_t reduction, int64_t ignore_index,
                                                  const NllShape& sh, at::IntArrayRef none_shape,
                                                  bool elementwise_none) {
  TORCH_CHECK(nll_supported(self, target, weight), "rustorch nll_loss: unsupported dtypes");
  check_reduction(reduction);
  at::Tensor w = weight_or_undefined(weight, sh.c);
  at::Tensor x = self.contiguous();
  at::Tensor t = target.contiguous();
  const bool none = reduction == at::Reduction::None && elementwise_none;
  at::Tensor out = at::empty(none ? none_shape : at::IntArrayRef{}, self.options());
  at::Tensor total = at::empty({}, self.options());
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_nll_loss", [&] {
    const scalar_t* wp = w.defined() ? w.const_data_ptr<scalar_t>() : nullptr;
    if (none) {
      *total.data_ptr<scalar_t>() = scalar_t(0);
      forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), t.const_data_ptr<int64_t>(), wp,
                               out.data_ptr<scalar_t>(), nullptr, sh, reduction, ignore_index);
    } else {
      // reduction None on an unbatched input is a sum over the single element.
      const int64_t red = reduction == at::Reduction::None ? at::Reduction::Sum : reduction;
      forward_kernel<scalar_t>(x.const_data_ptr<scalar_t>(), t.const_data_ptr<int64_t>(), wp,
                               out.data_ptr<scalar_t>(), total.data_ptr<scalar_t>(), sh, red,
                               ignore_index);
    }
  });
  return {out, total};
}

at::Tensor backward_common(const at::Tensor& grad_output, const at::Tensor& self,
                           const at::Tensor& target, const std::optional<at::Tensor>& weight,
                           int64_t reduction, int64_t ignore_index,
                           const at::Tensor& total_weight, const NllShape& sh,
                           bool elementwise_none) {
  TORCH_CHECK(nll_supported(self, target, weight) &&
                  grad_output.scalar_type() == self.scalar_type() &&
                  total_weight.scalar_type() == self.scalar_type(),
              "rustorch nll_loss_backward: unsupported dtypes");
  check_reduction(reduction);
  TORCH_CHECK(total_weight.numel() == 1, "expected total_weight to be a single element tensor, got: ",
              total_weight.sizes(), " (", total_weight.numel(), " elements)");
  const bool none = reduction == at::Reduction::None && elementwise_none;
  if (none) {
    TORCH_CHECK(grad_output.numel() == sh.n * sh.s,
                "nll_loss_backward: expected grad_output with ", sh.n * sh.s,
                " elements but got shape ", grad_output.sizes());
  } else {
    TORCH_CHECK(grad_output.numel() == 1,
                "nll_loss_backward: expected a single-element grad_output but got shape ",
                grad_output.sizes());
  }
  at::Tensor w = weight_or_undefined(weight, sh.c);
  at::Tensor t = target.contiguous();
  at::Tensor g = grad_output.contiguous();
  at::Tensor gi = at::empty(self.sizes(), self.options());
  AT_DISPATCH_FLOATING_TYPES(self.scalar_type(), "rustorch_nll_loss_backward", [&] {
    scalar_t* gp = gi.data_ptr<scalar_t>();
    std::memset(gp, 0, sizeof(scalar_t) * gi.numel());
    const int64_t red = (reduction == at::Reduction::None && !none) ? at::Reduction::Sum : reduction;
    backward_kernel<scalar_t>(g.const_data_ptr<scalar_t>(), t.const_data_ptr<int64_t>(),
                              w.defined() ? w.const_data_ptr<scalar_t>() : nullptr, gp, sh, red,
                              ignore_index, *total_weight.const_data_ptr<scalar_t>());
  });
  return gi;
}

NllShape nll_shape(const at::Tensor& self, const at::Tensor& target) {
  TORCH_CHECK(self.dim() > 0 && self.dim() <= 2, "input tensor should be 1D or 2D");
  TORCH_CHECK(target.dim() <= 1,
              "0D or 1D target tensor expected, multi-target not supported");
  const bool no_batch = self.dim() == 1 && target.dim() == 0;
  TORCH_CHECK(no_batch || self.size(0) == target.size(0), "size mismatch (got input: ",
              self.sizes(), ", target: ", target.sizes(), ")");
  NllShape sh;
  sh.n = self.dim() == 2 ? self.size(0) : 1;
  sh.c = self.size(-1);
  return sh;
}

NllShape nll2d_shape(const at::Tensor& self, const at::Tensor& target) {
  TORCH_CHECK(target.dim() == 3,
              "only batches of spatial targets supported (3D tensors) but got targets of "
              "dimension: ",
              target.dim());
  TORCH_CHECK(self.dim() == 4,
              "only batches of spatial inputs supported (4D tensors), but got input of "
              "dimension: ",
              self.dim());
  TORCH_CHECK(self.size(0) == target.size(0) && self.size(2) == target.size(1) &&
                  self.size(3) == target.size(2),
              "input and target batch or spatial sizes don't match: target ", target.sizes(),
              ", input ", self.sizes());
  return NllShape{self.size(0), self.size(1), self.size(2) * self.size(3)};
}

}  // namespace

bool nll_supported(const at::Tensor& self, const at::Tensor& target,
                   const std::optional<at::Tensor>& weight) {
  const auto st = self.scalar_type();
  if (self.layout() != at::kStrided || (st != at::kFloat && st != at::kDouble)) return false;
  if (target.scalar_type() != at::kLong) return false;
  if (weight.has_value() && weight->defined() && weight->scalar_type() != st) return false;
  return true;
}

template <NllInput K>
std::tuple<at::Tensor, at::Tensor> nll_forward(const at::Tensor& self, const at::Tensor& target,
                                               const std::optional<at::Tensor>& weight,
                                               int64_t reduction, int64_t ignore_index) {
  if constexpr (K == NllInput::Classes) {
    const NllShape sh = nll_shape(self, target);
    return forward_common(self, target, weight, reduction, ignore_index, sh, {sh.n},
                          self.dim() == 2);
  } else {
    const NllShape sh = nll2d_shape(self, target);
    return forward_common(self, target, weight, reduction, ignore_index, sh, target.sizes(),
                          true);
  }
}

template <NllInput K>
at::Tensor nll_backward(const at::Tensor& grad_output, const at::Tensor& self,
                        const at::Tensor& target, const std::optional<at::Tensor>& weight,
                        int64_t reduction, int64_t ignore_index, const at::Tensor& total_weight) {
  const bool classes = K == NllInput::Classes;
  const NllShape sh = classes ? nll_shape(self, target) : nll2d_shape(self, target);
  return backward_common(grad_output, self, target, weight, reduction, ignore_index,
                         total_weight, sh, !classes || self.dim() == 2);
}

template std::tuple<at::Tensor, at::Tensor> nll_forward<NllInput::Classes>(
    const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, int64_t, int64_t);
template std::tuple<at::Tensor, at::Tensor> nll_forward<NllInput::Spatial>(
    const at::Tensor&, const at::Tensor&, const std::optional<at::Tensor>&, int64_t, int64_t);
template at::Tensor nll_backward<NllInput::Classes>(const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&,
                                                    const std::optional<at::Tensor>&, int64_t,
                                                    int64_t, const at::Tensor&);
template at::Tensor nll_backward<NllInput::Spatial>(const at::Tensor&, const at::Tensor&,
                                                    const at::Tensor&,
                                                    const std::optional<at::Tensor>&, int64_t,
                                                    int64_t, const at::Tensor&);

}  // namespace rustorch::native
