// Every transport through a real relay on 127.0.0.1, on one port: native TCP,
// TLS, WebSocket and WebSocket over TLS, through a proxy, with join tokens, and
// each way TLS verification must fail.
#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>

#include "mnedc/transport/tls_context.h"
#include "testing/connect_proxy.h"
#include "testing/ip_packets.h"
#include "testing/loopback_net.h"
#include "testing/test_pki.h"

namespace mnedc::testing {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using transport::Scheme;

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

class SecureTransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = MakeTestPki(TempDir()); }

  relay::RelayOptions TlsRelay(const std::string& cert, const std::string& key,
                               const std::string& client_ca = "") {
    relay::RelayOptions options;
    std::string error;
    options.accept.tls = transport::MakeTlsServerContext({cert, key, client_ca}, &error);
    EXPECT_TRUE(options.accept.tls) << error;
    return options;
  }

  // A client tuner for a scheme and TLS settings.
  static std::function<void(client::ClientOptions&)> Via(Scheme scheme,
                                                         transport::TlsClientOptions tls = {}) {
    return [scheme, tls](client::ClientOptions& options) {
      options.server.scheme = scheme;
      options.server.path = "/mnedc";
      if (options.server.uses_tls()) {
        std::string error;
        options.dial.tls = transport::MakeTlsClientContext(tls, &error);
        ASSERT_TRUE(options.dial.tls) << error;
        options.dial.verify_host_name = tls.pin_sha256.empty();
      }
    };
  }

  // Both directions between two joined clients, sizes 20..1400 and 9000.
  void ExpectTraffic(Node& a, Node& b) {
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      to->received.clear();
      std::vector<std::vector<uint8_t>> sent;
      for (std::size_t size : {20u, 100u, 576u, 1400u, 9000u, 1400u}) {
        sent.push_back(MakeIpv4Packet(from->address(), to->address(), size, sent.size()));
        ASSERT_TRUE(from->client->SendPacket(sent.back()));
      }
      ASSERT_TRUE(net_.RunUntil([&] { return to->received.size() == sent.size(); }));
      EXPECT_EQ(to->received, sent);
    }
  }

  bool FailsWith(Node& node, const std::string& words) {
    return net_.RunUntil([&] { return node.client->last_error().find(words) != std::string::npos; },
                         5s);
  }

  static TestPki pki_;
  LoopbackNet net_;
};
TestPki SecureTransportTest::pki_;

TEST_F(SecureTransportTest, AllFourTransportsShareOnePortAndInteroperate) {
  net_.StartRelay(TlsRelay(pki_.server_cert, pki_.server_key));
  Node& tcp = net_.AddClient("tcp", Via(Scheme::kTcp));
  Node& tls = net_.AddClient("tls", Via(Scheme::kTls, {.ca_file = pki_.ca_cert}));
  Node& ws = net_.AddClient("ws", Via(Scheme::kWs));
  Node& wss = net_.AddClient("wss", Via(Scheme::kWss, {.ca_file = pki_.ca_cert}));
  ASSERT_TRUE(net_.RunUntil([&] {
    return tcp.client->joined() && tls.client->joined() && ws.client->joined() &&
           wss.client->joined();
  })) << tls.client->last_error() << " / " << wss.client->last_error();
  std::map<std::string, std::string> transport_of;
  for (const auto& m : net_.relay().Members()) transport_of[m.device_id] = m.transport;
  EXPECT_EQ(transport_of, (std::map<std::string, std::string>{
                              {"tcp", "tcp"}, {"tls", "tls"}, {"ws", "ws"}, {"wss", "wss"}}));
  ExpectTraffic(tcp, wss);
  ExpectTraffic(ws, tls);
  ExpectTraffic(wss, ws);
}

TEST_F(SecureTransportTest, PinnedSelfSignedStyleRelay) {
  net_.StartRelay(TlsRelay(pki_.server_cert, pki_.server_key));
  std::string error;
  const std::string pin = transport::CertificateSha256(pki_.server_cert, &error);
  ASSERT_FALSE(pin.empty()) << error;
  Node& a = net_.AddClient("a", Via(Scheme::kWss, {.pin_sha256 = pin}));
  Node& b = net_.AddClient("b", Via(Scheme::kTls, {.pin_sha256 = pin}));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  ExpectTraffic(a, b);
}

