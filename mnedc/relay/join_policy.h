#pragma once
// Who may join: nobody needs anything (an open relay), one shared token, a
// token per device, or both. A device listed in the tokens file is bound to its
// own token - nobody else can join under its ID, not even with the shared
// token - and the shared token admits only devices that are not listed.
// Tokens are kept and compared as SHA-256 digests, in constant time, so
// neither a token's content nor its length leaks through timing.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

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
};

// Parses a tokens file: one device a line, `device_id token`, separated by
// white space; blank lines and lines starting with '#' are skipped. False with
// `error` naming the line when a line is malformed, a device is listed twice,
// or an ID or token is out of bounds.
bool ParseDeviceTokens(std::string_view text,
                       std::unordered_map<std::string, std::string>* tokens, std::string* error);

// Reads a secret file (a join token, a tokens file): refuses one that other
// users can read, says so and how to fix it, and bounds its size.
bool ReadSecretFile(const std::string& path, std::size_t max_bytes, std::string* content,
                    std::string* error);

// Reads a token file (ReadSecretFile): its content without trailing white
// space, 1 to 1024 bytes.
bool ReadTokenFile(const std::string& path, std::string* token, std::string* error);

}  // namespace mnedc::relay
