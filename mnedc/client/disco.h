#pragma once
// What devices tell each other about paths, sealed like their packets (so
// only the peer can read them, and nobody can forge or replay them): a ping
// and its pong over UDP, and CallMeMaybe (here are my candidates: probe me
// now) through the relay, which cannot read them.
//
// The first byte of a sealed body tells these apart from IP packets (whose
// first nibble is 4 or 6): 0x01 ping, 0x02 pong, 0x03 CallMeMaybe.
//   ping:        type, probe ID (12), zero padding to kPingSize
//   pong:        type, probe ID (12), the address the ping came from (19)
//   CallMeMaybe: type, count (at most kMaxCandidates), count addresses (19 each)
//   an address:  family (4 or 6), port (2, big-endian), 16 bytes (IPv4 in the first 4)
// A ping is padded so its pong is never larger: answering cannot amplify.
#include <array>
#include <boost/asio/ip/udp.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

#include "mnedc/client/direct_path.h"

namespace mnedc::client {

enum class DiscoType : uint8_t { kPing = 1, kPong = 2, kCallMeMaybe = 3 };

inline constexpr std::size_t kPingSize = 48;
inline constexpr std::size_t kPongSize = 1 + 12 + 19;
inline constexpr std::size_t kMaxCandidates = 8;
inline constexpr std::size_t kMaxCallMeMaybeSize = 2 + kMaxCandidates * 19;
static_assert(kPongSize <= kPingSize);

// Whether an opened sealed body is a disco message rather than a packet.
inline bool IsDisco(std::span<const uint8_t> body) { return !body.empty() && (body[0] >> 4) == 0; }

struct DiscoMessage {
  DiscoType type = DiscoType::kPing;
  ProbeId id{};                                   // Ping, pong.
  boost::asio::ip::udp::endpoint seen_from;       // Pong.
  std::array<boost::asio::ip::udp::endpoint, kMaxCandidates> candidates;  // CallMeMaybe.
  std::size_t candidate_count = 0;
};

// False for anything that is not one of the three, whole (an unknown type
// from a newer peer is ignored by the caller, not an error).
bool ParseDisco(std::span<const uint8_t> body, DiscoMessage* message);

std::size_t WritePing(const ProbeId& id, std::span<uint8_t, kPingSize> out);
std::size_t WritePong(const ProbeId& id, const boost::asio::ip::udp::endpoint& seen_from,
                      std::span<uint8_t, kPongSize> out);
// Writes at most kMaxCandidates of them (IPv4 and IPv6 only).
std::size_t WriteCallMeMaybe(std::span<const boost::asio::ip::udp::endpoint> candidates,
                             std::span<uint8_t, kMaxCallMeMaybeSize> out);

}  // namespace mnedc::client
