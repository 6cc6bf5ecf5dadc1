#include "mnedc/client/client.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::client {
namespace {
namespace asio = boost::asio;
using protocol::ControlMessage;
using base::Ipv4ToString;

// A peer's IPv6 address from its announcement: none unless 16 bytes.
std::optional<base::Ipv6Address> Address6(const std::string& bytes) {
  if (bytes.size() != 16) return std::nullopt;
  base::Ipv6Address address;
  std::memcpy(address.data(), bytes.data(), 16);
  return address;
}

// A peer's sealing keys from its announcement: none unless both are 32 bytes.
std::optional<discovery::Peer::Keys> Keys(const std::string& public_key, const std::string& session_key,
                                          uint32_t ciphers) {
  if (public_key.size() != 32 || session_key.size() != 32) return std::nullopt;
  discovery::Peer::Keys keys;
  keys.ciphers = ciphers & (protocol::OPENS_AES_256_GCM | protocol::SEALS_AES_256_GCM);
  std::memcpy(keys.public_key.data(), public_key.data(), 32);
  std::memcpy(keys.session_key.data(), session_key.data(), 32);
  return keys;
}

std::string Bytes(std::span<const uint8_t> bytes) { return std::string(bytes.begin(), bytes.end()); }
}  // namespace

Client::Client(asio::any_io_executor executor, ClientOptions options, Dialer dialer)
    : executor_(executor),
      options_(std::move(options)),
      dialer_(std::move(dialer)),
      backoff_timer_(executor),
      room_timer_(executor),
      stop_timer_(executor, std::chrono::steady_clock::time_point::max()),
      random_(std::random_device{}()) {
  if (!dialer_) {
    dialer_ = [this](const transport::ServerAddress& relay) { return transport::Dial(relay, options_.dial); };
  }
  relays_.push_back(options_.server);
  for (const auto& more : options_.more_servers) {
    const bool known = std::any_of(relays_.begin(), relays_.end(),
                                   [&](const auto& r) { return r.ToString() == more.ToString(); });
    if (!known) relays_.push_back(more);
  }
  given_relays_ = listed_relays_ = relays_.size();
  if (options_.device_key && options_.seal) {
    session_key_.emplace();
    if (!seal::KeyPair::Generate(&*session_key_)) {
      LOG(ERROR) << "cannot make a session key (the system's random source failed): presenting no keys, "
                    "so nothing is sealed";
      session_key_.reset();
    }
  }
  if (session_key_) {
    seals_with_ = options_.cipher.value_or(seal::HasAesInstructions() ? seal::Cipher::kAes256Gcm
                                                                        : seal::Cipher::kChaCha20Poly1305);
    sealing_ = std::make_unique<Sealing>(*options_.device_key, *session_key_, seals_with_);
    peers_.Subscribe([this](discovery::PeerEvent event, const discovery::Peer& peer) {
      if (event == discovery::PeerEvent::kUp) {
        sealing_->PeerUp(peer);
      } else {
        if (direct_) direct_->PeerDown(peer.address);
        sealing_->PeerDown(peer);
      }
    });
    if (options_.direct) {
      DirectOptions direct_options;
      direct_options.port = options_.direct_port;
      direct_ = std::make_unique<Direct>(
          executor_, *sealing_, direct_options,
          [this](uint32_t peer, std::span<const uint8_t> body) { return SendDiscoThroughRelay(peer, body); },
          [this](std::span<const uint8_t> packet, packet::Gso gso) { OnData(packet, gso); },
          [this] { OnReadBatchEnd(); });
      std::string error;
      if (!direct_->Open(&error)) {
        LOG(WARNING) << error << ": every packet goes through the relay";
        direct_.reset();
      }
    }
  }
}

Client::~Client() = default;

asio::awaitable<void> Client::WaitForRoom() {
  if (HasRoom()) co_return;
  room_timer_.expires_at(std::chrono::steady_clock::time_point::max());
  co_await room_timer_.async_wait(base::kUse);
}

void Client::Stop() {
  stopped_ = true;
  if (direct_) direct_->Close();
  stop_timer_.cancel();  // Ends a dial in flight.
  backoff_timer_.cancel();
  room_timer_.cancel();
  if (link_) {
    link_->set_end_reason("client stopping");
    link_->CloseAfterFlush();
  }
}

