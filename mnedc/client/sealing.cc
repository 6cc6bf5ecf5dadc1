#include "mnedc/client/sealing.h"

#include <glog/logging.h>

#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/relay/ip_packet.h"
#include "mnedc/seal/pair_keys.h"

namespace mnedc::client {

namespace {
// Each direction's AEAD, from both sides' announcements (see CipherBits in
// control.proto).
bool AesFrom(uint32_t sender_ciphers, uint32_t receiver_ciphers) {
  return (sender_ciphers & protocol::SEALS_AES_256_GCM) && (receiver_ciphers & protocol::OPENS_AES_256_GCM);
}
seal::Cipher CipherIf(bool aes) { return aes ? seal::Cipher::kAes256Gcm : seal::Cipher::kChaCha20Poly1305; }
}  // namespace

struct Sealing::Crypto {
  Crypto(const seal::PairKeys& keys, bool aes_out, bool aes_in)
      : seal(aes_out ? keys.aes_send : keys.send, 0, seal::Aead::Use::kSeal, CipherIf(aes_out)),
        open(aes_in ? keys.aes_receive : keys.receive, 0, seal::Aead::Use::kOpen, CipherIf(aes_in)) {}
  seal::PublicKey session_key{};  // The peer's, that these keys are made with.
  seal::PublicKey public_key{};
  seal::Aead seal;
  seal::Aead open;
  seal::ReplayWindow window;
};

Sealing::Sealing(const seal::KeyPair& device_key, const seal::KeyPair& session_key, seal::Cipher seals_with)
    : device_key_(device_key), session_key_(session_key), seals_with_(seals_with) {}

uint32_t Sealing::ciphers() const {
  return protocol::OPENS_AES_256_GCM | (seals_with_ == seal::Cipher::kAes256Gcm ? protocol::SEALS_AES_256_GCM : 0);
}

Sealing::~Sealing() = default;

std::size_t Sealing::SealedSize(std::size_t packet_size) {
  return protocol::kSealedHeaderSize + packet_size + protocol::kSealedTagSize;
}

void Sealing::PeerUp(const discovery::Peer& peer) {
  if (!peer.keys) return;  // An older version: not sealed to.
  Peer& entry = by_address_[peer.address];
  entry = Peer{peer.device_id, peer.address, peer.address6, *peer.keys, nullptr};
  // Back with the keys it had: its window too, so nothing is taken twice.
  if (auto retired = retired_.find(peer.keys->session_key);
      retired != retired_.end() && retired->second->public_key == peer.keys->public_key) {
    entry.crypto = std::move(retired->second);
    retired_.erase(retired);
  }
}

void Sealing::PeerDown(const discovery::Peer& peer) {
  const auto found = by_address_.find(peer.address);
  if (found == by_address_.end() || found->second.device_id != peer.device_id) return;
  if (found->second.crypto) {
    const seal::PublicKey session = found->second.crypto->session_key;
    if (!retired_.count(session)) retired_order_.push_back(session);
    retired_[session] = std::move(found->second.crypto);
    while (retired_order_.size() > kRetired) {
      retired_.erase(retired_order_.front());
      retired_order_.pop_front();
    }
  }
  by_address_.erase(found);
}

void Sealing::SetLease(uint32_t address, uint32_t network, std::optional<base::Ipv6Address> address6) {
  my_address_ = address;
  network_ = network;
  my_address6_ = address6;
}

Sealing::Crypto* Sealing::CryptoOf(Peer& peer) {
  if (peer.crypto) return peer.crypto.get();
  seal::PairKeys keys;
  if (!seal::DerivePairKeys(device_key_, session_key_, peer.keys.public_key, peer.keys.session_key, &keys)) {
    ++counters_.key_failures;
    LOG_EVERY_N(WARNING, 100) << "no pair keys with " << peer.device_id << " (its keys are unusable)";
    return nullptr;
  }
  peer.crypto = std::make_unique<Crypto>(keys, AesFrom(ciphers(), peer.keys.ciphers),
                                         AesFrom(peer.keys.ciphers, ciphers()));
  peer.crypto->session_key = peer.keys.session_key;
  peer.crypto->public_key = peer.keys.public_key;
  if (!peer.crypto->seal.ok() || !peer.crypto->open.ok()) {
    peer.crypto.reset();
    ++counters_.key_failures;
    return nullptr;
  }
  return peer.crypto.get();
}

uint32_t Sealing::SealingPeerFor(std::span<const uint8_t> packet) const {
  if (by_address_.empty() || my_address_ == 0) return 0;
  const relay::PacketAddresses addresses = relay::ParsePacketAddresses(packet);
  uint32_t destination = 0;
  if (addresses.version == relay::PacketAddresses::Version::kIpv4) {
    destination = addresses.destination;
  } else if (addresses.version == relay::PacketAddresses::Version::kIpv6 && my_address6_) {
    // In this device's /64: the interface ID is the peer's IPv4 host number.
    if (!std::equal(my_address6_->begin(), my_address6_->begin() + 8, addresses.destination6.begin())) return 0;
    uint32_t host = 0;
    for (int i = 8; i < 12; ++i) {
      if (addresses.destination6[i] != 0) return 0;
    }
    for (int i = 12; i < 16; ++i) host = (host << 8) | addresses.destination6[i];
    destination = network_ + host;
  }
  const auto found = by_address_.find(destination);
  if (found == by_address_.end()) return 0;
  // IPv6 to a peer the relay announced without one: as it is (the relay drops it).
  if (addresses.version == relay::PacketAddresses::Version::kIpv6 &&
      (!found->second.address6 || *found->second.address6 != addresses.destination6)) {
    return 0;
  }
  return destination;
}

bool Sealing::Prepare(uint32_t peer_address) {
  const auto found = by_address_.find(peer_address);
  return found != by_address_.end() && CryptoOf(found->second) != nullptr;
}

bool Sealing::Seal(uint32_t peer_address, std::span<const uint8_t> in, packet::Gso gso, std::span<uint8_t> out) {
  if (out.size() != SealedSize(in.size())) return false;
  return SealParts(peer_address, in, gso, out.first<protocol::kSealedHeaderSize>(),
                   out.subspan(protocol::kSealedHeaderSize, in.size()), out.last<protocol::kSealedTagSize>());
}

bool Sealing::SealInPlace(uint32_t peer_address, std::span<uint8_t> packet, packet::Gso gso,
                          std::span<uint8_t, 20> header, std::span<uint8_t, 16> tag) {
  return SealParts(peer_address, packet, gso, header, packet, tag);
}

bool Sealing::SealParts(uint32_t peer_address, std::span<const uint8_t> in, packet::Gso gso,
                        std::span<uint8_t, 20> header_out, std::span<uint8_t> body, std::span<uint8_t, 16> tag) {
  const auto found = by_address_.find(peer_address);
  if (found == by_address_.end() || body.size() != in.size()) return false;
  Crypto* crypto = CryptoOf(found->second);
  if (!crypto) return false;
  const protocol::SealedHeader header{gso, peer_address, my_address_, next_counter_++};
  protocol::WriteSealedHeader(header, header_out.data());
  if (!crypto->seal.Seal(header.counter, header_out, in, body, tag)) return false;
  ++counters_.sealed_out;
  return true;
}

Sealing::Verdict Sealing::Open(std::span<uint8_t> payload, std::span<const uint8_t>* packet, packet::Gso* gso,
                               uint32_t* source) {
  protocol::SealedHeader header;
  if (!protocol::ReadSealedHeader(payload, &header)) {
    ++counters_.malformed_inner;
    return Verdict::kDropped;
  }
  const auto found = by_address_.find(header.source);
  if (found == by_address_.end()) {
    ++counters_.unknown_peer;
    return Verdict::kDropped;
  }
  if (header.destination != my_address_) {
    ++counters_.not_for_me;
    return Verdict::kDropped;
  }
  Peer& peer = found->second;
  Crypto* crypto = CryptoOf(peer);
  if (!crypto) return Verdict::kDropped;
  if (!crypto->window.Check(header.counter)) {
    ++counters_.replayed;
    return Verdict::kDropped;
  }
  const auto aad = payload.first(protocol::kSealedHeaderSize);
  const std::size_t body_size = payload.size() - protocol::kSealedHeaderSize - protocol::kSealedTagSize;
  const auto body = payload.subspan(protocol::kSealedHeaderSize, body_size);
  const auto tag = std::span<const uint8_t, protocol::kSealedTagSize>(payload.last<protocol::kSealedTagSize>());
  if (!crypto->open.Open(header.counter, aad, body, tag)) {
    ++counters_.bad_tag;
    return Verdict::kDropped;
  }
  crypto->window.Accept(header.counter);
  if (!body.empty() && (body[0] >> 4) == 0 && header.gso.kind == packet::GsoKind::kNone &&
      header.gso.segment_size == 0) {
    ++counters_.disco;
    *packet = body;
    if (source) *source = header.source;
    return Verdict::kDisco;
  }
  const relay::PacketAddresses inner = relay::ParsePacketAddresses(body);
  const bool from_peer =
      (inner.version == relay::PacketAddresses::Version::kIpv4 && inner.source == peer.address) ||
      (inner.version == relay::PacketAddresses::Version::kIpv6 && peer.address6 && inner.source6 == *peer.address6);
  if (inner.version == relay::PacketAddresses::Version::kInvalid) {
    ++counters_.malformed_inner;
    return Verdict::kDropped;
  }
  if (!from_peer) {
    ++counters_.spoofed_inner;
    return Verdict::kDropped;
  }
  if (header.gso.super()) {
    packet::SuperPacketLayout layout;
    if (packet::ParseSuperPacket(body, header.gso, &layout) != packet::GsoVerdict::kOk) {
      ++counters_.malformed_inner;
      return Verdict::kDropped;
    }
  } else if (header.gso.kind != packet::GsoKind::kNone || header.gso.segment_size != 0) {
    ++counters_.malformed_inner;
    return Verdict::kDropped;
  }
  ++counters_.opened;
  *packet = body;
  *gso = header.gso;
  if (source) *source = header.source;
  return Verdict::kOpened;
}

seal::Cipher Sealing::CipherTo(const discovery::Peer& peer) const {
  return CipherIf(peer.keys && AesFrom(ciphers(), peer.keys->ciphers));
}

bool Sealing::Seals(const discovery::Peer& peer) const {
  const auto found = by_address_.find(peer.address);
  return found != by_address_.end() && found->second.device_id == peer.device_id;
}

}  // namespace mnedc::client
