// A relay of a cluster takes each device's address from its cluster store
// (relay::ClusterStore; a fake one here, answering after a delay as etcd
// would): the device gets that address, the store hears of joins and
// leaves, the Lease lists the store's relays (a device keeps one the list no
// longer names, and tries it last); a device the store says joined another
// relay since is closed out here; a store that cannot be reached
// refuses new devices with UNAVAILABLE until it can; an address another
// device holds here is never given twice; and a relay shut down while a join
// waits for the store ends cleanly.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <map>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/relay/cluster_store.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

uint32_t Ip(const char* text) { return *base::ParseIpv4(text); }

class FakeStore final : public relay::ClusterStore {
 public:
  asio::awaitable<relay::StoreLease> Acquire(std::string device_id, uint32_t previous, std::string,
                                             bool) override {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(delay);
    co_await timer.async_wait(base::kUse);
    log.push_back("acquire " + device_id + " " + base::Ipv4ToString(previous));
    relay::StoreLease out;
    if (unavailable) {
      out.error = "the store is down";
      out.unavailable = true;
    } else if (auto found = addresses.find(device_id); found != addresses.end()) {
      out.address = found->second;
    } else {
      out.error = "no free address left in the network";
    }
    co_return out;
  }
  void Joined(const std::string& device_id, uint32_t address, const std::string& seen_from) override {
    log.push_back("joined " + device_id + " " + base::Ipv4ToString(address) +
                  (seen_from.rfind("127.0.0.1:", 0) == 0 ? " from 127.0.0.1" : " from ?"));
  }
  void Left(const std::string& device_id) override { log.push_back("left " + device_id); }
  std::vector<std::string> Relays() const override { return relays; }
  std::vector<relay::RelayPeer> Peers() const override { return peers; }
  void OnRelaysChanged(std::function<void()> changed) override { relays_changed = std::move(changed); }
  void OnMemberElsewhere(std::function<void(const std::string&)> elsewhere) override {
    member_elsewhere = std::move(elsewhere);
  }
  std::function<void(const std::string&)> member_elsewhere;
  std::function<void()> relays_changed;

  std::chrono::milliseconds delay{50};
  bool unavailable = false;
  std::map<std::string, uint32_t> addresses;
  std::vector<std::string> relays;
  std::vector<relay::RelayPeer> peers;
  std::vector<std::string> log;
};

TEST(ClusterJoin, TheDeviceGetsTheStoresAddressAndTheStoreHearsOfJoinsAndLeaves) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  store.addresses = {{"a", Ip("10.0.0.77")}, {"b", Ip("10.0.0.5")}};
  store.relays = {"tcp://192.0.2.1:3334", "tcp://192.0.2.2:3334"};
  relay::RelayOptions options;
  options.relays = {"tcp://192.0.2.1:3334"};
  net.StartRelay(options, 0, &store);
  Node& a = net.AddClient("a");
  Node& b = net.AddClient("b");
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  EXPECT_EQ(a.address(), Ip("10.0.0.77"));
  EXPECT_EQ(b.address(), Ip("10.0.0.5"));
  // The relays of options and of the store, each once, after the one it was given.
  std::vector<std::string> known;
  for (const auto& relay : a.client->known_relays()) known.push_back(relay.ToString());
  EXPECT_EQ(known, (std::vector<std::string>{"tcp://127.0.0.1:" + std::to_string(net.port()), "tcp://192.0.2.1:3334",
                                             "tcp://192.0.2.2:3334"}));
  // A relay joins the cluster: every member hears of it at once.
  store.relays.push_back("wss://relay3.example:443/mnedc");
  ASSERT_TRUE(store.relays_changed);
  store.relays_changed();
  ASSERT_TRUE(net.RunUntil([&] { return b.client->known_relays().size() == 4; }));
  EXPECT_EQ(b.client->known_relays()[3].ToString(), "wss://relay3.example:443/mnedc");
  // One drops out of the cluster's list (it may be restarting): the devices
  // keep it, after the relays the list names.
  store.relays = {"wss://relay3.example:443/mnedc"};
  store.relays_changed();
  const std::vector<std::string> expected = {"tcp://127.0.0.1:" + std::to_string(net.port()),
                                             "tcp://192.0.2.1:3334", "wss://relay3.example:443/mnedc",
                                             "tcp://192.0.2.2:3334"};
  auto known_by = [](const Node& node) {
    std::vector<std::string> out;
    for (const auto& relay : node.client->known_relays()) out.push_back(relay.ToString());
    return out;
  };
  ASSERT_TRUE(net.RunUntil([&] { return known_by(b) == expected; })) << ::testing::PrintToString(known_by(b));
  // The two joined each other's peer tables as with one relay.
  ASSERT_TRUE(net.RunUntil([&] { return a.client->peers().Find("b") && b.client->peers().Find("a"); }));
  net.StopClient(a);
  ASSERT_TRUE(net.RunUntil([&] { return store.log.size() == 5; }));
  std::sort(store.log.begin(), store.log.begin() + 4);
  EXPECT_EQ(store.log,
            (std::vector<std::string>{"acquire a 0.0.0.0", "acquire b 0.0.0.0", "joined a 10.0.0.77 from 127.0.0.1",
                                      "joined b 10.0.0.5 from 127.0.0.1", "left a"}));
  EXPECT_EQ(net.relay().member_count(), 1u);
  net.StopRelay();
  EXPECT_FALSE(store.relays_changed) << "a relay that is gone is no longer called";
}

