#pragma once
// Device keys: X25519 key pairs (through OpenSSL), their text form, and the
// file a device keeps its own in.
//
// The text form is standard base64 of the 32 raw bytes, as WireGuard writes
// its keys: a key made with `wg genkey` works as a device key, and `wg pubkey`
// prints its public half.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace mnedc::seal {

inline constexpr std::size_t kKeySize = 32;
using PublicKey = std::array<uint8_t, kKeySize>;
// An X25519 shared secret.
using SharedSecret = std::array<uint8_t, kKeySize>;

class KeyPair {
 public:
  // A fresh key pair from the system's random source. False only if OpenSSL
  // has none (then nothing can be kept secret).
  static bool Generate(KeyPair* out);
  // The key pair whose private half is `private_key` (32 bytes, any value:
  // X25519 clamps it). False if the span is not 32 bytes.
  static bool FromPrivate(std::span<const uint8_t> private_key, KeyPair* out);

  KeyPair() = default;
  KeyPair(const KeyPair&) = default;
  KeyPair& operator=(const KeyPair&) = default;
  ~KeyPair();

  const PublicKey& public_key() const { return public_; }
  std::span<const uint8_t, kKeySize> private_key() const { return private_; }
  // X25519 of this private key and `peer`. False if the result is all zero
  // (`peer` is a low-order point: a key no honest device has).
  bool Agree(const PublicKey& peer, SharedSecret* shared) const;

 private:
  std::array<uint8_t, kKeySize> private_{};
  PublicKey public_{};
};

// Base64 of the 32 bytes (44 characters).
std::string EncodeKey(std::span<const uint8_t, kKeySize> key);
// The key `text` (base64, surrounding white space allowed) stands for;
// nullopt if it is not base64 of exactly 32 bytes.
std::optional<PublicKey> DecodeKey(std::string_view text);
// The first 8 characters of the base64 form: what logs and tables show.
std::string ShortKey(const PublicKey& key);

// The device's key in `path`: read if the file exists (it must not be
// readable by others, and hold one base64 private key), else made and written
// there with mode 0600 (its directories made with 0700 if missing), `created`
// set. False with `error` saying what to do.
bool LoadOrCreateKeyFile(const std::string& path, KeyPair* key, bool* created, std::string* error);

}  // namespace mnedc::seal
