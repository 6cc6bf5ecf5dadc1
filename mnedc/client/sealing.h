#pragma once
// End-to-end sealing on a device (mnedc/seal): for each peer that presented
// keys, the pair keys, the packet counter and the replay window; sealing a
// unicast packet to such a peer into a SEALED frame, and opening the SEALED
// frames that come.
//
// Keys are derived on a peer's first packet, not when it is announced (a
// fleet of thousands costs nothing until two of them talk). Every packet
// this device seals takes the next value of one counter, so no nonce repeats
// under any key while the session key lives (a restart makes a new one, and
// so new pair keys). A peer that goes and comes back with the same keys gets
// its old receive window back (up to kRetired of them are kept), so packets
// replayed across its absence are refused too.
//
// Opening checks, in order: a peer with keys owns the header's source; the
// header's destination is this device; the counter is new; the tag; then
// that the packet inside comes from that peer's address (IPv4 or IPv6), so
// sealing does not weaken anti-spoofing. Anything else is dropped and counted.
#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>

#include "mnedc/base/ipv6.h"
#include "mnedc/discovery/peer_table.h"
#include "mnedc/packet/gso.h"
#include "mnedc/seal/aead.h"
#include "mnedc/seal/keys.h"
#include "mnedc/seal/replay_window.h"

namespace mnedc::client {

struct SealingCounters {
  uint64_t sealed_out = 0;       // Packets (or super-packets) sealed to a peer.
  uint64_t opened = 0;           // Sealed packets opened and delivered.
  uint64_t unknown_peer = 0;     // From an address with no keys known here.
  uint64_t not_for_me = 0;       // Addressed to another device.
  uint64_t replayed = 0;         // A counter already taken (or too old).
  uint64_t bad_tag = 0;          // Changed on the way, or not sealed with the pair's key.
  uint64_t spoofed_inner = 0;    // Opened, but the packet inside is not from the sender's address.
  uint64_t malformed_inner = 0;  // Opened, but not a packet (or super-packet) that parses.
  uint64_t key_failures = 0;     // A peer's keys gave no pair keys (a low-order point).
  uint64_t disco = 0;            // Opened messages about paths (pings, pongs, CallMeMaybe).
};

class Sealing {
 public:
  static constexpr std::size_t kRetired = 256;

  // `seals_with`: the AEAD this device seals with to peers that open it
  // (AES-256-GCM); to others, and whatever it announced, ChaCha20-Poly1305.
  Sealing(const seal::KeyPair& device_key, const seal::KeyPair& session_key,
          seal::Cipher seals_with = seal::Cipher::kChaCha20Poly1305);
  ~Sealing();

  // From the peer table.
  void PeerUp(const discovery::Peer& peer);
  void PeerDown(const discovery::Peer& peer);
  // This device's address now (the lease), and the IPv6 /64's interface IDs
  // map to IPv4 host numbers in `network` (address & mask).
  void SetLease(uint32_t address, uint32_t network, std::optional<base::Ipv6Address> address6);

  // The IPv4 address of the peer `packet` is unicast to, if it is one this
  // device seals to; 0 otherwise (sent as it is).
  uint32_t SealingPeerFor(std::span<const uint8_t> packet) const;
  // Derives the pair keys with that peer if not done yet; false (counted) if
  // its keys give none: then nothing may go to it, sealed or not.
  bool Prepare(uint32_t peer_address);
  // Seals `in` (a packet, or a super-packet with `gso`) for the peer at
  // `peer_address` into `out`, a SEALED frame's payload of SealedSize(in)
  // bytes: header, sealed packet, tag. `in` may be out's packet part (a
  // segment built in place). False (counted) if the peer's keys give none.
  bool Seal(uint32_t peer_address, std::span<const uint8_t> in, packet::Gso gso, std::span<uint8_t> out);
  // The same in place: `packet` becomes the sealed packet, and the frame's
  // header and tag go to `header` and `tag` (to be sent around it).
  bool SealInPlace(uint32_t peer_address, std::span<uint8_t> packet, packet::Gso gso,
                   std::span<uint8_t, 20> header, std::span<uint8_t, 16> tag);
  static std::size_t SealedSize(std::size_t packet_size);

  enum class Verdict { kOpened, kDisco, kDropped };
  // Opens a SEALED frame's payload in place; on kOpened, `packet` and `gso`
  // are what it carried (a super-packet already checked); on kDisco,
  // `packet` is a message about paths from the peer (see disco.h: its first
  // nibble is 0, where a packet's is 4 or 6). `source`, if given, gets the
  // sender's address.
  Verdict Open(std::span<uint8_t> payload, std::span<const uint8_t>* packet, packet::Gso* gso,
               uint32_t* source = nullptr);

  // Whether packets to and from this peer are sealed (both have keys).
  bool Seals(const discovery::Peer& peer) const;
  // The AEAD packets to that peer are sealed with.
  seal::Cipher CipherTo(const discovery::Peer& peer) const;
  seal::Cipher seals_with() const { return seals_with_; }
  // The ciphers bits (protocol::CipherBits) this device announces.
  uint32_t ciphers() const;
  const SealingCounters& counters() const { return counters_; }

 private:
  struct Crypto;
  struct Peer {
    std::string device_id;
    uint32_t address = 0;
    std::optional<base::Ipv6Address> address6;
    discovery::Peer::Keys keys;
    std::unique_ptr<Crypto> crypto;  // Made on first use.
  };
  Crypto* CryptoOf(Peer& peer);
  bool SealParts(uint32_t peer_address, std::span<const uint8_t> in, packet::Gso gso, std::span<uint8_t, 20> header,
                 std::span<uint8_t> body, std::span<uint8_t, 16> tag);

  seal::KeyPair device_key_;
  seal::KeyPair session_key_;
  seal::Cipher seals_with_;
  uint64_t next_counter_ = 0;
  uint32_t my_address_ = 0;
  uint32_t network_ = 0;
  std::optional<base::Ipv6Address> my_address6_;
  std::unordered_map<uint32_t, Peer> by_address_;
  // Departed peers' crypto, by their session key, oldest first.
  std::map<seal::PublicKey, std::unique_ptr<Crypto>> retired_;
  std::deque<seal::PublicKey> retired_order_;
  SealingCounters counters_;
};

}  // namespace mnedc::client