std::chrono::steady_clock::duration Client::NextBackoff() {
  // Exponential with "equal jitter": half fixed, half random, so a relay restart
  // is not followed by every device reconnecting in the same instant.
  auto ceiling = options_.backoff_initial;
  for (int i = 0; i < failures_in_a_row_ && ceiling < options_.backoff_max; ++i) ceiling *= 2;
  ceiling = std::min(ceiling, options_.backoff_max);
  std::uniform_int_distribution<int64_t> spread(0, ceiling.count() / 2);
  return ceiling / 2 + std::chrono::steady_clock::duration(spread(random_));
}

asio::awaitable<transport::DialOutcome> Client::DialUnlessStopped() {
  using namespace asio::experimental::awaitable_operators;
  auto wait_for_stop = [](asio::steady_timer& timer) -> asio::awaitable<void> {
    co_await timer.async_wait(base::kUse);
  };
  // Stop() cancels stop_timer_, which cancels the dial (the `||` waits for it).
  auto outcome = co_await (dialer_(relays_[current_]) || wait_for_stop(stop_timer_));
  if (outcome.index() == 0) co_return std::get<0>(std::move(outcome));
  co_return transport::DialOutcome{asio::error::operation_aborted, "stopped while connecting", nullptr};
}

asio::awaitable<void> Client::Run() {
  using namespace asio::experimental::awaitable_operators;
  if (direct_) {
    co_await (RunRelay() && direct_->Run());
  } else {
    co_await RunRelay();
  }
}

asio::awaitable<void> Client::RunRelay() {
  while (!stopped_) {
    ++counters_.connect_attempts;
    const std::string relay_text = relay().ToString();
    bool was_joined = false;
    auto [error, detail, stream] = co_await DialUnlessStopped();
    if (error || !stream) {
      ++counters_.connect_failures;
      last_error_ = detail.empty() ? "cannot reach relay " + relay_text + ": " + error.message() : detail;
    } else if (!stopped_) {
      const std::string relay = stream->peer();
      relay_peer_ = relay;
      transport_ = std::string(stream->kind());
      link_ = std::make_unique<link::FramedLink>(executor_, std::move(stream), options_.link);
      link_->OnDataTaken([this](std::size_t, std::size_t) { room_timer_.cancel(); });
      ControlMessage hello;
      hello.mutable_hello()->set_protocol_version(protocol::kProtocolVersion);
      hello.mutable_hello()->set_device_id(options_.device_id);
      hello.mutable_hello()->set_previous_address(lease_ ? lease_->address : 0);
      hello.mutable_hello()->set_credentials(options_.credentials);
      hello.mutable_hello()->set_peers(options_.want_peers ? protocol::PEERS_BATCHED
                                                           : protocol::PEERS_NONE);
      hello.mutable_hello()->set_super_packets(options_.super_packets);
      if (options_.device_key) hello.mutable_hello()->set_public_key(Bytes(options_.device_key->public_key()));
      if (session_key_) {
        hello.mutable_hello()->set_session_key(Bytes(session_key_->public_key()));
        hello.mutable_hello()->set_ciphers(protocol::OPENS_AES_256_GCM |
                                           (seals_with_ == seal::Cipher::kAes256Gcm ? protocol::SEALS_AES_256_GCM : 0));
      }
      link_->SendControl(hello);
      co_await link_->Run(*this);
      was_joined = joined_;
      if (last_error_.empty() || joined_) last_error_ = link_->end_reason();
      LOG(WARNING) << "connection to relay " << relay_text << " (" << relay << ") ended: " << last_error_;
      joined_ = false;
      link_.reset();
      room_timer_.cancel();  // Disconnected: the feeder may go on (and drop).
    }
    if (stopped_) break;
    if (was_joined) {
      failures_in_a_row_ = 0;
      failed_this_round_ = 0;
    } else {
      ++failed_this_round_;
    }
    // The next relay, whatever happened to this one.
    const std::size_t next = NextRelay();
    if (was_joined) {
      // A relay that served us went away: the next one at once, if there is
      // another; the same one after a short wait if not.
      if (next != current_) {
        current_ = next;
        LOG(INFO) << "trying relay " << relay().ToString() << " next";
        continue;
      }
    } else if (failed_this_round_ < relays_.size()) {
      current_ = next;
      LOG(INFO) << last_error_ << "; trying relay " << relay().ToString() << " next";
      continue;
    }
    // Every relay failed in a row (or the only one went away): wait, then
    // start over with the next.
    failed_this_round_ = 0;
    current_ = next;
    const auto wait = NextBackoff();
    ++failures_in_a_row_;
    LOG(INFO) << last_error_ << "; retrying " << (relays_.size() > 1 ? "the relays" : "the relay") << " in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() << " ms";
    backoff_timer_.expires_after(wait);
    co_await backoff_timer_.async_wait(base::kUse);
  }
  peers_.Clear();
}

