#pragma once
// Builds IPv4 packets for tests: a 20-byte header and a payload that says who
// sent it and which one it is, so order and integrity can be checked.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace mnedc::testing {

inline std::vector<uint8_t> MakeIpv4Packet(uint32_t source, uint32_t destination, std::size_t size,
                                           uint32_t sequence) {
  std::vector<uint8_t> p(size < 28 ? 28 : size);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(p.size() >> 8);
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = 64;
  p[9] = 17;  // UDP, for the look of it.
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(source >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(destination >> (24 - 8 * i));
    p[20 + i] = static_cast<uint8_t>(sequence >> (24 - 8 * i));
  }
  for (std::size_t i = 24; i < p.size(); ++i) {
    p[i] = static_cast<uint8_t>(i * 31 + sequence * 7 + (source & 0xff));
  }
  return p;
}

// An IPv6 UDP-looking packet of `size` bytes (at least 48), the sequence
// number after the 40-byte header.
inline std::vector<uint8_t> MakeIpv6Packet(const std::array<uint8_t, 16>& source,
                                           const std::array<uint8_t, 16>& destination, std::size_t size,
                                           uint32_t sequence) {
  std::vector<uint8_t> p(size < 48 ? 48 : size);
  p[0] = 0x60;
  p[4] = static_cast<uint8_t>((p.size() - 40) >> 8);
  p[5] = static_cast<uint8_t>(p.size() - 40);
  p[6] = 17;
  p[7] = 64;
  std::copy(source.begin(), source.end(), p.begin() + 8);
  std::copy(destination.begin(), destination.end(), p.begin() + 24);
  for (int i = 0; i < 4; ++i) p[44 + i] = static_cast<uint8_t>(sequence >> (24 - 8 * i));
  return p;
}

inline uint32_t PacketSequence6(std::span<const uint8_t> p) {
  return (uint32_t{p[44]} << 24) | (uint32_t{p[45]} << 16) | (uint32_t{p[46]} << 8) | p[47];
}

inline uint32_t PacketSequence(std::span<const uint8_t> p) {
  return (uint32_t{p[20]} << 24) | (uint32_t{p[21]} << 16) | (uint32_t{p[22]} << 8) | p[23];
}

inline uint32_t PacketSource(std::span<const uint8_t> p) {
  return (uint32_t{p[12]} << 24) | (uint32_t{p[13]} << 16) | (uint32_t{p[14]} << 8) | p[15];
}

}  // namespace mnedc::testing
