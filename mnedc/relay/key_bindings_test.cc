#include "mnedc/relay/key_bindings.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mnedc::relay {
namespace {

seal::PublicKey Key(uint8_t fill) {
  seal::PublicKey key;
  key.fill(fill);
  return key;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

TEST(KeyBindings, TheFirstKeyIsBoundAndOthersAreRefused) {
  boost::asio::io_context io;
  KeyBindings keys(io.get_executor(), "");
  const seal::PublicKey a = Key(1), b = Key(2);
  EXPECT_EQ(keys.Check("dev", &a), "");
  EXPECT_EQ(keys.Bound("dev"), a);
  EXPECT_EQ(keys.Check("dev", &a), "");
  const std::string refused = keys.Check("dev", &b);
  EXPECT_NE(refused.find("device dev is bound to the key AQEBAQEB... on this relay, and this client holds another "
                         "(AgICAgIC...)"),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("mnedc ctl forget-key dev"), std::string::npos) << refused;
  // No key at all is refused too: an older client cannot take a bound ID.
  EXPECT_NE(keys.Check("dev", nullptr).find("presents none"), std::string::npos);
  EXPECT_EQ(keys.Bound("dev"), a);
}

TEST(KeyBindings, WithoutAKeyNothingIsBound) {
  boost::asio::io_context io;
  KeyBindings keys(io.get_executor(), "");
  EXPECT_EQ(keys.Check("old", nullptr), "");
  EXPECT_FALSE(keys.Bound("old"));
  const seal::PublicKey a = Key(1);
  EXPECT_EQ(keys.Check("old", &a), "");  // Upgraded: now bound.
  EXPECT_EQ(keys.size(), 1u);
}

TEST(KeyBindings, ForgetLetsANewKeyBind) {
  boost::asio::io_context io;
  KeyBindings keys(io.get_executor(), "");
  const seal::PublicKey a = Key(1), b = Key(2);
  ASSERT_EQ(keys.Check("dev", &a), "");
  EXPECT_TRUE(keys.Forget("dev"));
  EXPECT_FALSE(keys.Forget("dev"));
  EXPECT_EQ(keys.Check("dev", &b), "");
  EXPECT_EQ(keys.Bound("dev"), b);
}

TEST(KeyBindings, TheFileKeepsThemAcrossRestarts) {
  const std::string path = TempPath("device-keys");
  std::remove(path.c_str());
  const seal::PublicKey a = Key(1), b = Key(2);
  {
    boost::asio::io_context io;
    KeyBindings keys(io.get_executor(), path);
    std::string error;
    ASSERT_TRUE(keys.Restore(&error)) << error;  // Missing: fine.
    ASSERT_EQ(keys.Check("deva", &a), "");
    ASSERT_EQ(keys.Check("devb", &b), "");
    io.run_for(std::chrono::milliseconds(1500));  // Written within a second.
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("deva AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"), std::string::npos) << text.str();
    ASSERT_TRUE(keys.Forget("devb"));
    keys.SaveNow();
  }
  boost::asio::io_context io;
  KeyBindings keys(io.get_executor(), path);
  std::string error;
  ASSERT_TRUE(keys.Restore(&error)) << error;
  EXPECT_EQ(keys.Bound("deva"), a);
  EXPECT_FALSE(keys.Bound("devb"));
  EXPECT_NE(keys.Check("deva", &b), "");
}

TEST(KeyBindings, AMalformedFileStopsTheRelay) {
  const std::string path = TempPath("bad-keys");
  {
    std::ofstream out(path);
    out << "# comment\n\ndeva AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\ndevb not-a-key\n";
  }
  boost::asio::io_context io;
  KeyBindings keys(io.get_executor(), path);
  std::string error;
  EXPECT_FALSE(keys.Restore(&error));
  EXPECT_EQ(error, "'" + path + "' line 4: expected 'device_id public_key' (the key in base64)");
  std::unordered_map<std::string, seal::PublicKey> parsed;
  EXPECT_FALSE(ParseDeviceKeys("a AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\na AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n",
                               &parsed, &error));
  EXPECT_EQ(error, "line 2: device 'a' is listed twice");
}

}  // namespace
}  // namespace mnedc::relay
