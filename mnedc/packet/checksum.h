#pragma once
// The Internet checksum (RFC 1071) in pieces, for segmenting and coalescing
// super-packets. A running sum is kept unfolded in 64 bits and in the
// machine's byte order (the one's-complement sum does not care which), so a
// packet is summed four bytes at a time; Fold() gives the 16 bits to store
// into the packet as they are (StoreChecksum), and ~Fold() the checksum.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace mnedc::packet {

// Adds `bytes` (an even start offset within the packet is assumed, as for
// every header and payload start here) to `sum`.
uint64_t Sum(std::span<const uint8_t> bytes, uint64_t sum = 0);

// Adds a 16-bit field given in host order (a length, a protocol number).
uint64_t SumHost16(uint16_t value, uint64_t sum);

// Folds a running sum to 16 bits, in packet byte order.
uint16_t Fold(uint64_t sum);

// The pseudo-header sum of an IPv4 or IPv6 `packet` for a transport header
// of `protocol` carrying `transport_length` bytes (header and payload).
uint64_t PseudoHeaderSum(std::span<const uint8_t> packet, uint8_t protocol, uint32_t transport_length);

// Stores or loads a 16-bit value that is in packet byte order already.
inline void StoreChecksum(uint8_t* at, uint16_t value) { std::memcpy(at, &value, 2); }
inline uint16_t LoadChecksum(const uint8_t* at) {
  uint16_t value;
  std::memcpy(&value, at, 2);
  return value;
}

// Big-endian helpers for header fields.
inline uint16_t Load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t Load32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void Store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Sets the header checksum of the IPv4 header at the start of `packet`
// (`header_length` bytes).
void SetIpv4HeaderChecksum(uint8_t* packet, std::size_t header_length);

// True if the transport checksum of `packet` (TCP or UDP, `protocol`, its
// header at `transport_offset`) is right. A UDP checksum of 0 (none) is right.
bool TransportChecksumValid(std::span<const uint8_t> packet, std::size_t transport_offset,
                            uint8_t protocol);

// Completes a partial checksum the kernel left (CHECKSUM_PARTIAL: the field
// at start + offset holds the pseudo-header sum): sums from `start` to the
// end and stores the checksum. False if the offsets lie outside the packet.
bool CompletePartialChecksum(std::span<uint8_t> packet, std::size_t start, std::size_t offset);

}  // namespace mnedc::packet
