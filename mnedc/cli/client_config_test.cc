#include "mnedc/cli/client_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

namespace mnedc::cli {
namespace {

std::string Write(const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  static int n = 0;
  std::string path = std::string(dir ? dir : "/tmp") + "/config" + std::to_string(n++) + ".yaml";
  std::ofstream(path) << text;
  return path;
}

TEST(ClientConfig, ReadsMnedcFileUnchanged) {
  std::string error;
  // Exactly as Home Orchestration writes it: both values are strings.
  auto relays = LoadClientConfig(Write("server-ip: \"192.168.1.10\"\nport: \"3334\"\n"), &error);
  ASSERT_TRUE(relays) << error;
  ASSERT_EQ(relays->size(), 1u);
  EXPECT_EQ((*relays)[0].host, "192.168.1.10");
  EXPECT_EQ((*relays)[0].port, 3334);
  relays = LoadClientConfig(Write("server-ip: relay.lan\nport: 443\n"), &error);
  ASSERT_TRUE(relays) << error;
  EXPECT_EQ((*relays)[0].port, 443);
  relays = LoadClientConfig(Write("server-ip: relay.lan\n"), &error);
  ASSERT_TRUE(relays) << error;
  EXPECT_EQ((*relays)[0].port, 3334);
  relays = LoadClientConfig(Write("server-ip: fd00::1\nport: 443\n"), &error);
  ASSERT_TRUE(relays) << error;
  EXPECT_EQ((*relays)[0].host, "fd00::1");
  EXPECT_EQ((*relays)[0].port, 443);
}

// Several relays of one network: a list, in order; the port is each one's
// that does not name its own.
TEST(ClientConfig, ReadsAListOfRelays) {
  std::string error;
  auto relays = ParseClientConfig("server-ip: [\"192.168.1.10\", relay2.lan:3335, \"[fd00::2]:3336\", fd00::3]\n"
                                  "port: \"3334\"\n",
                                  &error);
  ASSERT_TRUE(relays) << error;
  ASSERT_EQ(relays->size(), 4u);
  EXPECT_EQ((*relays)[0].ToString(), "192.168.1.10:3334");
  EXPECT_EQ((*relays)[1].ToString(), "relay2.lan:3335");
  EXPECT_EQ((*relays)[2].ToString(), "[fd00::2]:3336");
  EXPECT_EQ((*relays)[3].ToString(), "[fd00::3]:3334");
  relays = ParseClientConfig("server-ip:\n  - a.lan\n  - b.lan:4000\n", &error);
  ASSERT_TRUE(relays) << error;
  ASSERT_EQ(relays->size(), 2u);
  EXPECT_EQ((*relays)[0].ToString(), "a.lan:3334");
  EXPECT_EQ((*relays)[1].ToString(), "b.lan:4000");
  EXPECT_FALSE(ParseClientConfig("server-ip: []\n", &error));
  EXPECT_NE(error.find("missing 'server-ip'"), std::string::npos) << error;
  EXPECT_FALSE(ParseClientConfig("server-ip: [a.lan, [b]]\n", &error));
  EXPECT_NE(error.find("must list addresses"), std::string::npos) << error;
  EXPECT_FALSE(ParseClientConfig("server-ip: [a.lan, \"b.lan:x\"]\n", &error));
}

TEST(ClientConfig, ExplainsWhatIsWrong) {
  std::string error;
  EXPECT_FALSE(LoadClientConfig("/nonexistent/client-config.yaml", &error));
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
  EXPECT_FALSE(LoadClientConfig(Write("port: \"3334\"\n"), &error));
  EXPECT_NE(error.find("missing 'server-ip'"), std::string::npos) << error;
  EXPECT_FALSE(LoadClientConfig(Write("server-ip: a\nport: \"http\"\n"), &error));
  EXPECT_NE(error.find("port must be"), std::string::npos) << error;
  EXPECT_FALSE(LoadClientConfig(Write("server-ip: [a, b\n"), &error));
  EXPECT_NE(error.find("not valid YAML"), std::string::npos) << error;
  EXPECT_FALSE(LoadClientConfig(Write("- just\n- a list\n"), &error));
}

TEST(ClientConfig, DefaultDeviceIdIsStable) {
  EXPECT_FALSE(DefaultDeviceId().empty());
  EXPECT_EQ(DefaultDeviceId(), DefaultDeviceId());
}

}  // namespace
}  // namespace mnedc::cli
