// Two relays of one cluster linked by the mesh, in one process on 127.0.0.1
// (their cluster stores are fakes naming each other; etcd's part is
// etcd_cluster_test's): a device on relay 1 reaches a device on relay 2,
// broadcasts cross once, each relay knows the other's devices and forgets
// them when the link ends (packets to them are then dropped and counted), and
// a relay with the wrong cluster secret never links, both sides saying why.
#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/protocol/peer_frames.h"
#include "mnedc/relay/cluster_store.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/tls_context.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

class PeersStore final : public relay::ClusterStore {
 public:
  explicit PeersStore(uint32_t first) : next_(first) {}
  asio::awaitable<relay::StoreLease> Acquire(std::string device_id, uint32_t, std::string, bool) override {
    relay::StoreLease out;
    out.address = next_++;  // Each store its own range: no two devices share one.
    co_return out;
  }
  void Joined(const std::string&, uint32_t, const std::string&) override {}
  void Left(const std::string&) override {}
  std::vector<std::string> Relays() const override { return {}; }
  std::vector<relay::RelayPeer> Peers() const override { return peers; }
  void OnRelaysChanged(std::function<void()> changed) override { this->changed = std::move(changed); }
  void OnMemberElsewhere(std::function<void(const std::string&)> elsewhere) override {
    member_elsewhere = std::move(elsewhere);
  }
  std::function<void(const std::string&)> member_elsewhere;

  std::vector<relay::RelayPeer> peers;
  std::function<void()> changed;

 private:
  uint32_t next_;
};

uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

// A second relay on the harness's io_context.
struct SecondRelay {
  SecondRelay(asio::io_context& io, relay::RelayOptions options, relay::ClusterStore* store, uint16_t port)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), port}), relay(io.get_executor(), options) {
    relay.SetClusterStore(store);
    asio::co_spawn(io, relay.AcceptLoop(acceptor), asio::detached);
  }
  void Stop(LoopbackNet& net) {
    relay.Shutdown();
    acceptor.close();
    net.RunUntil([&] { return relay.connection_count() == 0; }, 5s);
  }
  asio::ip::tcp::acceptor acceptor;
  relay::Relay relay;
};

relay::RelayOptions Options(const std::string& name, const std::string& secret) {
  relay::RelayOptions options;
  options.cluster_name = name;
  options.cluster_secret = secret;
  return options;
}

class MeshTest : public ::testing::Test {
 protected:
  void Start(const std::string& secret2 = "s3cret") {
    port1_ = FreePort();
    port2_ = FreePort();
    store1_.peers = {{"r2", "127.0.0.1:" + std::to_string(port2_)}};
    store2_.peers = {{"r1", "127.0.0.1:" + std::to_string(port1_)}};
    net_.StartRelay(Options("r1", "s3cret"), port1_, &store1_);
    r2_ = std::make_unique<SecondRelay>(net_.io(), Options("r2", secret2), &store2_, port2_);
  }
  void TearDown() override {
    if (r2_) r2_->Stop(net_);
  }
  Node& OnRelay2(const std::string& id) {
    return net_.AddClient(id, [this](client::ClientOptions& o) { o.server.endpoint.port = port2_; });
  }

  PeersStore store1_{*base::ParseIpv4("10.0.0.10")};
  PeersStore store2_{*base::ParseIpv4("10.0.0.100")};
  LoopbackNet net_;  // After the stores: the relay must not outlive its store.
  std::unique_ptr<SecondRelay> r2_;
  uint16_t port1_ = 0, port2_ = 0;
};