std::size_t Client::NextRelay() const {
  const std::size_t listed = listed_relays_;
  if (current_ < listed) {
    // Round the relays given and named now, then (once each has failed in
    // this round) those no longer named: a relay that has left the cluster
    // for good may cost a connect timeout, so it comes last.
    if (failed_this_round_ < listed) {
      const std::size_t candidate = (current_ + 1) % listed;
      if (candidate != current_) return candidate;
    }
    return listed < relays_.size() ? listed : current_;
  }
  return current_ + 1 < relays_.size() ? current_ + 1 : 0;
}

void Client::LearnRelays(const std::vector<std::string>& urls) {
  const std::string current = relay().ToString();
  std::vector<transport::ServerAddress> relays(relays_.begin(), relays_.begin() + given_relays_);
  auto add = [&](const transport::ServerAddress& address) {
    if (relays.size() >= given_relays_ + kMaxLearnedRelays) return;
    const std::string text = address.ToString();
    if (std::none_of(relays.begin(), relays.end(), [&](const auto& r) { return r.ToString() == text; })) {
      relays.push_back(address);
    }
  };
  for (const std::string& url : urls) {
    std::string error;
    const auto address = transport::ParseServerAddress(url, transport::kDefaultRelayPort, &error);
    if (!address) {
      LOG_EVERY_N(WARNING, 100) << "relay named another relay that is not an address: " << error;
      continue;
    }
    add(*address);
  }
  // Relays learned before that the list no longer names stay, after those it
  // does: one that is restarting drops out of the cluster's list for a while,
  // and the relay in use may be the next to go.
  const std::size_t listed = relays.size();
  for (std::size_t i = given_relays_; i < relays_.size(); ++i) add(relays_[i]);
  listed_relays_ = listed;
  if (relays.size() != relays_.size() ||
      !std::equal(relays.begin(), relays.end(), relays_.begin(),
                  [](const auto& a, const auto& b) { return a.ToString() == b.ToString(); })) {
    std::string list;
    for (const auto& r : relays) list += (list.empty() ? "" : ", ") + r.ToString();
    LOG(INFO) << "relays known: " << list;
  }
  relays_ = std::move(relays);
  // Keep pointing at the relay in use (it may have been a learned one the
  // new list no longer names: then the list starts over).
  current_ = 0;
  for (std::size_t i = 0; i < relays_.size(); ++i) {
    if (relays_[i].ToString() == current) current_ = i;
  }
}

