#include "mnedc/relay/relay.h"

#include <glog/logging.h>

#include <sys/socket.h>

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"
#include "mnedc/relay/ip_packet.h"
#include "mnedc/relay/lease_file.h"
#include "mnedc/transport/accept_loop.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::relay {
namespace {
namespace asio = boost::asio;
using protocol::ControlMessage;
using base::Ipv4ToString;
}  // namespace

std::string_view DropReasonName(DropReason reason) {
  switch (reason) {
    case DropReason::kQueueFull:
      return "queue_full";
    case DropReason::kUnknownDestination:
      return "unknown_destination";
    case DropReason::kSpoofedSource:
      return "spoofed_source";
    case DropReason::kMalformed:
      return "malformed";
    case DropReason::kIpv6:
      return "ipv6";
    case DropReason::kNotJoined:
      return "not_joined";
    case DropReason::kNoLocalTun:
      return "no_local_tun";
    case DropReason::kReceiverClosing:
      return "receiver_closing";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

// One connection to the relay. Owned by the Serve() coroutine; the relay's maps
// point at it only between Join and Leave, and Leave runs before it is destroyed.
class Session final : public transport::FrameSink {
 public:
  Session(Relay& relay, std::unique_ptr<transport::Stream> stream)
      : relay_(relay),
        link_(relay.executor_, std::move(stream), relay.options_.link),
        resume_(relay.executor_),
        connected_since_(std::chrono::system_clock::now()) {
    link_.OnDataTaken([this](std::size_t packets, std::size_t bytes) {
      relay_.counters_.packets_forwarded += packets;
      relay_.counters_.bytes_forwarded += bytes;
      stalled_ = false;
      WakeWaiters();
    });
  }

  ~Session() override {
    StopWaiting();
    WakeWaiters();
  }

  transport::DataVerdict OnData(std::span<const uint8_t> packet) override {
    if (superseded_) return transport::DataVerdict::kAccepted;  // The newer connection owns it.
    if (!joined_) {
      relay_.Drop(DropReason::kNotJoined);
      return transport::DataVerdict::kAccepted;
    }
    Session* full = relay_.Route(this, packet);
    if (!full) return transport::DataVerdict::kAccepted;
    ++relay_.counters_.pushbacks;
    waiting_on_ = full;
    full->waiters_.push_back(this);
    return transport::DataVerdict::kRetryLater;
  }

  boost::asio::awaitable<void> WaitToRetry() override {
    resume_.expires_after(relay_.options_.max_pushback);
    auto [ec] = co_await resume_.async_wait(base::kUse);
    if (!ec && waiting_on_) {
      // The receiver did not drain in time: stop waiting for it, drop instead.
      Session& slow = *waiting_on_;
      StopWaiting();
      if (!slow.stalled_) {
        slow.stalled_ = true;
        ++relay_.counters_.stalled_receivers;
        LOG(WARNING) << "device " << slow.device_id_ << " is not draining its queue; dropping "
                     << "packets to it until it does";
      }
    }
  }

  // Lets every sender paused for this session's queue go on.
  void WakeWaiters() {
    for (Session* waiter : waiters_) {
      waiter->waiting_on_ = nullptr;
      waiter->resume_.cancel();
    }
    waiters_.clear();
  }

  void StopWaiting() {
    if (!waiting_on_) return;
    std::erase(waiting_on_->waiters_, this);
    waiting_on_ = nullptr;
  }

  bool stalled() const { return stalled_; }

  bool OnControl(const ControlMessage& message) override {
    if (message.has_hello()) {
      if (joined_) {
        link_.SendErrorAndClose(protocol::Error::BAD_REQUEST, "Hello after the join");
        return false;
      }
      relay_.Join(*this, message.hello());
      return !link_.closing();
    }
    // Lease, PeerAnnounce, ... are relay-to-client messages: ignore them.
    return true;
  }

  // The relay found a newer connection for this device.
  void Supersede() {
    superseded_ = true;
    link_.set_end_reason("superseded by a newer connection of the same device");
    link_.SendErrorAndClose(protocol::Error::SUPERSEDED,
                            "device " + device_id_ + " joined again on a newer connection");
  }

  MemberInfo Info() const {
    return MemberInfo{device_id_, address_, std::string(link_stream_kind()),
                      seen_from(), connected_since_, link_.counters()};
  }
  std::string_view link_stream_kind() const { return link_.stream().kind(); }
  const std::string& seen_from() const { return link_.stream().peer(); }

  Relay& relay_;
  transport::FramedLink link_;
  asio::steady_timer resume_;            // A paused reader waits on this.
  Session* waiting_on_ = nullptr;        // The full receiver this reader waits for.
  std::vector<Session*> waiters_;        // Senders waiting for this session's queue.
  bool stalled_ = false;                 // Did not drain within max_pushback.
  std::chrono::system_clock::time_point connected_since_;
  std::string device_id_;
  uint32_t address_ = 0;
  TokenDigest credentials_{};          // SHA-256 of what the Hello presented.
  bool presented_credentials_ = false;
  bool joined_ = false;
  bool superseded_ = false;
};

Relay::Relay(asio::any_io_executor executor, RelayOptions options)
    : executor_(std::move(executor)),
      options_(options),
      pool_(options.prefix),
      lease_save_timer_(executor_) {
  policy_.SetSharedToken(options_.join_token);
  if (!options_.device_tokens.empty()) policy_.SetDeviceTokens(options_.device_tokens);
}

Relay::~Relay() = default;

bool Relay::RestoreLeases(std::string* error) {
  if (options_.lease_file.empty()) return true;
  int skipped = 0;
  if (!LoadLeaseFile(options_.lease_file, pool_, &skipped, error)) return false;
  saved_lease_generation_ = pool_.generation();
  LOG(INFO) << "restored " << pool_.Leases().size() << " leases from " << options_.lease_file
            << (skipped ? " (skipped " + std::to_string(skipped) + " lines outside " +
                              options_.prefix.ToString() + " or in conflict)"
                        : "");
  return true;
}

void Relay::ScheduleLeaseSave() {
  if (options_.lease_file.empty() || lease_save_pending_ ||
      pool_.generation() == saved_lease_generation_) {
    return;
  }
  // Batched: a burst of joins after a restart costs one write, not one each.
  lease_save_pending_ = true;
  lease_save_timer_.expires_after(std::chrono::seconds(1));
  lease_save_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    lease_save_pending_ = false;
    SaveLeases();
  });
}

