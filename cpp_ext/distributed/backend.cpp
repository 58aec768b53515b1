// See backend.h. Each collective: plan the reduction (AVG, PREMUL_SUM), bridge the tensors to CPU
// views, call gloo, wrap its work. No copy for contiguous tensors, no Python anywhere.
#include "distributed/backend.h"

#include <memory>

#include "distributed/bridge.h"
#include "distributed/work.h"

namespace rustorch::dist {

namespace {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

WorkPtr wrap(WorkPtr inner, std::unique_ptr<Bridge> bridge, std::vector<at::Tensor> result,
             c10d::OpType op) {
  return c10::make_intrusive<BridgedWork>(std::move(inner), std::move(bridge), std::move(result),
                                          op);
}

std::vector<at::Tensor> flat(const std::vector<std::vector<at::Tensor>>& lists) {
  std::vector<at::Tensor> out;
  for (const auto& l : lists) out.insert(out.end(), l.begin(), l.end());
  return out;
}

}  // namespace

ProcessGroupRGloo::ProcessGroupRGloo(c10::intrusive_ptr<c10d::Backend> gloo, int rank, int size)
    : c10d::Backend(rank, size), gloo_(std::move(gloo)) {
  TORCH_CHECK_VALUE(gloo_, "rgloo needs a gloo process group");
  TORCH_CHECK_VALUE(gloo_->getRank() == rank && gloo_->getSize() == size,
                    "rgloo: rank/size ", rank, "/", size, " differ from gloo's ",
                    gloo_->getRank(), "/", gloo_->getSize());
}

c10::intrusive_ptr<c10d::Backend::Options> ProcessGroupRGloo::getBackendOptions() {
  return gloo_->getBackendOptions();
}

void ProcessGroupRGloo::setTimeout(std::chrono::milliseconds timeout) {
  gloo_->setTimeout(timeout);
}

void ProcessGroupRGloo::setGroupUid(const std::string& pg_uid) {
  c10d::Backend::setGroupUid(pg_uid);
  gloo_->setGroupUid(pg_uid);
}

void ProcessGroupRGloo::abort() {
  gloo_->abort();
}

void ProcessGroupRGloo::shutdown() {
  gloo_->shutdown();
}

uint64_t ProcessGroupRGloo::getSequenceNumberForGroup() {
  return gloo_->getSequenceNumberForGroup();
}

// -- coalescing: the works issued inside a block become one work.

void ProcessGroupRGloo::startCoalescing() {
  TORCH_CHECK(!coalesced_, "rgloo: start_coalescing called inside a coalescing block");
  coalesced_.emplace();
}

WorkPtr ProcessGroupRGloo::endCoalescing() {
  TORCH_CHECK(coalesced_, "rgloo: end_coalescing called without start_coalescing");
  auto works = std::move(*coalesced_);
  coalesced_.reset();
  return c10::make_intrusive<CombinedWork>(std::move(works));
}

WorkPtr ProcessGroupRGloo::issued(WorkPtr work) {
  if (coalesced_) coalesced_->push_back(work);
  return work;
}

// -- reductions

WorkPtr ProcessGroupRGloo::allreduce(std::vector<at::Tensor>& tensors,
                                     const c10d::AllreduceOptions& opts) {
  auto b = std::make_unique<Bridge>();
  const Reduction r = plan_reduction(opts.reduceOp, getSize(), tensors);
  auto cpu = b->cpu(tensors, /*output=*/true, &r, &r);
  c10d::AllreduceOptions inner = opts;
  inner.reduceOp = r.gloo_op;
  auto work = gloo_->allreduce(cpu, inner);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::ALLREDUCE));
}

WorkPtr ProcessGroupRGloo::allreduce_coalesced(std::vector<at::Tensor>& tensors,
                                               const c10d::AllreduceCoalescedOptions& opts) {
  auto b = std::make_unique<Bridge>();
  const Reduction r = plan_reduction(opts.reduceOp, getSize(), tensors);
  auto cpu = b->cpu(tensors, /*output=*/true, &r, &r);
  c10d::AllreduceCoalescedOptions inner = opts;
  inner.reduceOp = r.gloo_op;
  auto work = gloo_->allreduce_coalesced(cpu, inner);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::ALLREDUCE_COALESCED));
}