bool Client::OnControl(const ControlMessage& message) {
  switch (message.body_case()) {
    case ControlMessage::kLease: {
      const auto& lease = message.lease();
      LeaseInfo info{lease.address(), lease.prefix_length(), lease.mtu(), lease.relay_address(),
                     options_.super_packets && lease.super_packets()};
      info.stun_port = lease.stun_port() <= 65535 ? static_cast<uint16_t>(lease.stun_port()) : 0;
      if (info.prefix_length < 8 || info.prefix_length > 30 || info.mtu < 576 ||
          info.mtu > protocol::kMaxFramePayload) {
        last_error_ = "relay sent an unusable lease";
        link_->set_end_reason(last_error_);
        return false;
      }
      if (!lease.address6().empty()) {
        // A malformed IPv6 part costs the device IPv6, not its IPv4 lease.
        if (lease.address6().size() == 16 && lease.relay_address6().size() == 16 && lease.prefix_length6() >= 8 &&
            lease.prefix_length6() <= 128) {
          info.address6.emplace();
          std::memcpy(info.address6->data(), lease.address6().data(), 16);
          std::memcpy(info.relay_address6.data(), lease.relay_address6().data(), 16);
          info.prefix_length6 = lease.prefix_length6();
        } else {
          LOG(WARNING) << "relay sent an unusable IPv6 lease (" << lease.address6().size() << " address bytes, /"
                       << lease.prefix_length6() << "): this device uses IPv4 only";
        }
      }
      if (lease_ && lease_->address != info.address) {
        LOG(WARNING) << "relay leased a different address: " << Ipv4ToString(info.address)
                     << " instead of " << Ipv4ToString(lease_->address);
      }
      lease_ = info;
      if (sealing_) {
        const uint32_t mask = info.prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - info.prefix_length);
        sealing_->SetLease(info.address, info.address & mask, info.address6);
      }
      if (direct_) {
        direct_->SetOverlay(info.address, info.prefix_length, info.mtu);
        // STUN at the address this connection reached the relay at.
        std::optional<Direct::Endpoint> stun_server;
        std::string error;
        const auto relay = transport::ParseHostPort(relay_peer_, 0, &error);
        boost::system::error_code ec;
        const auto address = relay ? asio::ip::make_address(relay->host, ec) : asio::ip::address();
        if (info.stun_port != 0 && relay && !ec) stun_server.emplace(address, info.stun_port);
        direct_->SetStunServer(stun_server);
      }
      LearnRelays(std::vector<std::string>(lease.relays().begin(), lease.relays().end()));
      link_->set_peer_takes_super_packets(info.super_packets);
      joined_ = true;
      joined_since_ = std::chrono::system_clock::now();
      last_error_.clear();
      ++counters_.joins;
      link_->MarkEstablished();
      // A relay older than PeerMode leaves lease.peers() 0 and sends peers one
      // message each, which we take as well. One that sends none has no
      // snapshot to sync with: the table stays empty.
      if (lease.peers() == protocol::PEERS_NONE) {
        peers_.Clear();
      } else {
        peers_.BeginSync();
      }
      LOG(INFO) << "joined as " << options_.device_id << " with " << Ipv4ToString(info.address)
                << "/" << info.prefix_length
                << (info.address6 ? " and " + base::Ipv6ToString(*info.address6) + "/" +
                                        std::to_string(info.prefix_length6)
                                  : std::string())
                << ", mtu " << info.mtu
                << (info.super_packets ? ", super-packets both ways" : "");
      if (lease_handler_) lease_handler_(info);
      return true;
    }
    case ControlMessage::kPeerAnnounce: {
      const auto& peer = message.peer_announce();
      peers_.Upsert({peer.device_id(), peer.address(), peer.seen_from(), Address6(peer.address6()),
                     Keys(peer.public_key(), peer.session_key(), peer.ciphers())});
      return true;
    }
    case ControlMessage::kSnapshotEnd:
      peers_.EndSync();
      return true;
    case ControlMessage::kPeerGone:
      peers_.Remove(message.peer_gone().device_id());
      return true;
    case ControlMessage::kRelayList: {
      const auto& list = message.relay_list().relays();
      LearnRelays(std::vector<std::string>(list.begin(), list.end()));
      return true;
    }
    case ControlMessage::kPeerList: {
      const auto& list = message.peer_list();
      for (const auto& change : list.changes()) {
        // Our own join comes in the batch that tells the others.
        if (change.device_id() == options_.device_id) continue;
        if (change.gone()) {
          peers_.Remove(change.device_id());
        } else {
          peers_.Upsert({change.device_id(), change.address(), change.seen_from(), Address6(change.address6()),
                         Keys(change.public_key(), change.session_key(), change.ciphers())});
        }
      }
      if (list.snapshot_end()) peers_.EndSync();
      return true;
    }
    case ControlMessage::kError:
      last_error_ = "relay refused: " + protocol::Error::Code_Name(message.error().code()) + ": " +
                    message.error().text();
      LOG(ERROR) << last_error_;
      link_->set_end_reason(last_error_);
      if (message.error().code() == protocol::Error::SUPERSEDED ||
          message.error().code() == protocol::Error::KICKED) {
        // Another instance uses our device ID, or an operator closed us out:
        // coming straight back helps no one; wait the longest backoff.
        failures_in_a_row_ = 100;
        joined_ = false;
      }
      if (message.error().code() == protocol::Error::BUSY) {
        // The relay is full (or out of descriptors): wait seconds, not
        // milliseconds, so a crowd of refused devices does not come straight back.
        failures_in_a_row_ = std::max(failures_in_a_row_, 4);
      }
      return false;
    default:
      return true;  // Hello and future messages are not for a client.
  }
}

}  // namespace mnedc::client