void Relay::SaveLeases() {
  if (options_.lease_file.empty() || pool_.generation() == saved_lease_generation_) return;
  std::string error;
  if (!SaveLeaseFile(options_.lease_file, pool_, &error)) {
    LOG_EVERY_N(ERROR, 10) << error << "; leases stay in memory";
    return;
  }
  saved_lease_generation_ = pool_.generation();
}

namespace {
std::string LocalEndpointText(const asio::ip::tcp::acceptor& acceptor) {
  boost::system::error_code ec;
  const auto endpoint = acceptor.local_endpoint(ec);
  if (ec) return "?";
  return transport::HostPort{endpoint.address().to_string(), endpoint.port()}.ToString();
}
}  // namespace

asio::awaitable<void> Relay::AcceptLoop(asio::ip::tcp::acceptor& acceptor) {
  // On EMFILE and friends it pauses and keeps serving the members we have.
  transport::AcceptLoopOptions options;
  options.what = "relay port " + LocalEndpointText(acceptor);
  options.errors = &counters_.accept_errors;
  auto serve = [this](asio::ip::tcp::socket socket) { return ServeSocket(std::move(socket)); };
  // Named, not temporaries in the co_await: GCC 12 may destroy those twice.
  co_await transport::AcceptLoop(acceptor, std::move(serve), std::move(options));
}

