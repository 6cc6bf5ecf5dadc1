// A relay's part in a cluster against a real etcd (Debian's etcd-server,
// started by the test): registration, members written and removed (never
// another relay's), the relay list, an unreachable etcd (devices seen before
// keep their address, new ones get a clear refusal, everything is written
// again once it is back, even after the relay's lease expired, but never
// over a device's record another relay wrote meanwhile), and the refusals of
// a relay with another network or a name already in use.
#include "mnedc/cluster/etcd_cluster.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>

#include "mnedc/base/ipv4.h"
#include "testing/etcd_server.h"

namespace mnedc::cluster {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

uint32_t Ip(const char* text) { return *base::ParseIpv4(text); }

class EtcdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = std::make_unique<testing::EtcdServer>(testing::TestTempDir());
    if (!etcd_->available()) GTEST_SKIP() << "SKIPPED: " << etcd_->why();
    client_ = std::make_unique<EtcdClient>(io_.get_executor(), Endpoints(), 2s);
  }
  std::vector<transport::HostPort> Endpoints() const { return {{"127.0.0.1", etcd_->client_port()}}; }

  ClusterOptions Options(const std::string& name, std::chrono::seconds ttl = 3s) {
    ClusterOptions options;
    options.etcd = Endpoints();
    options.prefix = "/t/";
    options.name = name;
    options.advertise = "tcp://127.0.0.1:" + std::to_string(4000 + name.size());
    options.mesh = "127.0.0.1:" + std::to_string(5000 + name.size());
    options.network = "10.0.0.0/24";
    options.pool = AddressPool{Ip("10.0.0.1"), Ip("10.0.0.254"), Ip("10.0.0.1")};
    options.ttl = ttl;
    options.call_timeout = 1s;
    return options;
  }
  // Starts `cluster`'s Run(); `ended` is set when it returns.
  void Start(EtcdCluster& cluster, bool* ended) {
    asio::co_spawn(
        io_,
        [&cluster, ended]() -> asio::awaitable<void> {
          co_await cluster.Run();
          *ended = true;
        },
        asio::detached);
  }
  bool RunUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    io_.restart();
    while (!done() && std::chrono::steady_clock::now() < deadline) io_.run_for(20ms);
    return done();
  }
  // The value of `key` ("" if absent); nullopt if etcd did not answer.
  std::optional<std::string> Get(const std::string& key) {
    std::optional<std::string> out;
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          std::string error;
          auto kvs = co_await client_->Range(key, "", &error);
          if (kvs) out = kvs->empty() ? "" : (*kvs)[0].value;
          done = true;
        },
        asio::detached);
    RunUntil([&] { return done; });
    return out;
  }
  relay::StoreLease Acquire(EtcdCluster& cluster, const std::string& device, uint32_t previous = 0,
                            const std::string& public_key = "", bool check_key = true) {
    relay::StoreLease out;
    bool done = false;
    asio::co_spawn(
        io_,
        [&]() -> asio::awaitable<void> {
          out = co_await cluster.Acquire(device, previous, public_key, check_key);
          done = true;
        },
        asio::detached);
    RunUntil([&] { return done; });
    return out;
  }

  asio::io_context io_;
  std::unique_ptr<testing::EtcdServer> etcd_;
  std::unique_ptr<EtcdClient> client_;
};

