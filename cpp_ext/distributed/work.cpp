// See work.h.
#include "distributed/work.h"

#include <thread>

namespace rustorch::dist {

namespace {

c10::TypePtr tensor_list_type() {
  return c10::ListType::create(c10::TensorType::get());
}

// Appends the tensors of a future's value (a tensor, a list of them, or nested lists).
void flatten(const c10::IValue& v, c10::List<at::Tensor>& out) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTensorList()) {
    for (const at::Tensor& t : v.toTensorList()) out.push_back(t);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toList()) flatten(e, out);
  }
}

}  // namespace

BridgedWork::BridgedWork(c10::intrusive_ptr<c10d::Work> inner, std::unique_ptr<Bridge> bridge,
                         std::vector<at::Tensor> result, c10d::OpType op)
    : c10d::Work(-1, op),
      inner_(std::move(inner)),
      bridge_(std::move(bridge)),
      result_(std::move(result)) {}

void BridgedWork::complete() {
  std::lock_guard<std::mutex> lock(complete_mutex_);
  if (!completed_bridge_) {
    completed_bridge_ = true;
    try {
      bridge_->complete();
    } catch (...) {
      complete_error_ = std::current_exception();
    }
  }
  if (complete_error_) std::rethrow_exception(complete_error_);
}

bool BridgedWork::isCompleted() {
  if (!inner_->isCompleted()) return false;
  if (inner_->isSuccess()) {
    try {
      complete();
    } catch (...) {  // reported by isSuccess() / exception() / wait()
    }
  }
  return true;
}

bool BridgedWork::isSuccess() const {
  if (!inner_->isSuccess()) return false;
  std::lock_guard<std::mutex> lock(const_cast<BridgedWork*>(this)->complete_mutex_);
  return complete_error_ == nullptr;
}

std::exception_ptr BridgedWork::exception() const {
  if (auto err = inner_->exception()) return err;
  std::lock_guard<std::mutex> lock(const_cast<BridgedWork*>(this)->complete_mutex_);
  return complete_error_;
}

int BridgedWork::sourceRank() const {
  return inner_->sourceRank();
}

std::vector<at::Tensor> BridgedWork::result() {
  wait();
  return result_;
}

bool BridgedWork::wait(std::chrono::milliseconds timeout) {
  const bool ok = inner_->wait(timeout);  // raises gloo's error
  complete();
  return ok;
}

void BridgedWork::abort() {
  inner_->abort();
}

uint64_t BridgedWork::getSequencenumber() const {
  return inner_->getSequencenumber();
}

std::chrono::milliseconds BridgedWork::getTimeout() const {
  return inner_->getTimeout();
}

c10::intrusive_ptr<c10::ivalue::Future> BridgedWork::getFuture() {
  std::lock_guard<std::mutex> lock(future_mutex_);
  if (!future_) future_ = make_future();
  return future_;
}

c10::intrusive_ptr<c10::ivalue::Future> BridgedWork::make_future() {
  auto self = c10::intrusive_ptr<BridgedWork>::reclaim_copy(this);
  c10::intrusive_ptr<c10::ivalue::Future> inner_future;
  try {
    inner_future = inner_->getFuture();
  } catch (const c10::Error&) {
    // "Work::getFuture not implemented": wait for the work on a helper thread (the group's
    // timeout bounds it).
  }
  if (!inner_future) {
    auto fut = c10::make_intrusive<c10::ivalue::Future>(tensor_list_type());
    std::thread([self, fut] {
      try {
        self->wait();
        fut->markCompleted(c10::IValue(c10::List<at::Tensor>(self->result_)));
      } catch (...) {
        fut->setError(std::current_exception());
      }
    }).detach();
    return fut;
  }
  auto fut = c10::make_intrusive<c10::ivalue::Future>(inner_future->elementType());
  // Runs on gloo's thread when the collective ends (or here, if it already has).
  inner_future->addCallback([self, fut](c10::ivalue::Future& done) {
    if (done.hasError()) {
      fut->setError(done.exception_ptr());
      return;
    }
    try {
      self->complete();
      fut->markCompleted(self->bridge_->originals(done.value()));
    } catch (...) {
      fut->setError(std::current_exception());
    }
  });
  return fut;
}

CombinedWork::CombinedWork(std::vector<c10::intrusive_ptr<c10d::Work>> works)
    : c10d::Work(-1, c10d::OpType::COALESCED), works_(std::move(works)) {}

bool CombinedWork::isCompleted() {
  for (auto& w : works_)
    if (!w->isCompleted()) return false;
  return true;
}

bool CombinedWork::isSuccess() const {
  for (const auto& w : works_)
    if (!w->isSuccess()) return false;
  return true;
}

std::exception_ptr CombinedWork::exception() const {
  for (const auto& w : works_)
    if (auto err = w->exception()) return err;
  return nullptr;
}

std::vector<at::Tensor> CombinedWork::result() {
  wait();
  std::vector<at::Tensor> out;
  for (auto& w : works_)
    for (auto& t : w->result()) out.push_back(t);
  return out;
}

bool CombinedWork::wait(std::chrono::milliseconds timeout) {
  bool ok = true;
  for (auto& w : works_) ok = w->wait(timeout) && ok;
  return ok;
}

void CombinedWork::abort() {
  for (auto& w : works_) w->abort();
}

c10::intrusive_ptr<c10::ivalue::Future> CombinedWork::getFuture() {
  std::lock_guard<std::mutex> lock(future_mutex_);
  if (future_) return future_;
  if (works_.empty()) {
    future_ = c10::make_intrusive<c10::ivalue::Future>(tensor_list_type());
    future_->markCompleted(c10::IValue(c10::List<at::Tensor>()));
    return future_;
  }
  c10::List<c10::intrusive_ptr<c10::ivalue::Future>> futures(
      c10::FutureType::create(c10::AnyType::get()));
  for (auto& w : works_) futures.push_back(w->getFuture());
  // collectAll fails as soon as one future fails, with that error.
  future_ = c10::collectAll(futures)->then(
      [](c10::ivalue::Future& all) {
        c10::List<at::Tensor> out;
        for (const c10::IValue& f : all.value().toList()) flatten(f.toFuture()->value(), out);
        return c10::IValue(out);
      },
      tensor_list_type());
  return future_;
}

}  // namespace rustorch::dist
