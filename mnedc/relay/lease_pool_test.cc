#include "mnedc/relay/lease_pool.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include "mnedc/relay/lease_file.h"

namespace mnedc::relay {
namespace {


TEST(LeasePool, SkipsNetworkRelayAndBroadcast) {
  LeasePool pool(Prefix{0x0a000000, 30});  // .0 net, .1 relay, .2 only host, .3 broadcast
  EXPECT_EQ(pool.capacity(), 1u);
  EXPECT_EQ(pool.Acquire("a"), 0x0a000002u);
  EXPECT_FALSE(pool.Acquire("b"));  // Exhausted: refused, nothing breaks.
  EXPECT_EQ(pool.Acquire("a"), 0x0a000002u);
}

TEST(LeasePool, SameDeviceGetsSameAddressBack) {
  LeasePool pool(Prefix{0x0a000000, 24});
  const auto a = pool.Acquire("a");
  const auto b = pool.Acquire("b");
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  pool.Release("a");
  const auto c = pool.Acquire("c");  // Must not take a's remembered address.
  EXPECT_NE(*c, *a);
  EXPECT_EQ(pool.Acquire("a"), a);
  EXPECT_EQ(pool.active(), 3u);
}

TEST(LeasePool, HonoursARequestedFreeAddressOnly) {
  LeasePool pool(Prefix{0x0a000000, 24});
  EXPECT_EQ(pool.Acquire("a", 0x0a000032), 0x0a000032u);    // After a relay restart.
  EXPECT_NE(pool.Acquire("b", 0x0a000032), 0x0a000032u);    // Taken: b gets another.
  EXPECT_NE(pool.Acquire("c", 0x0a000001), 0x0a000001u);    // The relay's own.
  EXPECT_NE(pool.Acquire("d", 0x0b000005), 0x0b000005u);    // Outside the prefix.
  // The fresh-address cursor steps over the requested one.
  std::set<uint32_t> seen;
  for (int i = 0; i < 249; ++i) {  // 253 leasable, 4 taken above.
    const auto address = pool.Acquire("x" + std::to_string(i));
    ASSERT_TRUE(address) << i;
    EXPECT_TRUE(seen.insert(*address).second);
    EXPECT_NE(*address, 0x0a000032u);
  }
}

TEST(LeasePool, ReclaimsLongestReleasedWhenFull) {
  LeasePool pool(Prefix{0x0a000000, 29});  // 5 leasable: .2 .. .6
  for (const char* id : {"a", "b", "c", "d", "e"}) ASSERT_TRUE(pool.Acquire(id));
  EXPECT_FALSE(pool.Acquire("f"));
  const auto b = pool.AddressOf("b");
  pool.Release("b");
  pool.Release("d");
  EXPECT_EQ(pool.Acquire("f"), b);  // b left first.
  EXPECT_FALSE(pool.AddressOf("b"));
  EXPECT_TRUE(pool.AddressOf("d"));
}

TEST(LeasePool, SixteenBitPrefixHoldsSixtyFiveThousandMembers) {
  LeasePool pool(Prefix{0x0a070000, 16});
  EXPECT_EQ(pool.capacity(), 65533u);
  std::set<uint32_t> seen;
  for (uint32_t i = 0; i < pool.capacity(); ++i) {
    const auto address = pool.Acquire("device-" + std::to_string(i));
    ASSERT_TRUE(address) << i;
    ASSERT_TRUE(pool.prefix().Contains(*address));
    ASSERT_NE(*address, pool.prefix().relay_address());
    ASSERT_NE(*address, pool.prefix().broadcast());
    ASSERT_TRUE(seen.insert(*address).second);
  }
  EXPECT_FALSE(pool.Acquire("one-too-many"));
  EXPECT_EQ(pool.Acquire("device-12345"), pool.AddressOf("device-12345"));
}

TEST(LeasePool, RememberedLeasesComeBackAndAreNotGivenAway) {
  LeasePool pool(Prefix{0x0a000000, 24});
  EXPECT_TRUE(pool.Remember("a", 0x0a000002));
  EXPECT_TRUE(pool.Remember("b", 0x0a000005));
  EXPECT_FALSE(pool.Remember("c", 0x0a000005));  // Taken.
  EXPECT_FALSE(pool.Remember("a", 0x0a000007));  // a has one.
  EXPECT_FALSE(pool.Remember("d", 0x0a000001));  // The relay's.
  EXPECT_FALSE(pool.Remember("e", 0x0b000002));  // Another network.
  EXPECT_EQ(pool.active(), 0u);
  // A newcomer joining first gets a fresh address, not a remembered one.
  EXPECT_EQ(pool.Acquire("newcomer"), 0x0a000003u);
  EXPECT_EQ(pool.Acquire("b"), 0x0a000005u);
  EXPECT_EQ(pool.Acquire("a", 0x0a000009), 0x0a000002u);
}

TEST(LeaseFile, RoundTripsAndSkipsWhatDoesNotFit) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/leases";
  std::remove(path.c_str());
  std::string error;
  int skipped = -1;
  {
    LeasePool pool(Prefix{0x0a000000, 24});
    ASSERT_TRUE(LoadLeaseFile(path, pool, &skipped, &error)) << error;  // Missing: empty.
    EXPECT_EQ(skipped, 0);
    pool.Acquire("a");
    pool.Acquire("b");
    pool.Release("a");
    ASSERT_TRUE(SaveLeaseFile(path, pool, &error)) << error;
  }
  {
    std::ofstream(path, std::ios::app) << "garbage line here\n10.9.9.9 elsewhere\n\n# note\n";
  }
  LeasePool restored(Prefix{0x0a000000, 24});
  ASSERT_TRUE(LoadLeaseFile(path, restored, &skipped, &error)) << error;
  EXPECT_EQ(skipped, 2);
  EXPECT_EQ(restored.AddressOf("a"), 0x0a000002u);
  EXPECT_EQ(restored.AddressOf("b"), 0x0a000003u);
  EXPECT_EQ(restored.Acquire("c"), 0x0a000004u);
}

}  // namespace
}  // namespace mnedc::relay
