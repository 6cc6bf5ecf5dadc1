#include "mnedc/relay/key_bindings.h"

#include <glog/logging.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mnedc/base/atomic_file.h"
#include "mnedc/base/device_id.h"

namespace mnedc::relay {

KeyBindings::KeyBindings(boost::asio::any_io_executor executor, std::string file)
    : file_(std::move(file)), saver_(executor, file_.empty() ? FileSaver::Save() : [this] { return Save(); }) {}

bool ParseDeviceKeys(std::string_view text, std::unordered_map<std::string, seal::PublicKey>* keys,
                     std::string* error) {
  std::istringstream lines{std::string(text)};
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::istringstream words(line);
    std::string id, key_text, extra;
    if (!(words >> id) || id.front() == '#') continue;
    const std::string where = "line " + std::to_string(number) + ": ";
    std::optional<seal::PublicKey> key;
    if (!(words >> key_text) || !(key = seal::DecodeKey(key_text)) || (words >> extra)) {
      *error = where + "expected 'device_id public_key' (the key in base64)";
      return false;
    }
    if (!base::IsValidDeviceId(id)) {
      *error = where + "'" + id + "': " + base::kDeviceIdRule;
      return false;
    }
    if (!keys->emplace(id, *key).second) {
      *error = where + "device '" + id + "' is listed twice";
      return false;
    }
  }
  return true;
}

bool KeyBindings::Restore(std::string* error) {
  if (file_.empty()) return true;
  std::ifstream in(file_);
  if (!in) {
    if (errno == ENOENT) return true;
    *error = "cannot read '" + file_ + "': " + std::strerror(errno);
    return false;
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (!ParseDeviceKeys(content.str(), &bound_, error)) {
    *error = "'" + file_ + "' " + *error;
    return false;
  }
  LOG(INFO) << "restored the keys of " << bound_.size() << " devices from " << file_;
  return true;
}

std::string KeyBindings::Check(const std::string& device_id, const seal::PublicKey* key) {
  const auto found = bound_.find(device_id);
  if (found == bound_.end()) {
    if (key == nullptr) return {};
    bound_.emplace(device_id, *key);
    saver_.Changed();
    LOG(INFO) << "device " << device_id << " is now bound to the key " << seal::EncodeKey(*key)
              << " (its first join with one)";
    return {};
  }
  if (key != nullptr && *key == found->second) return {};
  return "device " + device_id + " is bound to the key " + seal::ShortKey(found->second) + "... on this relay, " +
         "and this client " +
         (key ? "holds another (" + seal::ShortKey(*key) + "...)" : "presents none (an older version?)") +
         "; if the device really has a new key, the relay's operator runs `mnedc ctl forget-key " + device_id + "`";
}

std::optional<seal::PublicKey> KeyBindings::Bound(const std::string& device_id) const {
  const auto found = bound_.find(device_id);
  if (found == bound_.end()) return std::nullopt;
  return found->second;
}

bool KeyBindings::Forget(const std::string& device_id) {
  if (bound_.erase(device_id) == 0) return false;
  saver_.Changed();
  return true;
}

bool KeyBindings::Save() {
  std::ostringstream out;
  out << "# mnedc relay: the public key each device is bound to (device_id public_key)\n";
  for (const auto& [id, key] : bound_) out << id << " " << seal::EncodeKey(key) << "\n";
  std::string error;
  if (!base::WriteFileAtomically(file_, out.str(), /*durable=*/true, &error)) {
    LOG_EVERY_N(ERROR, 10) << "device keys file: " << error << "; bindings stay in memory";
    return false;
  }
  return true;
}

}  // namespace mnedc::relay
