// Known-answer tests for device keys, pair keys, the AEAD and the replay
// window: RFC 7748 (X25519), RFC 5869 (HKDF), RFC 8439 (ChaCha20-Poly1305),
// and for the pair derivation a vector computed apart from this code with the
// openssl command line (pkeyutl -derive for each agreement, kdf HKDF).
#include <gtest/gtest.h>

#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "mnedc/seal/aead.h"
#include "mnedc/seal/keys.h"
#include "mnedc/seal/pair_keys.h"
#include "mnedc/seal/replay_window.h"

namespace mnedc::seal {
namespace {

std::vector<uint8_t> Hex(std::string_view hex) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

template <typename Bytes>
std::string ToHex(const Bytes& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

PublicKey Key(std::string_view hex) {
  PublicKey key{};
  const std::vector<uint8_t> bytes = Hex(hex);
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

KeyPair Pair(std::string_view private_hex) {
  KeyPair pair;
  EXPECT_TRUE(KeyPair::FromPrivate(Hex(private_hex), &pair));
  return pair;
}

TEST(Keys, X25519Rfc7748) {
  const KeyPair alice = Pair("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const KeyPair bob = Pair("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  EXPECT_EQ(ToHex(alice.public_key()), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(ToHex(bob.public_key()), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  SharedSecret a, b;
  ASSERT_TRUE(alice.Agree(bob.public_key(), &a));
  ASSERT_TRUE(bob.Agree(alice.public_key(), &b));
  EXPECT_EQ(ToHex(a), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  EXPECT_EQ(a, b);
}

TEST(Keys, ALowOrderPointIsRefused) {
  const KeyPair alice = Pair("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  SharedSecret s;
  EXPECT_FALSE(alice.Agree(PublicKey{}, &s));  // The point 0.
  EXPECT_FALSE(alice.Agree(Key("0100000000000000000000000000000000000000000000000000000000000000"), &s));
  EXPECT_FALSE(alice.Agree(Key("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), &s));
}

TEST(Keys, GeneratedKeysDifferAndAgree) {
  KeyPair a, b;
  ASSERT_TRUE(KeyPair::Generate(&a));
  ASSERT_TRUE(KeyPair::Generate(&b));
  EXPECT_NE(a.public_key(), b.public_key());
  EXPECT_EQ(a.private_key()[0] & 7, 0);  // Clamped, as wg genkey stores keys.
  SharedSecret x, y;
  ASSERT_TRUE(a.Agree(b.public_key(), &x));
  ASSERT_TRUE(b.Agree(a.public_key(), &y));
  EXPECT_EQ(x, y);
}

TEST(Keys, TextForm) {
  const PublicKey key = Key("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  const std::string text = EncodeKey(key);
  EXPECT_EQ(text, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
  EXPECT_EQ(ShortKey(key), "hSDwCYkw");
  EXPECT_EQ(DecodeKey(text), key);
  EXPECT_EQ(DecodeKey("  " + text + "\n"), key);
  EXPECT_FALSE(DecodeKey(""));
  EXPECT_FALSE(DecodeKey(text.substr(0, 43)));                      // No padding.
  EXPECT_FALSE(DecodeKey(text + "A"));                               // Too long.
  EXPECT_FALSE(DecodeKey("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbT=="));  // 31 bytes.
  EXPECT_FALSE(DecodeKey("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqqb*mo="));  // Not base64.
}

class KeyFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/mnedc-key-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST_F(KeyFile, MadeOnceWithOwnerOnlyModeThenKept) {
  const std::string path = dir_ + "/var/state/device.key";
  KeyPair first, second;
  bool created = false;
  std::string error;
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &first, &created, &error)) << error;
  EXPECT_TRUE(created);
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((dir_ + "/var/state").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &second, &created, &error)) << error;
  EXPECT_FALSE(created);
  EXPECT_EQ(first.public_key(), second.public_key());
}

TEST_F(KeyFile, AKeyOthersCanReadIsRefused) {
  const std::string path = dir_ + "/device.key";
  KeyPair key;
  bool created = false;
  std::string error;
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &key, &created, &error)) << error;
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  EXPECT_FALSE(LoadOrCreateKeyFile(path, &key, &created, &error));
  EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
}

TEST_F(KeyFile, AWgGenkeyFileIsTakenAndGarbageIsNot) {
  const std::string path = dir_ + "/device.key";
  {
    std::ofstream out(path);
    out << "d0lMb0lmKNAZ4QVtQr2yWO0yu5SqlkFXZz6xqCo7Nl4=\n";  // A key as `wg genkey` prints one.
  }
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  KeyPair key;
  bool created = true;
  std::string error;
  ASSERT_TRUE(LoadOrCreateKeyFile(path, &key, &created, &error)) << error;
  EXPECT_FALSE(created);
  KeyPair same;
  ASSERT_TRUE(KeyPair::FromPrivate(*DecodeKey("d0lMb0lmKNAZ4QVtQr2yWO0yu5SqlkFXZz6xqCo7Nl4="), &same));
  EXPECT_EQ(key.public_key(), same.public_key());
  {
    std::ofstream out(path);
    out << "not a key\n";
  }
  EXPECT_FALSE(LoadOrCreateKeyFile(path, &key, &created, &error));
  EXPECT_NE(error.find("does not hold a device key"), std::string::npos) << error;
}

TEST(Hkdf, Rfc5869TestCase1) {
  const std::vector<uint8_t> ikm(22, 0x0b);
  std::vector<uint8_t> okm(42);
  ASSERT_TRUE(HkdfSha256(ikm, Hex("000102030405060708090a0b0c"), Hex("f0f1f2f3f4f5f6f7f8f9"), okm));
  EXPECT_EQ(ToHex(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// The vector: four private keys; each agreement and the HKDF computed with
// `openssl pkeyutl -derive` and `openssl kdf ... HKDF` (A's static public key
// sorts first, so A is "lo").
constexpr std::string_view kAStatic = "a001010101010101010101010101010101010101010101010101010101010101";
constexpr std::string_view kASession = "b002020202020202020202020202020202020202020202020202020202020202";
constexpr std::string_view kBStatic = "c003030303030303030303030303030303030303030303030303030303030303";
constexpr std::string_view kBSession = "d004040404040404040404040404040404040404040404040404040404040404";
constexpr std::string_view kLoToHi = "742014fd191e0a2b6b944ce81b9feeaed276a8f18089d3c52788053f3d0b73b5";
constexpr std::string_view kHiToLo = "155d58f63842d1aea1dcd3e91eab609c9059ad85e6ea756095b3e477019a84ee";
// The AES-256-GCM keys: the next 64 bytes of the same HKDF output (computed
// apart with Python's cryptography package, whose first 64 bytes are the two above).
constexpr std::string_view kAesLoToHi = "8f51910a2e5e4587fcd41868d50e504b527b2f3ddef07ad6d71ee5fc7bb00573";
constexpr std::string_view kAesHiToLo = "3307c58378a0adc55b7f3bfcb4ef9e98d76a490aa86db0c1bfad06cd4c148c6d";

TEST(PairKeys, KnownAnswerFromBothSides) {
  const KeyPair a = Pair(kAStatic), ae = Pair(kASession), b = Pair(kBStatic), be = Pair(kBSession);
  EXPECT_EQ(ToHex(a.public_key()), "b770b0ecef13808a4546aa51653856b4c56d2b090490512cec5c27a3f3091e10");
  PairKeys at_a, at_b;
  ASSERT_TRUE(DerivePairKeys(a, ae, b.public_key(), be.public_key(), &at_a));
  ASSERT_TRUE(DerivePairKeys(b, be, a.public_key(), ae.public_key(), &at_b));
  EXPECT_EQ(ToHex(at_a.send), kLoToHi);
  EXPECT_EQ(ToHex(at_a.receive), kHiToLo);
  EXPECT_EQ(at_b.send, at_a.receive);
  EXPECT_EQ(at_b.receive, at_a.send);
  EXPECT_EQ(ToHex(at_a.aes_send), kAesLoToHi);
  EXPECT_EQ(ToHex(at_a.aes_receive), kAesHiToLo);
  EXPECT_EQ(at_b.aes_send, at_a.aes_receive);
  EXPECT_EQ(at_b.aes_receive, at_a.aes_send);
}

TEST(PairKeys, ANewSessionKeyGivesNewKeys) {
  const KeyPair a = Pair(kAStatic), ae = Pair(kASession), b = Pair(kBStatic), be = Pair(kBSession);
  KeyPair ae2;
  ASSERT_TRUE(KeyPair::Generate(&ae2));
  PairKeys before, after;
  ASSERT_TRUE(DerivePairKeys(a, ae, b.public_key(), be.public_key(), &before));
  ASSERT_TRUE(DerivePairKeys(a, ae2, b.public_key(), be.public_key(), &after));
  EXPECT_NE(before.send, after.send);
  EXPECT_NE(before.receive, after.receive);
}

TEST(PairKeys, AnotherStaticKeyGivesOtherKeys) {
  // The relay hands B a different "A": whoever holds that key, B's keys with
  // it are not A's (the relay cannot sit in the middle without A's private key).
  const KeyPair a = Pair(kAStatic), ae = Pair(kASession), b = Pair(kBStatic), be = Pair(kBSession);
  KeyPair mallory;
  ASSERT_TRUE(KeyPair::Generate(&mallory));
  PairKeys real, fake;
  ASSERT_TRUE(DerivePairKeys(b, be, a.public_key(), ae.public_key(), &real));
  ASSERT_TRUE(DerivePairKeys(b, be, mallory.public_key(), ae.public_key(), &fake));
  EXPECT_NE(real.receive, fake.receive);
}

TEST(PairKeys, ItselfAndLowOrderKeysAreRefused) {
  const KeyPair a = Pair(kAStatic), ae = Pair(kASession);
  PairKeys keys;
  EXPECT_FALSE(DerivePairKeys(a, ae, a.public_key(), ae.public_key(), &keys));
  EXPECT_FALSE(DerivePairKeys(a, ae, PublicKey{}, ae.public_key(), &keys));
  // A copy of its own static key with another session key still works (a
  // cloned disk image): the session keys decide who is "lo".
  const KeyPair other_session = Pair(kBSession);
  PairKeys one, two;
  ASSERT_TRUE(DerivePairKeys(a, ae, a.public_key(), other_session.public_key(), &one));
  ASSERT_TRUE(DerivePairKeys(a, other_session, a.public_key(), ae.public_key(), &two));
  EXPECT_EQ(one.send, two.receive);
}

TEST(Aead, Rfc8439Section282) {
  const std::vector<uint8_t> key = Hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  // Nonce 07000000 4041424344454647: prefix bytes 07 00 00 00, counter little-endian.
  const uint32_t prefix = 7;  // Little-endian host: its bytes are 07 00 00 00.
  Aead aead(std::span<const uint8_t, 32>(key.data(), 32), prefix);
  ASSERT_TRUE(aead.ok());
  const std::string text =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
      "sunscreen would be it.";
  std::vector<uint8_t> data(text.begin(), text.end());
  const std::vector<uint8_t> aad = Hex("50515253c0c1c2c3c4c5c6c7");
  std::array<uint8_t, kTagSize> tag;
  ASSERT_TRUE(aead.Seal(0x4746454443424140, aad, data, tag));
  EXPECT_EQ(ToHex(data),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
            "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
            "3ff4def08e4b7a9de576d26586cec64b6116");
  EXPECT_EQ(ToHex(tag), "1ae10b594f09e26a7e902ecbd0600691");
  ASSERT_TRUE(aead.Open(0x4746454443424140, aad, data, tag));
  EXPECT_EQ(std::string(data.begin(), data.end()), text);
}

// The GCM specification's test case 16 (AES-256, 96-bit IV, AAD), through our
// nonce layout: prefix bytes ca fe ba be, the counter's bytes fa ce db ad de
// ca f8 88 little-endian. Checked apart with Python's cryptography package.
TEST(Aead, Aes256GcmTestCase16) {
  const std::vector<uint8_t> key = Hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
  uint32_t prefix;
  const uint8_t prefix_bytes[] = {0xca, 0xfe, 0xba, 0xbe};
  std::memcpy(&prefix, prefix_bytes, 4);
  Aead aead(std::span<const uint8_t, 32>(key.data(), 32), prefix, Aead::Use::kBoth, Cipher::kAes256Gcm);
  ASSERT_TRUE(aead.ok());
  std::vector<uint8_t> data = Hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de6"
      "57ba637b39");
  const std::vector<uint8_t> aad = Hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
  std::array<uint8_t, kTagSize> tag;
  ASSERT_TRUE(aead.Seal(0x88f8cadeaddbcefa, aad, data, tag));
  EXPECT_EQ(ToHex(data),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e63"
            "93ba7a0abcc9f662");
  EXPECT_EQ(ToHex(tag), "76fc6ece0f4e1768cddf8853bb2d551b");
  ASSERT_TRUE(aead.Open(0x88f8cadeaddbcefa, aad, data, tag));
  // One cipher's seal does not open under the other's.
  Aead chacha(std::span<const uint8_t, 32>(key.data(), 32), prefix);
  ASSERT_TRUE(aead.Seal(1, aad, data, tag));
  EXPECT_FALSE(chacha.Open(1, aad, data, tag));
}

TEST(Aead, AnyChangeFailsToOpen) {
  const std::vector<uint8_t> key(32, 0x42);
  Aead sealer(std::span<const uint8_t, 32>(key.data(), 32));
  Aead opener(std::span<const uint8_t, 32>(key.data(), 32));
  const std::vector<uint8_t> plain(1400, 0x5a);
  const std::vector<uint8_t> aad = {1, 2, 3, 4};
  std::vector<uint8_t> sealed = plain;
  std::array<uint8_t, kTagSize> tag;
  ASSERT_TRUE(sealer.Seal(9, aad, sealed, tag));
  EXPECT_NE(sealed, plain);
  {
    std::vector<uint8_t> copy = sealed;
    ASSERT_TRUE(opener.Open(9, aad, copy, tag));
    EXPECT_EQ(copy, plain);
  }
  {
    std::vector<uint8_t> copy = sealed;
    copy[700] ^= 1;
    EXPECT_FALSE(opener.Open(9, aad, copy, tag));
  }
  {
    std::vector<uint8_t> copy = sealed;
    EXPECT_FALSE(opener.Open(10, aad, copy, tag));  // Another counter.
  }
  {
    std::vector<uint8_t> copy = sealed;
    const std::vector<uint8_t> other_aad = {1, 2, 3, 5};
    EXPECT_FALSE(opener.Open(9, other_aad, copy, tag));
  }
  {
    std::vector<uint8_t> copy = sealed;
    std::array<uint8_t, kTagSize> bad = tag;
    bad[15] ^= 0x80;
    EXPECT_FALSE(opener.Open(9, aad, copy, bad));
  }
  {
    const std::vector<uint8_t> other_key(32, 0x43);
    Aead wrong(std::span<const uint8_t, 32>(other_key.data(), 32));
    std::vector<uint8_t> copy = sealed;
    EXPECT_FALSE(wrong.Open(9, aad, copy, tag));
  }
  {
    // Sealed from one buffer into another: the same bytes as in place.
    Aead apart(std::span<const uint8_t, 32>(key.data(), 32), 0, Aead::Use::kSeal);
    std::vector<uint8_t> out(plain.size());
    std::array<uint8_t, kTagSize> apart_tag;
    ASSERT_TRUE(apart.Seal(9, aad, plain, out, apart_tag));
    EXPECT_EQ(out, sealed);
    EXPECT_EQ(apart_tag, tag);
    EXPECT_FALSE(apart.Open(9, aad, out, apart_tag)) << "a sealer does not open";
  }
  // And the opener is still good after all those failures.
  std::vector<uint8_t> copy = sealed;
  EXPECT_TRUE(opener.Open(9, aad, copy, tag));
}

TEST(ReplayWindow, InOrderOutOfOrderAndTwice) {
  ReplayWindow w;
  EXPECT_TRUE(w.Accept(0));
  EXPECT_FALSE(w.Check(0));
  EXPECT_FALSE(w.Accept(0));
  EXPECT_TRUE(w.Accept(5));
  EXPECT_TRUE(w.Accept(3));  // Late but new.
  EXPECT_FALSE(w.Accept(3));
  EXPECT_TRUE(w.Accept(1));
  EXPECT_TRUE(w.Accept(2));
  EXPECT_TRUE(w.Accept(4));
  EXPECT_FALSE(w.Check(5));
  EXPECT_TRUE(w.Check(6));
  EXPECT_EQ(w.highest(), 6u);
}

TEST(ReplayWindow, TooOldIsRefusedAndTheEdgeIsTaken) {
  ReplayWindow w;
  ASSERT_TRUE(w.Accept(10000));
  const uint64_t edge = 10001 - ReplayWindow::kWindow;  // highest_ - counter == kWindow.
  EXPECT_TRUE(w.Check(edge));
  EXPECT_FALSE(w.Check(edge - 1));
  EXPECT_TRUE(w.Accept(edge));
  EXPECT_FALSE(w.Accept(edge));
}

TEST(ReplayWindow, AJumpForgetsWhatItPassedButNotWhatItKeeps) {
  ReplayWindow w;
  for (uint64_t c = 0; c < 200; ++c) ASSERT_TRUE(w.Accept(c));
  ASSERT_TRUE(w.Accept(300));
  for (uint64_t c = 0; c < 200; ++c) EXPECT_FALSE(w.Check(c)) << c;  // Still in the window.
  for (uint64_t c = 200; c < 300; ++c) EXPECT_TRUE(w.Check(c)) << c;
  // A jump past the whole window: the old bits must not read as taken for
  // the counters that now map onto them.
  ASSERT_TRUE(w.Accept(300 + 8192));
  EXPECT_TRUE(w.Check(300 + 8192 - 1));
  EXPECT_TRUE(w.Check(300 + 8192 - 64));
  EXPECT_FALSE(w.Check(300 + 8192));
  ASSERT_TRUE(w.Accept(300 + 8192 + 64 * 3 + 5));  // Three words on: those words start clear.
  EXPECT_TRUE(w.Check(300 + 8192 + 64 * 2));
  EXPECT_FALSE(w.Check(300 + 8192));
}

TEST(ReplayWindow, TheLastCountersAreNeverTaken) {
  ReplayWindow w;
  EXPECT_FALSE(w.Accept(ReplayWindow::kLimit));
  EXPECT_FALSE(w.Accept(~uint64_t{0}));
  EXPECT_TRUE(w.Accept(ReplayWindow::kLimit - 1));
}

}  // namespace
}  // namespace mnedc::seal