WorkPtr ProcessGroupRGloo::reduce(std::vector<at::Tensor>& tensors,
                                  const c10d::ReduceOptions& opts) {
  auto b = std::make_unique<Bridge>();
  const Reduction r = plan_reduction(opts.reduceOp, getSize(), tensors);
  const bool root = getRank() == opts.rootRank;
  // Only the root holds the result: a staged copy (PREMUL_SUM, strided) goes back and AVG
  // divides there only; elsewhere the input keeps its values, whatever gloo left in its buffer.
  auto cpu = b->cpu(tensors, /*output=*/root, &r, root ? &r : nullptr);
  c10d::ReduceOptions inner = opts;
  inner.reduceOp = r.gloo_op;
  auto work = gloo_->reduce(cpu, inner);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::REDUCE));
}

WorkPtr ProcessGroupRGloo::reduce_scatter(std::vector<at::Tensor>& outputs,
                                          std::vector<std::vector<at::Tensor>>& inputs,
                                          const c10d::ReduceScatterOptions& opts) {
  auto b = std::make_unique<Bridge>();
  const Reduction r = plan_reduction(opts.reduceOp, getSize(), outputs);
  auto out = b->cpu(outputs, /*output=*/true, nullptr, &r);
  auto in = b->cpu(inputs, /*output=*/false, &r);
  c10d::ReduceScatterOptions inner = opts;
  inner.reduceOp = r.gloo_op;
  auto work = gloo_->reduce_scatter(out, in, inner);
  return issued(wrap(std::move(work), std::move(b), outputs, c10d::OpType::REDUCE_SCATTER));
}

WorkPtr ProcessGroupRGloo::reduce_scatter_single(at::Tensor& output, at::Tensor& input,
                                                 const c10d::ReduceScatterOptions& opts) {
  auto b = std::make_unique<Bridge>();
  const Reduction r = plan_reduction(opts.reduceOp, getSize(), {output});
  auto out = b->cpu(output, /*output=*/true, nullptr, &r);
  auto in = b->cpu(input, /*output=*/false, &r);
  c10d::ReduceScatterOptions inner = opts;
  inner.reduceOp = r.gloo_op;
  auto work = gloo_->reduce_scatter_single(out, in, inner);
  return issued(wrap(std::move(work), std::move(b), {output},
                     c10d::OpType::_REDUCE_SCATTER_BASE));
}

WorkPtr ProcessGroupRGloo::reduce_scatter_single_coalesced(
    std::vector<at::Tensor>& outputs, std::vector<at::Tensor>& inputs,
    const c10d::ReduceScatterOptions& opts) {
  TORCH_CHECK_VALUE(outputs.size() == inputs.size(), "rgloo: reduce_scatter_tensor_coalesced got ",
                    outputs.size(), " outputs for ", inputs.size(), " inputs");
  // gloo has no coalesced reduce_scatter: one call per pair, one work over them all.
  std::vector<WorkPtr> works;
  auto open = std::move(coalesced_);  // the per-pair works are not issued on their own
  coalesced_.reset();
  try {
    for (size_t i = 0; i < outputs.size(); ++i)
      works.push_back(reduce_scatter_single(outputs[i], inputs[i], opts));
  } catch (...) {
    coalesced_ = std::move(open);
    throw;
  }
  coalesced_ = std::move(open);
  return issued(c10::make_intrusive<CombinedWork>(std::move(works)));
}

// -- data movement

WorkPtr ProcessGroupRGloo::broadcast(std::vector<at::Tensor>& tensors,
                                     const c10d::BroadcastOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto cpu = b->cpu(tensors, /*output=*/true);
  auto work = gloo_->broadcast(cpu, opts);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::BROADCAST));
}

WorkPtr ProcessGroupRGloo::allgather(std::vector<std::vector<at::Tensor>>& outputs,
                                     std::vector<at::Tensor>& inputs,
                                     const c10d::AllgatherOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->allgather(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), flat(outputs), c10d::OpType::ALLGATHER));
}

