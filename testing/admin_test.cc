// The relay's operations endpoint over real HTTP on 127.0.0.1.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "mnedc/admin/admin_server.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    relay::RelayOptions options;
    options.join_token = "t";
    net_.StartRelay(options);
    admin_ = std::make_unique<asio::ip::tcp::acceptor>(
        net_.io(), asio::ip::tcp::endpoint{asio::ip::make_address("127.0.0.1"), 0});
    admin::AdminOptions admin_options;
    admin_options.reload = [this](std::string* message) {
      ++reloads_;
      *message = "reloaded for the test";
      return reload_ok_;
    };
    asio::co_spawn(net_.io(), admin::ServeAdmin(*admin_, net_.relay(), admin_options),
                   asio::detached);
  }
  // The accept loop must see its acceptor closed while the acceptor exists.
  void TearDown() override {
    admin_->close();
    net_.io().poll();
  }

  // One request, answered in full (the server closes: Connection: close).
  std::string Get(const std::string& target, const std::string& method = "GET") {
    asio::ip::tcp::socket socket(net_.io());
    socket.connect(admin_->local_endpoint());
    const std::string request =
        method + " " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    return net_.ReadUntilClosed(socket);
  }

  LoopbackNet net_;
  std::unique_ptr<asio::ip::tcp::acceptor> admin_;
  int reloads_ = 0;
  bool reload_ok_ = true;
};

