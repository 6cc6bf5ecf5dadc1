#pragma once
// Names outside the overlay, for a device that sends every query to the
// relay's address (--dns_forward): such a query goes on to an upstream
// resolver, under an ID of our own (random, so a stranger cannot guess
// which answer to forge), and its answer comes back into the TUN as if the
// relay's address had sent it. Only an answer from the upstream's address
// and port, with a pending ID, is taken; at most kMaxPending queries wait,
// each for at most kTimeout.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "mnedc/dns/udp_exchange.h"

namespace mnedc::client {

struct ForwarderCounters {
  uint64_t forwarded = 0;  // Queries sent upstream.
  uint64_t answered = 0;   // Answers passed back.
  uint64_t timed_out = 0;  // Queries the upstream did not answer in time.
  uint64_t rejected = 0;   // Datagrams that were no answer to a pending query.
  uint64_t overflow = 0;   // Queries dropped: too many waiting.
};

class DnsForwarder {
 public:
  using AnswerHandler = std::function<void(const dns::UdpFlow& flow, std::span<const uint8_t> answer)>;
  static constexpr std::size_t kMaxPending = 256;
  static constexpr std::chrono::seconds kTimeout{3};

  DnsForwarder(boost::asio::any_io_executor executor, boost::asio::ip::udp::endpoint upstream, AnswerHandler answer);

  // Sends `query` (a DNS message from `flow`) upstream; false (counted) if it could not.
  bool Forward(std::span<const uint8_t> query, const dns::UdpFlow& flow);
  // Takes answers and expires queries until Stop().
  boost::asio::awaitable<void> Run();
  void Stop();

  const ForwarderCounters& counters() const { return counters_; }
  std::size_t pending() const { return pending_.size(); }

 private:
  struct Pending {
    uint16_t asker_id;
    dns::UdpFlow flow;
    std::chrono::steady_clock::time_point sent;
  };
  boost::asio::awaitable<void> ReceiveLoop();
  boost::asio::awaitable<void> ExpireLoop();
  void Expire(std::chrono::steady_clock::time_point now);

  boost::asio::ip::udp::endpoint upstream_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer expire_timer_;
  AnswerHandler answer_;
  std::unordered_map<uint16_t, Pending> pending_;  // By the ID sent upstream.
  std::mt19937 random_;
  std::vector<uint8_t> buffer_;
  ForwarderCounters counters_;
  bool stopped_ = false;
};

}  // namespace mnedc::client
