#pragma once
// An AEAD under one key, in place, through OpenSSL: ChaCha20-Poly1305
// (RFC 8439), or AES-256-GCM (NIST SP 800-38D) where the CPU has AES
// instructions, which then seals at half again its speed.
//
// The 96-bit nonce is a 4-byte prefix (zero unless given) and the 64-bit
// packet counter, little-endian, as WireGuard lays it out. The caller never
// uses a counter twice under one key (Sealer counts for it); one context is
// made with the key and reused, so sealing a packet allocates nothing.
#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <span>

namespace mnedc::seal {

inline constexpr std::size_t kTagSize = 16;

enum class Cipher { kChaCha20Poly1305, kAes256Gcm };
const char* CipherName(Cipher cipher);  // "chacha20-poly1305", "aes-256-gcm"
// Whether this CPU has the instructions that make AES-GCM fast (AES and
// carry-less multiply: AES-NI and PCLMULQDQ on x86, the crypto extension on
// Arm). Without them AES-GCM is slower than ChaCha20-Poly1305, and not
// constant-time in every implementation.
bool HasAesInstructions();

class Aead {
 public:
  // One direction: a sealer or an opener (each holds one OpenSSL context).
  enum class Use { kSeal, kOpen, kBoth };
  // `key` is 32 bytes. ok() is false if OpenSSL could not set it up.
  explicit Aead(std::span<const uint8_t, 32> key, uint32_t nonce_prefix = 0, Use use = Use::kBoth,
                Cipher cipher = Cipher::kChaCha20Poly1305);
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;
  bool ok() const { return ok_; }
  Cipher cipher() const { return cipher_; }

  // Encrypts `data` in place and writes its tag; `aad` is authenticated, not
  // encrypted.
  bool Seal(uint64_t counter, std::span<const uint8_t> aad, std::span<uint8_t> data,
            std::span<uint8_t, kTagSize> tag) {
    return Seal(counter, aad, data, data, tag);
  }
  // The same from `in` into `out` (of in's size; the same bytes, or apart).
  bool Seal(uint64_t counter, std::span<const uint8_t> aad, std::span<const uint8_t> in, std::span<uint8_t> out,
            std::span<uint8_t, kTagSize> tag);
  // Checks `tag` and decrypts `data` in place; false (and `data` not to be
  // used) if anything was changed or the key is not the one it was sealed with.
  bool Open(uint64_t counter, std::span<const uint8_t> aad, std::span<uint8_t> data,
            std::span<const uint8_t, kTagSize> tag);

 private:
  void Nonce(uint64_t counter, uint8_t* nonce) const;

  EVP_CIPHER_CTX* seal_ = nullptr;
  EVP_CIPHER_CTX* open_ = nullptr;
  uint32_t nonce_prefix_;
  Cipher cipher_;
  bool ok_ = false;
};

}  // namespace mnedc::seal