TEST_F(EtcdClusterTest, RegistersKeepsMembersAndLeavesNothingBehind) {
  EtcdCluster r1(io_.get_executor(), Options("r1"));
  EtcdCluster r2(io_.get_executor(), Options("r2-long"));
  bool r1_ended = false, r2_ended = false;
  int r1_changes = 0;
  r1.OnRelaysChanged([&] { ++r1_changes; });
  Start(r1, &r1_ended);
  Start(r2, &r2_ended);
  ASSERT_TRUE(RunUntil([&] { return r1.registered() && r2.registered(); }));
  EXPECT_EQ(Get("/t/network"), "10.0.0.0/24");
  EXPECT_EQ(Get("/t/relay/r1"), R"({"advertise":"tcp://127.0.0.1:4002","mesh":"127.0.0.1:5002"})");
  // Each learns the other (its own first), at the next round.
  ASSERT_TRUE(RunUntil([&] { return r1.Relays().size() == 2 && r2.Relays().size() == 2; }));
  EXPECT_EQ(r1.Relays(), (std::vector<std::string>{"tcp://127.0.0.1:4002", "tcp://127.0.0.1:4007"}));
  EXPECT_EQ(r2.Relays()[0], "tcp://127.0.0.1:4007");
  EXPECT_EQ(r1_changes, 1);
  // The other relays, for the mesh: not itself.
  EXPECT_EQ(r1.Peers(),
            (std::vector<relay::RelayPeer>{{"r2-long", "127.0.0.1:5007", "tcp://127.0.0.1:4007"}}));
  EXPECT_EQ(r2.Peers(), (std::vector<relay::RelayPeer>{{"r1", "127.0.0.1:5002", "tcp://127.0.0.1:4002"}}));

  // One address per device across relays; the same device keeps it on either.
  const relay::StoreLease a = Acquire(r1, "a", Ip("10.0.0.9"));
  ASSERT_TRUE(a.address) << a.error;
  EXPECT_EQ(*a.address, Ip("10.0.0.9"));
  const relay::StoreLease b = Acquire(r2, "b", Ip("10.0.0.9"));
  ASSERT_TRUE(b.address) << b.error;
  EXPECT_NE(*b.address, *a.address);
  const relay::StoreLease a_again = Acquire(r2, "a");
  EXPECT_EQ(a_again.address, a.address);

  r1.Joined("a", *a.address, "192.0.2.7:5000");
  const std::string a_on_r1 = R"({"relay":"r1","address":"10.0.0.9","seen_from":"192.0.2.7:5000"})";
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/a") == a_on_r1; }));
  // A moves to r2 before r1 notices it left: r1's late delete must not
  // remove r2's record.
  r2.Joined("a", *a.address, "192.0.2.7:5001");
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/a") != a_on_r1; }));
  r1.Left("a");
  RunUntil([] { return false; }, 500ms);
  EXPECT_EQ(Get("/t/member/a"), R"({"relay":"r2-long","address":"10.0.0.9","seen_from":"192.0.2.7:5001"})");
  r2.Left("a");
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/a") == ""; }));

  // Stopped: its lease is ended, so its key and its members' go at once.
  r2.Joined("b", *b.address, "192.0.2.8:5000");
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/b") != ""; }));
  r2.Stop();
  ASSERT_TRUE(RunUntil([&] { return r2_ended; }));
  EXPECT_EQ(Get("/t/relay/r2-long"), "");
  EXPECT_EQ(Get("/t/member/b"), "");
  ASSERT_TRUE(RunUntil([&] { return r1.Relays().size() == 1; }));
  EXPECT_EQ(r1_changes, 2);
  EXPECT_TRUE(r1.Peers().empty());
  // Addresses stay the devices' own.
  EXPECT_EQ(Get("/t/device/b"), base::Ipv4ToString(*b.address));
  r1.Stop();
  ASSERT_TRUE(RunUntil([&] { return r1_ended; }));
}

TEST_F(EtcdClusterTest, ADeviceIsBoundToItsFirstKeyOnEveryRelay) {
  EtcdCluster r1(io_.get_executor(), Options("r1"));
  EtcdCluster r2(io_.get_executor(), Options("r2"));
  bool r1_ended = false, r2_ended = false;
  Start(r1, &r1_ended);
  Start(r2, &r2_ended);
  ASSERT_TRUE(RunUntil([&] { return r1.registered() && r2.registered(); }));
  const std::string key1(32, '\x01'), key2(32, '\x02');
  const relay::StoreLease first = Acquire(r1, "k", 0, key1);
  ASSERT_TRUE(first.address) << first.error;
  EXPECT_EQ(Get("/t/key/k"), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
  const relay::StoreLease elsewhere = Acquire(r2, "k", 0, key1);
  EXPECT_EQ(elsewhere.address, first.address) << elsewhere.error;
  const relay::StoreLease wrong = Acquire(r2, "k", 0, key2);
  EXPECT_FALSE(wrong.address);
  EXPECT_TRUE(wrong.wrong_key);
  EXPECT_NE(wrong.error.find("device k is bound to the key AQEBAQEB... in the network's store, and this client holds "
                             "another (AgICAgIC...)"),
            std::string::npos)
      << wrong.error;
  const relay::StoreLease none = Acquire(r1, "k", 0, "");
  EXPECT_TRUE(none.wrong_key);
  EXPECT_NE(none.error.find("presents none"), std::string::npos) << none.error;
  // The operator's tokens file named the key: the store's binding is not asked.
  EXPECT_TRUE(Acquire(r1, "k", 0, key2, false).address);
  // A client without keys binds nothing; its first join with one does.
  ASSERT_TRUE(Acquire(r1, "old").address);
  EXPECT_EQ(Get("/t/key/old").value_or(""), "");
  ASSERT_TRUE(Acquire(r1, "old", 0, key2).address);
  EXPECT_EQ(Get("/t/key/old"), "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
  r1.Stop();
  r2.Stop();
  RunUntil([&] { return r1_ended && r2_ended; });
}

TEST_F(EtcdClusterTest, UnreachableEtcdAdmitsKnownDevicesRefusesNewOnesAndRecovers) {
  EtcdCluster r1(io_.get_executor(), Options("r1", 2s));
  bool ended = false;
  Start(r1, &ended);
  ASSERT_TRUE(RunUntil([&] { return r1.registered(); }));
  const relay::StoreLease a = Acquire(r1, "a");
  ASSERT_TRUE(a.address) << a.error;

  etcd_->Pause();
  const relay::StoreLease again = Acquire(r1, "a");
  EXPECT_EQ(again.address, a.address) << "a device seen before joins with its address";
  const relay::StoreLease fresh = Acquire(r1, "new");
  EXPECT_FALSE(fresh.address);
  EXPECT_TRUE(fresh.unavailable);
  EXPECT_NE(fresh.error.find("the cluster store (etcd) cannot be reached"), std::string::npos) << fresh.error;
  EXPECT_FALSE(r1.reachable());
  r1.Joined("a", *a.address, "192.0.2.7:5000");  // Written once etcd is back.
  // Longer than the lease's TTL: once etcd runs again it expires the lease,
  // and the relay registers again and rewrites its members.
  RunUntil([] { return false; }, 3500ms);
  etcd_->Resume();
  ASSERT_TRUE(RunUntil([&] { return r1.reachable() && Get("/t/member/a").value_or("") != ""; }, 15s));
  EXPECT_TRUE(r1.registered());
  EXPECT_NE(Get("/t/relay/r1").value_or(""), "");
  const relay::StoreLease now = Acquire(r1, "new");
  EXPECT_TRUE(now.address) << now.error;
  r1.Stop();
  ASSERT_TRUE(RunUntil([&] { return ended; }));
}

// Device a joined r1, then r2 while r1 did not notice (r1 was cut off, or
// a's old connection is not known dead yet): r1 hears within a round that a
// is elsewhere, and its late leave leaves r2's record alone. Then r1 is cut
// off for longer than its lease (here: its lease revoked, as etcd does when
// it expires) while d moves to r2: when r1 registers again it writes its
// members again, but not d's record over r2's.
TEST_F(EtcdClusterTest, ARelayHearsOfItsDevicesThatMovedOnAndNeverTakesThemBack) {
  EtcdCluster r1(io_.get_executor(), Options("r1"));
  EtcdCluster r2(io_.get_executor(), Options("r2"));
  bool r1_ended = false, r2_ended = false;
  std::vector<std::string> elsewhere;
  r1.OnMemberElsewhere([&](const std::string& device) { elsewhere.push_back(device); });
  Start(r1, &r1_ended);
  Start(r2, &r2_ended);
  ASSERT_TRUE(RunUntil([&] { return r1.registered() && r2.registered(); }));
  r1.Joined("a", Ip("10.0.0.5"), "192.0.2.7:5000");
  r1.Joined("c", Ip("10.0.0.6"), "192.0.2.8:5000");
  r1.Joined("d", Ip("10.0.0.7"), "192.0.2.9:5000");
  const std::string a_on_r1 = R"({"relay":"r1","address":"10.0.0.5","seen_from":"192.0.2.7:5000"})";
  const std::string c_on_r1 = R"({"relay":"r1","address":"10.0.0.6","seen_from":"192.0.2.8:5000"})";
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/a") == a_on_r1 && Get("/t/member/c") == c_on_r1; }));
  RunUntil([] { return false; }, 2500ms);  // r1 has looked at the members it wrote: its own.
  EXPECT_TRUE(elsewhere.empty());

  r2.Joined("a", Ip("10.0.0.5"), "192.0.2.7:6000");
  const std::string a_on_r2 = R"({"relay":"r2","address":"10.0.0.5","seen_from":"192.0.2.7:6000"})";
  ASSERT_TRUE(RunUntil([&] { return elsewhere.size() == 1; }));
  EXPECT_EQ(elsewhere[0], "a");
  EXPECT_EQ(Get("/t/member/a"), a_on_r2);
  r1.Left("a");  // r1 closed a's stale connection.
  RunUntil([] { return false; }, 500ms);
  EXPECT_EQ(Get("/t/member/a"), a_on_r2);

  // r1's lease ends: its keys go; d joins r2 meanwhile.
  std::optional<int64_t> r1_lease;
  bool revoked = false;
  asio::co_spawn(
      io_,
      [&]() -> asio::awaitable<void> {
        std::string error;
        auto kvs = co_await client_->Range("/t/relay/r1", "", &error);
        if (kvs && kvs->size() == 1) r1_lease = (*kvs)[0].lease;
        if (r1_lease) revoked = co_await client_->RevokeLease(*r1_lease, &error);
      },
      asio::detached);
  ASSERT_TRUE(RunUntil([&] { return revoked; }));
  EXPECT_EQ(Get("/t/member/c"), "");
  r2.Joined("d", Ip("10.0.0.7"), "192.0.2.9:6000");
  const std::string d_on_r2 = R"({"relay":"r2","address":"10.0.0.7","seen_from":"192.0.2.9:6000"})";
  // r1 notices at its next keepalive and registers again: c is its own
  // again, d stays r2's, and r1 hears d is elsewhere (once).
  ASSERT_TRUE(RunUntil([&] { return Get("/t/member/c") == c_on_r1 && elsewhere.size() == 2; }));
  EXPECT_EQ(elsewhere[1], "d");
  EXPECT_EQ(Get("/t/member/d"), d_on_r2);
  r1.Left("d");
  RunUntil([] { return false; }, 2500ms);
  EXPECT_EQ(Get("/t/member/d"), d_on_r2);
  EXPECT_EQ(elsewhere.size(), 2u);
  r1.Stop();
  r2.Stop();
  ASSERT_TRUE(RunUntil([&] { return r1_ended && r2_ended; }));
}

TEST_F(EtcdClusterTest, ARelayWithAnotherNetworkOrATakenNameIsRefused) {
  EtcdCluster r1(io_.get_executor(), Options("r1", 1s));
  bool r1_ended = false;
  Start(r1, &r1_ended);
  ASSERT_TRUE(RunUntil([&] { return r1.registered(); }));

  ClusterOptions other = Options("r9", 1s);
  other.network = "10.9.0.0/16";
  EtcdCluster r9(io_.get_executor(), other);
  bool r9_ended = false;
  Start(r9, &r9_ended);
  ASSERT_TRUE(RunUntil([&] { return r9_ended; }));
  EXPECT_EQ(r9.fatal_error(),
            "the cluster under /t/ is the network 10.0.0.0/24, this relay's is 10.9.0.0/16: "
            "give every relay the same --network");
  const relay::StoreLease refused = Acquire(r9, "x");
  EXPECT_FALSE(refused.address);
  EXPECT_EQ(refused.error, r9.fatal_error());

  // The same name as a live relay: refused once it stays taken for two TTLs.
  EtcdCluster twin(io_.get_executor(), Options("r1", 1s));
  bool twin_ended = false;
  Start(twin, &twin_ended);
  ASSERT_TRUE(RunUntil([&] { return twin_ended; }, 10s));
  EXPECT_EQ(twin.fatal_error(), "another relay named r1 is running: give each relay its own --cluster_name");
  EXPECT_TRUE(r1.registered());
  r1.Stop();
  ASSERT_TRUE(RunUntil([&] { return r1_ended; }));
}

}  // namespace
}  // namespace mnedc::cluster
