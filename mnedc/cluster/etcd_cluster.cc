#include "mnedc/cluster/etcd_cluster.h"

#include <glog/logging.h>

#include <algorithm>
#include <boost/json.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/seal/keys.h"

namespace mnedc::cluster {
namespace asio = boost::asio;
namespace {
// Relays a relay links with at most: the mesh is a link per pair.
constexpr std::size_t kMaxPeers = 64;
}  // namespace
namespace json = boost::json;
using base::kUse;

EtcdCluster::EtcdCluster(asio::any_io_executor executor, ClusterOptions options)
    : options_(std::move(options)),
      etcd_(executor, options_.etcd, options_.call_timeout),
      leases_(etcd_, options_.prefix, options_.pool),
      wake_(executor) {
  relays_.push_back(options_.advertise);
}

std::string EtcdCluster::MemberValue(uint32_t address, const std::string& seen_from) const {
  return json::serialize(
      json::object{{"relay", options_.name}, {"address", base::Ipv4ToString(address)}, {"seen_from", seen_from}});
}

void EtcdCluster::NoteReachable(bool reachable, const std::string& error) {
  if (reachable == reachable_) return;
  reachable_ = reachable;
  if (reachable) {
    LOG(INFO) << "cluster store (etcd) reachable again: new devices can join";
  } else {
    LOG(WARNING) << "cluster store (etcd) unreachable: " << error
                 << "; forwarding goes on, devices seen before may join again, new ones must wait";
  }
}

asio::awaitable<std::optional<std::string>> EtcdCluster::CheckKey(const std::string& device_id,
                                                                   const std::string& public_key,
                                                                   std::string* error) {
  const std::string key = options_.prefix + "key/" + device_id;
  const std::string presented =
      public_key.size() == seal::kKeySize
          ? seal::EncodeKey(std::span<const uint8_t, seal::kKeySize>(
                reinterpret_cast<const uint8_t*>(public_key.data()), seal::kKeySize))
          : std::string();
  // Twice at most: a lost race to bind means another relay bound it just now.
  for (int round = 0; round < 2; ++round) {
    auto bound = co_await etcd_.Range(key, "", error);
    if (!bound) co_return std::nullopt;
    if (!bound->empty()) {
      const std::string& value = (*bound)[0].value;
      if (!presented.empty() && value == presented) co_return std::string();
      co_return "device " + device_id + " is bound to the key " + value.substr(0, 8) +
          "... in the network's store, and this client " +
          (presented.empty() ? "presents none (an older version?)" : "holds another (" + presented.substr(0, 8) + "...)") +
          "; if the device really has a new key, the operator deletes " + key + " from etcd";
    }
    if (presented.empty()) co_return std::string();
    std::vector<std::string> absent = {key};
    std::vector<std::pair<std::string, std::string>> puts = {{key, presented}};
    auto put = co_await etcd_.PutIfAbsent(std::move(absent), std::move(puts), 0, error);
    if (!put) co_return std::nullopt;
    if (*put) {
      LOG(INFO) << "device " << device_id << " is now bound to the key " << presented
                << " in the network's store (its first join with one)";
      co_return std::string();
    }
  }
  co_return "device " + device_id + "'s key binding keeps changing in the store; try again";
}

asio::awaitable<relay::StoreLease> EtcdCluster::Acquire(std::string device_id, uint32_t previous,
                                                        std::string public_key, bool check_key) {
  relay::StoreLease out;
  if (!fatal_error_.empty()) {
    out.error = fatal_error_;
    out.unavailable = true;
    co_return out;
  }
  std::string error;
  if (check_key) {
    const std::optional<std::string> refused = co_await CheckKey(device_id, public_key, &error);
    if (refused && !refused->empty()) {
      out.error = *refused;
      out.wrong_key = true;
      co_return out;
    }
    if (!refused) {
      // etcd is away: a device seen here before may come back with the key
      // it had; anything else waits for etcd.
      const auto known = known_keys_.find(device_id);
      if (known == known_keys_.end() || known->second != public_key) {
        NoteReachable(false, error);
        out.error = "the cluster store (etcd) cannot be reached to lease an address to a new device (" + error +
                    "); try again later";
        out.unavailable = true;
        co_return out;
      }
    }
  }
  bool full = false;
  out.address = co_await leases_.Acquire(device_id, previous, &error, &full);
  if (out.address) {
    NoteReachable(true, {});
    known_[device_id] = *out.address;
    known_keys_[device_id] = public_key;
    co_return out;
  }
  if (full) {
    out.error = error;
    co_return out;
  }
  NoteReachable(false, error);
  if (auto known = known_.find(device_id); known != known_.end()) {
    // Addresses are never handed to another device: it is still this one's.
    LOG(WARNING) << "etcd unreachable: " << device_id << " joins again with the address it had, "
                 << base::Ipv4ToString(known->second);
    out.address = known->second;
    co_return out;
  }
  out.error =
      "the cluster store (etcd) cannot be reached to lease an address to a new device (" + error + "); try again later";
  out.unavailable = true;
  co_return out;
}

void EtcdCluster::Joined(const std::string& device_id, uint32_t address, const std::string& seen_from) {
  members_[device_id] = Member{address, seen_from};
  pending_[device_id] = Pending{MemberValue(address, seen_from), true};
  wake_.cancel();
}

void EtcdCluster::Left(const std::string& device_id) {
  members_.erase(device_id);
  pending_[device_id] = Pending{};
  wake_.cancel();
}

void EtcdCluster::Stop() {
  stopping_ = true;
  wake_.cancel();
}

asio::awaitable<bool> EtcdCluster::Register(std::string* error) {
  // The network: the first relay writes it, every other must have the same.
  const std::string network_key = options_.prefix + "network";
  std::vector<std::string> absent = {network_key};
  std::vector<std::pair<std::string, std::string>> puts = {{network_key, options_.network}};
  if (!co_await etcd_.PutIfAbsent(std::move(absent), std::move(puts), 0, error)) co_return false;
  auto network = co_await etcd_.Range(network_key, "", error);
  if (!network) co_return false;
  if (network->size() == 1 && (*network)[0].value != options_.network) {
    fatal_error_ = "the cluster under " + options_.prefix + " is the network " + (*network)[0].value +
                   ", this relay's is " + options_.network + ": give every relay the same --network";
    *error = fatal_error_;
    co_return false;
  }
  if (!options_.network6.empty()) {
    // Relays of an older version, or with --network6=none, leave it alone: they route IPv4 only.
    const std::string network6_key = options_.prefix + "network6";
    absent = {network6_key};
    puts = {{network6_key, options_.network6}};
    if (!co_await etcd_.PutIfAbsent(std::move(absent), std::move(puts), 0, error)) co_return false;
    auto network6 = co_await etcd_.Range(network6_key, "", error);
    if (!network6) co_return false;
    if (network6->size() == 1 && (*network6)[0].value != options_.network6) {
      fatal_error_ = "the cluster under " + options_.prefix + " has the IPv6 network " + (*network6)[0].value +
                     ", this relay's is " + options_.network6 +
                     ": by default it is made from the cluster secret and --network, so this relay has another "
                     "--cluster_secret_file than the others, or another --network6";
      *error = fatal_error_;
      co_return false;
    }
  }
  const auto lease = co_await etcd_.GrantLease(options_.ttl.count(), error);
  if (!lease) co_return false;
  // The name is this relay's alone: a key of another live relay under it
  // refuses the registration (one killed a moment ago goes within its TTL).
  const std::string relay_key = options_.prefix + "relay/" + options_.name;
  const std::string relay_value =
      json::serialize(json::object{{"advertise", options_.advertise}, {"mesh", options_.mesh}});
  absent = {relay_key};
  puts = {{relay_key, relay_value}};
  auto put = co_await etcd_.PutIfAbsent(std::move(absent), std::move(puts), *lease, error);
  if (put && !*put) {
    auto existing = co_await etcd_.Range(relay_key, "", error);
    if (existing && !existing->empty() && (*existing)[0].lease != 0) {
      *error = "another relay named " + options_.name + " is registered (" + (*existing)[0].value +
               "); if it has just died it goes within " + std::to_string(options_.ttl.count()) + " s";
    }
  }
  if (!put || !*put) {
    std::string ignored;
    co_await etcd_.RevokeLease(*lease, &ignored);
    co_return false;
  }
  lease_ = *lease;
  // Every member again, under the new lease (the old one's keys are gone,
  // unless another relay has written them since), except those with a write
  // of their own pending.
  for (const auto& [id, member] : members_) {
    pending_.try_emplace(id, Pending{MemberValue(member.address, member.seen_from), false});
  }
  co_return true;
}

asio::awaitable<bool> EtcdCluster::WriteMembers(std::string* error) {
  while (!pending_.empty()) {
    auto [id, pending] = *pending_.begin();
    pending_.erase(pending_.begin());
    const std::string key = options_.prefix + "member/" + id;
    bool ok = true;
    const auto was = written_.find(id);
    if (pending.value) {
      std::optional<int64_t> revision;
      if (pending.fresh) {
        revision = co_await etcd_.Put(key, *pending.value, lease_, error);
      } else {
        revision = co_await etcd_.PutUnlessWrittenSince(key, *pending.value, lease_,
                                                        was == written_.end() ? 0 : was->second.revision, error);
      }
      if (!pending.fresh && revision && *revision == 0) {
        // Another relay wrote it since: the device joined there after it
        // joined here, and its connection here is one nobody has noticed is
        // dead yet (this relay was cut off). The relay closes it.
        MemberElsewhere(id);
        continue;
      }
      ok = revision.has_value();
      if (ok) written_[id] = Written{*pending.value, *revision};
    } else if (was != written_.end()) {
      // Only our own key: the device may be on another relay already.
      ok = (co_await etcd_.DeleteIfValue(key, was->second.value, error)).has_value();
      if (ok) written_.erase(id);
    }
    if (!ok) {
      // Again at the next round, unless something newer came meanwhile.
      pending_.emplace(id, pending);
      co_return false;
    }
  }
  co_return true;
}

void EtcdCluster::MemberElsewhere(const std::string& device_id) {
  // Not ours to write any more; its relay closes it here (and calls Left).
  written_.erase(device_id);
  members_.erase(device_id);
  LOG(WARNING) << "device " << device_id << " has joined another relay since (the cluster store says so)";
  if (member_elsewhere_) member_elsewhere_(device_id);
}

asio::awaitable<bool> EtcdCluster::CheckMembers(std::string* error) {
  const std::string prefix = options_.prefix + "member/";
  auto kvs = co_await etcd_.Range(prefix, EtcdClient::PrefixEnd(prefix), error, members_checked_ + 1);
  if (!kvs) co_return false;
  for (const KeyValue& kv : *kvs) {
    members_checked_ = std::max(members_checked_, kv.mod_revision);
    const std::string id = kv.key.substr(prefix.size());
    if (!members_.count(id)) continue;
    // Ours (as written, or a write of ours still to come), or older than ours.
    if (auto pending = pending_.find(id); pending != pending_.end() && pending->second.fresh) continue;
    if (auto was = written_.find(id); was != written_.end() && kv.mod_revision <= was->second.revision) continue;
    json::error_code parse_error;
    const json::value value = json::parse(kv.value, parse_error);
    const json::value* relay = !parse_error && value.is_object() ? value.as_object().if_contains("relay") : nullptr;
    if (relay && relay->is_string() && relay->as_string() == options_.name) continue;
    MemberElsewhere(id);
  }
  co_return true;
}

asio::awaitable<bool> EtcdCluster::RefreshRelays(std::string* error) {
  const std::string prefix = options_.prefix + "relay/";
  auto kvs = co_await etcd_.Range(prefix, EtcdClient::PrefixEnd(prefix), error);
  if (!kvs) co_return false;
  std::vector<std::string> relays = {options_.advertise};
  std::vector<relay::RelayPeer> peers;
  for (const KeyValue& kv : *kvs) {
    json::error_code parse_error;
    const json::value value = json::parse(kv.value, parse_error);
    if (parse_error || !value.is_object()) continue;
    const json::value* advertise = value.as_object().if_contains("advertise");
    const json::value* mesh = value.as_object().if_contains("mesh");
    const std::string name = kv.key.substr(prefix.size());
    if (name == options_.name) continue;
    if (mesh && mesh->is_string() && peers.size() < kMaxPeers) {
      peers.push_back(relay::RelayPeer{name, std::string(mesh->as_string()),
                                       advertise && advertise->is_string() ? std::string(advertise->as_string())
                                                                           : std::string()});
    }
    if (!advertise || !advertise->is_string()) continue;
    std::string text(advertise->as_string());
    if (text != options_.advertise && relays.size() < 16) relays.push_back(std::move(text));
  }
  if (relays == relays_ && peers == peers_) co_return true;
  peers_ = std::move(peers);
  std::string list;
  for (const std::string& relay : relays) list += (list.empty() ? "" : ", ") + relay;
  LOG(INFO) << "relays of the cluster: " << list;
  relays_ = std::move(relays);
  if (relays_changed_) relays_changed_();
  co_return true;
}

asio::awaitable<void> EtcdCluster::Run() {
  co_await base::NoThrowOnCancel();
  const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.ttl) / 3;
  std::string last_refusal;
  std::chrono::steady_clock::time_point refused_since{};
  while (!stopping_ && fatal_error_.empty()) {
    std::string error;
    bool ok = true;
    if (lease_ == 0) {
      ok = co_await Register(&error);
      if (!fatal_error_.empty()) {
        LOG(ERROR) << fatal_error_;
        break;
      }
      if (ok) {
        LOG(INFO) << "registered in the cluster store as relay " << options_.name << " (" << options_.advertise << ")";
        last_refusal.clear();
      } else if (error.rfind("another relay named", 0) == 0) {
        // etcd answered: the name is taken. By a relay that has just died,
        // it comes free within the TTL; by a live one, never.
        const auto now = std::chrono::steady_clock::now();
        if (last_refusal.empty()) refused_since = now;
        if (error != last_refusal) LOG(WARNING) << error << "; trying again";
        last_refusal = error;
        if (now - refused_since > 2 * options_.ttl) {
          fatal_error_ = "another relay named " + options_.name + " is running: give each relay its own --cluster_name";
          LOG(ERROR) << fatal_error_;
          break;
        }
        ok = true;
      }
    } else {
      const auto left = co_await etcd_.KeepAlive(lease_, &error);
      ok = left.has_value();
      if (left && *left == 0) {
        LOG(WARNING) << "this relay's lease in the cluster store expired (etcd was unreachable for "
                        "longer than its TTL): registering again";
        lease_ = 0;
        continue;
      }
    }
    if (ok && lease_ != 0) ok = co_await WriteMembers(&error);
    if (ok && lease_ != 0) ok = co_await RefreshRelays(&error);
    if (ok && lease_ != 0) ok = co_await CheckMembers(&error);
    NoteReachable(ok, error);
    if (stopping_) break;
    if (ok && !pending_.empty()) continue;  // Changes that came during this round.
    wake_.expires_after(period);
    co_await wake_.async_wait(kUse);
    // Woken early for a member change: write it now, not a period later
    // (a keepalive early costs nothing).
  }
  if (lease_ != 0) {
    std::string error;
    if (co_await etcd_.RevokeLease(lease_, &error)) {
      LOG(INFO) << "left the cluster store: this relay and its members are gone from it";
    }
    lease_ = 0;
  }
}

}  // namespace mnedc::cluster
