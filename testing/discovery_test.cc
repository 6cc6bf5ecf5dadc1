// Peer discovery at scale, over a real relay and real TCP on 127.0.0.1: the
// three forms a member can ask for (batched, one message each, none), joins
// gathered into batches, and the snapshot pulled as the member reads it.
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using protocol::ControlMessage;

// Reads what `socket` receives for `duration` and parses it into control messages.
std::vector<ControlMessage> ReadFor(LoopbackNet& net, asio::ip::tcp::socket& socket,
                                    std::chrono::milliseconds duration) {
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(65536);
  bool reading = true;
  std::function<void(boost::system::error_code, std::size_t)> on_read =
      [&](boost::system::error_code ec, std::size_t n) {
        bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
        if (ec) {
          reading = false;
          return;
        }
        socket.async_read_some(asio::buffer(chunk), on_read);
      };
  socket.async_read_some(asio::buffer(chunk), on_read);
  net.RunFor(duration);
  if (reading) {
    socket.cancel();
    net.RunUntil([&] { return !reading; }, 1s);
  }
  std::vector<ControlMessage> messages;
  std::span<const uint8_t> rest(bytes);
  for (;;) {
    const auto frame = protocol::ParseFrame(rest);
    if (frame.status != protocol::ParseStatus::kFrame) break;
    ControlMessage message;
    EXPECT_TRUE(protocol::DecodeControl(frame.payload, message));
    messages.push_back(std::move(message));
    rest = rest.subspan(frame.consumed);
  }
  EXPECT_TRUE(rest.empty()) << rest.size() << " bytes left unparsed";
  return messages;
}

class DiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    relay::RelayOptions options;
    options.prefix = {0x0a000000, 16};
    net_.StartRelay(options);
  }
  LoopbackNet net_;
};

TEST_F(DiscoveryTest, AJoinStormReachesEveryTableInAFewSharedBatches) {
  // A window of 50 ms, whatever the fleet's size, so the count of batches
  // does not depend on how fast this machine runs the joins.
  net_.StopRelay();
  relay::RelayOptions options;
  options.prefix = {0x0a000000, 16};
  options.min_announce_delay = 50ms;
  options.max_announce_delay = 50ms;
  net_.StartRelay(options);
  constexpr int kMembers = 150;
  std::vector<Node*> nodes;
  for (int i = 0; i < kMembers; ++i) nodes.push_back(&net_.AddClient("m" + std::to_string(i)));
  ASSERT_TRUE(net_.RunUntil(
      [&] {
        for (Node* node : nodes) {
          if (node->client->peers().size() != kMembers - 1) return false;
        }
        return true;
      },
      30s));
  for (Node* node : nodes) {
    // Nobody lists itself, and nobody saw a peer go down on the way.
    EXPECT_FALSE(node->client->peers().Find(node->client->options().device_id));
    for (const auto& event : node->events) EXPECT_EQ(event.rfind("up ", 0), 0u) << event;
  }
  // One write per member per batch, not per join: far fewer batches than joins.
  const auto& counters = net_.relay().counters();
  EXPECT_TRUE(net_.RunUntil([&] { return counters.peer_changes == static_cast<uint64_t>(kMembers); }));
  EXPECT_LT(counters.peer_batches, static_cast<uint64_t>(kMembers / 5)) << counters.peer_batches;

  for (int i = 0; i < kMembers / 2; ++i) net_.StopClient(*nodes[i]);
  ASSERT_TRUE(net_.RunUntil(
      [&] {
        for (int i = kMembers / 2; i < kMembers; ++i) {
          if (nodes[i]->client->peers().size() != kMembers / 2 - 1) return false;
        }
        return true;
      },
      30s));
  EXPECT_EQ(net_.relay().counters().peer_changes, static_cast<uint64_t>(kMembers + kMembers / 2));
}