asio::awaitable<void> Relay::ServeSocket(asio::ip::tcp::socket socket) {
  const std::string peer = transport::PeerText(socket);
  if (shutting_down_) co_return;
  if (connection_count() >= options_.max_connections) {
    ++counters_.connections_refused;
    LOG_EVERY_N(WARNING, 100) << peer << ": refused: already serving " << connection_count()
                              << " connections (the limit)";
    co_return;
  }
  const int fd = socket.native_handle();
  handshaking_.insert(fd);
  auto accept = options_.accept;
  accept.timeout = options_.link.handshake_timeout;
  auto outcome = co_await transport::AcceptStream(std::move(socket), accept);
  handshaking_.erase(fd);
  if (outcome.stream && shutting_down_) co_return;
  if (!outcome.stream) {
    ++counters_.connections_refused;
    // Scanners hit exposed relays all day: log the first of every 20 (all are counted).
    LOG_EVERY_N(INFO, 20) << peer << ": refused: " << outcome.refused << " (refusal #"
                          << google::COUNTER << ")";
    co_return;
  }
  co_await Serve(std::move(outcome.stream));
}

std::string Relay::Authorize(const Session& session, const std::string& device_id) const {
  if (options_.bind_device_to_certificate) {
    const auto& names = session.link_.stream().certificate_names();
    if (names.empty()) {
      return "this relay binds device IDs to client certificates: join over tls:// or wss:// "
             "with a certificate that names " + device_id;
    }
    if (std::find(names.begin(), names.end(), device_id) == names.end()) {
      return "the client certificate does not name device " + device_id;
    }
  }
  return policy_.Check(device_id, session.credentials_, session.presented_credentials_);
}

std::size_t Relay::SetJoinPolicy(JoinPolicy policy) {
  policy_ = std::move(policy);
  std::vector<Session*> revoked;
  for (const auto& [id, session] : by_device_) {
    if (!Authorize(*session, id).empty()) revoked.push_back(session);
  }
  for (Session* session : revoked) {
    ++counters_.revoked;
    LOG(WARNING) << "device " << session->device_id_ << " (" << Ipv4ToString(session->address_)
                 << ") is no longer authorized: disconnecting it";
    session->link_.set_end_reason("token revoked");
    session->link_.SendErrorAndClose(protocol::Error::UNAUTHORIZED,
                                     "the relay no longer accepts this device's token");
    // It leaves now, not when its connection has finished closing: its address
    // must not receive another packet.
    Leave(*session);
  }
  return revoked.size();
}

bool Relay::Kick(const std::string& device_id, const std::string& reason) {
  const auto found = by_device_.find(device_id);
  if (found == by_device_.end()) return false;
  Session& session = *found->second;
  ++counters_.kicked;
  LOG(WARNING) << "device " << device_id << " (" << Ipv4ToString(session.address_)
               << ") kicked by an operator: " << reason;
  session.link_.set_end_reason("kicked by an operator: " + reason);
  session.link_.SendErrorAndClose(protocol::Error::KICKED, "closed by the relay's operator: " + reason);
  Leave(session);
  return true;
}

asio::awaitable<void> Relay::Serve(std::unique_ptr<transport::Stream> stream) {
  if (shutting_down_) co_return;
  Session session(*this, std::move(stream));
  all_sessions_.insert(&session);
  VLOG(1) << session.seen_from() << ": connected over " << session.link_stream_kind();
  co_await session.link_.Run(session);
  all_sessions_.erase(&session);
  // Packets still queued to it when it closed were never delivered.
  counters_.drops[static_cast<std::size_t>(DropReason::kReceiverClosing)] +=
      session.link_.counters().data_dropped_on_close;
  Leave(session);
  if (!session.device_id_.empty()) {
    LOG(INFO) << "device " << session.device_id_ << " (" << Ipv4ToString(session.address_)
              << ", " << session.seen_from() << ") left: " << session.link_.end_reason();
  } else {
    LOG(INFO) << session.seen_from() << " disconnected before joining: "
              << session.link_.end_reason();
  }
}

