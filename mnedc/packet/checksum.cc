#include "mnedc/packet/checksum.h"

#include <arpa/inet.h>

namespace mnedc::packet {

uint64_t Sum(std::span<const uint8_t> bytes, uint64_t sum) {
  const uint8_t* p = bytes.data();
  std::size_t n = bytes.size();
  // Four 32-bit words per step into a 64-bit sum: no carry is lost before
  // 2^32 words, far beyond any packet.
  while (n >= 16) {
    uint32_t w[4];
    std::memcpy(w, p, 16);
    sum += uint64_t{w[0]} + w[1] + w[2] + w[3];
    p += 16;
    n -= 16;
  }
  while (n >= 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    sum += w;
    p += 4;
    n -= 4;
  }
  if (n == 0) return sum;  // (An empty span's data() may be null: no memcpy from it.)
  // The tail, zero-padded to a whole word as the checksum defines.
  uint8_t tail[4] = {0, 0, 0, 0};
  std::memcpy(tail, p, n);
  uint32_t w;
  std::memcpy(&w, tail, 4);
  return sum + w;
}

uint64_t SumHost16(uint16_t value, uint64_t sum) { return sum + htons(value); }

uint16_t Fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

uint64_t PseudoHeaderSum(std::span<const uint8_t> packet, uint8_t protocol, uint32_t transport_length) {
  uint64_t sum = (packet[0] >> 4) == 4 ? Sum(packet.subspan(12, 8)) : Sum(packet.subspan(8, 32));
  sum = SumHost16(protocol, sum);
  sum = SumHost16(static_cast<uint16_t>(transport_length >> 16), sum);
  return SumHost16(static_cast<uint16_t>(transport_length), sum);
}

void SetIpv4HeaderChecksum(uint8_t* packet, std::size_t header_length) {
  packet[10] = packet[11] = 0;
  StoreChecksum(packet + 10, static_cast<uint16_t>(~Fold(Sum({packet, header_length}))));
}

bool TransportChecksumValid(std::span<const uint8_t> packet, std::size_t transport_offset,
                            uint8_t protocol) {
  if (transport_offset >= packet.size()) return false;
  const std::span<const uint8_t> transport = packet.subspan(transport_offset);
  if (protocol == 17 && transport.size() >= 8 && transport[6] == 0 && transport[7] == 0) {
    return (packet[0] >> 4) == 4;  // IPv4 UDP may go without; IPv6 UDP may not.
  }
  const uint64_t sum = PseudoHeaderSum(packet, protocol, static_cast<uint32_t>(transport.size()));
  return Fold(Sum(transport, sum)) == 0xffff;
}

bool CompletePartialChecksum(std::span<uint8_t> packet, std::size_t start, std::size_t offset) {
  if (start > packet.size() || offset + 2 > packet.size() - start) return false;
  uint8_t* field = packet.data() + start + offset;
  const uint16_t partial = LoadChecksum(field);
  field[0] = field[1] = 0;
  const uint16_t folded = Fold(Sum(packet.subspan(start), partial));
  StoreChecksum(field, static_cast<uint16_t>(~folded));
  return true;
}

}  // namespace mnedc::packet
