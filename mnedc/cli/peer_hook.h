#pragma once
// Runs the user's --on_peer command for each peer event, one at a time and in
// order, with MNEDC_EVENT (up|down), MNEDC_PEER_ID and MNEDC_PEER_ADDR set.
// A hook that runs longer than the time limit is killed, so a stuck script
// cannot hold back the events after it.
#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <string>

#include "mnedc/discovery/peer_table.h"

namespace mnedc::cli {

class PeerHook {
 public:
  PeerHook(boost::asio::any_io_executor executor, std::string command,
           std::chrono::seconds time_limit = std::chrono::seconds(30));
  ~PeerHook();

  void OnEvent(discovery::PeerEvent event, const discovery::Peer& peer);
  // Stops taking events; the one running finishes (or is killed at its limit).
  void Stop() { stopped_ = true; }

 private:
  struct Pending {
    std::string event;
    std::string device_id;
    std::string address;
  };
  void StartNext();
  void Poll();

  std::string command_;
  std::chrono::seconds time_limit_;
  boost::asio::steady_timer poll_timer_;
  std::deque<Pending> pending_;
  pid_t running_ = -1;
  std::chrono::steady_clock::time_point started_;
  bool stopped_ = false;
};

}  // namespace mnedc::cli
