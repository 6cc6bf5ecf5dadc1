#include "mnedc/seal/pair_keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstring>
#include <string_view>
#include <tuple>

namespace mnedc::seal {
namespace {

constexpr std::string_view kSalt = "mnedc seal v1";
constexpr std::string_view kInfo = "mnedc pair keys";

}  // namespace

PairKeys::~PairKeys() {
  OPENSSL_cleanse(send.data(), send.size());
  OPENSSL_cleanse(receive.data(), receive.size());
  OPENSSL_cleanse(aes_send.data(), aes_send.size());
  OPENSSL_cleanse(aes_receive.data(), aes_receive.size());
}

bool HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt, std::span<const uint8_t> info,
                std::span<uint8_t> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;
  char digest[] = "SHA256";
  // OSSL_PARAM takes non-const pointers; HKDF only reads them.
  auto octets = [](const char* name, std::span<const uint8_t> bytes) {
    return OSSL_PARAM_construct_octet_string(name, const_cast<uint8_t*>(bytes.data()), bytes.size());
  };
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      octets(OSSL_KDF_PARAM_KEY, ikm),
      octets(OSSL_KDF_PARAM_SALT, salt),
      octets(OSSL_KDF_PARAM_INFO, info),
      OSSL_PARAM_construct_end(),
  };
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

bool DerivePairKeys(const KeyPair& my_static, const KeyPair& my_session, const PublicKey& peer_static,
                    const PublicKey& peer_session, PairKeys* keys) {
  // Who is "lo": the static keys decide, the session keys if a device meets
  // a copy of its own static key (a cloned disk image).
  const auto mine = std::tie(my_static.public_key(), my_session.public_key());
  const auto theirs = std::tie(peer_static, peer_session);
  if (mine == theirs) return false;
  const bool lo = mine < theirs;
  SharedSecret ss, ee, es, se;
  // es = X25519(session_lo, static_hi), se = X25519(static_lo, session_hi):
  // the same values from either side's private keys.
  const bool agreed = my_static.Agree(peer_static, &ss) && my_session.Agree(peer_session, &ee) &&
                      (lo ? my_session.Agree(peer_static, &es) : my_static.Agree(peer_session, &es)) &&
                      (lo ? my_static.Agree(peer_session, &se) : my_session.Agree(peer_static, &se));
  std::array<uint8_t, 4 * kKeySize> ikm;
  std::copy(ss.begin(), ss.end(), ikm.begin());
  std::copy(ee.begin(), ee.end(), ikm.begin() + kKeySize);
  std::copy(es.begin(), es.end(), ikm.begin() + 2 * kKeySize);
  std::copy(se.begin(), se.end(), ikm.begin() + 3 * kKeySize);
  for (SharedSecret* s : {&ss, &ee, &es, &se}) OPENSSL_cleanse(s->data(), s->size());
  std::array<uint8_t, kInfo.size() + 4 * kKeySize> info;
  const PublicKey& static_lo = lo ? my_static.public_key() : peer_static;
  const PublicKey& static_hi = lo ? peer_static : my_static.public_key();
  const PublicKey& session_lo = lo ? my_session.public_key() : peer_session;
  const PublicKey& session_hi = lo ? peer_session : my_session.public_key();
  auto at = std::copy(kInfo.begin(), kInfo.end(), info.begin());
  for (const PublicKey* key : {&static_lo, &static_hi, &session_lo, &session_hi}) {
    at = std::copy(key->begin(), key->end(), at);
  }
  std::array<uint8_t, 4 * 32> okm;
  const auto salt = std::span(reinterpret_cast<const uint8_t*>(kSalt.data()), kSalt.size());
  const bool derived = agreed && HkdfSha256(ikm, salt, info, okm);
  OPENSSL_cleanse(ikm.data(), ikm.size());
  if (derived) {
    std::copy_n(okm.begin() + (lo ? 0 : 32), 32, keys->send.begin());
    std::copy_n(okm.begin() + (lo ? 32 : 0), 32, keys->receive.begin());
    std::copy_n(okm.begin() + (lo ? 64 : 96), 32, keys->aes_send.begin());
    std::copy_n(okm.begin() + (lo ? 96 : 64), 32, keys->aes_receive.begin());
  }
  OPENSSL_cleanse(okm.data(), okm.size());
  return derived;
}

}  // namespace mnedc::seal