TEST_F(AdminTest, HealthzMetricsAndPeers) {
  Node& a = net_.AddClient("dev-a", [](client::ClientOptions& o) { o.credentials = "t"; });
  Node& b = net_.AddClient("dev-b", [](client::ClientOptions& o) { o.credentials = "t"; });
  Node& intruder = net_.AddClient("intruder");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  ASSERT_TRUE(net_.RunUntil([&] { return net_.relay().counters().auth_failures > 0; }));
  a.client->SendPacket(MakeIpv4Packet(a.address(), b.address(), 1000, 1));
  a.client->SendPacket(MakeIpv4Packet(a.address(), 0x0a0000fe, 100, 2));  // Nobody there.
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1; }));
  net_.RunFor(20ms);

  const std::string health = Get("/healthz");
  EXPECT_EQ(health.rfind("HTTP/1.1 200", 0), 0u) << health;
  EXPECT_NE(health.find("\r\n\r\nok\n"), std::string::npos);

  const std::string metrics = Get("/metrics");
  EXPECT_NE(metrics.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  for (const char* line : {"mnedc_members 2\n", "mnedc_joins_total 2\n", "mnedc_leaves_total 0\n",
                           "mnedc_packets_forwarded_total 1\n",
                           "mnedc_bytes_forwarded_total 1000\n",
                           "mnedc_drops_total{reason=\"unknown_destination\"} 1\n",
                           "mnedc_drops_total{reason=\"queue_full\"} 0\n",
                           "mnedc_sessions{transport=\"tcp\"} 2\n",
                           "mnedc_sessions{transport=\"wss\"} 0\n",
                           "# TYPE mnedc_auth_failures_total counter\n"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << "missing: " << line << metrics;
  }
  EXPECT_EQ(metrics.find("mnedc_auth_failures_total 0\n"), std::string::npos);

  const std::string peers = Get("/v1/peers");
  EXPECT_NE(peers.find("Content-Type: application/json"), std::string::npos);
  EXPECT_NE(peers.find("{\"device_id\":\"dev-a\",\"address\":\"10.0.0.2\",\"address6\":null,\"transport\":\"tcp\","
                       "\"seen_from\":\"127.0.0.1:"),
            std::string::npos)
      << peers;
  EXPECT_NE(peers.find("\"connected_since\":\"20"), std::string::npos);
  EXPECT_NE(peers.find("\"bytes_to_device\":"), std::string::npos);
  EXPECT_EQ(peers.find("intruder"), std::string::npos);
  (void)intruder;
}

TEST_F(AdminTest, TheRelaysTunCountersAreShownWhenItHasOne) {
  tun::PortCounters tun;
  tun.packets_read = 7;
  tun.packets_written = 5;
  tun.write_drops = 2;
  tun.recreations = 1;
  const std::string with_tun = admin::RenderMetrics(net_.relay(), &tun);
  for (const char* line : {"mnedc_tun_packets_total{direction=\"read\"} 7\n",
                           "mnedc_tun_packets_total{direction=\"written\"} 5\n",
                           "mnedc_tun_write_drops_total 2\n", "mnedc_tun_read_errors_total 0\n",
                           "mnedc_tun_write_errors_total 0\n", "mnedc_tun_recreations_total 1\n"}) {
    EXPECT_NE(with_tun.find(line), std::string::npos) << "missing: " << line;
  }
  EXPECT_EQ(admin::RenderMetrics(net_.relay()).find("mnedc_tun_"), std::string::npos);
}

TEST_F(AdminTest, UnknownPathsAndMethodsAreAnswered) {
  EXPECT_EQ(Get("/nope").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Get("/metrics", "POST").rfind("HTTP/1.1 405", 0), 0u);
  const std::string head = Get("/healthz", "HEAD");
  EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(head.find("ok\n"), std::string::npos);
}

TEST_F(AdminTest, KickAndReloadFromLoopback) {
  Node& a = net_.AddClient("dev/a?x", [](client::ClientOptions& o) { o.credentials = "t"; });
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  EXPECT_EQ(Get("/v1/kick?device=dev%2Fa%3Fx").rfind("HTTP/1.1 405", 0), 0u);  // GET: no.
  const std::string kicked = Get("/v1/kick?device=dev%2Fa%3Fx&reason=moving+house", "POST");
  EXPECT_EQ(kicked.rfind("HTTP/1.1 200", 0), 0u) << kicked;
  EXPECT_NE(kicked.find("kicked dev/a?x"), std::string::npos);
  EXPECT_TRUE(net_.RunUntil([&] {
    return a.client->last_error().find("KICKED: closed by the relay's operator: moving house") !=
           std::string::npos;
  })) << a.client->last_error();
  EXPECT_EQ(Get("/v1/kick?device=nobody", "POST").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(Get("/v1/kick", "POST").rfind("HTTP/1.1 400", 0), 0u);

  const std::string reloaded = Get("/v1/reload", "POST");
  EXPECT_EQ(reloaded.rfind("HTTP/1.1 200", 0), 0u) << reloaded;
  EXPECT_NE(reloaded.find("reloaded for the test"), std::string::npos);
  reload_ok_ = false;
  EXPECT_EQ(Get("/v1/reload", "POST").rfind("HTTP/1.1 500", 0), 0u);
  EXPECT_EQ(reloads_, 2);
}

TEST(AdminAuthorizationTest, ChangesFromElsewhereNeedTheAdminToken) {
  boost::asio::io_context io;
  relay::Relay relay(io.get_executor(), {});
  admin::AdminOptions options;
  int reloads = 0;
  options.reload = [&](std::string* message) {
    ++reloads;
    *message = "ok";
    return true;
  };
  admin::HttpRequest request;
  request.method = "POST";
  request.path = "/v1/reload";
  request.from_local = false;
  EXPECT_EQ(admin::HandleAdminRequest(request, relay, options).status, 403u);  // No admin token set.
  options.admin_token = "admin-secret";
  EXPECT_EQ(admin::HandleAdminRequest(request, relay, options).status, 403u);  // None presented.
  request.authorization = "Bearer admin-secre";
  EXPECT_EQ(admin::HandleAdminRequest(request, relay, options).status, 403u);
  request.authorization = "Basic admin-secret";
  EXPECT_EQ(admin::HandleAdminRequest(request, relay, options).status, 403u);
  EXPECT_EQ(reloads, 0);
  request.authorization = "Bearer admin-secret";
  EXPECT_EQ(admin::HandleAdminRequest(request, relay, options).status, 200u);
  EXPECT_EQ(reloads, 1);
  // Reading stays open to whoever reaches the endpoint (keep it on loopback).
  admin::HttpRequest read;
  read.method = "GET";
  read.path = "/healthz";
  EXPECT_EQ(admin::HandleAdminRequest(read, relay, options).status, 200u);
}

TEST(HttpServiceTest, QueryDecoding) {
  const auto query = admin::ParseQuery("device=a%2Fb&reason=disk+full&empty=&bad=%zz%4");
  EXPECT_EQ(query.at("device"), "a/b");
  EXPECT_EQ(query.at("reason"), "disk full");
  EXPECT_EQ(query.at("empty"), "");
  EXPECT_EQ(query.at("bad"), "%zz%4");
  EXPECT_EQ(admin::JsonString("a\"b\\c\x01"), "\"a\\\"b\\\\c\\u0001\"");
}

TEST_F(AdminTest, GarbageRequestIsDroppedQuietly) {
  asio::ip::tcp::socket socket(net_.io());
  socket.connect(admin_->local_endpoint());
  asio::write(socket, asio::buffer(std::string(10000, 'x') + "\r\n\r\n"));
  bool closed = false;
  std::vector<char> chunk(64);
  socket.async_read_some(asio::buffer(chunk), [&](auto ec, std::size_t) { closed = bool(ec); });
  EXPECT_TRUE(net_.RunUntil([&] { return closed; }));
  EXPECT_EQ(Get("/healthz").rfind("HTTP/1.1 200", 0), 0u);  // Still serving.
}

}  // namespace
}  // namespace mnedc::testing
