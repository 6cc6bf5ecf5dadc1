// Device keys through a real relay and real clients: the keys travel in the
// join and in peer announcements, the relay binds each device ID to the first
// key it joins with, the operator's tokens file binds it instead, and a
// device that presents another key (or none) under a bound ID is refused.
#include <gtest/gtest.h>

#include "mnedc/seal/keys.h"
#include "testing/loopback_net.h"

namespace mnedc::testing {
namespace {
using namespace std::chrono_literals;

seal::KeyPair NewKey() {
  seal::KeyPair key;
  EXPECT_TRUE(seal::KeyPair::Generate(&key));
  return key;
}

auto WithKey(const seal::KeyPair& key) {
  return [key](client::ClientOptions& options) { options.device_key = key; };
}

class DeviceKeysTest : public ::testing::Test {
 protected:
  bool FailsWith(Node& node, const std::string& words) {
    return net_.RunUntil([&] { return node.client->last_error().find(words) != std::string::npos; }, 5s);
  }
  LoopbackNet net_;
};

TEST_F(DeviceKeysTest, KeysReachThePeersAndASessionKeyIsNewEachRun) {
  net_.StartRelay();
  const seal::KeyPair a_key = NewKey(), b_key = NewKey();
  Node& a = net_.AddClient("a", WithKey(a_key));
  Node& b = net_.AddClient("b", WithKey(b_key));
  Node& old = net_.AddClient("old");  // An older client: no keys.
  ASSERT_TRUE(net_.RunUntil([&] { return b.client->peers().size() == 2 && a.client->peers().size() == 2; }));
  const auto a_at_b = b.client->peers().Find("a");
  ASSERT_TRUE(a_at_b && a_at_b->keys);
  EXPECT_EQ(a_at_b->keys->public_key, a_key.public_key());
  ASSERT_TRUE(a.client->session_key());
  EXPECT_EQ(a_at_b->keys->session_key, a.client->session_key()->public_key());
  EXPECT_NE(a_at_b->keys->session_key, a_key.public_key());
  EXPECT_FALSE(b.client->peers().Find("old")->keys);
  EXPECT_FALSE(old.client->session_key());
  EXPECT_EQ(net_.relay().BoundKey("a"), a_key.public_key());
  EXPECT_FALSE(net_.relay().BoundKey("old"));

  // a restarts: same device key, a new session key, which b learns.
  const seal::PublicKey first_session = a.client->session_key()->public_key();
  net_.StopClient(a);
  Node& a2 = net_.AddClient("a", WithKey(a_key));
  ASSERT_TRUE(net_.RunUntil([&] {
    const auto seen = b.client->peers().Find("a");
    return a2.client->joined() && seen && seen->keys && seen->keys->session_key != first_session;
  }));
  EXPECT_EQ(b.client->peers().Find("a")->keys->session_key, a2.client->session_key()->public_key());
}

TEST_F(DeviceKeysTest, AnIdIsBoundToItsFirstKeyUntilTheOperatorForgetsIt) {
  net_.StartRelay();
  const seal::KeyPair first = NewKey(), second = NewKey();
  Node& a = net_.AddClient("a", WithKey(first));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined(); }));
  net_.StopClient(a);

  Node& other = net_.AddClient("a", WithKey(second));
  EXPECT_TRUE(FailsWith(other, "UNAUTHORIZED: device a is bound to the key " + seal::ShortKey(first.public_key()) +
                                   "... on this relay, and this client holds another (" +
                                   seal::ShortKey(second.public_key()) + "...)"))
      << other.client->last_error();
  net_.StopClient(other);
  Node& none = net_.AddClient("a");
  EXPECT_TRUE(FailsWith(none, "presents none (an older version?)")) << none.client->last_error();
  net_.StopClient(none);
  EXPECT_GE(net_.relay().counters().auth_failures, 2u);
  EXPECT_EQ(net_.relay().member_count(), 0u);

  ASSERT_TRUE(net_.relay().ForgetKey("a"));
  Node& renewed = net_.AddClient("a", WithKey(second));
  ASSERT_TRUE(net_.RunUntil([&] { return renewed.client->joined(); })) << renewed.client->last_error();
  EXPECT_EQ(net_.relay().BoundKey("a"), second.public_key());
}

TEST_F(DeviceKeysTest, TheTokensFileBindsAKeyAndAReloadEnforcesIt) {
  const seal::KeyPair right = NewKey(), wrong = NewKey();
  relay::RelayOptions options;
  options.device_tokens = {{"a", "token-a"}, {"b", "token-b"}};
  net_.StartRelay(options);
  {
    relay::JoinPolicy policy;
    policy.SetDeviceTokens(options.device_tokens);
    policy.SetDeviceKeys({{"a", right.public_key()}});
    net_.relay().SetJoinPolicy(std::move(policy));
  }
  auto as = [](std::string token, const seal::KeyPair& key) {
    return [token, key](client::ClientOptions& o) {
      o.credentials = token;
      o.device_key = key;
    };
  };
  Node& impostor = net_.AddClient("a", as("token-a", wrong));
  EXPECT_TRUE(FailsWith(impostor, "UNAUTHORIZED: the tokens file binds device a to the key " +
                                      seal::ShortKey(right.public_key())))
      << impostor.client->last_error();
  net_.StopClient(impostor);
  Node& a = net_.AddClient("a", as("token-a", right));
  Node& b = net_.AddClient("b", as("token-b", wrong));
  ASSERT_TRUE(net_.RunUntil([&] { return a.client->joined() && b.client->joined(); }));

  // The operator binds b to another key and reloads: b is disconnected.
  relay::JoinPolicy policy;
  policy.SetDeviceTokens(options.device_tokens);
  policy.SetDeviceKeys({{"a", right.public_key()}, {"b", right.public_key()}});
  EXPECT_EQ(net_.relay().SetJoinPolicy(std::move(policy)), 1u);
  EXPECT_TRUE(FailsWith(b, "UNAUTHORIZED")) << b.client->last_error();
  EXPECT_TRUE(a.client->joined());
}

}  // namespace
}  // namespace mnedc::testing