TEST_F(SecureTransportTest, UntrustedRelaysAreRefused) {
  net_.StartRelay(TlsRelay(pki_.server_cert, pki_.server_key));
  Node& wrong_ca = net_.AddClient("wrong-ca", Via(Scheme::kWss, {.ca_file = pki_.other_ca_cert}));
  std::string pin(64, 'a');
  Node& wrong_pin = net_.AddClient("wrong-pin", Via(Scheme::kTls, {.pin_sha256 = pin}));
  EXPECT_TRUE(FailsWith(wrong_ca, "unable to get local issuer certificate"))
      << wrong_ca.client->last_error();
  EXPECT_TRUE(FailsWith(wrong_pin, "does not match --pin_sha256")) << wrong_pin.client->last_error();
  EXPECT_FALSE(wrong_ca.client->joined());
  EXPECT_FALSE(wrong_pin.client->joined());
  EXPECT_EQ(net_.relay().member_count(), 0u);
  // The relay learns of the failed handshake a moment after the client gives up.
  EXPECT_TRUE(net_.RunUntil([&] { return net_.relay().counters().connections_refused >= 2; }, 5s));
}

TEST_F(SecureTransportTest, ExpiredRelayCertificateIsRefused) {
  net_.StartRelay(TlsRelay(pki_.expired_cert, pki_.expired_key));
  Node& a = net_.AddClient("a", Via(Scheme::kTls, {.ca_file = pki_.ca_cert}));
  EXPECT_TRUE(FailsWith(a, "certificate has expired")) << a.client->last_error();
  EXPECT_FALSE(a.client->joined());
}

TEST_F(SecureTransportTest, CertificateForAnotherNameIsRefused) {
  net_.StartRelay(TlsRelay(pki_.wrong_name_cert, pki_.wrong_name_key));
  Node& a = net_.AddClient("a", Via(Scheme::kWss, {.ca_file = pki_.ca_cert}));
  EXPECT_TRUE(FailsWith(a, "certificate does not name 127.0.0.1")) << a.client->last_error();
  EXPECT_FALSE(a.client->joined());
}

TEST_F(SecureTransportTest, MutualTlsNeedsAClientCertificateFromTheRightCa) {
  net_.StartRelay(TlsRelay(pki_.server_cert, pki_.server_key, pki_.ca_cert));
  Node& good = net_.AddClient(
      "good", Via(Scheme::kTls, {pki_.ca_cert, "", pki_.client_cert, pki_.client_key}));
  Node& none = net_.AddClient("none", Via(Scheme::kTls, {.ca_file = pki_.ca_cert}));
  Node& stranger = net_.AddClient(
      "stranger", Via(Scheme::kWss, {pki_.ca_cert, "", pki_.client_from_other_ca_cert,
                                     pki_.client_from_other_ca_key}));
  ASSERT_TRUE(net_.RunUntil([&] { return good.client->joined(); })) << good.client->last_error();
  EXPECT_TRUE(net_.RunUntil([&] { return net_.relay().counters().connections_refused >= 2; }, 5s));
  EXPECT_FALSE(none.client->joined());
  EXPECT_FALSE(stranger.client->joined());
  EXPECT_EQ(net_.relay().member_count(), 1u);
}

TEST_F(SecureTransportTest, RequireTlsRefusesPlaintext) {
  auto options = TlsRelay(pki_.server_cert, pki_.server_key);
  options.accept.allow_plaintext = false;
  net_.StartRelay(options);
  Node& tcp = net_.AddClient("tcp", Via(Scheme::kTcp));
  Node& ws = net_.AddClient("ws", Via(Scheme::kWs));
  Node& wss = net_.AddClient("wss", Via(Scheme::kWss, {.ca_file = pki_.ca_cert}));
  ASSERT_TRUE(net_.RunUntil([&] { return wss.client->joined(); }));
  net_.RunFor(300ms);
  EXPECT_FALSE(tcp.client->joined());
  EXPECT_FALSE(ws.client->joined());
}

