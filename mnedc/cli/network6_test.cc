#include "mnedc/cli/network6.h"

#include <gtest/gtest.h>

namespace mnedc::cli {
namespace {

TEST(Network6, AutoIsUniqueLocalAndTheSameForTheSameSeed) {
  std::string error;
  const auto a = Network6FromFlag("auto", "host-a 10.0.0.0/24", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->network[0], 0xfd);
  EXPECT_EQ(a->network[6], 0);  // Subnet ID 0.
  EXPECT_EQ(a->network[7], 0);
  EXPECT_EQ(Network6FromFlag("auto", "host-a 10.0.0.0/24", &error), a);
  // Another host, another network: another global ID.
  EXPECT_NE(Network6FromFlag("auto", "host-b 10.0.0.0/24", &error), a);
  EXPECT_NE(Network6FromFlag("auto", "host-a 10.1.0.0/24", &error), a);
  // printf 'mnedc network6 global ID\nx' | sha256sum: 56b5f5d86f...
  EXPECT_EQ(DerivedUniqueLocalPrefix("x").ToString(), "fd56:b5f5:d86f::/64");
}

TEST(Network6, NoneExplicitAndErrors) {
  std::string error;
  EXPECT_FALSE(Network6FromFlag("none", "seed", &error));
  EXPECT_TRUE(error.empty());
  const auto given = Network6FromFlag("fd11:2233:4455::/64", "", &error);
  ASSERT_TRUE(given) << error;
  EXPECT_EQ(given->ToString(), "fd11:2233:4455::/64");
  EXPECT_FALSE(Network6FromFlag("auto", "", &error));
  EXPECT_NE(error.find("--network6=none"), std::string::npos) << error;
  EXPECT_FALSE(Network6FromFlag("fd11::/48", "", &error));
  EXPECT_NE(error.find("must be a /64"), std::string::npos) << error;
}

}  // namespace
}  // namespace mnedc::cli
