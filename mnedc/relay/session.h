#pragma once
// One connection to the relay: its link, its join state and its part in
// pushback. Owned by the Relay::Serve() coroutine; the relay's maps point at
// it only between Join and Leave, and Leave runs before it is destroyed.
// Private to the relay library.
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mnedc/relay/join_policy.h"
#include "mnedc/relay/pushback.h"
#include "mnedc/relay/relay.h"
#include "mnedc/link/framed_link.h"

namespace mnedc::relay {

class Session final : public link::FrameSink {
 public:
  Session(Relay& relay, std::unique_ptr<transport::Stream> stream);

  // FrameSink: packets are routed (a full receiver pauses this reader),
  // a Hello joins.
  link::DataVerdict OnData(std::span<const uint8_t> packet, packet::Gso gso) override;
  // Segments written into the relay's TUN may be held to be joined: out now.
  void OnReadBatchEnd() override;
  boost::asio::awaitable<void> WaitToRetry() override;
  link::DataVerdict OnSealed(std::span<uint8_t> payload) override;
  // OnData and OnSealed: checks, `route` (which returns the member whose full
  // queue to wait for, or null), then pushback or a flood pause.
  template <typename RouteIt>
  link::DataVerdict Offer(std::span<const uint8_t> bytes, RouteIt route);
  bool OnControl(const protocol::ControlMessage& message) override;
  // A joined member's large frame to one other member on plain TCP: passed
  // on unread (Relay::SpliceRoute); counted as routed when it was.
  link::FramedLink* SpliceTarget(const link::SpliceOffer& offer) override;
  void OnSpliced(const link::SpliceOffer& offer) override;
  // A join waiting for the cluster store's address (Relay::FinishJoin).
  bool ControlPending() const override { return join_pending_; }
  boost::asio::awaitable<bool> FinishControl() override;

  // The relay found a newer connection for this device.
  void Supersede();
  // --rate_limit: takes `bytes` from the bucket, or sets paused_until_ to when
  // they will be there and returns false.
  bool WithinRateLimit(std::size_t bytes);
  // Packets in a row dropped at stalled receivers before a flood pause.
  static constexpr uint32_t kFloodRun = 64;

  MemberInfo Info() const;
  std::string_view stream_kind() const { return link_.stream().kind(); }
  const std::string& seen_from() const { return link_.stream().peer(); }

  Relay& relay_;
  link::FramedLink link_;
  std::string device_id_;  // Before Pushback, which names the session by it.
  Pushback pushback_;
  std::chrono::system_clock::time_point connected_since_;
  uint32_t address_ = 0;
  // Discovery: the form this member hears about peers in, its own PeerChange
  // (encoded once at join, copied into every snapshot that lists it), and
  // where its own snapshot goes on (the next address to list).
  protocol::PeerMode peer_mode_ = protocol::PEERS_EACH;
  std::string change_;
  uint32_t snapshot_next_ = 0;
  bool snapshot_pending_ = false;  // Being sent now.
  // Waiting its turn (Relay::snapshot_queue_); the position to erase on leave.
  std::optional<std::list<Session*>::iterator> snapshot_queued_;
  uint64_t joined_in_round_ = 0;  // The announcement batch that carries its join.
  TokenDigest credentials_{};  // SHA-256 of what the Hello presented.
  // Sealing: the keys the Hello presented; null for an older client (which
  // then costs the pointer, not the keys).
  struct Keys {
    seal::PublicKey public_key;
    seal::PublicKey session_key;
    bool seals = false;  // It presented a session key: peers seal to it.
    uint32_t ciphers = 0;  // CipherBits its Hello said.
  };
  std::unique_ptr<const Keys> keys_;
  const seal::PublicKey* public_key() const { return keys_ ? &keys_->public_key : nullptr; }
  bool presented_credentials_ = false;
  bool joined_ = false;
  // Between the Hello and the cluster store's answer.
  bool join_pending_ = false;
  uint32_t requested_address_ = 0;
  bool wants_super_packets_ = false;
  // A mesh link to another relay (mesh.cc): its name, whether this relay
  // dialed it, and whether it is up.
  std::string mesh_peer_;
  bool mesh_dialer_ = false;
  bool mesh_ = false;
  bool superseded_ = false;
  // Fair share: packets in a row that stalled receivers dropped, and until
  // when this sender is not read (a flood pause or its rate limit).
  uint32_t drops_at_stalled_ = 0;
  std::chrono::steady_clock::time_point paused_until_{};
  boost::asio::steady_timer pause_;
  // --rate_limit: bytes this sender may send now, refilled with time.
  double rate_tokens_ = 0;
  std::chrono::steady_clock::time_point rate_refilled_{};
};

}  // namespace mnedc::relay
