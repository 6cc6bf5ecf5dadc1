#include "mnedc/relay/session.h"

#include <glog/logging.h>

#include <algorithm>

#include "mnedc/base/coro.h"

namespace mnedc::relay {

Session::Session(Relay& relay, std::unique_ptr<transport::Stream> stream)
    : relay_(relay),
      link_(relay.executor_, std::move(stream), relay.options_.link),
      pushback_(relay.executor_, device_id_),
      connected_since_(std::chrono::system_clock::now()),
      pause_(relay.executor_) {
  // What the writer takes from the queue is what was delivered; and the
  // queue has room again for whoever waited.
  link_.OnDataTaken([this](std::size_t packets, std::size_t bytes) {
    relay_.counters_.packets_forwarded += packets;
    relay_.counters_.bytes_forwarded += bytes;
    pushback_.Drained();
  });
  // The peer snapshot is queued a piece at a time, as the member takes it.
  link_.OnControlDrained([this] {
    if (snapshot_pending_) relay_.ContinueSnapshot(*this);
  });
}

void Session::OnReadBatchEnd() {
  if (relay_.local_port_) relay_.local_port_->Flush();
}

link::DataVerdict Session::OnData(std::span<const uint8_t> packet, packet::Gso gso) {
  return Offer(packet, [&] { return mesh_ ? relay_.RouteFromMesh(*this, packet, gso) : relay_.Route(this, packet, gso); });
}

link::DataVerdict Session::OnSealed(std::span<uint8_t> payload) {
  // Routed as it is, never opened (the relay has no key to it).
  return Offer(payload, [&] { return relay_.RouteSealed(*this, payload); });
}

link::FramedLink* Session::SpliceTarget(const link::SpliceOffer& offer) {
  if (mesh_ || superseded_ || !joined_ || std::chrono::steady_clock::now() < paused_until_) return nullptr;
  Session* to = relay_.SpliceRoute(*this, offer);
  return to ? &to->link_ : nullptr;
}

void Session::OnSpliced(const link::SpliceOffer& offer) {
  if (offer.type == protocol::FrameType::kSealed) ++relay_.counters_.sealed_routed;
  drops_at_stalled_ = 0;  // Delivered, as Forward counts a queued packet.
}

template <typename RouteIt>
link::DataVerdict Session::Offer(std::span<const uint8_t> bytes, RouteIt route) {
  if (superseded_) return link::DataVerdict::kAccepted;  // The newer connection owns it.
  Session* full = nullptr;
  if (mesh_) {
    // From another relay's device: no rate limit or flood pause here (the
    // link carries every device of that relay); a full receiver pauses it.
    full = route();
    if (!full) return link::DataVerdict::kAccepted;
  } else {
    if (!joined_) {
      relay_.Drop(DropReason::kNotJoined);
      return link::DataVerdict::kAccepted;
    }
    if (relay_.options_.rate_limit > 0 && !WithinRateLimit(bytes.size())) {
      ++relay_.counters_.rate_limited;
      return link::DataVerdict::kRetryLater;  // Offered again once it fits.
    }
    full = route();
    if (!full) {
      if (drops_at_stalled_ < kFloodRun) return link::DataVerdict::kAccepted;
      // All of the last packets went to receivers that take nothing: reading
      // this sender at full speed would only feed drops.
      drops_at_stalled_ = 0;
      ++relay_.counters_.flood_pauses;
      paused_until_ = std::chrono::steady_clock::now() + relay_.options_.flood_pause;
      return link::DataVerdict::kPause;
    }
  }
  ++relay_.counters_.pushbacks;
  pushback_.WaitOn(full->pushback_);
  return link::DataVerdict::kRetryLater;
}

bool Session::WithinRateLimit(std::size_t bytes) {
  const double rate = static_cast<double>(relay_.options_.rate_limit);
  const double burst = std::max(rate / 10, 65536.0);
  const auto now = std::chrono::steady_clock::now();
  if (rate_refilled_ == std::chrono::steady_clock::time_point{}) rate_tokens_ = burst;
  rate_tokens_ = std::min(burst, rate_tokens_ + rate * std::chrono::duration<double>(now - rate_refilled_).count());
  rate_refilled_ = now;
  if (rate_tokens_ >= static_cast<double>(bytes)) {
    rate_tokens_ -= static_cast<double>(bytes);
    return true;
  }
  paused_until_ = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>((static_cast<double>(bytes) - rate_tokens_) / rate));
  return false;
}

boost::asio::awaitable<void> Session::WaitToRetry() {
  const auto now = std::chrono::steady_clock::now();
  if (paused_until_ > now) {
    // At most 100 ms at a time, so a link that closes meanwhile is not held
    // up by a long rate-limit wait: the reader looks again after each.
    pause_.expires_at(std::min(paused_until_, now + std::chrono::milliseconds(100)));
    co_await pause_.async_wait(base::kUse);
    co_return;
  }
  const std::string stalled = co_await pushback_.WaitForRoom(relay_.options_.max_pushback);
  if (stalled.empty()) co_return;
  ++relay_.counters_.stalled_receivers;
  LOG(WARNING) << "device " << stalled << " is not draining its queue; dropping packets to it "
               << "until it does";
}

bool Session::OnControl(const protocol::ControlMessage& message) {
  if (message.has_mesh_auth()) {
    if (joined_ || mesh_ || join_pending_) {
      link_.SendErrorAndClose(protocol::Error::BAD_REQUEST, "mesh authentication out of turn");
      return false;
    }
    relay_.OnMeshAuth(*this, message.mesh_auth());
    return !link_.closing();
  }
  if (mesh_) {
    if (message.has_peer_list()) relay_.OnMeshPeers(*this, message.peer_list());
    return true;
  }
  if (!mesh_peer_.empty() && message.has_error()) {
    // The other relay refused the mesh link (not one of a cluster, or another name than expected).
    ++relay_.counters_.mesh_auth_failures;
    LOG_EVERY_N(WARNING, 10) << "mesh: relay " << mesh_peer_ << " refused the link: "
                             << protocol::Error::Code_Name(message.error().code()) << ": "
                             << message.error().text() << " (refusal #" << google::COUNTER << ")";
    link_.set_end_reason("refused by relay " + mesh_peer_ + ": " + message.error().text());
    return false;
  }
  if (message.has_hello()) {
    if (joined_ || !mesh_peer_.empty()) {
      link_.SendErrorAndClose(protocol::Error::BAD_REQUEST, "Hello after the join");
      return false;
    }
    relay_.Join(*this, message.hello());
    return !link_.closing();
  }
  // Lease, PeerAnnounce, ... are relay-to-client messages: ignore them.
  return true;
}

boost::asio::awaitable<bool> Session::FinishControl() {
  co_await relay_.FinishJoin(*this);
  co_return !link_.closing();
}

void Session::Supersede() {
  superseded_ = true;
  link_.set_end_reason("superseded by a newer connection of the same device");
  link_.SendErrorAndClose(protocol::Error::SUPERSEDED,
                          "device " + device_id_ + " joined again on a newer connection");
}

MemberInfo Session::Info() const {
  return MemberInfo{device_id_,
                    address_,
                    std::string(stream_kind()),
                    seen_from(),
                    keys_ ? seal::EncodeKey(keys_->public_key) : std::string(),
                    connected_since_,
                    link_.counters(),
                    link_.control_queued(),
                    snapshot_pending_ || snapshot_queued_.has_value()};
}

}  // namespace mnedc::relay
