#pragma once
// A relay's STUN service: answers Binding requests on a UDP socket with the
// address and port each came from, so a device behind NATs learns the
// outside address of its UDP socket (its candidate for a direct path).
//
// It cannot be turned into an amplifier: one answer per request, no larger
// than 44 bytes (mnedc's own requests are padded to 48), never to another
// address than the request's source (RESPONSE-PORT and CHANGE-REQUEST
// asking for another address are not answered), and at most
// `per_source_per_second` answers to one source address in a second: a forged
// source gets a trickle at most.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <span>
#include <unordered_map>

namespace mnedc::stun {

struct ResponderCounters {
  uint64_t answered = 0;
  uint64_t malformed = 0;      // Claimed to be STUN and did not parse.
  uint64_t unsupported = 0;    // Not a Binding request, or asked for what is not offered.
  uint64_t not_stun = 0;       // Datagrams that are not STUN at all.
  uint64_t rate_limited = 0;   // Over the per-source rate: not answered.
  uint64_t send_errors = 0;
};

struct ResponderOptions {
  uint32_t per_source_per_second = 20;
  // Sources tracked in one second; requests from further ones are not
  // answered until the next (a flood of forged sources stays bounded too).
  std::size_t max_sources = 16384;
};

class Responder {
 public:
  Responder(boost::asio::ip::udp::socket& socket, ResponderOptions options = {});
  // Answers until the socket is closed or the coroutine is cancelled.
  boost::asio::awaitable<void> Run();
  const ResponderCounters& counters() const { return counters_; }
  // What one datagram gets: the answer's size in `answer` (0: none). For
  // Run, and for tests and fuzzing without a socket.
  std::size_t Handle(std::span<const uint8_t> datagram, const boost::asio::ip::udp::endpoint& from,
                     uint64_t now_seconds, std::span<uint8_t, 44> answer);

 private:
  bool Allow(const boost::asio::ip::address& source, uint64_t now_seconds);

  boost::asio::ip::udp::socket& socket_;
  ResponderOptions options_;
  ResponderCounters counters_;
  uint64_t window_ = 0;
  std::unordered_map<boost::asio::ip::address, uint32_t> answered_in_window_;
};

}  // namespace mnedc::stun