TEST_F(MeshTest, DevicesOnTwoRelaysReachEachOther) {
  Start();
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().mesh_link_count() == 1 && r2_->relay.mesh_link_count() == 1; }));
  Node& a = net_.AddClient("a");
  Node& b = OnRelay2("b");
  Node& c = OnRelay2("c");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined() && c.client->joined(); }));
  EXPECT_EQ(a.address(), *base::ParseIpv4("10.0.0.10"));
  EXPECT_EQ(b.address(), *base::ParseIpv4("10.0.0.100"));
  ASSERT_TRUE(
      net_.RunUntil([&] { return net_.relay().remote_member_count() == 2 && r2_->relay.remote_member_count() == 1; }));
  // Discovery is cluster-wide: each device sees the others, wherever they are.
  ASSERT_TRUE(net_.RunUntil([&] {
    return a.client->peers().Find("b") && a.client->peers().Find("c") && b.client->peers().Find("a") &&
           b.client->peers().Find("c") && c.client->peers().Find("a");
  }));
  EXPECT_EQ(a.client->peers().Find("b")->address, b.address());

  // Both ways, small packets and a large one.
  for (std::size_t size : {64u, 1400u, 9000u}) {
    const auto to_b = MakeIpv4Packet(a.address(), b.address(), size, 1);
    ASSERT_TRUE(a.client->SendPacket(to_b));
    ASSERT_TRUE(net_.RunUntil([&] { return !b.received.empty(); })) << size;
    EXPECT_EQ(b.received.back(), to_b);
    const auto to_a = MakeIpv4Packet(b.address(), a.address(), size, 2);
    ASSERT_TRUE(b.client->SendPacket(to_a));
    ASSERT_TRUE(net_.RunUntil([&] { return !a.received.empty(); })) << size;
    EXPECT_EQ(a.received.back(), to_a);
    a.received.clear();
    b.received.clear();
  }
  EXPECT_TRUE(c.received.empty());

  // A broadcast from a reaches b and c once each, not a again.
  const auto broadcast = MakeIpv4Packet(a.address(), *base::ParseIpv4("10.0.0.255"), 100, 3);
  ASSERT_TRUE(a.client->SendPacket(broadcast));
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1 && c.received.size() == 1; }));
  net_.RunFor(100ms);
  EXPECT_EQ(b.received.size(), 1u);
  EXPECT_EQ(c.received.size(), 1u);
  EXPECT_TRUE(a.received.empty());

  // A device that leaves relay 2 is forgotten by relay 1, and by a.
  net_.StopClient(c);
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().remote_member_count() == 1 && !a.client->peers().Find("c"); }));
  EXPECT_TRUE(a.client->peers().Find("b"));
  // A device that joins relay 1 later learns of b from its snapshot.
  Node& d = net_.AddClient("d");
  ASSERT_TRUE(net_.RunUntil([&] { return d.client->peers().Find("b") && d.client->peers().Find("a"); }));
  EXPECT_FALSE(d.client->peers().Find("c"));

  // Relay 2 goes: relay 1 forgets its devices, and drops what is for them, counted.
  r2_->Stop(net_);
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().mesh_link_count() == 0 && !a.client->peers().Find("b"); }));
  EXPECT_EQ(net_.relay().remote_member_count(), 0u);
  EXPECT_TRUE(a.client->peers().Find("d"));
  EXPECT_EQ(a.events, (std::vector<std::string>{"up b 10.0.0.100", "up c 10.0.0.101", "down c 10.0.0.101",
                                                "up d 10.0.0.11", "down b 10.0.0.100"}));
  const uint64_t unknown = net_.relay().counters().drop(relay::DropReason::kUnknownDestination);
  ASSERT_TRUE(a.client->SendPacket(MakeIpv4Packet(a.address(), *base::ParseIpv4("10.0.0.100"), 100, 4)));
  ASSERT_TRUE(net_.RunUntil(
      [&] { return net_.relay().counters().drop(relay::DropReason::kUnknownDestination) == unknown + 1; }));
  r2_.reset();
}

