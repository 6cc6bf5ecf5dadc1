#pragma once
// The keys two devices seal their packets to each other with.
//
// Each device has a static key pair (its identity, kept in its key file) and
// a session key pair made fresh each time the client starts. Two devices
// derive the same pair of keys from four X25519 agreements:
//
//   ss = X25519(static_lo, static_hi)     the devices themselves
//   ee = X25519(session_lo, session_hi)   forward secrecy: gone with the processes
//   es = X25519(session_lo, static_hi)    } a stolen static key lets nobody
//   se = X25519(static_lo, session_hi)    } pose as another device to its owner
//
// where "lo" is the device whose (static, session) public keys sort first.
// Then HKDF-SHA256 (RFC 5869) with
//   salt = "mnedc seal v1", ikm = ss | ee | es | se,
//   info = "mnedc pair keys" | static_lo | static_hi | session_lo | session_hi
// gives 64 bytes: the key lo seals with (hi opens) and the key hi seals with.
// The relay sees all four public keys but no private one, so it learns
// nothing of either key. A new session key on either side (a restart) gives
// new keys, so a counter that starts again never meets an old key.
#include <array>
#include <cstdint>
#include <span>

#include "mnedc/seal/keys.h"

namespace mnedc::seal {

using AeadKey = std::array<uint8_t, 32>;

struct PairKeys {
  AeadKey send;     // This device seals with it.
  AeadKey receive;  // The peer seals with it; this device opens.
  // The same for AES-256-GCM, where a direction uses it: keys of their own
  // (the next 64 bytes of the same HKDF output), never one key for two ciphers.
  AeadKey aes_send;
  AeadKey aes_receive;
  ~PairKeys();
};

// False if an agreement gives all zeros (a low-order public key), if the two
// devices' public keys are the same, or OpenSSL fails.
bool DerivePairKeys(const KeyPair& my_static, const KeyPair& my_session, const PublicKey& peer_static,
                    const PublicKey& peer_session, PairKeys* keys);

// HKDF-SHA256 (RFC 5869): extract with `salt`, expand with `info` into `out`.
bool HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::span<const uint8_t> info,
                std::span<uint8_t> out);

}  // namespace mnedc::seal
