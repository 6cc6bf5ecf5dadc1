#pragma once
// STUN Binding messages (RFC 8489), the little of STUN that finding one's
// outside address needs: a relay answers Binding requests with the address
// and port it saw them come from (XOR-MAPPED-ADDRESS, and MAPPED-ADDRESS to
// an RFC 3489 client that sends no magic cookie), and a device asks and reads
// the answer. Written here rather than taken from a library: Debian packages
// no STUN library for C++ (libnice is ICE over GLib, and carries its own
// event loop), and a Binding exchange is a few dozen lines.
//
// Everything parsed here comes from the network: lengths are checked before
// anything is read, attributes the reader does not know are skipped when
// comprehension-optional (0x8000 and up) and reported when not, and nothing
// is allocated.
#include <array>
#include <boost/asio/ip/udp.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

namespace mnedc::stun {

inline constexpr uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
// The largest response WriteBindingResponse makes (an IPv6 address).
inline constexpr std::size_t kMaxResponseSize = kHeaderSize + 4 + 20;
// A Binding request from RequestBindingRequest: padded (with a SOFTWARE
// attribute) to be no smaller than any response to it, so a relay that
// answers a forged source sends no more than it received.
inline constexpr std::size_t kRequestSize = kHeaderSize + 4 + 24;

// Transaction ID: the 12 bytes after the magic cookie (RFC 8489), or all 16
// after the length for an RFC 3489 client (which sends no cookie).
using TransactionId = std::array<uint8_t, 16>;

// Whether a datagram may be STUN at all: the first two bits zero, a length
// that is a multiple of 4 and matches the datagram. Cheap, for telling STUN
// apart from other datagrams on the same socket.
bool LooksLikeStun(std::span<const uint8_t> datagram);

struct BindingRequest {
  TransactionId transaction{};
  bool classic = false;  // RFC 3489: no magic cookie.
};

enum class RequestVerdict {
  kBinding,           // A Binding request: answer it.
  kNotStun,           // Not a STUN message: ignore.
  kMalformed,         // Claims to be STUN, and does not parse: ignore (count).
  kNotBindingRequest, // A response, an indication, another method: ignore.
  kUnknownRequired,   // Carries a comprehension-required attribute this does not know.
};
RequestVerdict ParseBindingRequest(std::span<const uint8_t> datagram, BindingRequest* request);

// Writes the success response to `request`, saying it came from `seen_from`.
// Returns its size (at most kMaxResponseSize).
std::size_t WriteBindingResponse(const BindingRequest& request, const boost::asio::ip::udp::endpoint& seen_from,
                                 std::span<uint8_t, kMaxResponseSize> out);

// Writes a Binding request with that transaction ID (its first 4 bytes are
// the magic cookie; the rest should be random). Returns kRequestSize.
std::size_t WriteBindingRequest(const TransactionId& transaction, std::span<uint8_t, kRequestSize> out);
// A fresh transaction ID: the magic cookie, then 12 random bytes.
TransactionId NewTransactionId();

enum class ResponseVerdict {
  kMapped,     // A success response to `transaction`, with the address.
  kNotStun,
  kMalformed,  // STUN, but no usable address in it, or it does not parse.
  kOther,      // Another transaction, an error response, or not a response.
};
ResponseVerdict ParseBindingResponse(std::span<const uint8_t> datagram, const TransactionId& transaction,
                                     boost::asio::ip::udp::endpoint* mapped);

}  // namespace mnedc::stun
