#include "mnedc/relay/ip_packet.h"

#include <gtest/gtest.h>

#include <vector>

namespace mnedc::relay {
namespace {

std::vector<uint8_t> Ipv4(uint32_t source, uint32_t destination, std::size_t size = 28) {
  std::vector<uint8_t> p(size, 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(size >> 8);
  p[3] = static_cast<uint8_t>(size);
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(source >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(destination >> (24 - 8 * i));
  }
  return p;
}

TEST(IpPacket, Ipv4Addresses) {
  const auto parsed = ParsePacketAddresses(Ipv4(0x0a000002, 0x0a000003));
  EXPECT_EQ(parsed.version, PacketAddresses::Version::kIpv4);
  EXPECT_EQ(parsed.source, 0x0a000002u);
  EXPECT_EQ(parsed.destination, 0x0a000003u);
}

TEST(IpPacket, ReadsAPeekedHeadAgainstTheWholeSize) {
  auto p = Ipv4(0x0a000002, 0x0a000003);
  p[2] = 0x10;  // Total length 4096: more than these bytes, all of what was peeked.
  p[3] = 0x00;
  const auto parsed = ParsePacketAddresses(p, 4096);
  EXPECT_EQ(parsed.version, PacketAddresses::Version::kIpv4);
  EXPECT_EQ(parsed.destination, 0x0a000003u);
  EXPECT_EQ(ParsePacketAddresses(p, 4095).version, PacketAddresses::Version::kInvalid);  // Claims past the end.
  EXPECT_EQ(ParsePacketAddresses(std::span(p).first(19), 4096).version, PacketAddresses::Version::kInvalid);
}

TEST(IpPacket, RejectsTruncatedAndInconsistent) {
  auto p = Ipv4(1, 2);
  EXPECT_EQ(ParsePacketAddresses(std::span(p).first(19)).version, PacketAddresses::Version::kInvalid);
  p[2] = 0x10;  // Total length 4096 > 28 bytes present.
  EXPECT_EQ(ParsePacketAddresses(p).version, PacketAddresses::Version::kInvalid);
  p = Ipv4(1, 2);
  p[0] = 0x44;  // IHL 16 bytes < 20.
  EXPECT_EQ(ParsePacketAddresses(p).version, PacketAddresses::Version::kInvalid);
  EXPECT_EQ(ParsePacketAddresses({}).version, PacketAddresses::Version::kInvalid);
  const std::vector<uint8_t> garbage = {0x12, 0x34};
  EXPECT_EQ(ParsePacketAddresses(garbage).version, PacketAddresses::Version::kInvalid);
}

TEST(IpPacket, Ipv6Addresses) {
  std::vector<uint8_t> p(48, 0);
  p[0] = 0x60;
  p[5] = 8;
  p[8] = 0xfd;
  p[23] = 5;
  p[24] = 0xff;
  p[39] = 0xfb;
  const auto parsed = ParsePacketAddresses(p);
  EXPECT_EQ(parsed.version, PacketAddresses::Version::kIpv6);
  EXPECT_EQ(base::Ipv6ToString(parsed.source6), "fd00::5");
  EXPECT_EQ(base::Ipv6ToString(parsed.destination6), "ff00::fb");
  EXPECT_EQ(ParsePacketAddresses(std::span(p).first(39)).version, PacketAddresses::Version::kInvalid);
  p[5] = 9;  // Claims one byte more than present.
  EXPECT_EQ(ParsePacketAddresses(p).version, PacketAddresses::Version::kInvalid);
}

TEST(IpPacket, MulticastRange) {
  EXPECT_TRUE(IsIpv4Multicast(0xe0000001));
  EXPECT_TRUE(IsIpv4Multicast(0xefffffff));
  EXPECT_FALSE(IsIpv4Multicast(0xdfffffff));
  EXPECT_FALSE(IsIpv4Multicast(0xf0000000));
}

}  // namespace
}  // namespace mnedc::relay
