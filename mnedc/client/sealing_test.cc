// Two devices' Sealing engines, face to face: what one seals the other opens;
// a changed byte, a replay, a packet for another device, from an unknown
// peer, or carrying another source inside is dropped and counted.
#include "mnedc/client/sealing.h"

#include <gtest/gtest.h>

#include "mnedc/packet/test_packets.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/seal/pair_keys.h"
#include "testing/ip_packets.h"

namespace mnedc::client {
namespace {

constexpr uint32_t kA = 0x0a000002, kB = 0x0a000003, kC = 0x0a000004, kNetwork = 0x0a000000;

base::Ipv6Address Address6(uint8_t host) {
  base::Ipv6Address a{0xfd, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, host};
  return a;
}

struct Device {
  explicit Device(std::string id, uint32_t address) : id(std::move(id)), address(address) {
    EXPECT_TRUE(seal::KeyPair::Generate(&device_key));
    EXPECT_TRUE(seal::KeyPair::Generate(&session_key));
    sealing = std::make_unique<Sealing>(device_key, session_key);
    sealing->SetLease(address, kNetwork, Address6(static_cast<uint8_t>(address & 0xff)));
  }
  discovery::Peer AsPeer() const {
    discovery::Peer peer{id, address, "", Address6(static_cast<uint8_t>(address & 0xff)), discovery::Peer::Keys{}};
    peer.keys->public_key = device_key.public_key();
    peer.keys->session_key = session_key.public_key();
    return peer;
  }
  std::string id;
  uint32_t address;
  seal::KeyPair device_key, session_key;
  std::unique_ptr<Sealing> sealing;
};

std::vector<uint8_t> SealFor(Device& from, const Device& to, std::span<const uint8_t> packet, packet::Gso gso = {}) {
  EXPECT_EQ(from.sealing->SealingPeerFor(packet), to.address);
  std::vector<uint8_t> frame(Sealing::SealedSize(packet.size()));
  EXPECT_TRUE(from.sealing->Seal(to.address, packet, gso, frame));
  return frame;
}

class SealingTest : public ::testing::Test {
 protected:
  SealingTest() {
    a.sealing->PeerUp(b.AsPeer());
    b.sealing->PeerUp(a.AsPeer());
  }
  Sealing::Verdict OpenAtB(std::vector<uint8_t> frame, std::vector<uint8_t>* packet = nullptr,
                           packet::Gso* gso_out = nullptr) {
    std::span<const uint8_t> opened;
    packet::Gso gso;
    const Sealing::Verdict verdict = b.sealing->Open(frame, &opened, &gso);
    if (packet) packet->assign(opened.begin(), opened.end());
    if (gso_out) *gso_out = gso;
    return verdict;
  }
  Device a{"a", kA}, b{"b", kB};
};

TEST_F(SealingTest, WhatOneSealsTheOtherOpensAndNobodyElseReads) {
  const std::vector<uint8_t> packet = testing::MakeIpv4Packet(kA, kB, 1400, 1);
  const std::vector<uint8_t> frame = SealFor(a, b, packet);
  ASSERT_EQ(frame.size(), packet.size() + 36);
  protocol::SealedHeader header;
  ASSERT_TRUE(protocol::ReadSealedHeader(frame, &header));
  EXPECT_EQ(header.destination, kB);
  EXPECT_EQ(header.source, kA);
  // The packet is not in the frame in the clear (its payload bytes nowhere).
  const std::vector<uint8_t> marker(packet.begin() + 24, packet.begin() + 56);
  EXPECT_EQ(std::search(frame.begin(), frame.end(), marker.begin(), marker.end()), frame.end());
  std::vector<uint8_t> opened;
  ASSERT_EQ(OpenAtB(frame, &opened), Sealing::Verdict::kOpened);
  EXPECT_EQ(opened, packet);
  EXPECT_EQ(b.sealing->counters().opened, 1u);
  EXPECT_TRUE(a.sealing->Seals(b.AsPeer()));

  // The other way, and IPv6 between the same two.
  const std::vector<uint8_t> back = testing::MakeIpv6Packet(Address6(3), Address6(2), 600, 2);
  std::vector<uint8_t> frame6(Sealing::SealedSize(back.size()));
  ASSERT_EQ(b.sealing->SealingPeerFor(back), kA);
  ASSERT_TRUE(b.sealing->Seal(kA, back, {}, frame6));
  std::span<const uint8_t> at_a;
  packet::Gso gso;
  ASSERT_EQ(a.sealing->Open(frame6, &at_a, &gso), Sealing::Verdict::kOpened);
  EXPECT_EQ(std::vector<uint8_t>(at_a.begin(), at_a.end()), back);
}

TEST_F(SealingTest, ASuperPacketIsSealedWholeAndCheckedWhenOpened) {
  packet::testing::Flow flow;
  flow.source4 = kA;
  flow.destination4 = kB;
  const std::vector<uint8_t> super_packet = packet::testing::MakePacket(flow, 20000);
  const packet::Gso gso{packet::GsoKind::kTcp, 1400};
  std::vector<uint8_t> opened;
  packet::Gso opened_gso;
  ASSERT_EQ(OpenAtB(SealFor(a, b, super_packet, gso), &opened, &opened_gso), Sealing::Verdict::kOpened);
  EXPECT_EQ(opened, super_packet);
  EXPECT_EQ(opened_gso, gso);
  // A segment size of 0, sealed by a real peer: opened, then refused.
  EXPECT_EQ(OpenAtB(SealFor(a, b, super_packet, {packet::GsoKind::kTcp, 0})), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().malformed_inner, 1u);
}

TEST_F(SealingTest, AChangedByteIsDroppedAsABadTag) {
  const std::vector<uint8_t> packet = testing::MakeIpv4Packet(kA, kB, 200, 1);
  for (const std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{9}, std::size_t{19},
                               std::size_t{20}, std::size_t{150}, std::size_t{219}, std::size_t{235}}) {
    std::vector<uint8_t> frame = SealFor(a, b, packet);
    frame[at] ^= 0x01;
    EXPECT_EQ(OpenAtB(frame), Sealing::Verdict::kDropped) << "byte " << at;
  }
  // Bytes 5 and 9 changed the destination and source: not this device, no such peer.
  EXPECT_EQ(b.sealing->counters().not_for_me, 1u);
  EXPECT_EQ(b.sealing->counters().unknown_peer, 1u);
  EXPECT_EQ(b.sealing->counters().bad_tag, 6u);
  EXPECT_EQ(b.sealing->counters().opened, 0u);
  // An untouched one still opens: nothing above moved the window.
  EXPECT_EQ(OpenAtB(SealFor(a, b, packet)), Sealing::Verdict::kOpened);
}

TEST_F(SealingTest, EachCounterOpensOnceInAnyOrder) {
  const std::vector<uint8_t> packet = testing::MakeIpv4Packet(kA, kB, 100, 1);
  const std::vector<uint8_t> first = SealFor(a, b, packet), second = SealFor(a, b, packet);
  EXPECT_EQ(OpenAtB(second), Sealing::Verdict::kOpened);
  EXPECT_EQ(OpenAtB(first), Sealing::Verdict::kOpened);  // Late, not seen: taken.
  EXPECT_EQ(OpenAtB(first), Sealing::Verdict::kDropped);
  EXPECT_EQ(OpenAtB(second), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().replayed, 2u);

  // a goes and comes back with the same keys (the relay re-announced it):
  // what was taken before is still refused.
  b.sealing->PeerDown(a.AsPeer());
  EXPECT_EQ(OpenAtB(first), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().unknown_peer, 1u);
  b.sealing->PeerUp(a.AsPeer());
  EXPECT_EQ(OpenAtB(first), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().replayed, 3u);
}

TEST_F(SealingTest, APacketFromAnotherSourceInsideIsDropped) {
  // a seals, with its own key, a packet claiming c's address.
  const std::vector<uint8_t> spoofed = testing::MakeIpv4Packet(kC, kB, 100, 1);
  std::vector<uint8_t> frame(Sealing::SealedSize(spoofed.size()));
  ASSERT_TRUE(a.sealing->Seal(kB, spoofed, {}, frame));
  EXPECT_EQ(OpenAtB(frame), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().spoofed_inner, 1u);
}

TEST_F(SealingTest, OnlyUnicastToAPeerWithKeysIsSealed) {
  Device c("c", kC);
  discovery::Peer old = c.AsPeer();
  old.keys.reset();  // An older version.
  a.sealing->PeerUp(old);
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv4Packet(kA, kC, 100, 1)), 0u);
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv4Packet(kA, 0x0a0000ff, 100, 1)), 0u);  // Broadcast.
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv4Packet(kA, 0xe00000fb, 100, 1)), 0u);  // Multicast.
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv4Packet(kA, 0x0a000001, 100, 1)), 0u);  // The relay.
  base::Ipv6Address multicast{0xff, 0x02};
  multicast[15] = 0xfb;
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv6Packet(Address6(2), multicast, 100, 1)), 0u);
  EXPECT_FALSE(a.sealing->Seals(old));
  // Its keys come (it upgraded): sealed from now on.
  a.sealing->PeerDown(old);
  a.sealing->PeerUp(c.AsPeer());
  EXPECT_EQ(a.sealing->SealingPeerFor(testing::MakeIpv4Packet(kA, kC, 100, 1)), kC);
}

