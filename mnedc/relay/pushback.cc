#include "mnedc/relay/pushback.h"

#include <algorithm>

#include "mnedc/base/coro.h"

namespace mnedc::relay {

Pushback::Pushback(boost::asio::any_io_executor executor, const std::string& name)
    : resume_(executor), name_(name) {}

Pushback::~Pushback() {
  StopWaiting();
  ReleaseWaiters();
}

void Pushback::WaitOn(Pushback& receiver) {
  StopWaiting();
  waiting_on_ = &receiver;
  receiver.waiters_.push_back(this);
}

boost::asio::awaitable<std::string> Pushback::WaitForRoom(std::chrono::steady_clock::duration limit) {
  if (!waiting_on_) co_return std::string();
  resume_.expires_after(limit);
  auto [ec] = co_await resume_.async_wait(base::kUse);
  // Woken (ec set) or the receiver went away (waiting_on_ cleared): go on.
  if (ec || !waiting_on_) co_return std::string();
  Pushback& slow = *waiting_on_;
  StopWaiting();
  if (slow.stalled_) co_return std::string();
  slow.stalled_ = true;
  co_return slow.name_;
}

void Pushback::Drained() {
  stalled_ = false;
  ReleaseWaiters();
}

void Pushback::StopWaiting() {
  if (!waiting_on_) return;
  std::erase(waiting_on_->waiters_, this);
  waiting_on_ = nullptr;
}

void Pushback::ReleaseWaiters() {
  for (Pushback* waiter : waiters_) {
    waiter->waiting_on_ = nullptr;
    waiter->resume_.cancel();
  }
  waiters_.clear();
}

}  // namespace mnedc::relay
