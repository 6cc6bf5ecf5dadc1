// The client's local status endpoint over a real Unix socket, with a real relay
// on 127.0.0.1: what `ctl status` and Prometheus read.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <unistd.h>

#include <cstdlib>

#include "mnedc/client/status.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using asio::local::stream_protocol;

class ClientStatusTest : public ::testing::Test {
 protected:
  void Serve(const client::Client& client) {
    // Bazel's TEST_TMPDIR is longer than a socket path may be (108 bytes).
    char dir[] = "/tmp/mnedc-status-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/status.sock";
    acceptor_ = std::make_unique<stream_protocol::acceptor>(net_.io(), stream_protocol::endpoint(path_));
    sources_ = {&client, nullptr};
    asio::co_spawn(net_.io(),
                   admin::ServeHttp(*acceptor_,
                                    [this](const admin::HttpRequest& request) {
                                      return client::HandleStatusRequest(request, sources_);
                                    }),
                   asio::detached);
  }
  void TearDown() override {
    if (acceptor_) acceptor_->close();
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }

  std::string Get(const std::string& target) {
    stream_protocol::socket socket(net_.io());
    socket.connect(stream_protocol::endpoint(path_));
    const std::string request = "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    asio::write(socket, asio::buffer(request));
    std::string answer;
    bool done = false;
    std::vector<char> chunk(4096);
    std::function<void()> read = [&] {
      socket.async_read_some(asio::buffer(chunk), [&](boost::system::error_code ec, std::size_t n) {
        answer.append(chunk.data(), n);
        if (ec) {
          done = true;
        } else {
          read();
        }
      });
    };
    read();
    EXPECT_TRUE(net_.RunUntil([&] { return done; }));
    return answer;
  }

  LoopbackNet net_;
  std::string dir_;
  std::string path_;
  std::unique_ptr<stream_protocol::acceptor> acceptor_;
  client::StatusSources sources_;
};

TEST_F(ClientStatusTest, StatusJsonMetricsAndHealth) {
  net_.StartRelay();
  Node& a = net_.AddClient("dev-a");
  Node& b = net_.AddClient("dev-b");
  ASSERT_TRUE(net_.RunUntil([&] {
    return a.client->joined() && b.client->joined() && a.client->peers().size() == 1;
  }));
  Serve(*a.client);
  a.client->SendPacket(MakeIpv4Packet(a.address(), b.address(), 1000, 1));
  ASSERT_TRUE(net_.RunUntil([&] { return b.received.size() == 1; }));

  const std::string status = Get("/v1/status");
  EXPECT_EQ(status.rfind("HTTP/1.1 200", 0), 0u) << status;
  for (const std::string& part :
       {std::string("\"device_id\":\"dev-a\",\"state\":\"joined\",\"address\":\"10.0.0.2\","
                    "\"prefix_length\":24,\"address6\":null,\"prefix_length6\":0,\"mtu\":1400"),
        "\"relay\":\"tcp://127.0.0.1:" + std::to_string(net_.port()) + "\"",
        "\"relay_endpoint\":\"127.0.0.1:" + std::to_string(net_.port()) + "\"",
        std::string("\"transport\":\"tcp\",\"offloads\":\"none\",\"super_packets\":false,\"joined_since\":\"20"), std::string("\"last_error\":\"\""),
        std::string("\"packets_to_relay\":1,"), std::string("\"bytes_to_relay\":1000,"),
        std::string("\"reconnects\":0"),
        std::string("{\"device_id\":\"dev-b\",\"address\":\"10.0.0.3\",\"address6\":null,\"seen_from\":\"127.0.0.1:"),
        std::string("\"since\":\"20")}) {
    EXPECT_NE(status.find(part), std::string::npos) << "missing " << part << " in\n" << status;
  }

  const std::string metrics = Get("/metrics");
  for (const char* line : {"mnedc_client_joined 1\n", "mnedc_client_peers 1\n",
                           "mnedc_client_packets_total{direction=\"to_relay\"} 1\n",
                           "mnedc_client_bytes_total{direction=\"to_relay\"} 1000\n",
                           "mnedc_client_drops_total{reason=\"not_connected\"} 0\n",
                           "# TYPE mnedc_client_reconnects_total counter\n",
                           "mnedc_client_tun_read_errors_total 0\n"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << "missing " << line << metrics;
  }
  EXPECT_EQ(Get("/healthz").rfind("HTTP/1.1 200", 0), 0u);
  EXPECT_EQ(Get("/nope").rfind("HTTP/1.1 404", 0), 0u);

  // The relay goes away: the status says so, with the reason, and health fails.
  net_.StopRelay();
  ASSERT_TRUE(net_.RunUntil([&] { return !a.client->joined(); }));
  const std::string after = Get("/v1/status");
  EXPECT_NE(after.find("\"state\":\"connecting\""), std::string::npos) << after;
  EXPECT_NE(after.find("\"last_error\":\"relay refused: SHUTTING_DOWN"), std::string::npos) << after;
  EXPECT_EQ(Get("/healthz").rfind("HTTP/1.1 503", 0), 0u);
}

}  // namespace
}  // namespace mnedc::testing
