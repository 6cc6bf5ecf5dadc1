#include "mnedc/base/ipv4.h"

#include <gtest/gtest.h>

namespace mnedc::base {
namespace {

Prefix MustParse(const char* text) {
  std::string error;
  auto prefix = ParsePrefix(text, &error);
  EXPECT_TRUE(prefix) << error;
  return prefix.value_or(Prefix{});
}

TEST(Prefix, ParsesAndRefusesWithReasons) {
  const Prefix p = MustParse("10.0.0.0/24");
  EXPECT_EQ(p.network, 0x0a000000u);
  EXPECT_EQ(p.relay_address(), 0x0a000001u);
  EXPECT_EQ(p.broadcast(), 0x0a0000ffu);
  std::string error;
  EXPECT_FALSE(ParsePrefix("10.0.0.0/33", &error));
  EXPECT_NE(error.find("over 32"), std::string::npos) << error;
  EXPECT_FALSE(ParsePrefix("10.0.0.0/31", &error));
  EXPECT_NE(error.find("from 8 to 30"), std::string::npos) << error;
  EXPECT_FALSE(ParsePrefix("10.0.0.5/24", &error));
  EXPECT_NE(error.find("did you mean 10.0.0.0/24"), std::string::npos) << error;
  EXPECT_FALSE(ParsePrefix("10.0.0.0", &error));
  EXPECT_FALSE(ParsePrefix("10.0.0/24", &error));
  EXPECT_FALSE(ParsePrefix("10.0.0.256/24", &error));
  EXPECT_FALSE(ParsePrefix("10.0.0.0/", &error));
  EXPECT_FALSE(ParsePrefix("10.0.0.0/2x", &error));
}

TEST(Ipv4, TextBothWays) {
  EXPECT_EQ(Ipv4ToString(0x0a000102), "10.0.1.2");
  EXPECT_EQ(ParseIpv4("10.0.1.2"), 0x0a000102u);
  EXPECT_EQ(ParseIpv4("255.255.255.255"), 0xffffffffu);
  for (const char* bad : {"", "10.0.1", "10.0.1.2.3", "10.0.1.256", "10.0.1.2x", "10..1.2",
                          "0010.0.1.2", " 10.0.1.2"}) {
    EXPECT_FALSE(ParseIpv4(bad)) << bad;
  }
}

TEST(Ipv4, Masks) {
  EXPECT_EQ(PrefixMask(0), 0u);
  EXPECT_EQ(PrefixMask(8), 0xff000000u);
  EXPECT_EQ(PrefixMask(24), 0xffffff00u);
  EXPECT_EQ(PrefixMask(32), 0xffffffffu);
  EXPECT_TRUE(MustParse("10.7.0.0/16").Contains(0x0a07ff01));
  EXPECT_FALSE(MustParse("10.7.0.0/16").Contains(0x0a080001));
}

}  // namespace
}  // namespace mnedc::base
