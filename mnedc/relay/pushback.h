#pragma once
// The pushback relation between relay sessions. A sender whose packet finds
// the receiver's queue full stops reading from its connection (so TCP inside
// the tunnel slows down, as on a real link) until the receiver's writer takes
// its queue, or until a bound passes: then the receiver is marked stalled and
// packets to it are dropped oldest-first, with nobody waiting for it, until
// it drains again. Each session owns one Pushback, for both roles; the links
// between them are cut by whichever side goes first, so no pointer outlives
// the session it points at.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace mnedc::relay {

class Pushback {
 public:
  // `name` (the device ID, set at join) names a stalled receiver in the log.
  Pushback(boost::asio::any_io_executor executor, const std::string& name);
  ~Pushback();
  Pushback(const Pushback&) = delete;
  Pushback& operator=(const Pushback&) = delete;

  // Sender: its packet found `receiver` full; WaitForRoom() comes next.
  void WaitOn(Pushback& receiver);
  // Sender: returns when the receiver drained (or went away), or after
  // `limit`. Returns the receiver's name if this wait made it stalled.
  boost::asio::awaitable<std::string> WaitForRoom(std::chrono::steady_clock::duration limit);

  // Receiver: its writer took the queue. Waiting senders go on; not stalled.
  void Drained();
  // Receiver: did not drain in time; senders do not wait for it.
  bool stalled() const { return stalled_; }
  std::size_t waiters() const { return waiters_.size(); }
  bool waiting() const { return waiting_on_ != nullptr; }

 private:
  void StopWaiting();
  void ReleaseWaiters();

  boost::asio::steady_timer resume_;
  const std::string& name_;
  Pushback* waiting_on_ = nullptr;  // The full receiver this sender waits for.
  std::vector<Pushback*> waiters_;  // Senders waiting for this receiver.
  bool stalled_ = false;
};

}  // namespace mnedc::relay
