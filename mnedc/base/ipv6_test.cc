#include "mnedc/base/ipv6.h"

#include <gtest/gtest.h>

namespace mnedc::base {
namespace {

TEST(Ipv6, ParsesAndPrintsCanonically) {
  const auto address = ParseIpv6("FD12:3456:789A:0:0:0:0:5");
  ASSERT_TRUE(address);
  EXPECT_EQ(Ipv6ToString(*address), "fd12:3456:789a::5");
  EXPECT_FALSE(ParseIpv6(""));
  EXPECT_FALSE(ParseIpv6("10.0.0.1"));
  EXPECT_FALSE(ParseIpv6("fd12::1::2"));
  EXPECT_FALSE(ParseIpv6(std::string(100, ':')));
}

TEST(Ipv6, APrefixMustBeA64WithoutInterfaceBits) {
  std::string error;
  const auto prefix = ParsePrefix6("fd12:3456:789a:1::/64", &error);
  ASSERT_TRUE(prefix) << error;
  EXPECT_EQ(prefix->ToString(), "fd12:3456:789a:1::/64");
  EXPECT_FALSE(ParsePrefix6("fd12:3456:789a:1::/48", &error));
  EXPECT_NE(error.find("must be a /64"), std::string::npos) << error;
  EXPECT_FALSE(ParsePrefix6("fd12:3456:789a:1::7/64", &error));
  EXPECT_NE(error.find("did you mean fd12:3456:789a:1::/64?"), std::string::npos) << error;
  EXPECT_FALSE(ParsePrefix6("fd12::", &error));
  EXPECT_FALSE(ParsePrefix6("fd12::/", &error));
  EXPECT_FALSE(ParsePrefix6("fd12::/64x", &error));
  EXPECT_FALSE(ParsePrefix6("nonsense/64", &error));
}

TEST(Ipv6, HostNumbersMapBothWays) {
  const uint8_t id[5] = {0x12, 0x34, 0x56, 0x78, 0x9a};
  const Prefix6 prefix = UniqueLocalPrefix(id);
  EXPECT_EQ(prefix.ToString(), "fd12:3456:789a::/64");
  const Ipv6Address relay = prefix.AddressOf(1);
  EXPECT_EQ(Ipv6ToString(relay), "fd12:3456:789a::1");
  EXPECT_EQ(prefix.HostOf(relay), 1u);
  EXPECT_EQ(prefix.HostOf(prefix.AddressOf(0x10203)), 0x10203u);
  EXPECT_EQ(Ipv6ToString(prefix.AddressOf(0x10203)), "fd12:3456:789a::1:203");

  // Not this prefix, or an interface ID no lease has.
  EXPECT_FALSE(prefix.HostOf(*ParseIpv6("fd12:3456:789b::1")));
  EXPECT_FALSE(prefix.HostOf(*ParseIpv6("fd12:3456:789a:0:1::1")));
  EXPECT_FALSE(prefix.HostOf(*ParseIpv6("fd12:3456:789a:0:0:1::1")));
  EXPECT_TRUE(prefix.Contains(*ParseIpv6("fd12:3456:789a:0:0:1::1")));
}

TEST(Ipv6, ClassifiesMulticastAndLinkLocal) {
  EXPECT_TRUE(IsIpv6Multicast(*ParseIpv6("ff02::fb")));
  EXPECT_FALSE(IsIpv6Multicast(*ParseIpv6("fd00::fb")));
  EXPECT_TRUE(IsIpv6LinkLocal(*ParseIpv6("fe80::1")));
  EXPECT_TRUE(IsIpv6LinkLocal(*ParseIpv6("febf::1")));
  EXPECT_FALSE(IsIpv6LinkLocal(*ParseIpv6("fec0::1")));
}

}  // namespace
}  // namespace mnedc::base