TEST_F(SecureTransportTest, ThroughAnHttpConnectProxy) {
  net_.StartRelay(TlsRelay(pki_.server_cert, pki_.server_key));
  ConnectProxy proxy(net_.io());
  auto through_proxy = [&](Scheme scheme) {
    return [&, scheme](client::ClientOptions& options) {
      Via(scheme, {.ca_file = pki_.ca_cert})(options);
      options.dial.proxy = transport::HostPort{"127.0.0.1", proxy.port()};
    };
  };
  Node& a = net_.AddClient("a", through_proxy(Scheme::kWss));
  Node& b = net_.AddClient("b", through_proxy(Scheme::kTcp));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }))
      << a.client->last_error();
  EXPECT_EQ(proxy.tunnels(), 2);
  EXPECT_EQ(proxy.requests()[0].rfind("CONNECT 127.0.0.1:", 0), 0u) << proxy.requests()[0];
  ExpectTraffic(a, b);
}

TEST_F(SecureTransportTest, ProxyRefusalIsReportedClearly) {
  net_.StartRelay();
  ConnectProxy proxy(net_.io(), /*refuse=*/true);
  Node& a = net_.AddClient("a", [&](client::ClientOptions& options) {
    options.dial.proxy = transport::HostPort{"127.0.0.1", proxy.port()};
  });
  EXPECT_TRUE(FailsWith(a, "the proxy refused CONNECT 127.0.0.1:")) << a.client->last_error();
  EXPECT_NE(a.client->last_error().find("403"), std::string::npos);
}

TEST_F(SecureTransportTest, JoinTokenIsChecked) {
  relay::RelayOptions options;
  options.join_token = "s3cret-token";
  net_.StartRelay(options);
  Node& good = net_.AddClient("good", [](client::ClientOptions& o) { o.credentials = "s3cret-token"; });
  Node& wrong = net_.AddClient("wrong", [](client::ClientOptions& o) { o.credentials = "s3cret-tokem"; });
  Node& none = net_.AddClient("none");
  ASSERT_TRUE(net_.RunUntil([&] { return good.client->joined(); }));
  EXPECT_TRUE(FailsWith(wrong, "UNAUTHORIZED: wrong join token")) << wrong.client->last_error();
  EXPECT_TRUE(FailsWith(none, "UNAUTHORIZED: this relay needs a join token"))
      << none.client->last_error();
  EXPECT_EQ(net_.relay().member_count(), 1u);
  EXPECT_GE(net_.relay().counters().auth_failures, 2u);
  // Nobody learned about the intruders.
  EXPECT_EQ(good.client->peers().size(), 0u);
}

TEST_F(SecureTransportTest, DeviceTokensBindIdsAndAReloadRevokes) {
  relay::RelayOptions options;
  options.device_tokens = {{"a", "token-a"}, {"b", "token-b"}};
  net_.StartRelay(options);
  auto token = [](std::string value) {
    return [value](client::ClientOptions& o) { o.credentials = value; };
  };
  Node& a = net_.AddClient("a", token("token-a"));
  Node& b = net_.AddClient("b", token("token-b"));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  const uint32_t a_address = a.address();

  // b's valid token does not let anyone join as a: a keeps its session.
  Node& impostor = net_.AddClient("a", token("token-b"));
  EXPECT_TRUE(FailsWith(impostor, "UNAUTHORIZED: wrong token for device a"))
      << impostor.client->last_error();
  Node& unlisted = net_.AddClient("c", token("token-a"));
  EXPECT_TRUE(FailsWith(unlisted, "UNAUTHORIZED: device c is not in the relay's tokens file"));
  EXPECT_TRUE(a.client->joined());
  EXPECT_EQ(net_.relay().counters().superseded, 0u);
  net_.StopClient(impostor);
  net_.StopClient(unlisted);

  // The operator removes a's line and reloads: a is disconnected at once and
  // cannot rejoin; b stays and sees a go.
  relay::JoinPolicy revoked;
  revoked.SetDeviceTokens({{"b", "token-b"}});
  EXPECT_EQ(net_.relay().SetJoinPolicy(revoked), 1u);
  EXPECT_TRUE(FailsWith(a, "UNAUTHORIZED: the relay no longer accepts this device's token"))
      << a.client->last_error();
  EXPECT_TRUE(net_.RunUntil([&] {
    return a.client->last_error().find("wrong token for device a") != std::string::npos ||
           a.client->last_error().find("not in the relay's tokens file") != std::string::npos;
  })) << a.client->last_error();
  EXPECT_FALSE(a.client->joined());
  EXPECT_TRUE(b.client->joined());
  EXPECT_EQ(net_.relay().member_count(), 1u);
  EXPECT_EQ(net_.relay().counters().revoked, 1u);
  EXPECT_TRUE(net_.RunUntil([&] { return !b.client->peers().Find("a").has_value(); }));
  // Nothing reaches a's old address any more.
  b.client->SendPacket(MakeIpv4Packet(b.address(), a_address, 100, 1));
  EXPECT_TRUE(net_.RunUntil([&] {
    return net_.relay().counters().drop(relay::DropReason::kUnknownDestination) >= 1;
  }));

  // A changed token is a revocation too.
  relay::JoinPolicy changed;
  changed.SetDeviceTokens({{"b", "token-b2"}});
  EXPECT_EQ(net_.relay().SetJoinPolicy(changed), 1u);
  EXPECT_TRUE(FailsWith(b, "UNAUTHORIZED")) << b.client->last_error();
  EXPECT_EQ(net_.relay().member_count(), 0u);
}