TEST_F(SealingTest, ANewSessionOfThePeerNeedsItsNewKeys) {
  const std::vector<uint8_t> packet = testing::MakeIpv4Packet(kA, kB, 100, 1);
  // a restarts: same device key, a new session key. Until b hears of it,
  // what a seals does not open at b.
  Device a2("a", kA);
  a2.device_key = a.device_key;
  a2.sealing = std::make_unique<Sealing>(a2.device_key, a2.session_key);
  a2.sealing->SetLease(kA, kNetwork, Address6(2));
  a2.sealing->PeerUp(b.AsPeer());
  EXPECT_EQ(OpenAtB(SealFor(a2, b, packet)), Sealing::Verdict::kDropped);
  EXPECT_EQ(b.sealing->counters().bad_tag, 1u);
  b.sealing->PeerDown(a.AsPeer());
  b.sealing->PeerUp(a2.AsPeer());
  EXPECT_EQ(OpenAtB(SealFor(a2, b, packet)), Sealing::Verdict::kOpened);
}

}  // namespace
}  // namespace mnedc::client

namespace mnedc::client {
namespace {

TEST_F(SealingTest, AMessageAboutPathsOpensAsDiscoWithItsSender) {
  // A ping's body: first byte 0x01, where a packet's first nibble is 4 or 6.
  std::vector<uint8_t> ping(48, 0);
  ping[0] = 0x01;
  ping[1] = 0xAB;
  std::vector<uint8_t> frame(Sealing::SealedSize(ping.size()));
  ASSERT_TRUE(a.sealing->Prepare(kB));
  ASSERT_TRUE(a.sealing->Seal(kB, ping, {}, frame));
  std::span<const uint8_t> opened;
  packet::Gso gso;
  uint32_t source = 0;
  ASSERT_EQ(b.sealing->Open(frame, &opened, &gso, &source), Sealing::Verdict::kDisco);
  EXPECT_EQ(source, kA);
  EXPECT_EQ(std::vector<uint8_t>(opened.begin(), opened.end()), ping);
  EXPECT_EQ(b.sealing->counters().disco, 1u);
  EXPECT_EQ(b.sealing->counters().opened, 0u);
  // Replayed, it is refused like any packet.
  std::vector<uint8_t> again(frame.size());
  ASSERT_TRUE(a.sealing->Seal(kB, ping, {}, again));
  std::vector<uint8_t> replay = again;
  EXPECT_EQ(b.sealing->Open(again, &opened, &gso, &source), Sealing::Verdict::kDisco);
  EXPECT_EQ(b.sealing->Open(replay, &opened, &gso, &source), Sealing::Verdict::kDropped);
}

}  // namespace
}  // namespace mnedc::client