TEST_F(DiscoveryTest, OlderClientsGetOneMessagePerChangeAndNeverThemselves) {
  Node& batched = net_.AddClient("batched");
  ASSERT_TRUE(net_.RunUntil([&] { return batched.client->joined(); }));
  // Three clients of the original form join in the same batch window.
  std::vector<asio::ip::tcp::socket> old;
  for (const char* id : {"old0", "old1", "old2"}) old.push_back(net_.JoinRaw(id));
  ASSERT_TRUE(net_.RunUntil([&] { return batched.client->peers().size() == 3; }));
  for (int i = 0; i < 3; ++i) {
    const std::string self = "old" + std::to_string(i);
    const auto messages = ReadFor(net_, old[i], 300ms);
    std::set<std::string> announced;
    int snapshot_ends = 0;
    ASSERT_FALSE(messages.empty());
    EXPECT_TRUE(messages[0].has_lease());
    EXPECT_EQ(messages[0].lease().peers(), protocol::PEERS_EACH);
    for (const auto& message : messages) {
      EXPECT_FALSE(message.has_peer_list()) << "an older client cannot read PeerList";
      if (message.has_peer_announce()) {
        EXPECT_NE(message.peer_announce().device_id(), self);
        announced.insert(message.peer_announce().device_id());
      }
      if (message.has_snapshot_end()) ++snapshot_ends;
    }
    EXPECT_EQ(snapshot_ends, 1);
    std::set<std::string> others = {"batched", "old0", "old1", "old2"};
    others.erase(self);
    EXPECT_EQ(announced, others);
  }
  // A leave reaches them as PeerGone.
  net_.StopClient(batched);
  const auto messages = ReadFor(net_, old[0], 300ms);
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_TRUE(messages[0].has_peer_gone());
  EXPECT_EQ(messages[0].peer_gone().device_id(), "batched");
}

TEST_F(DiscoveryTest, AMemberThatAsksForNoPeersGetsNoPeerMessages) {
  Node& quiet = net_.AddClient("quiet", [](client::ClientOptions& o) { o.want_peers = false; });
  auto raw_quiet = net_.JoinRaw("raw-quiet", 0, protocol::PEERS_NONE);
  Node& a = net_.AddClient("a");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 2 && quiet.client->joined(); }));
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 3; }));
  net_.StopClient(b);
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->peers().size() == 2; }));
  EXPECT_EQ(quiet.client->peers().size(), 0u);
  EXPECT_TRUE(quiet.events.empty());
  const auto messages = ReadFor(net_, raw_quiet, 300ms);
  ASSERT_EQ(messages.size(), 1u);
  ASSERT_TRUE(messages[0].has_lease());
  EXPECT_EQ(messages[0].lease().peers(), protocol::PEERS_NONE);
  // The others still see the quiet ones.
  EXPECT_TRUE(a.client->peers().Find("quiet"));
  EXPECT_TRUE(a.client->peers().Find("raw-quiet"));
}

TEST_F(DiscoveryTest, ASnapshotIsQueuedInPiecesAsTheMemberReadsIt) {
  // A fleet that asks for no peers (it does not read), and a member that joins
  // it with a small window and does not read yet either.
  constexpr int kFleet = 2000;
  std::vector<asio::ip::tcp::socket> fleet;
  // Long IDs make the snapshot (~270 KB) larger than what the kernel buffers.
  const std::string padding(120, 'x');
  for (int i = 0; i < kFleet; ++i) {
    fleet.push_back(net_.JoinRaw(padding + std::to_string(i), 0, protocol::PEERS_NONE));
  }
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().member_count() == kFleet; }, 30s));
  auto late = net_.JoinRaw("late", 4096, protocol::PEERS_BATCHED);
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().member_count() == kFleet + 1; }));
  net_.RunFor(300ms);
  // The member has taken only what its socket holds:
  // the relay holds the rest as a position in the member list, not as queued frames.
  bool found = false;
  for (const auto& member : net_.relay().Members()) {
    if (member.device_id != "late") continue;
    found = true;
    EXPECT_TRUE(member.snapshot_pending);
    EXPECT_LE(member.control_queued, 1u);
  }
  ASSERT_TRUE(found);
  // Reading it all gives every member once and the end of the snapshot.
  const auto messages = ReadFor(net_, late, 1000ms);
  std::set<std::string> listed;
  bool ended = false;
  for (const auto& message : messages) {
    if (!message.has_peer_list()) continue;
    for (const auto& change : message.peer_list().changes()) {
      EXPECT_FALSE(change.gone());
      if (change.device_id() != "late") listed.insert(change.device_id());
    }
    if (message.peer_list().snapshot_end()) ended = true;
  }
  EXPECT_TRUE(ended);
  EXPECT_EQ(listed.size(), static_cast<std::size_t>(kFleet));
}

}  // namespace
}  // namespace mnedc::testing