TEST_F(SecureTransportTest, KickClosesOneSessionWithItsReason) {
  net_.StartRelay();
  Node& a = net_.AddClient("a");
  Node& b = net_.AddClient("b");
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));
  EXPECT_FALSE(net_.relay().Kick("nobody", "x"));
  EXPECT_TRUE(net_.relay().Kick("a", "maintenance"));
  EXPECT_TRUE(FailsWith(a, "KICKED: closed by the relay's operator: maintenance"))
      << a.client->last_error();
  EXPECT_TRUE(b.client->joined());
  EXPECT_EQ(net_.relay().counters().kicked, 1u);
  EXPECT_TRUE(net_.RunUntil([&] { return !b.client->peers().Find("a").has_value(); }));
}

TEST_F(SecureTransportTest, ClientCertificateBindsTheDeviceId) {
  auto options = TlsRelay(pki_.server_cert, pki_.server_key, pki_.ca_cert);
  options.bind_device_to_certificate = true;
  net_.StartRelay(options);
  const transport::TlsClientOptions with_cert{pki_.ca_cert, "", pki_.client_cert, pki_.client_key};
  // The test client certificate's subject CN is "device".
  Node& named = net_.AddClient("device", Via(Scheme::kWss, with_cert));
  Node& other = net_.AddClient("someone-else", Via(Scheme::kTls, with_cert));
  Node& plain = net_.AddClient("plain", Via(Scheme::kTcp));
  ASSERT_TRUE(net_.RunUntil([&] { return named.client->joined(); })) << named.client->last_error();
  EXPECT_TRUE(FailsWith(other, "UNAUTHORIZED: the client certificate does not name device "
                               "someone-else"))
      << other.client->last_error();
  EXPECT_TRUE(FailsWith(plain, "UNAUTHORIZED: this relay binds device IDs to client certificates"))
      << plain.client->last_error();
  EXPECT_EQ(net_.relay().member_count(), 1u);
}

TEST_F(SecureTransportTest, PlainHttpOnTheRelayPortGetsAnAnswer) {
  net_.StartRelay();
  asio::ip::tcp::socket browser(net_.io());
  browser.connect({asio::ip::make_address("127.0.0.1"), net_.port()});
  const std::string request = "GET / HTTP/1.1\r\nHost: relay\r\n\r\n";
  asio::write(browser, asio::buffer(request));
  const std::string answer = net_.ReadUntilClosed(browser);
  EXPECT_EQ(answer.rfind("HTTP/1.1 426", 0), 0u) << answer;
  EXPECT_NE(answer.find("This is an mnedc relay"), std::string::npos);
  EXPECT_EQ(net_.relay().counters().connections_refused, 1u);
}

}  // namespace
}  // namespace mnedc::testing