namespace mnedc::client {
namespace {

// Opens a SEALED payload the way a bare AEAD with that key and cipher would
// (as a device of the first sealing version, ChaCha20-Poly1305 only, does).
bool OpensWith(std::vector<uint8_t> frame, const seal::AeadKey& key, seal::Cipher cipher) {
  protocol::SealedHeader header;
  if (!protocol::ReadSealedHeader(frame, &header)) return false;
  seal::Aead aead(key, 0, seal::Aead::Use::kOpen, cipher);
  const auto aad = std::span<const uint8_t>(frame).first(protocol::kSealedHeaderSize);
  const auto body = std::span<uint8_t>(frame).subspan(
      protocol::kSealedHeaderSize, frame.size() - protocol::kSealedHeaderSize - protocol::kSealedTagSize);
  const auto tag = std::span<const uint8_t, seal::kTagSize>(frame.data() + frame.size() - seal::kTagSize, seal::kTagSize);
  return aead.Open(header.counter, aad, body, tag);
}

TEST(SealingCiphers, EachDirectionUsesWhatItsSenderPrefersAndItsReceiverOpens) {
  Device a("a", kA), b("b", kB);
  a.sealing = std::make_unique<Sealing>(a.device_key, a.session_key, seal::Cipher::kAes256Gcm);
  a.sealing->SetLease(kA, kNetwork, std::nullopt);
  b.sealing = std::make_unique<Sealing>(b.device_key, b.session_key, seal::Cipher::kChaCha20Poly1305);
  b.sealing->SetLease(kB, kNetwork, std::nullopt);
  discovery::Peer a_peer = a.AsPeer(), b_peer = b.AsPeer();
  a_peer.keys->ciphers = a.sealing->ciphers();
  b_peer.keys->ciphers = b.sealing->ciphers();
  a.sealing->PeerUp(b_peer);
  b.sealing->PeerUp(a_peer);
  EXPECT_EQ(a.sealing->CipherTo(b_peer), seal::Cipher::kAes256Gcm);
  EXPECT_EQ(b.sealing->CipherTo(a_peer), seal::Cipher::kChaCha20Poly1305);
  seal::PairKeys at_b;
  ASSERT_TRUE(seal::DerivePairKeys(b.device_key, b.session_key, a.device_key.public_key(),
                                   a.session_key.public_key(), &at_b));
  const auto packet = testing::MakeIpv4Packet(kA, kB, 300, 1);
  std::vector<uint8_t> frame(Sealing::SealedSize(packet.size()));
  ASSERT_TRUE(a.sealing->Seal(kB, packet, {}, frame));
  EXPECT_TRUE(OpensWith(frame, at_b.aes_receive, seal::Cipher::kAes256Gcm));  // AES on the wire...
  EXPECT_FALSE(OpensWith(frame, at_b.receive, seal::Cipher::kChaCha20Poly1305));
  std::span<const uint8_t> opened;
  packet::Gso gso;
  ASSERT_EQ(b.sealing->Open(frame, &opened, &gso), Sealing::Verdict::kOpened);  // ... and B opens it.
  EXPECT_TRUE(std::equal(opened.begin(), opened.end(), packet.begin(), packet.end()));
  const auto back = testing::MakeIpv4Packet(kB, kA, 300, 2);
  std::vector<uint8_t> reply(Sealing::SealedSize(back.size()));
  ASSERT_TRUE(b.sealing->Seal(kA, back, {}, reply));
  ASSERT_EQ(a.sealing->Open(reply, &opened, &gso), Sealing::Verdict::kOpened);
}

TEST(SealingCiphers, APeerThatAnnouncesNoCiphersGetsChaCha20Poly1305) {
  // A device of the first sealing version says nothing of ciphers, and opens
  // only ChaCha20-Poly1305 with the first 64 bytes of the pair keys.
  Device a("a", kA), old("old", kB);
  a.sealing = std::make_unique<Sealing>(a.device_key, a.session_key, seal::Cipher::kAes256Gcm);
  a.sealing->SetLease(kA, kNetwork, std::nullopt);
  const discovery::Peer old_peer = old.AsPeer();  // ciphers 0.
  a.sealing->PeerUp(old_peer);
  EXPECT_EQ(a.sealing->CipherTo(old_peer), seal::Cipher::kChaCha20Poly1305);
  seal::PairKeys at_old;
  ASSERT_TRUE(seal::DerivePairKeys(old.device_key, old.session_key, a.device_key.public_key(),
                                   a.session_key.public_key(), &at_old));
  const auto packet = testing::MakeIpv4Packet(kA, kB, 300, 1);
  std::vector<uint8_t> frame(Sealing::SealedSize(packet.size()));
  ASSERT_TRUE(a.sealing->Seal(kB, packet, {}, frame));
  EXPECT_TRUE(OpensWith(frame, at_old.receive, seal::Cipher::kChaCha20Poly1305));
}

}  // namespace
}  // namespace mnedc::client
