// What a relay (or anyone on the path) can hand a device as a SEALED frame.
// The first byte picks the mode:
//   even: the rest is a SEALED payload as it came off the wire, opened by a
//         device that knows one peer (header, peer, window and tag checks);
//   odd:  the rest is a packet (and a gso header) that the known peer really
//         sealed: past the tag, the inner checks (addresses, super-packet
//         layout) meet hostile content.
// Each opens without a crash, a hang or a leak, and nothing but a packet from
// the peer's address is handed on; a message about paths (first nibble 0)
// from the peer is parsed as the direct path would.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "mnedc/client/disco.h"
#include "mnedc/client/sealing.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/relay/ip_packet.h"

namespace {
constexpr uint32_t kPeer = 0x0a000002, kMe = 0x0a000003, kNetwork = 0x0a000000;

struct World {
  mnedc::seal::KeyPair peer_key, peer_session, my_key, my_session;
  std::unique_ptr<mnedc::client::Sealing> peer, me;
  World() {
    // Fixed keys: the same run for the same input.
    std::vector<uint8_t> k(32);
    for (int i = 0; i < 4; ++i) {
      std::memset(k.data(), 0x11 * (i + 1), k.size());
      mnedc::seal::KeyPair* pair[] = {&peer_key, &peer_session, &my_key, &my_session};
      mnedc::seal::KeyPair::FromPrivate(k, pair[i]);
    }
    peer = std::make_unique<mnedc::client::Sealing>(peer_key, peer_session);
    me = std::make_unique<mnedc::client::Sealing>(my_key, my_session);
    peer->SetLease(kPeer, kNetwork, std::nullopt);
    me->SetLease(kMe, kNetwork, std::nullopt);
    me->PeerUp(AsPeer("peer", kPeer, peer_key, peer_session));
    peer->PeerUp(AsPeer("me", kMe, my_key, my_session));
  }
  static mnedc::discovery::Peer AsPeer(const char* id, uint32_t address, const mnedc::seal::KeyPair& key,
                                       const mnedc::seal::KeyPair& session) {
    mnedc::discovery::Peer peer{id, address, "", std::nullopt, mnedc::discovery::Peer::Keys{}};
    peer.keys->public_key = key.public_key();
    peer.keys->session_key = session.public_key();
    return peer;
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World world;
  if (size < 1) return 0;
  const bool seal_first = data[0] & 1;
  std::vector<uint8_t> frame;
  if (!seal_first) {
    if (size - 1 > mnedc::protocol::kMaxSealedFramePayload) return 0;
    frame.assign(data + 1, data + size);
  } else {
    if (size < 5 || size - 5 > mnedc::packet::kMaxSuperPacket) return 0;
    mnedc::packet::Gso gso;
    gso.kind = static_cast<mnedc::packet::GsoKind>(data[1]);
    gso.segment_size = static_cast<uint16_t>((data[2] << 8) | data[3]);
    const std::span<const uint8_t> packet(data + 5, size - 5);
    frame.resize(mnedc::client::Sealing::SealedSize(packet.size()));
    if (!world.peer->Seal(kMe, packet, gso, frame)) __builtin_trap();  // The peer's keys are good.
  }
  if (frame.size() < mnedc::protocol::kSealedHeaderSize + mnedc::protocol::kSealedTagSize) return 0;
  std::span<const uint8_t> opened;
  mnedc::packet::Gso gso;
  uint32_t source = 0;
  const auto verdict = world.me->Open(frame, &opened, &gso, &source);
  if (verdict == mnedc::client::Sealing::Verdict::kDisco) {
    // A message about paths from the peer: parsed as hostile too.
    if (source != kPeer || !mnedc::client::IsDisco(opened)) __builtin_trap();
    mnedc::client::DiscoMessage message;
    if (mnedc::client::ParseDisco(opened, &message) && message.type == mnedc::client::DiscoType::kCallMeMaybe &&
        message.candidate_count > mnedc::client::kMaxCandidates) {
      __builtin_trap();
    }
  }
  if (verdict == mnedc::client::Sealing::Verdict::kOpened) {
    // Handed on only from the peer's address, and inside the frame.
    const auto inner = mnedc::relay::ParsePacketAddresses(opened);
    if (inner.version != mnedc::relay::PacketAddresses::Version::kIpv4 || inner.source != kPeer) __builtin_trap();
    if (opened.data() < frame.data() || opened.data() + opened.size() > frame.data() + frame.size()) __builtin_trap();
  }
  return 0;
}