void Relay::Join(Session& session, const protocol::Hello& hello) {
  auto reject = [&](protocol::Error::Code code, const std::string& why) {
    ++counters_.joins_rejected;
    LOG_EVERY_N(WARNING, 20) << session.seen_from() << ": join refused: " << why
                             << " (refusal #" << google::COUNTER << ")";
    session.link_.set_end_reason("join refused: " + why);
    session.link_.SendErrorAndClose(code, why);
  };
  if (hello.protocol_version() != protocol::kProtocolVersion) {
    return reject(protocol::Error::VERSION_MISMATCH,
                  "protocol version " + std::to_string(hello.protocol_version()) +
                      " is not supported; this relay speaks " +
                      std::to_string(protocol::kProtocolVersion));
  }
  const std::string& id = hello.device_id();
  if (!base::IsValidDeviceId(id)) return reject(protocol::Error::BAD_REQUEST, base::kDeviceIdRule);
  // Kept (as a digest) so a reload of the token files can re-check members.
  session.credentials_ = DigestToken(hello.credentials());
  session.presented_credentials_ = !hello.credentials().empty();
  if (std::string why = Authorize(session, id); !why.empty()) {
    ++counters_.auth_failures;
    return reject(protocol::Error::UNAUTHORIZED, why);
  }
  if (shutting_down_) return reject(protocol::Error::SHUTTING_DOWN, "relay is shutting down");

  // The same device joined again (it lost its connection and we have not noticed
  // yet, or it runs twice): the newer connection wins, the older one is told why.
  if (auto existing = by_device_.find(id); existing != by_device_.end()) {
    Session& old = *existing->second;
    LOG(WARNING) << "device " << id << " joined again from " << session.seen_from()
                 << "; closing its older connection from " << old.seen_from();
    by_device_.erase(existing);
    by_address_.erase(old.address_);
    old.Supersede();
    ++counters_.superseded;
  }
  const auto address = pool_.Acquire(id, hello.previous_address());
  if (!address) {
    return reject(protocol::Error::POOL_EXHAUSTED,
                  "no free address in " + options_.prefix.ToString() + " (" +
                      std::to_string(pool_.capacity()) + " members)");
  }
  session.device_id_ = id;
  session.address_ = *address;
  session.joined_ = true;
  by_device_[id] = &session;
  by_address_[*address] = &session;
  ++counters_.joins;

  ControlMessage lease;
  lease.mutable_lease()->set_address(*address);
  lease.mutable_lease()->set_prefix_length(options_.prefix.length);
  lease.mutable_lease()->set_mtu(options_.mtu);
  lease.mutable_lease()->set_relay_address(options_.prefix.relay_address());
  session.link_.SendControl(lease);

  ControlMessage announce;
  for (const auto& [other_id, other] : by_device_) {
    if (other == &session) continue;
    auto* peer = announce.mutable_peer_announce();
    peer->set_device_id(other_id);
    peer->set_address(other->address_);
    peer->set_seen_from(other->seen_from());
    session.link_.SendControl(announce);
  }
  ControlMessage snapshot_end;
  snapshot_end.mutable_snapshot_end();
  session.link_.SendControl(snapshot_end);

  auto* self = announce.mutable_peer_announce();
  self->set_device_id(id);
  self->set_address(*address);
  self->set_seen_from(session.seen_from());
  Broadcast(announce, &session);
  session.link_.MarkEstablished();
  LOG(INFO) << "device " << id << " joined from " << session.seen_from() << " over "
            << session.link_stream_kind() << " as " << Ipv4ToString(*address);
}

