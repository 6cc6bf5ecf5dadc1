#include "mnedc/seal/keys.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "mnedc/base/atomic_file.h"

namespace mnedc::seal {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree>;

// Base64 text: 44 characters for 32 bytes, 4 for every 3 (the last group padded).
constexpr std::size_t kEncodedKeySize = 4 * ((kKeySize + 2) / 3);

std::string_view Trim(std::string_view text) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front())) text.remove_prefix(1);
  while (!text.empty() && space(text.back())) text.remove_suffix(1);
  return text;
}

std::optional<std::array<uint8_t, kKeySize>> DecodeRaw(std::string_view text) {
  text = Trim(text);
  // Exactly 43 characters and one '=': anything else is not 32 bytes.
  if (text.size() != kEncodedKeySize || text[kEncodedKeySize - 1] != '=' || text[kEncodedKeySize - 2] == '=') {
    return std::nullopt;
  }
  unsigned char decoded[kEncodedKeySize / 4 * 3];
  const int n = EVP_DecodeBlock(decoded, reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  // EVP_DecodeBlock counts the padding as zero bytes: 33 for a 32-byte key.
  if (n != static_cast<int>(sizeof(decoded))) return std::nullopt;
  std::array<uint8_t, kKeySize> key;
  std::memcpy(key.data(), decoded, kKeySize);
  OPENSSL_cleanse(decoded, sizeof(decoded));
  return key;
}

}  // namespace

KeyPair::~KeyPair() { OPENSSL_cleanse(private_.data(), private_.size()); }

bool KeyPair::FromPrivate(std::span<const uint8_t> private_key, KeyPair* out) {
  if (private_key.size() != kKeySize) return false;
  Pkey key(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), kKeySize));
  if (!key) return false;
  std::size_t length = kKeySize;
  if (EVP_PKEY_get_raw_public_key(key.get(), out->public_.data(), &length) != 1 || length != kKeySize) {
    return false;
  }
  std::memcpy(out->private_.data(), private_key.data(), kKeySize);
  return true;
}

bool KeyPair::Generate(KeyPair* out) {
  std::array<uint8_t, kKeySize> secret;
  if (RAND_priv_bytes(secret.data(), static_cast<int>(secret.size())) != 1) return false;
  // Clamped as X25519 uses it, as `wg genkey` stores it.
  secret[0] &= 248;
  secret[31] = static_cast<uint8_t>((secret[31] & 127) | 64);
  const bool made = FromPrivate(secret, out);
  OPENSSL_cleanse(secret.data(), secret.size());
  return made;
}

bool KeyPair::Agree(const PublicKey& peer, SharedSecret* shared) const {
  Pkey mine(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_.data(), kKeySize));
  Pkey theirs(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer.data(), kKeySize));
  if (!mine || !theirs) return false;
  PkeyCtx ctx(EVP_PKEY_CTX_new(mine.get(), nullptr));
  std::size_t length = kKeySize;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), theirs.get()) != 1 ||
      EVP_PKEY_derive(ctx.get(), shared->data(), &length) != 1 || length != kKeySize) {
    return false;
  }
  // All zero: a low-order point, contributing nothing secret (RFC 7748 section 6.1).
  uint8_t any = 0;
  for (uint8_t b : *shared) any |= b;
  return any != 0;
}

std::string EncodeKey(std::span<const uint8_t, kKeySize> key) {
  char text[kEncodedKeySize + 1];
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text), key.data(), static_cast<int>(key.size()));
  return std::string(text, kEncodedKeySize);
}

std::optional<PublicKey> DecodeKey(std::string_view text) { return DecodeRaw(text); }

std::string ShortKey(const PublicKey& key) { return EncodeKey(key).substr(0, 8); }

bool LoadOrCreateKeyFile(const std::string& path, KeyPair* key, bool* created, std::string* error) {
  *created = false;
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0) {
    if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      *error = "the device key '" + path + "' is readable by other users; chmod 600 it (or remove it " +
               "to make a new key, which the relay must then be told about)";
      return false;
    }
    std::ifstream in(path);
    std::string text;
    if (!in || !std::getline(in, text)) {
      *error = "cannot read the device key '" + path + "': " + std::strerror(errno);
      return false;
    }
    std::optional<std::array<uint8_t, kKeySize>> raw = DecodeRaw(text);
    const bool ok = raw && KeyPair::FromPrivate(*raw, key);
    if (raw) OPENSSL_cleanse(raw->data(), raw->size());
    if (!ok) {
      *error = "'" + path + "' does not hold a device key (one line: the base64 of a 32-byte X25519 " +
               "private key, as `wg genkey` prints)";
      return false;
    }
    return true;
  }
  if (errno != ENOENT) {
    *error = "cannot read the device key '" + path + "': " + std::strerror(errno);
    return false;
  }
  // The directories on the way, as mkdir -p makes them (owner-only).
  for (std::size_t slash = path.find('/', 1); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    const std::string directory = path.substr(0, slash);
    if (::mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = "cannot make the state directory '" + directory + "': " + std::strerror(errno);
      return false;
    }
  }
  if (!KeyPair::Generate(key)) {
    *error = "cannot make a device key: the system's random source failed";
    return false;
  }
  std::string text = EncodeKey(key->private_key()) + "\n";
  std::string why;
  const bool written = base::WriteFileAtomically(path, text, /*durable=*/true, &why, 0600);
  OPENSSL_cleanse(text.data(), text.size());
  if (!written) {
    *error = "cannot keep the device key: " + why;
    return false;
  }
  *created = true;
  return true;
}

}  // namespace mnedc::seal
