#include "mnedc/seal/aead.h"

#include <climits>
#include <cstring>

namespace mnedc::seal {
namespace {

EVP_CIPHER_CTX* MakeContext(std::span<const uint8_t, 32> key, bool encrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr) return nullptr;
  if (EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), nullptr, nullptr, nullptr, encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, nullptr) != 1 ||
      EVP_CipherInit_ex(ctx, nullptr, nullptr, key.data(), nullptr, encrypt) != 1) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

bool Fits(std::size_t n) { return n <= static_cast<std::size_t>(INT_MAX); }

}  // namespace

Aead::Aead(std::span<const uint8_t, 32> key, uint32_t nonce_prefix, Use use)
    : seal_(use != Use::kOpen ? MakeContext(key, true) : nullptr),
      open_(use != Use::kSeal ? MakeContext(key, false) : nullptr),
      nonce_prefix_(nonce_prefix) {
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
