#include "mnedc/transport/endpoint.h"

#include <gtest/gtest.h>

namespace mnedc::transport {
namespace {

TEST(HostPort, ParsesTheUsualForms) {
  std::string error;
  auto a = ParseHostPort("relay.example", 3334, &error);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "relay.example");
  EXPECT_EQ(a->port, 3334);
  auto b = ParseHostPort("10.1.2.3:443", 3334, &error);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->host, "10.1.2.3");
  EXPECT_EQ(b->port, 443);
  auto c = ParseHostPort("[::1]:9", 3334, &error);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->ToString(), "[::1]:9");
  auto d = ParseHostPort("[fe80::1]", 7, &error);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, 7);
}

TEST(HostPort, RejectsWithAReason) {
  std::string error;
  EXPECT_FALSE(ParseHostPort("host:99999", 1, &error));
  EXPECT_NE(error.find("port must be"), std::string::npos) << error;
  EXPECT_FALSE(ParseHostPort("::1", 1, &error));
  EXPECT_NE(error.find("brackets"), std::string::npos) << error;
  EXPECT_FALSE(ParseHostPort(":80", 1, &error));
  EXPECT_FALSE(ParseHostPort("host:", 1, &error));
  EXPECT_FALSE(ParseHostPort("host:8x", 1, &error));
  EXPECT_FALSE(ParseHostPort("[::1", 1, &error));
}

// Found by //fuzz:address_fuzz: a host with brackets, slashes or bytes no
// name has was accepted, and printed back as something that did not parse.
TEST(HostPort, AHostIsANameOrAnAddressNothingElse) {
  std::string error;
  EXPECT_FALSE(ParseHostPort("[[t\xf5\xf1//l]", 1, &error));
  EXPECT_NE(error.find("only an IPv6 address goes in brackets"), std::string::npos) << error;
  EXPECT_FALSE(ParseHostPort("relay/path:80", 1, &error));
  EXPECT_NE(error.find("letters, digits"), std::string::npos) << error;
  EXPECT_FALSE(ParseHostPort("re lay:80", 1, &error));
  EXPECT_FALSE(ParseHostPort("[relay.example]:80", 1, &error));
  EXPECT_FALSE(ParseHostPort("[fe80::1%]:80", 1, &error));
  const auto zoned = ParseHostPort("[fe80::1%eth0]:80", 1, &error);
  ASSERT_TRUE(zoned) << error;
  EXPECT_EQ(zoned->host, "fe80::1%eth0");
  EXPECT_TRUE(ParseHostPort("relay_1.example-net.test:80", 1, &error)) << error;
  EXPECT_TRUE(ParseHostPort("[::ffff:10.0.0.1]", 1, &error)) << error;
}

}  // namespace
}  // namespace mnedc::transport