// Ports on 127.0.0.1 that nothing listens on (relays that are down), all
// bound at once so they differ from each other, and from the running relay's.
std::vector<std::string> UnusedRelays(int count) {
  asio::io_context io;
  std::vector<asio::ip::tcp::acceptor> held;
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    held.emplace_back(io, asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
    out.push_back("tcp://127.0.0.1:" + std::to_string(held.back().local_endpoint().port()));
  }
  return out;
}

// A relay the cluster no longer names (restarting, or gone for good) stays
// known, but is tried only after those it names: a host that is gone for good
// costs a connect timeout.
TEST(ClusterJoin, ARelayTheClusterNoLongerNamesIsTriedLast) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  store.addresses = {{"a", Ip("10.0.0.7")}};
  net.StartRelay({}, 0, &store);
  // Picked while the relay holds its port: one picked before could be the
  // port the relay then binds (it happened, once in many runs).
  const std::vector<std::string> unused = UnusedRelays(3);
  const std::string &gone = unused[0], &second = unused[1], &third = unused[2];
  store.relays = {gone, second, third};
  Node& a = net.AddClient("a", [](client::ClientOptions& o) {
    o.backoff_initial = 2s;
    o.backoff_max = 2s;
  });
  const std::string self = "tcp://127.0.0.1:" + std::to_string(net.port());
  auto known = [&] {
    std::vector<std::string> out;
    for (const auto& relay : a.client->known_relays()) out.push_back(relay.ToString());
    return out;
  };
  ASSERT_TRUE(net.RunUntil([&] { return known().size() == 4; })) << ::testing::PrintToString(known());
  store.relays = {second, third};
  store.relays_changed();
  ASSERT_TRUE(net.RunUntil([&] { return known() == std::vector<std::string>{self, second, third, gone}; }))
      << ::testing::PrintToString(known());
  a.dialed.clear();
  net.StopRelay();
  ASSERT_TRUE(net.RunUntil([&] { return a.dialed.size() >= 4; }, 1s)) << ::testing::PrintToString(a.dialed);
  // The named ones round from the one after it (the relay itself last of
  // them, down as it is), then the one no longer named, then a pause.
  EXPECT_EQ(a.dialed, (std::vector<std::string>{second, third, self, gone}));
}