void Relay::Leave(Session& session) {
  if (!session.joined_ || session.superseded_) return;
  session.joined_ = false;
  by_device_.erase(session.device_id_);
  by_address_.erase(session.address_);
  pool_.Release(session.device_id_);
  ++counters_.leaves;
  ControlMessage gone;
  gone.mutable_peer_gone()->set_device_id(session.device_id_);
  gone.mutable_peer_gone()->set_address(session.address_);
  Broadcast(gone, nullptr);
}

void Relay::Broadcast(const ControlMessage& message, const Session* except) {
  if (!protocol::EncodeControlFrame(message, broadcast_scratch_)) return;
  for (const auto& [id, member] : by_device_) {
    if (member != except) member->link_.SendEncodedControl(broadcast_scratch_);
  }
}

bool Relay::Forward(Session& to, std::span<const uint8_t> packet, bool may_wait) {
  if (may_wait && to.link_.data_queue_full() && !to.stalled() && !to.link_.closing()) return false;
  // Counted as forwarded when the receiver's writer takes it (OnDataTaken).
  switch (to.link_.SendData(packet)) {
    case transport::FramedLink::Push::kQueuedDroppedOldest:
      Drop(DropReason::kQueueFull);
      break;
    case transport::FramedLink::Push::kQueued:
      break;
    case transport::FramedLink::Push::kClosed:
      Drop(DropReason::kReceiverClosing);
      break;
  }
  return true;
}

Session* Relay::Route(Session* from, std::span<const uint8_t> packet) {
  auto drop = [this](DropReason reason) -> Session* {
    Drop(reason);
    return nullptr;
  };
  const PacketAddresses addresses = ParsePacketAddresses(packet);
  if (addresses.version == PacketAddresses::Version::kIpv6) return drop(DropReason::kIpv6);
  if (addresses.version != PacketAddresses::Version::kIpv4) return drop(DropReason::kMalformed);
  const uint32_t expected_source = from ? from->address_ : options_.prefix.relay_address();
  if (addresses.source != expected_source) return drop(DropReason::kSpoofedSource);

  const uint32_t destination = addresses.destination;
  if (destination == options_.prefix.broadcast() || destination == 0xffffffffu ||
      IsIpv4Multicast(destination)) {
    // Fan-out never waits: one slow member must not hold the others back.
    ++counters_.broadcast_packets;
    for (const auto& [id, member] : by_device_) {
      if (member != from) Forward(*member, packet, false);
    }
    if (from && local_port_) local_port_->Deliver(packet);
    return nullptr;
  }
  if (destination == options_.prefix.relay_address()) {
    if (!local_port_ || !from) return drop(DropReason::kNoLocalTun);
    ++counters_.packets_forwarded;
    counters_.bytes_forwarded += packet.size();
    local_port_->Deliver(packet);
    return nullptr;
  }
  const auto owner = by_address_.find(destination);
  if (owner == by_address_.end()) return drop(DropReason::kUnknownDestination);
  // Only a member's packets can wait; the relay's own TUN has no reader to pause.
  return Forward(*owner->second, packet, from != nullptr) ? nullptr : owner->second;
}

void Relay::SendFromLocal(std::span<const uint8_t> packet) { Route(nullptr, packet); }

void Relay::Shutdown() {
  shutting_down_ = true;
  lease_save_timer_.cancel();
  lease_save_pending_ = false;
  SaveLeases();
  // Handshakes in progress fail at once instead of running to their deadline.
  for (int fd : handshaking_) ::shutdown(fd, SHUT_RDWR);
  for (Session* session : all_sessions_) {
    session->link_.set_end_reason("relay shutting down");
    session->link_.SendErrorAndClose(protocol::Error::SHUTTING_DOWN, "relay is shutting down");
  }
}

std::vector<MemberInfo> Relay::Members() const {
  std::vector<MemberInfo> members;
  members.reserve(by_device_.size());
  for (const auto& [id, session] : by_device_) members.push_back(session->Info());
  return members;
}

}  // namespace mnedc::relay
