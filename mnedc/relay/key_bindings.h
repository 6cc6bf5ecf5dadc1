#pragma once
// Which public key each device ID is bound to on this relay: the key it
// first joined with (trust on first use). Afterwards only a client holding
// that key's private half may join under the ID; another key, or none (an
// older client), is refused until the operator forgets the binding (`mnedc
// ctl forget-key DEVICE`) or binds the device in the tokens file, which
// takes precedence. With --device_keys_file the bindings outlast restarts
// (written as FileSaver says); without it they last as long as the relay runs.
//
// A relay of a cluster keeps them in etcd instead (cluster/etcd_cluster), so
// every relay of the network holds a device to the same key.
#include <boost/asio/any_io_executor.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "mnedc/relay/file_saver.h"
#include "mnedc/seal/keys.h"

namespace mnedc::relay {

class KeyBindings {
 public:
  // An empty `file` keeps the bindings in memory only.
  KeyBindings(boost::asio::any_io_executor executor, std::string file);
  KeyBindings(const KeyBindings&) = delete;
  KeyBindings& operator=(const KeyBindings&) = delete;

  // Loads the file (a missing one is fine); false with `error` if it cannot
  // be read or a line is malformed (a relay that cannot know its bindings
  // must not start and bind anew).
  bool Restore(std::string* error);
  // Empty when `device_id` may join presenting `key` (null: none), binding
  // the key if the device has none yet; otherwise why not. A device that
  // presents no key and has none bound joins unbound (an older client).
  std::string Check(const std::string& device_id, const seal::PublicKey* key);
  std::optional<seal::PublicKey> Bound(const std::string& device_id) const;
  // The operator's say: the device may bind a new key on its next join.
  bool Forget(const std::string& device_id);
  std::size_t size() const { return bound_.size(); }
  void SaveNow() { saver_.SaveNow(); }

 private:
  bool Save();

  std::string file_;
  std::unordered_map<std::string, seal::PublicKey> bound_;
  FileSaver saver_;  // Last: destroyed first.
};

// Parses a device keys file: `device_id public_key` a line (base64), '#'
// lines and blank lines skipped. False with `error` naming the line.
bool ParseDeviceKeys(std::string_view text, std::unordered_map<std::string, seal::PublicKey>* keys,
                     std::string* error);

}  // namespace mnedc::relay
