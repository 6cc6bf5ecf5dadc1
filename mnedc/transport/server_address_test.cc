#include "mnedc/transport/server_address.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "mnedc/transport/dial.h"
#include "mnedc/transport/tls_context.h"

namespace mnedc::transport {
namespace {

TEST(ServerAddress, ParsesEveryScheme) {
  std::string error;
  auto tcp = ParseServerAddress("relay:9", 3334, &error);
  ASSERT_TRUE(tcp) << error;
  EXPECT_EQ(tcp->scheme, Scheme::kTcp);
  EXPECT_EQ(tcp->endpoint.port, 9);
  auto tls = ParseServerAddress("tls://relay", 3334, &error);
  ASSERT_TRUE(tls) << error;
  EXPECT_EQ(tls->scheme, Scheme::kTls);
  EXPECT_EQ(tls->endpoint.port, 3334);
  auto ws = ParseServerAddress("ws://relay/mnedc", 3334, &error);
  ASSERT_TRUE(ws) << error;
  EXPECT_EQ(ws->endpoint.port, 80);
  EXPECT_EQ(ws->path, "/mnedc");
  auto wss = ParseServerAddress("wss://[::1]", 3334, &error);
  ASSERT_TRUE(wss) << error;
  EXPECT_EQ(wss->endpoint.host, "::1");
  EXPECT_EQ(wss->endpoint.port, 443);
  EXPECT_EQ(wss->path, "/");
  EXPECT_EQ(wss->ToString(), "wss://[::1]:443/");
}

TEST(ServerAddress, RefusesWithReasons) {
  std::string error;
  EXPECT_FALSE(ParseServerAddress("http://relay", 3334, &error));
  EXPECT_NE(error.find("unknown scheme 'http'"), std::string::npos) << error;
  EXPECT_FALSE(ParseServerAddress("tls://relay/path", 3334, &error));
  EXPECT_NE(error.find("only makes sense with ws"), std::string::npos) << error;
  EXPECT_FALSE(ParseServerAddress("wss://:443/", 3334, &error));
}

TEST(Proxy, ParsesAndHonoursNoProxy) {
  std::string error;
  auto proxy = ParseProxy("http://proxy.lan:3128/", &error);
  ASSERT_TRUE(proxy) << error;
  EXPECT_EQ(proxy->host, "proxy.lan");
  EXPECT_EQ(proxy->port, 3128);
  EXPECT_FALSE(ParseProxy("socks5://p:1", &error));
  EXPECT_NE(error.find("only http://"), std::string::npos);
  EXPECT_FALSE(ParseProxy("http://user:pw@p:1", &error));

  setenv("https_proxy", "http://10.9.9.9:8080", 1);
  setenv("no_proxy", "localhost, .internal", 1);
  error.clear();
  EXPECT_TRUE(ProxyFromEnvironment("relay.example", &error));
  EXPECT_FALSE(ProxyFromEnvironment("localhost", &error));
  EXPECT_FALSE(ProxyFromEnvironment("relay.internal", &error));
  unsetenv("https_proxy");
  unsetenv("no_proxy");
  EXPECT_FALSE(ProxyFromEnvironment("relay.example", &error));
}

TEST(Pin, Normalizes) {
  const std::string hex(64, 'A');
  EXPECT_EQ(NormalizePin(hex), std::string(64, 'a'));
  std::string with_colons;
  for (int i = 0; i < 32; ++i) with_colons += (i ? ":" : "") + std::string("0F");
  EXPECT_EQ(NormalizePin(with_colons)->substr(0, 4), "0f0f");
  EXPECT_FALSE(NormalizePin("abc"));
  EXPECT_FALSE(NormalizePin(std::string(64, 'g')));
}

TEST(TlsContext, MissingFilesAreExplained) {
  std::string error;
  EXPECT_FALSE(MakeTlsServerContext({"/nonexistent.pem", "/nonexistent.key", ""}, &error));
  EXPECT_NE(error.find("cannot read --tls_cert"), std::string::npos) << error;
  EXPECT_FALSE(MakeTlsServerContext({"", "", ""}, &error));
  EXPECT_NE(error.find("needs both"), std::string::npos) << error;
  EXPECT_FALSE(MakeTlsClientContext({.ca_file = "/nonexistent-ca.pem"}, &error));
  EXPECT_NE(error.find("cannot read --ca_file"), std::string::npos) << error;
  EXPECT_FALSE(MakeTlsClientContext({.pin_sha256 = "12"}, &error));
  EXPECT_NE(error.find("64 hex digits"), std::string::npos) << error;
}

}  // namespace
}  // namespace mnedc::transport
