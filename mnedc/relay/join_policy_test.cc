#include "mnedc/relay/join_policy.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

namespace mnedc::relay {
namespace {

TEST(JoinPolicyTest, OpenRelayAdmitsAnyone) {
  JoinPolicy policy;
  EXPECT_TRUE(policy.open());
  EXPECT_EQ(policy.Check("anyone", DigestToken(""), false), "");
}

TEST(JoinPolicyTest, SharedTokenAdmitsOnlyItsHolders) {
  JoinPolicy policy;
  policy.SetSharedToken("shared");
  EXPECT_EQ(policy.Check("a", DigestToken("shared"), true), "");
  EXPECT_EQ(policy.Check("a", DigestToken("sharee"), true), "wrong join token");
  EXPECT_EQ(policy.Check("a", DigestToken(""), false),
            "this relay needs a join token (--token_file)");
}

TEST(JoinPolicyTest, DeviceTokensBindEachIdToItsOwnToken) {
  JoinPolicy policy;
  policy.SetDeviceTokens({{"a", "token-a"}, {"b", "token-b"}});
  EXPECT_EQ(policy.device_count(), 2u);
  EXPECT_EQ(policy.Check("a", DigestToken("token-a"), true), "");
  EXPECT_EQ(policy.Check("b", DigestToken("token-b"), true), "");
  // One device cannot join as another, even with a valid token of its own.
  EXPECT_EQ(policy.Check("a", DigestToken("token-b"), true), "wrong token for device a");
  EXPECT_EQ(policy.Check("c", DigestToken("token-a"), true),
            "device c is not in the relay's tokens file");
}

TEST(JoinPolicyTest, AnEmptyTokensFileAdmitsNobody) {
  JoinPolicy policy;
  policy.SetDeviceTokens({});
  EXPECT_FALSE(policy.open());
  EXPECT_EQ(policy.Check("a", DigestToken(""), false), "device a is not in the relay's tokens file");
}

TEST(JoinPolicyTest, SharedTokenCannotTakeAListedId) {
  JoinPolicy policy;
  policy.SetSharedToken("shared");
  policy.SetDeviceTokens({{"a", "token-a"}});
  EXPECT_EQ(policy.Check("unlisted", DigestToken("shared"), true), "");
  EXPECT_EQ(policy.Check("a", DigestToken("shared"), true), "wrong token for device a");
  EXPECT_EQ(policy.Check("a", DigestToken("token-a"), true), "");
}

TEST(JoinPolicyTest, ParsesTokensFile) {
  std::unordered_map<std::string, std::string> tokens;
  std::string error;
  ASSERT_TRUE(ParseDeviceTokens("# devices\n\nkitchen  abc123\n  garage\tdef456  \n", &tokens,
                                &error))
      << error;
  EXPECT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens["kitchen"], "abc123");
  EXPECT_EQ(tokens["garage"], "def456");
}

TEST(JoinPolicyTest, TheTokensFileBindsADeviceToItsKey) {
  std::unordered_map<std::string, std::string> tokens;
  std::unordered_map<std::string, seal::PublicKey> keys;
  std::string error;
  ASSERT_TRUE(ParseDeviceTokens("kitchen abc hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\ngarage def\n", &tokens,
                                &error, &keys))
      << error;
  ASSERT_EQ(keys.size(), 1u);
  const seal::PublicKey kitchen = keys["kitchen"];
  EXPECT_EQ(seal::EncodeKey(kitchen), "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
  JoinPolicy policy;
  policy.SetDeviceTokens(tokens);
  policy.SetDeviceKeys(keys);
  seal::PublicKey other = kitchen;
  other[0] ^= 1;
  EXPECT_EQ(policy.CheckKey("kitchen", &kitchen), "");
  EXPECT_EQ(policy.CheckKey("kitchen", &other),
            "the tokens file binds device kitchen to the key hSDwCYkw..., and this client holds another "
            "(hCDwCYkw...)");
  EXPECT_EQ(policy.CheckKey("kitchen", nullptr),
            "the tokens file binds device kitchen to the key hSDwCYkw..., and this client presents none (an older "
            "version?)");
  EXPECT_EQ(policy.CheckKey("garage", &other), "");  // Not bound by the operator.
  EXPECT_EQ(policy.CheckKey("garage", nullptr), "");
}

TEST(JoinPolicyTest, MalformedTokensFileSaysWhichLine) {
  std::unordered_map<std::string, std::string> tokens;
  std::string error;
  EXPECT_FALSE(ParseDeviceTokens("a 1\nb\n", &tokens, &error));
  EXPECT_EQ(error, "line 2: 'b' has no token; write 'device_id token'");
  EXPECT_FALSE(ParseDeviceTokens("a 1\na 2\n", &tokens, &error));
  EXPECT_EQ(error, "line 2: device 'a' is listed twice");
  EXPECT_FALSE(ParseDeviceTokens("a 1 2\n", &tokens, &error));
  EXPECT_EQ(error, "line 1: '2' is not a public key (base64 of 32 bytes, as the client logs its key); write "
                   "'device_id token [public_key]'");
  EXPECT_FALSE(ParseDeviceTokens("a 1 hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo= 2\n", &tokens, &error));
  EXPECT_EQ(error, "line 1: more than 'device_id token [public_key]'");
  EXPECT_FALSE(ParseDeviceTokens(std::string(129, 'x') + " t\n", &tokens, &error));
  EXPECT_FALSE(ParseDeviceTokens("a " + std::string(1025, 't') + "\n", &tokens, &error));
}

TEST(JoinPolicyTest, SecretFilesReadableByEveryoneAreRefused) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = std::string(dir ? dir : "/tmp") + "/tokens";
  std::ofstream(path) << "a token-a\n";
  std::string content, error;
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(ReadSecretFile(path, 1024, &content, &error));
  EXPECT_NE(error.find("every user can read it; chmod o-r (or 600) it"), std::string::npos) << error;
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  EXPECT_TRUE(ReadSecretFile(path, 1024, &content, &error)) << error;
  EXPECT_EQ(content, "a token-a\n");
  EXPECT_FALSE(ReadSecretFile(path, 4, &content, &error));
  EXPECT_FALSE(ReadSecretFile(path + "-missing", 1024, &content, &error));
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;

  std::string token;
  std::ofstream(path) << "  \n";
  EXPECT_FALSE(ReadTokenFile(path, &token, &error));
  EXPECT_NE(error.find("is empty"), std::string::npos);
  std::ofstream(path) << "s3cret\n\n";
  EXPECT_TRUE(ReadTokenFile(path, &token, &error)) << error;
  EXPECT_EQ(token, "s3cret");
}

}  // namespace
}  // namespace mnedc::relay