WorkPtr ProcessGroupRGloo::all_gather_single(at::Tensor& output, at::Tensor& input,
                                             const c10d::AllgatherOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(output, /*output=*/true);
  auto in = b->cpu(input, /*output=*/false);
  // Like NCCL, accept any contiguous output of world_size * input.numel() elements (e.g.
  // SyncBatchNorm's [1, W * n] for an [n] input); gloo splits the output along dim 0.
  if (out.is_contiguous() && in.dim() > 0 && out.numel() == in.numel() * getSize() &&
      out.size(0) != in.size(0) * getSize()) {
    std::vector<int64_t> shape(in.sizes().begin(), in.sizes().end());
    shape[0] = -1;
    out = out.view(shape);
  }
  auto work = gloo_->all_gather_single(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), {output}, c10d::OpType::_ALLGATHER_BASE));
}

WorkPtr ProcessGroupRGloo::allgather_coalesced(std::vector<std::vector<at::Tensor>>& outputs,
                                               std::vector<at::Tensor>& inputs,
                                               const c10d::AllgatherOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->allgather_coalesced(out, in, opts);
  return issued(
      wrap(std::move(work), std::move(b), flat(outputs), c10d::OpType::ALLGATHER_COALESCED));
}

WorkPtr ProcessGroupRGloo::all_gather_single_coalesced(std::vector<at::Tensor>& outputs,
                                                       std::vector<at::Tensor>& inputs,
                                                       const c10d::AllgatherOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->all_gather_single_coalesced(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), outputs,
                     c10d::OpType::ALLGATHER_INTO_TENSOR_COALESCED));
}

WorkPtr ProcessGroupRGloo::gather(std::vector<std::vector<at::Tensor>>& outputs,
                                  std::vector<at::Tensor>& inputs,
                                  const c10d::GatherOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->gather(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), flat(outputs), c10d::OpType::GATHER));
}

WorkPtr ProcessGroupRGloo::scatter(std::vector<at::Tensor>& outputs,
                                   std::vector<std::vector<at::Tensor>>& inputs,
                                   const c10d::ScatterOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->scatter(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), outputs, c10d::OpType::SCATTER));
}

WorkPtr ProcessGroupRGloo::all_to_all_single(at::Tensor& output, at::Tensor& input,
                                             std::vector<int64_t>& output_split_sizes,
                                             std::vector<int64_t>& input_split_sizes,
                                             const c10d::AllToAllOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(output, /*output=*/true);
  auto in = b->cpu(input, /*output=*/false);
  auto work = gloo_->all_to_all_single(out, in, output_split_sizes, input_split_sizes, opts);
  return issued(wrap(std::move(work), std::move(b), {output}, c10d::OpType::ALLTOALL_BASE));
}

WorkPtr ProcessGroupRGloo::alltoall(std::vector<at::Tensor>& outputs,
                                    std::vector<at::Tensor>& inputs,
                                    const c10d::AllToAllOptions& opts) {
  auto b = std::make_unique<Bridge>();
  auto out = b->cpu(outputs, /*output=*/true);
  auto in = b->cpu(inputs, /*output=*/false);
  auto work = gloo_->alltoall(out, in, opts);
  return issued(wrap(std::move(work), std::move(b), outputs, c10d::OpType::ALLTOALL));
}

// -- point to point and barrier

WorkPtr ProcessGroupRGloo::send(std::vector<at::Tensor>& tensors, int dst, int tag) {
  auto b = std::make_unique<Bridge>();
  auto cpu = b->cpu(tensors, /*output=*/false);
  auto work = gloo_->send(cpu, dst, tag);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::SEND));
}

WorkPtr ProcessGroupRGloo::recv(std::vector<at::Tensor>& tensors, int src, int tag) {
  auto b = std::make_unique<Bridge>();
  auto cpu = b->cpu(tensors, /*output=*/true);
  auto work = gloo_->recv(cpu, src, tag);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::RECV));
}

WorkPtr ProcessGroupRGloo::recvAnysource(std::vector<at::Tensor>& tensors, int tag) {
  auto b = std::make_unique<Bridge>();
  auto cpu = b->cpu(tensors, /*output=*/true);
  auto work = gloo_->recvAnysource(cpu, tag);
  return issued(wrap(std::move(work), std::move(b), tensors, c10d::OpType::RECVANYSOURCE));
}

WorkPtr ProcessGroupRGloo::barrier(const c10d::BarrierOptions& opts) {
  return issued(gloo_->barrier(opts));
}

void ProcessGroupRGloo::monitoredBarrier(const c10d::BarrierOptions& opts, bool wait_all_ranks) {
  gloo_->monitoredBarrier(opts, wait_all_ranks);
}

}  // namespace rustorch::dist