TEST_F(MeshTest, ARelayWithTheWrongSecretNeverLinks) {
  Start("not the secret");
  ASSERT_TRUE(net_.RunUntil([&] {
    return net_.relay().counters().mesh_auth_failures >= 1 && r2_->relay.counters().mesh_auth_failures >= 1;
  }));
  net_.RunFor(500ms);
  EXPECT_EQ(net_.relay().mesh_link_count(), 0u);
  EXPECT_EQ(r2_->relay.mesh_link_count(), 0u);
  Node& a = net_.AddClient("a");
  Node& b = OnRelay2("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  net_.RunFor(200ms);
  EXPECT_EQ(net_.relay().remote_member_count(), 0u) << "nothing was learned from a relay that did not prove the secret";
  const uint64_t unknown = net_.relay().counters().drop(relay::DropReason::kUnknownDestination);
  ASSERT_TRUE(a.client->SendPacket(MakeIpv4Packet(a.address(), b.address(), 100, 1)));
  ASSERT_TRUE(net_.RunUntil(
      [&] { return net_.relay().counters().drop(relay::DropReason::kUnknownDestination) == unknown + 1; }));
  EXPECT_TRUE(b.received.empty());
}

// A relay that knows the secret, spoken by hand: what it may send is what it
// announced, to devices of the relay it linked with, and nothing further.
class RawMeshPeer {
 public:
  // Over TLS keyed by `secret` (as relays link), or over plain TCP if it is empty.
  RawMeshPeer(LoopbackNet& net, uint16_t port, const std::string& secret = "s3cret") : net_(net), socket_(net.io()) {
    if (secret.empty()) {
      socket_.connect({asio::ip::make_address("127.0.0.1"), port});
      return;
    }
    bool done = false;
    asio::co_spawn(
        net.io(),
        [&]() -> asio::awaitable<void> {
          // Named first: GCC 12 mishandles temporaries in a co_await's expression.
          const transport::HostPort target{"127.0.0.1", port};
          auto context = transport::MakePskClientContext(secret);
          auto outcome = co_await transport::DialWithPreSharedKey(target, 5s, context);
          stream_ = std::move(outcome.stream);
          dial_error_ = outcome.detail;
          done = true;
        },
        asio::detached);
    net.RunUntil([&] { return done; });
  }
  bool connected() const { return stream_ || socket_.is_open(); }
  const std::string& dial_error() const { return dial_error_; }
  void Send(const protocol::ControlMessage& message) {
    std::vector<uint8_t> frame;
    protocol::EncodeControlFrame(message, frame);
    Write(frame);
  }
  void SendPacket(const std::vector<uint8_t>& packet) {
    std::vector<uint8_t> frame(protocol::kFrameHeaderSize + packet.size());
    protocol::WriteFrameHeader(protocol::FrameType::kData, static_cast<uint32_t>(packet.size()), frame.data());
    std::copy(packet.begin(), packet.end(), frame.begin() + protocol::kFrameHeaderSize);
    Write(frame);
  }
  // The next control message (bounded by the harness's deadline).
  std::optional<protocol::ControlMessage> Read() {
    std::vector<uint8_t> chunk(4096);
    while (true) {
      const auto frame = protocol::ParseFrame(buffer_);
      if (frame.status == protocol::ParseStatus::kFrame) {
        protocol::ControlMessage message;
        const bool control =
            frame.type == protocol::FrameType::kControl && protocol::DecodeControl(frame.payload, message);
        buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(frame.consumed));
        if (control) return message;
        continue;
      }
      bool done = false, failed = false;
      auto got = [&](boost::system::error_code ec, std::size_t n) {
        buffer_.insert(buffer_.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
        failed = static_cast<bool>(ec);
        done = true;
      };
      if (stream_) {
        asio::co_spawn(
            net_.io(),
            [&]() -> asio::awaitable<void> {
              auto [ec, n] = co_await stream_->ReadSome(asio::buffer(chunk));
              got(ec, n);
            },
            asio::detached);
      } else {
        socket_.async_read_some(asio::buffer(chunk), got);
      }
      if (!net_.RunUntil([&] { return done; }) || failed) return std::nullopt;
    }
  }


 private:
  void Write(const std::vector<uint8_t>& frame) {
    if (!stream_) {
      asio::write(socket_, asio::buffer(frame));
      return;
    }
    bool done = false;
    asio::co_spawn(
        net_.io(),
        [&]() -> asio::awaitable<void> {
          const std::array<asio::const_buffer, 1> buffers{asio::buffer(frame)};
          co_await stream_->WriteAll(buffers);
          done = true;
        },
        asio::detached);
    net_.RunUntil([&] { return done; });
  }

  LoopbackNet& net_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<transport::Stream> stream_;
  std::string dial_error_;
  std::vector<uint8_t> buffer_;
};

TEST_F(MeshTest, ALinkedRelayMaySendOnlyFromItsDevicesToDevicesHere) {
  Start();
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().mesh_link_count() == 1; }));
  Node& a = net_.AddClient("a");
  Node& b = OnRelay2("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().remote_member_count() == 1; }));

  // "r9" links with relay 1 by hand, over TLS keyed by the right secret:
  // it says who it is, and relay 1 answers who it is.
  RawMeshPeer r9(net_, port1_);
  ASSERT_TRUE(r9.connected()) << r9.dial_error();
  protocol::ControlMessage hello;
  hello.mutable_mesh_auth()->set_name("r9");
  r9.Send(hello);
  const auto answer = r9.Read();
  ASSERT_TRUE(answer && answer->has_mesh_auth());
  EXPECT_EQ(answer->mesh_auth().name(), "r1");
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().mesh_link_count() == 2; }));
  // It announces one device, x; and claims b (relay 2's) is gone, which only relay 2 may say.
  const uint32_t x = *base::ParseIpv4("10.0.0.200");
  protocol::ControlMessage peers;
  auto* joined = peers.mutable_peer_list()->add_changes();
  joined->set_device_id("x");
  joined->set_address(x);
  auto* gone = peers.mutable_peer_list()->add_changes();
  gone->set_device_id("b");
  gone->set_address(b.address());
  gone->set_gone(true);
  r9.Send(peers);
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().remote_member_count() == 2; }));

  const auto& counters = net_.relay().counters();
  const uint64_t spoofed = counters.drop(relay::DropReason::kSpoofedSource);
  const uint64_t unknown = counters.drop(relay::DropReason::kUnknownDestination);
  r9.SendPacket(MakeIpv4Packet(*base::ParseIpv4("10.0.0.201"), a.address(), 100, 1));  // Not its device.
  r9.SendPacket(MakeIpv4Packet(b.address(), a.address(), 100, 2));                     // Relay 2's device.
  r9.SendPacket(MakeIpv4Packet(x, b.address(), 100, 3));                               // On to relay 2: never.
  const auto from_x = MakeIpv4Packet(x, a.address(), 100, 4);
  r9.SendPacket(from_x);
  ASSERT_TRUE(net_.RunUntil([&] { return !a.received.empty(); }));
  EXPECT_EQ(a.received, (std::vector<std::vector<uint8_t>>{from_x}));
  EXPECT_EQ(counters.drop(relay::DropReason::kSpoofedSource), spoofed + 2);
  EXPECT_EQ(counters.drop(relay::DropReason::kUnknownDestination), unknown + 1);
  net_.RunFor(100ms);
  EXPECT_TRUE(b.received.empty());
  // b is still reachable from a through relay 2: r9's "gone" was ignored.
  ASSERT_TRUE(a.client->SendPacket(MakeIpv4Packet(a.address(), b.address(), 100, 5)));
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1; }));
}

