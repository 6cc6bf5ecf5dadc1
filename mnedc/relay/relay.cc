// The relay's life: construction, serving one connection as a session,
// shutdown, and what it reports. Joining is in membership.cc, forwarding in
// routing.cc, accepting in listener.cc, leases in lease_keeper.cc.
#include "mnedc/relay/relay.h"

#include <glog/logging.h>
#include <sys/socket.h>

#include "mnedc/base/ipv4.h"
#include "mnedc/relay/session.h"
#include "mnedc/transport/tls_context.h"

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
    case DropReason::kLinkLocal:
      return "link_local";
    case DropReason::kNotJoined:
      return "not_joined";
    case DropReason::kNoLocalTun:
      return "no_local_tun";
    case DropReason::kReceiverClosing:
      return "receiver_closing";
    case DropReason::kRelayUnreachable:
      return "relay_unreachable";
    case DropReason::kUnsealable:
      return "unsealable";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

Relay::Relay(asio::any_io_executor executor, RelayOptions options)
    : executor_(std::move(executor)),
      options_(options),
      leases_(executor_, options.prefix, options.lease_file),
      keys_(executor_, options.device_keys_file),
      announce_timer_(executor_),
      alive_(std::make_shared<Relay*>(this)),
      socket_states_(executor_) {
  policy_.SetSharedToken(options_.join_token);
  if (!options_.cluster_secret.empty()) {
    // The mesh is TLS keyed by the cluster secret, both ways: accepted on the
    // certificate's context if there is one (one port serves devices and
    // relays), else on a context for relays alone.
    mesh_tls_ = transport::MakePskClientContext(options_.cluster_secret);
    if (options_.accept.tls) {
      transport::AddPskToServerContext(*options_.accept.tls, options_.cluster_secret);
    } else {
      options_.accept.tls = transport::MakePskServerContext(options_.cluster_secret);
      options_.accept.tls_for_mesh_only = true;
    }
  }
  if (!options_.device_tokens.empty()) policy_.SetDeviceTokens(options_.device_tokens);
}

Relay::~Relay() { SetClusterStore(nullptr); }

void Relay::SetClusterStore(ClusterStore* store) {
  if (cluster_) {
    cluster_->OnRelaysChanged(nullptr);
    cluster_->OnMemberElsewhere(nullptr);
  }
  cluster_ = store;
  if (cluster_) {
    cluster_->OnRelaysChanged([this] {
      SendRelayList();
      UpdateMesh();
    });
    cluster_->OnMemberElsewhere([this](const std::string& device_id) { MemberElsewhere(device_id); });
    UpdateMesh();
  }
}

bool Relay::RestoreLeases(std::string* error) { return leases_.Restore(error) && keys_.Restore(error); }

asio::awaitable<void> Relay::Serve(std::unique_ptr<transport::Stream> stream,
                                   std::chrono::steady_clock::time_point accepted_at) {
  // Not a coroutine of its own: one frame per member, not two.
  return ServeSession(std::move(stream), accepted_at, {});
}

asio::awaitable<void> Relay::ServeSession(std::unique_ptr<transport::Stream> stream,
                                          std::chrono::steady_clock::time_point accepted_at,
                                          std::string mesh_peer) {
  if (shutting_down_) co_return;
  Session session(*this, std::move(stream));
  // One deadline from accept to join: the transport handshake used part of it.
  session.link_.SetHandshakeDeadline(accepted_at + options_.link.handshake_timeout);
  all_sessions_.insert(&session);
  if (!mesh_peer.empty()) StartMeshAuth(session, mesh_peer);
  VLOG(1) << session.seen_from() << ": connected over " << session.stream_kind();
  co_await session.link_.Run(session);
  all_sessions_.erase(&session);
  link::AddLinkCounters(ended_links_, session.link_.counters());
  // Packets still queued to it when it closed were never delivered.
  counters_.drops[static_cast<std::size_t>(DropReason::kReceiverClosing)] +=
      session.link_.counters().data_dropped_on_close;
  Leave(session);
  SnapshotDone(session);  // Superseded sessions do not Leave; nothing may point at it now.
  MeshLinkEnded(session);
  if (!session.mesh_peer_.empty()) {
    VLOG(1) << "mesh link with " << session.mesh_peer_ << " (" << session.seen_from()
            << ") closed: " << session.link_.end_reason();
  } else if (!session.device_id_.empty()) {
    LOG(INFO) << "device " << session.device_id_ << " (" << Ipv4ToString(session.address_)
              << ", " << session.seen_from() << ") left: " << session.link_.end_reason();
  } else {
    LOG(INFO) << session.seen_from() << " disconnected before joining: "
              << session.link_.end_reason();
  }
}

void Relay::Shutdown() {
  shutting_down_ = true;
  StopMesh();
  leases_.SaveNow();
  keys_.SaveNow();
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

link::LinkCounters Relay::LinkTotals() const {
  link::LinkCounters sum = ended_links_;
  for (const Session* session : all_sessions_) link::AddLinkCounters(sum, session->link_.counters());
  return sum;
}

}  // namespace mnedc::relay
