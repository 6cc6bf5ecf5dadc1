#pragma once
// Who may join: nobody needs anything (an open relay), one shared token, a
// token per device, or both. A device listed in the tokens file is bound to its
// own token - nobody else can join under its ID, not even with the shared
// token - and the shared token admits only devices that are not listed.
// Tokens are kept and compared as SHA-256 digests, in constant time, so
// neither a token's content nor its length leaks through timing.
//
// The tokens file may also bind a device to its public key (a third word):
// then only a client holding that key's private half may join as it, and
// the relay's trust-on-first-use record (KeyBindings) does not apply to it.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mnedc/seal/keys.h"

namespace mnedc::relay {

using TokenDigest = std::array<uint8_t, 32>;
TokenDigest DigestToken(std::string_view token);

class JoinPolicy {
 public:
  // An open relay: everyone may join.
  JoinPolicy() = default;

  void SetSharedToken(std::string_view token);
  // device ID -> token. Even an empty list closes the relay to devices not
  // listed (an empty tokens file admits nobody, not everybody).
  void SetDeviceTokens(const std::unordered_map<std::string, std::string>& tokens);

  // device ID -> the public key the operator bound it to.
  void SetDeviceKeys(std::unordered_map<std::string, seal::PublicKey> keys) { device_keys_ = std::move(keys); }
  // The operator's key for `device_id`, or null if the operator named none.
  const seal::PublicKey* OperatorKey(const std::string& device_id) const;
  // Empty when `device_id` may present `key` (null: none) as far as the
  // operator's keys go; otherwise why not.
  std::string CheckKey(const std::string& device_id, const seal::PublicKey* key) const;

  // True when a join needs no credentials at all.
  bool open() const { return !has_shared_ && !has_device_tokens_; }
  std::size_t device_count() const { return device_tokens_.size(); }

  // Empty when `device_id` presenting `credentials` (as a digest) may join;
  // otherwise why not, in words fit for the device's log.
  std::string Check(const std::string& device_id, const TokenDigest& credentials,
                    bool presented_any) const;

 private:
  bool has_shared_ = false;
  bool has_device_tokens_ = false;
  TokenDigest shared_{};
  std::unordered_map<std::string, TokenDigest> device_tokens_;
  std::unordered_map<std::string, seal::PublicKey> device_keys_;
};

// Parses a tokens file: one device a line, `device_id token [public_key]`,
// separated by white space (the key in base64, as the client logs it); blank
// lines and lines starting with '#' are skipped. False with `error` naming the
// line when a line is malformed, a device is listed twice, or an ID, token or
// key is out of bounds. Keys go to `keys` if given.
bool ParseDeviceTokens(std::string_view text,
                       std::unordered_map<std::string, std::string>* tokens, std::string* error,
                       std::unordered_map<std::string, seal::PublicKey>* keys = nullptr);

// Reads a secret file (a join token, a tokens file): refuses one that other
// users can read, says so and how to fix it, and bounds its size.
bool ReadSecretFile(const std::string& path, std::size_t max_bytes, std::string* content,
                    std::string* error);

// Reads a token file (ReadSecretFile): its content without trailing white
// space, 1 to 1024 bytes.
bool ReadTokenFile(const std::string& path, std::string* token, std::string* error);

}  // namespace mnedc::relay