// A mesh link must be TLS keyed by the cluster secret: over plain TCP the
// first mesh message is refused, saying why; with another secret's key the
// TLS handshake itself fails, and the relay counts it. The link between the
// two relays stands throughout.
TEST_F(MeshTest, AMeshLinkMustBeTlsKeyedByTheSecret) {
  Start();
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().mesh_link_count() == 1; }));
  const uint64_t failures = net_.relay().counters().mesh_auth_failures;
  RawMeshPeer plain(net_, port1_, "");
  protocol::ControlMessage hello;
  hello.mutable_mesh_auth()->set_name("r9");
  plain.Send(hello);
  const auto answer = plain.Read();
  ASSERT_TRUE(answer && answer->has_error());
  EXPECT_EQ(answer->error().code(), protocol::Error::UNAUTHORIZED);
  EXPECT_NE(answer->error().text().find("must be TLS keyed by the cluster secret"), std::string::npos)
      << answer->error().text();
  RawMeshPeer stranger(net_, port1_, "another secret");
  EXPECT_FALSE(stranger.connected());
  EXPECT_NE(stranger.dial_error().find("different cluster secrets"), std::string::npos) << stranger.dial_error();
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().counters().mesh_auth_failures >= failures + 2; }));
  EXPECT_EQ(net_.relay().mesh_link_count(), 1u);
  EXPECT_EQ(net_.relay().remote_member_count(), 0u);
}

}  // namespace
}  // namespace mnedc::testing
