#include "mnedc/packet/test_packets.h"

#include "mnedc/packet/checksum.h"

namespace mnedc::packet::testing {
namespace {
std::size_t IpHeaderLength(const std::vector<uint8_t>& p) {
  return (p[0] >> 4) == 4 ? std::size_t{p[0] & 0x0fu} * 4 : 40;
}

std::vector<uint8_t> PseudoHeader(const std::vector<uint8_t>& p, uint8_t protocol, std::size_t length) {
  std::vector<uint8_t> pseudo;
  if ((p[0] >> 4) == 4) {
    pseudo.assign(p.begin() + 12, p.begin() + 20);
    pseudo.insert(pseudo.end(), {0, protocol, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length)});
  } else {
    pseudo.assign(p.begin() + 8, p.begin() + 40);
    pseudo.insert(pseudo.end(), {0, 0, static_cast<uint8_t>(length >> 8), static_cast<uint8_t>(length), 0, 0, 0,
                                 protocol});
  }
  return pseudo;
}

uint16_t ReferenceSumOf(const std::vector<uint8_t>& bytes) {
  uint32_t sum = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    const uint32_t word = (uint32_t{bytes[i]} << 8) | (i + 1 < bytes.size() ? bytes[i + 1] : 0);
    sum += word;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<uint16_t>(sum);
}

uint16_t TransportChecksum(const std::vector<uint8_t>& p, uint8_t protocol) {
  const std::size_t ihl = IpHeaderLength(p);
  std::vector<uint8_t> all = PseudoHeader(p, protocol, p.size() - ihl);
  all.insert(all.end(), p.begin() + static_cast<std::ptrdiff_t>(ihl), p.end());
  return ReferenceChecksum(all);
}
}  // namespace

std::vector<uint8_t> TimestampOptions(uint32_t value, uint32_t echo) {
  std::vector<uint8_t> options = {1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0};
  Store32(&options[4], value);
  Store32(&options[8], echo);
  return options;
}

uint16_t ReferenceChecksum(const std::vector<uint8_t>& bytes) {
  return static_cast<uint16_t>(~ReferenceSumOf(bytes));
}

std::vector<uint8_t> MakePacket(const Flow& flow, std::size_t payload, std::size_t offset) {
  const std::size_t ihl = flow.ip_version == 4 ? 20 : 40;
  const std::size_t options = flow.tcp_option_bytes.empty() ? flow.tcp_options : flow.tcp_option_bytes.size();
  const std::size_t thl = flow.protocol == 6 ? 20 + options : 8;
  std::vector<uint8_t> p(ihl + thl + payload, 0);
  if (flow.ip_version == 4) {
    p[0] = 0x45;
    Store16(&p[2], static_cast<uint16_t>(p.size()));
    Store16(&p[4], flow.ip_id);
    p[6] = 0x40;  // DF.
    p[8] = 64;
    p[9] = flow.protocol;
    Store32(&p[12], flow.source4);
    Store32(&p[16], flow.destination4);
  } else {
    p[0] = 0x60;
    Store16(&p[4], static_cast<uint16_t>(p.size() - 40));
    p[6] = flow.protocol;
    p[7] = 64;
    const uint8_t source[16] = {0xfd, 0x12, 0x34, 0x56, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2};
    const uint8_t destination[16] = {0xfd, 0x12, 0x34, 0x56, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3};
    std::copy(source, source + 16, p.begin() + 8);
    std::copy(destination, destination + 16, p.begin() + 24);
  }
  uint8_t* t = &p[ihl];
  Store16(t, flow.source_port);
  Store16(t + 2, flow.destination_port);
  if (flow.protocol == 6) {
    Store32(t + 4, flow.sequence + static_cast<uint32_t>(offset));
    Store32(t + 8, flow.ack);
    t[12] = static_cast<uint8_t>((thl / 4) << 4);
    t[13] = flow.tcp_flags;
    Store16(t + 14, flow.window);
    for (std::size_t i = 0; i < options; ++i) {
      t[20 + i] = flow.tcp_option_bytes.empty() ? (i < 2 ? 1 : static_cast<uint8_t>(i)) : flow.tcp_option_bytes[i];
    }
  } else {
    Store16(t + 4, static_cast<uint16_t>(thl + payload));
  }
  for (std::size_t i = 0; i < payload; ++i) p[ihl + thl + i] = static_cast<uint8_t>((offset + i) * 7 % 251);
  if (flow.ip_version == 4) {
    std::vector<uint8_t> header(p.begin(), p.begin() + 20);
    Store16(&p[10], ReferenceChecksum(header));
  }
  Store16(&p[ihl + (flow.protocol == 6 ? 16 : 6)], TransportChecksum(p, flow.protocol));
  return p;
}

bool ChecksumsRight(const std::vector<uint8_t>& p) {
  if (p.size() < 20) return false;
  const std::size_t ihl = IpHeaderLength(p);
  if ((p[0] >> 4) == 4 && ReferenceSumOf(std::vector<uint8_t>(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(ihl))) != 0xffff) {
    return false;
  }
  const uint8_t protocol = (p[0] >> 4) == 4 ? p[9] : p[6];
  const std::size_t ihl_end = ihl;
  std::vector<uint8_t> all = PseudoHeader(p, protocol, p.size() - ihl_end);
  all.insert(all.end(), p.begin() + static_cast<std::ptrdiff_t>(ihl_end), p.end());
  return ReferenceSumOf(all) == 0xffff;
}

}  // namespace mnedc::packet::testing
