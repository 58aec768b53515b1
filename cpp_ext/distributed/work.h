// The works rgloo returns: gloo's work finished on the rustorch side, and the one work of a
// coalescing block.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <memory>
#include <mutex>
#include <vector>

#include "distributed/bridge.h"

namespace rustorch::dist {

// gloo's work over the CPU views of one Bridge. wait() waits on gloo's work in the caller's
// thread (its errors raise there: a timeout, a peer that went away), then completes the bridge
// (write-backs, AVG). getFuture() yields what gloo's future yields with the caller's tensors in
// place of the CPU views (DDP's reducer reads its bucket from it); gloo works without a future
// (send, recv, reduce_scatter_tensor) get one completed by a helper thread that waits on them.
// The bridge completes once, on whichever path gets there first.
class BridgedWork : public c10d::Work {
 public:
  BridgedWork(c10::intrusive_ptr<c10d::Work> inner, std::unique_ptr<Bridge> bridge,
              std::vector<at::Tensor> result, c10d::OpType op);

  bool isCompleted() override;
  bool isSuccess() const override;
  std::exception_ptr exception() const override;
  int sourceRank() const override;
  std::vector<at::Tensor> result() override;
  void synchronize() override {}
  bool wait(std::chrono::milliseconds timeout = kNoTimeout) override;
  void abort() override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override;
  uint64_t getSequencenumber() const override;
  std::chrono::milliseconds getTimeout() const override;

 private:
  // Completes the bridge once; rethrows the failure of that step on every call.
  void complete();
  c10::intrusive_ptr<c10::ivalue::Future> make_future();

  c10::intrusive_ptr<c10d::Work> inner_;
  std::unique_ptr<Bridge> bridge_;
  std::vector<at::Tensor> result_;  // the caller's outputs (result(), futures of future-less works)
  std::mutex complete_mutex_;
  bool completed_bridge_ = false;
  std::exception_ptr complete_error_;
  std::mutex future_mutex_;  // separate: a callback may complete the bridge while we hold this
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

// One work over several (the end of a coalescing block, a coalesced call split per tensor).
// wait() waits on each in order and raises the first error; the future yields all their results
// as one flat list.
class CombinedWork : public c10d::Work {
 public:
  explicit CombinedWork(std::vector<c10::intrusive_ptr<c10d::Work>> works);

  bool isCompleted() override;
  bool isSuccess() const override;
  std::exception_ptr exception() const override;
  std::vector<at::Tensor> result() override;
  void synchronize() override {}
  bool wait(std::chrono::milliseconds timeout = kNoTimeout) override;
  void abort() override;
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override;

 private:
  std::vector<c10::intrusive_ptr<c10d::Work>> works_;
  std::mutex future_mutex_;
  c10::intrusive_ptr<c10::ivalue::Future> future_;
};

}  // namespace rustorch::dist
