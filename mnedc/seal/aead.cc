#include "mnedc/seal/aead.h"

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include <climits>
#include <cstring>

namespace mnedc::seal {
namespace {

EVP_CIPHER_CTX* MakeContext(std::span<const uint8_t, 32> key, bool encrypt, Cipher cipher) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  const EVP_CIPHER* type = cipher == Cipher::kAes256Gcm ? EVP_aes_256_gcm() : EVP_chacha20_poly1305();
  if (EVP_CipherInit_ex(ctx, type, nullptr, nullptr, nullptr, encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data(), nullptr, encrypt) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

bool Fits(std::size_t n) { return n <= static_cast<std::size_t>(INT_MAX); }

}  // namespace

const char* CipherName(Cipher cipher) {
  return cipher == Cipher::kAes256Gcm ? "aes-256-gcm" : "chacha20-poly1305";
}

bool HasAesInstructions() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
  return (getauxval(AT_HWCAP) & HWCAP_AES) && (getauxval(AT_HWCAP) & HWCAP_PMULL);
#else
  return false;
#endif
}

Aead::Aead(std::span<const uint8_t, 32> key, uint32_t nonce_prefix, Use use, Cipher cipher)
    : seal_(use != Use::kOpen ? MakeContext(key, true, cipher) : nullptr),
      open_(use != Use::kSeal ? MakeContext(key, false, cipher) : nullptr),
      nonce_prefix_(nonce_prefix),
      cipher_(cipher) {
  ok_ = (use == Use::kOpen || seal_ != nullptr) && (use == Use::kSeal || open_ != nullptr);
}

Aead::~Aead() {
  EVP_CIPHER_CTX_free(seal_);
  EVP_CIPHER_CTX_free(open_);
}

void Aead::Nonce(uint64_t counter, uint8_t* nonce) const {
  std::memcpy(nonce, &nonce_prefix_, 4);  // Its bytes as given, not a number.
  for (int i = 0; i < 8; ++i) nonce[4 + i] = static_cast<uint8_t>(counter >> (8 * i));
}

bool Aead::Seal(uint64_t counter, std::span<const uint8_t> aad, std::span<const uint8_t> in,
                std::span<uint8_t> out, std::span<uint8_t, kTagSize> tag) {
  if (!seal_ || !Fits(aad.size()) || !Fits(in.size()) || out.size() != in.size()) return false;
  uint8_t nonce[12];
  Nonce(counter, nonce);
  int n = 0;
  if (EVP_EncryptInit_ex(seal_, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (!aad.empty() && EVP_EncryptUpdate(seal_, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!in.empty() && EVP_EncryptUpdate(seal_, out.data(), &n, in.data(), static_cast<int>(in.size())) != 1) {
    return false;
  }
  return EVP_EncryptFinal_ex(seal_, nullptr, &n) == 1 &&
         EVP_CIPHER_CTX_ctrl(seal_, EVP_CTRL_AEAD_GET_TAG, kTagSize, tag.data()) == 1;
}

bool Aead::Open(uint64_t counter, std::span<const uint8_t> aad, std::span<uint8_t> data,
                std::span<const uint8_t, kTagSize> tag) {
  if (!open_ || !Fits(aad.size()) || !Fits(data.size())) return false;
  uint8_t nonce[12];
  Nonce(counter, nonce);
  int n = 0;
  if (EVP_DecryptInit_ex(open_, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (!aad.empty() && EVP_DecryptUpdate(open_, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (!data.empty() &&
      EVP_DecryptUpdate(open_, data.data(), &n, data.data(), static_cast<int>(data.size())) != 1) {
    return false;
  }
  // The tag is set before Final, which compares it in constant time.
  if (EVP_CIPHER_CTX_ctrl(open_, EVP_CTRL_AEAD_SET_TAG, kTagSize, const_cast<uint8_t*>(tag.data())) != 1) {
    return false;
  }
  return EVP_DecryptFinal_ex(open_, nullptr, &n) == 1;
}

}  // namespace mnedc::seal
