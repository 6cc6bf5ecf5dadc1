#pragma once
// Hand-built TCP and UDP packets for the offload tests, and a checksum
// written the slow, obvious way (RFC 1071: big-endian 16-bit words) to check
// the fast one against.
#include <cstdint>
#include <vector>

namespace mnedc::packet::testing {

struct Flow {
  int ip_version = 4;
  uint8_t protocol = 6;  // 6 TCP, 17 UDP.
  uint16_t source_port = 40000;
  uint16_t destination_port = 5201;
  uint32_t sequence = 1000;  // TCP.
  uint32_t ack = 777;        // TCP.
  uint8_t tcp_flags = 0x10;  // ACK.
  std::size_t tcp_options = 0;  // Bytes of options (multiple of 4), filled with NOP/timestamp-like bytes.
  std::vector<uint8_t> tcp_option_bytes;  // Real options instead (a multiple of 4 bytes), when not empty.
  uint16_t window = 502;                  // TCP.
  uint16_t ip_id = 0x4242;
  uint32_t source4 = 0x0a000002;       // IPv4 addresses, host order.
  uint32_t destination4 = 0x0a000003;
};

// A packet of `flow` carrying `payload` bytes (byte i of the flow's stream is
// (offset + i) * 7 mod 251), its IP lengths and every checksum correct.
std::vector<uint8_t> MakePacket(const Flow& flow, std::size_t payload, std::size_t offset = 0);

// TCP options NOP, NOP, timestamps (TSval, TSecr): what Linux sends on every segment.
std::vector<uint8_t> TimestampOptions(uint32_t value, uint32_t echo);

// The checksum of `words` computed byte pair by byte pair.
uint16_t ReferenceChecksum(const std::vector<uint8_t>& bytes);
// True if the packet's IPv4 header checksum (if IPv4) and transport checksum
// are right by ReferenceChecksum.
bool ChecksumsRight(const std::vector<uint8_t>& packet);

}  // namespace mnedc::packet::testing