// The store says a device joined another relay since (this relay was cut
// off): its connection here is stale. It goes, the others see it leave here
// (the other relay announces it where it is), and the store hears it left.
TEST(ClusterJoin, AConnectionTheStoreSaysIsStaleIsClosed) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  store.addresses = {{"a", Ip("10.0.0.8")}, {"b", Ip("10.0.0.9")}};
  net.StartRelay({}, 0, &store);
  Node& a = net.AddClient("a", [](client::ClientOptions& o) { o.backoff_max = 30s; });
  Node& b = net.AddClient("b");
  ASSERT_TRUE(net.RunUntil([&] { return a.client->peers().Find("b") && b.client->peers().Find("a"); }));
  ASSERT_TRUE(store.member_elsewhere);
  store.member_elsewhere("nobody");  // Not here: nothing happens.
  store.member_elsewhere("a");
  ASSERT_TRUE(net.RunUntil([&] { return !b.client->peers().Find("a"); }));
  EXPECT_EQ(net.relay().member_count(), 1u);
  EXPECT_EQ(net.relay().counters().superseded, 1u);
  ASSERT_TRUE(net.RunUntil([&] { return !a.client->joined(); }));
  EXPECT_NE(a.client->last_error().find("SUPERSEDED"), std::string::npos) << a.client->last_error();
  ASSERT_TRUE(net.RunUntil([&] { return !store.log.empty() && store.log.back() == "left a"; }));
  net.StopRelay();
  EXPECT_FALSE(store.member_elsewhere) << "a relay that is gone is no longer called";
}

TEST(ClusterJoin, AStoreThatCannotBeReachedRefusesNewDevicesUntilItCan) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  store.unavailable = true;
  store.addresses = {{"a", Ip("10.0.0.9")}};
  net.StartRelay({}, 0, &store);
  Node& a = net.AddClient("a", [](client::ClientOptions& o) {
    o.backoff_initial = 100ms;
    o.backoff_max = 100ms;
  });
  ASSERT_TRUE(net.RunUntil([&] { return !a.client->last_error().empty(); }));
  EXPECT_EQ(a.client->last_error(), "relay refused: UNAVAILABLE: the store is down");
  EXPECT_FALSE(a.client->joined());
  EXPECT_GE(net.relay().counters().joins_rejected, 1u);
  store.unavailable = false;
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined(); }));
  EXPECT_EQ(a.address(), Ip("10.0.0.9"));
}

TEST(ClusterJoin, AnAddressAnotherDeviceHoldsHereIsNeverGivenTwice) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  // A store that lost its data: the same address for two devices.
  store.addresses = {{"a", Ip("10.0.0.9")}, {"b", Ip("10.0.0.9")}};
  net.StartRelay({}, 0, &store);
  Node& a = net.AddClient("a");
  ASSERT_TRUE(net.RunUntil([&] { return a.client->joined(); }));
  Node& b = net.AddClient("b");
  ASSERT_TRUE(net.RunUntil([&] { return !b.client->last_error().empty(); }));
  EXPECT_EQ(b.client->last_error(),
            "relay refused: UNAVAILABLE: the cluster store gave an address another device holds on this relay");
  EXPECT_FALSE(b.client->joined());
  EXPECT_TRUE(a.client->joined());
  EXPECT_EQ(net.relay().member_count(), 1u);
}

TEST(ClusterJoin, ARelayShutDownWhileAJoinWaitsForTheStoreEndsCleanly) {
  FakeStore store;  // Outlives the relay, as a store must.
  LoopbackNet net;
  store.delay = 1500ms;
  store.addresses = {{"a", Ip("10.0.0.9")}};
  net.StartRelay({}, 0, &store);
  Node& a = net.AddClient("a");
  ASSERT_TRUE(net.RunUntil([&] { return net.relay().connection_count() == 1; }));
  net.RunFor(100ms);
  net.StopRelay();  // Waits (bounded) until every connection is gone.
  EXPECT_FALSE(a.client->joined());
  net.RunFor(1600ms);  // The store answers after the relay is gone: nothing touches it.
  EXPECT_EQ(store.log, (std::vector<std::string>{"acquire a 0.0.0.0"}));
}

}  // namespace
}  // namespace mnedc::testing
