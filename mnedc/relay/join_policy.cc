#include "mnedc/relay/join_policy.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "mnedc/base/device_id.h"

namespace mnedc::relay {
namespace {
constexpr std::size_t kMaxTokenLength = 1024;

bool SameDigest(const TokenDigest& a, const TokenDigest& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}
}  // namespace

TokenDigest DigestToken(std::string_view token) {
  TokenDigest digest{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

void JoinPolicy::SetSharedToken(std::string_view token) {
  has_shared_ = !token.empty();
  shared_ = has_shared_ ? DigestToken(token) : TokenDigest{};
}

void JoinPolicy::SetDeviceTokens(const std::unordered_map<std::string, std::string>& tokens) {
  device_tokens_.clear();
  has_device_tokens_ = true;
  for (const auto& [id, token] : tokens) device_tokens_[id] = DigestToken(token);
}

std::string JoinPolicy::Check(const std::string& device_id, const TokenDigest& credentials,
                              bool presented_any) const {
  if (open()) return {};
  if (const auto listed = device_tokens_.find(device_id); listed != device_tokens_.end()) {
    if (SameDigest(listed->second, credentials)) return {};
    return presented_any ? "wrong token for device " + device_id
                         : "device " + device_id + " needs its token (--token_file)";
  }
  if (has_shared_) {
    if (SameDigest(shared_, credentials)) return {};
    return presented_any ? "wrong join token" : "this relay needs a join token (--token_file)";
  }
  return "device " + device_id + " is not in the relay's tokens file";
}

const seal::PublicKey* JoinPolicy::OperatorKey(const std::string& device_id) const {
  const auto found = device_keys_.find(device_id);
  return found == device_keys_.end() ? nullptr : &found->second;
}

std::string JoinPolicy::CheckKey(const std::string& device_id, const seal::PublicKey* key) const {
  const seal::PublicKey* bound = OperatorKey(device_id);
  if (bound == nullptr || (key != nullptr && *key == *bound)) return {};
  return "the tokens file binds device " + device_id + " to the key " + seal::ShortKey(*bound) + "..., and " +
         (key ? "this client holds another (" + seal::ShortKey(*key) + "...)"
              : "this client presents none (an older version?)");
}

bool ParseDeviceTokens(std::string_view text,
                       std::unordered_map<std::string, std::string>* tokens, std::string* error,
                       std::unordered_map<std::string, seal::PublicKey>* keys) {
  tokens->clear();
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::istringstream words(line);
    std::string id, token, key_text, extra;
    if (!(words >> id) || id.front() == '#') continue;
    const std::string where = "line " + std::to_string(number) + ": ";
    if (!(words >> token)) {
      *error = where + "'" + id + "' has no token; write 'device_id token'";
      return false;
    }
    std::optional<seal::PublicKey> key;
    if (words >> key_text) {
      key = seal::DecodeKey(key_text);
      if (!key) {
        *error = where + "'" + key_text + "' is not a public key (base64 of 32 bytes, as the client logs " +
                 "its key); write 'device_id token [public_key]'";
        return false;
      }
    }
    if (words >> extra) {
      *error = where + "more than 'device_id token [public_key]'";
      return false;
    }
    if (!base::IsValidDeviceId(id)) {
      *error = where + "'" + id + "': " + base::kDeviceIdRule;
      return false;
    }
    if (token.size() > kMaxTokenLength) {
      *error = where + "token is over 1024 characters";
      return false;
    }
    if (!tokens->emplace(id, token).second) {
      *error = where + "device '" + id + "' is listed twice";
      return false;
    }
    if (key && keys) (*keys)[id] = *key;
  }
  return true;
}

bool ReadSecretFile(const std::string& path, std::size_t max_bytes, std::string* content,
                    std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = "cannot read '" + path + "': " + std::strerror(errno);
    return false;
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) == 0 && (info.st_mode & S_IROTH) != 0) {
    *error = "'" + path + "' holds secrets but every user can read it; chmod o-r (or 600) it";
    return false;
  }
  content->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (content->size() > max_bytes) {
    *error = "'" + path + "' is over " + std::to_string(max_bytes) + " bytes; is it the right file?";
    return false;
  }
  return true;
}

bool ReadTokenFile(const std::string& path, std::string* token, std::string* error) {
  if (!ReadSecretFile(path, 4096, token, error)) return false;
  while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) {
    token->pop_back();
  }
  if (token->empty()) {
    *error = "'" + path + "' is empty";
    return false;
  }
  if (token->size() > kMaxTokenLength) {
    *error = "'" + path + "' is over 1024 bytes; is it the right file?";
    return false;
  }
  return true;
}

}  // namespace mnedc::relay
