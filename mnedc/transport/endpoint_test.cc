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

}  // namespace
}  // namespace mnedc::transport
