#pragma once
// Runs the user's --on_peer command for each peer event, one at a time and in
// order, with MNEDC_EVENT (up|down), MNEDC_PEER_ID and MNEDC_PEER_ADDR set, and
// MNEDC_PEER_ADDR6 on a dual-stack network.
// Each hook runs in a process group of its own, so whatever it starts can be
// ended with it: a hook that runs longer than the time limit is killed (the
// events after it are not held back), and on Stop() the running hook's group
// gets SIGTERM, then SIGKILL after a grace period, so no hook (nor a child of
// one, nor one that traps TERM) can hold up the client's exit.
#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <string>

#include "mnedc/discovery/peer_table.h"

namespace mnedc::cli {

class PeerHook {
 public:
  PeerHook(boost::asio::any_io_executor executor, std::string command,
           std::chrono::steady_clock::duration time_limit = std::chrono::seconds(30),
           std::chrono::steady_clock::duration stop_grace = std::chrono::seconds(2));
  // Kills a hook still running (its whole group) and reaps it: bounded.
  ~PeerHook();
  PeerHook(const PeerHook&) = delete;
  PeerHook& operator=(const PeerHook&) = delete;

  void OnEvent(discovery::PeerEvent event, const discovery::Peer& peer);
  // Runs hooks as events come, until Stop(); then ends the running one.
  boost::asio::awaitable<void> Run();
  // Stops taking events and makes Run() end the running hook and return.
  void Stop();

 private:
  struct Pending {
    std::string event;
    std::string device_id;
    std::string address;
    std::string address6;  // Empty on an IPv4-only network.
  };
  void Start(const Pending& next);
  // True once the running hook has exited (and is reaped).
  bool Reap();
  // Waits until the hook exits (true), or `deadline` passes or, if
  // `stop_ends_wait`, Stop() is called (false).
  boost::asio::awaitable<bool> WaitForExit(std::chrono::steady_clock::time_point deadline,
                                           bool stop_ends_wait);
  void SignalGroup(int signal);

  std::string command_;
  std::chrono::steady_clock::duration time_limit_;
  std::chrono::steady_clock::duration stop_grace_;
  boost::asio::steady_timer wake_;  // Never expires: an event or Stop() cancels it.
  boost::asio::steady_timer poll_timer_;
  std::deque<Pending> pending_;
  pid_t running_ = -1;  // Also its process group.
  std::chrono::steady_clock::time_point started_;
  bool stopped_ = false;
};

}  // namespace mnedc::cli
