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
  auto relay = LoadClientConfig(Write("server-ip: \"192.168.1.10\"\nport: \"3334\"\n"), &error);
  ASSERT_TRUE(relay) << error;
  EXPECT_EQ(relay->host, "192.168.1.10");
  EXPECT_EQ(relay->port, 3334);
  relay = LoadClientConfig(Write("server-ip: relay.lan\nport: 443\n"), &error);
  ASSERT_TRUE(relay) << error;
  EXPECT_EQ(relay->port, 443);
  relay = LoadClientConfig(Write("server-ip: relay.lan\n"), &error);
  ASSERT_TRUE(relay) << error;
  EXPECT_EQ(relay->port, 3334);
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
