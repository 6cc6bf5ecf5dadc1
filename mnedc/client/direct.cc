// The direct path's paths: who to probe, disco messages, STUN, the timer,
// and what a sealed datagram becomes. The socket itself (opening it, GSO
// sends, GRO receives, this device's candidates) is in direct_socket.cc.
#include "mnedc/client/direct.h"

#include <glog/logging.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/client/datagram_batch.h"
#include "mnedc/client/disco.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::client {
namespace {
namespace asio = boost::asio;
namespace ip = asio::ip;
using namespace std::chrono_literals;

// CallMeMaybe to one peer at most this often (it answers one with its own).
constexpr auto kCallMeMaybeEvery = 2s;

double Milliseconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

Direct::Direct(asio::any_io_executor executor, Sealing& sealing, DirectOptions options, RelaySender relay,
               Deliver deliver, std::function<void()> batch_end)
    : sealing_(sealing),
      options_(options),
      relay_(std::move(relay)),
      deliver_(std::move(deliver)),
      batch_end_(std::move(batch_end)),
      socket_(executor),
      timer_(executor),
      flush_timer_(executor),
      batch_(std::make_unique<DatagramBatch>()),
      reassembly_(protocol::kMaxSealedFramePayload) {}

Direct::~Direct() = default;

asio::awaitable<void> Direct::Run() {
  using namespace asio::experimental::awaitable_operators;
  if (!socket_.is_open()) co_return;
  co_await (ReceiveLoop() && TickLoop() && FlushLoop());
}

void Direct::SetStunServer(std::optional<Endpoint> server) {
  if (server == stun_server_) return;
  stun_server_ = server;
  next_stun_ = Clock::time_point{};  // Ask at once.
  Wake();
}

void Direct::SetOverlay(uint32_t network, uint32_t prefix_length, uint32_t mtu) {
  datagram_size_ = 1 + Sealing::SealedSize(mtu);
  overlay_mask_ = prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - prefix_length);
  overlay_network_ = network & overlay_mask_;
  RefreshCandidates();
}

Direct::Peer& Direct::PeerFor(uint32_t address, Clock::time_point now) {
  auto [it, added] = peers_.try_emplace(address);
  if (added) {
    it->second.path = PathState(options_.path);
    it->second.last_active = now;
  }
  return it->second;
}

const PathState* Direct::PathTo(uint32_t peer) const {
  const auto found = peers_.find(peer);
  return found == peers_.end() ? nullptr : &found->second.path;
}

void Direct::PeerDown(uint32_t peer) {
  const auto found = peers_.find(peer);
  if (found == peers_.end()) return;
  if (found->second.path.direct()) {
    LOG(INFO) << "direct path to " << base::Ipv4ToString(peer) << " closed: the peer left";
  }
  peers_.erase(found);
}

bool Direct::Send(uint32_t peer, std::span<const uint8_t> packet, packet::Gso gso) {
  if (closed_) return false;
  const auto now = Clock::now();
  auto found = peers_.find(peer);
  if (found == peers_.end()) {
    // The first packet to this peer: look for a path (it goes by the relay meanwhile).
    Peer& fresh = PeerFor(peer, now);
    SendCallMeMaybe(peer, fresh, now);
    Wake();
    return false;
  }
  Peer& state = found->second;
  state.path.OnSent(now);
  state.last_active = now;
  if (!state.path.direct()) return false;
  const Endpoint to = *state.path.endpoint();
  // An ordinary packet waits in the batch for the end of this turn (the
  // rest of a TUN read batch): one system call sends them all.
  if (!gso.super()) {
    if (!QueueDatagram(peer, to, packet)) return false;
    ++counters_.packets_out;
    return true;
  }
  // A super-packet: sealed whole, into the batch as its fragments (they
  // leave as one GSO send or a few, with the rest of the batch).
  const std::size_t sealed_size = Sealing::SealedSize(packet.size());
  if (sealed_size > seal_buffer_.size()) return false;
  const std::span<uint8_t> sealed(seal_buffer_.data(), sealed_size);
  if (!sealing_.Seal(peer, packet, gso, sealed)) return false;
  // False: more fragments than a message may have (a tiny MTU): the relay takes it.
  if (!QueueFragments(to, sealed)) return false;
  ++counters_.packets_out;
  return true;
}

bool Direct::SendSealed(uint32_t peer, const Endpoint& to, std::span<const uint8_t> body) {
  // A probe goes at once, after what is queued (its timing is what it measures).
  if (!sealing_.Prepare(peer)) return false;
  FlushBatch();
  return QueueDatagram(peer, to, body) && FlushBatch() == 1;
}

void Direct::SendPing(uint32_t address, Peer& peer, const Endpoint& to, Clock::time_point now) {
  ProbeId id;
  if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1) return;
  std::array<uint8_t, kPingSize> ping;
  WritePing(id, ping);
  if (SendSealed(address, to, ping)) ++counters_.pings_sent;
  // Recorded even if the send failed: unanswered, it counts against the path.
  peer.path.PingSent(to, id, now);
}

void Direct::SendCallMeMaybe(uint32_t address, Peer& peer, Clock::time_point now) {
  std::array<uint8_t, kMaxCallMeMaybeSize> message;
  const std::size_t size = WriteCallMeMaybe(candidates_, message);
  if (!sealing_.Prepare(address) || !relay_(address, std::span(message.data(), size))) return;
  peer.last_call_me_maybe = now;
  ++counters_.call_me_maybe_sent;
}

void Direct::SendStunRequest(Clock::time_point now) {
  next_stun_ = now + (outside_ ? options_.stun_refresh : std::chrono::steady_clock::duration(1s));
  if (!stun_server_ || !stun_server_->address().is_v4()) return;
  RefreshCandidates();  // Interfaces come and go too.
  stun_transaction_ = stun::NewTransactionId();
  std::array<uint8_t, stun::kRequestSize> request;
  stun::WriteBindingRequest(stun_transaction_, request);
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(request), *stun_server_, 0, ec);
  ++counters_.stun_requests;
}

void Direct::OnDisco(uint32_t address, std::span<const uint8_t> body, const std::optional<Endpoint>& from) {
  DiscoMessage message;
  if (closed_ || !ParseDisco(body, &message)) return;  // A newer peer's message: not for us.
  const auto now = Clock::now();
  switch (message.type) {
    case DiscoType::kPing: {
      if (!from) return;  // Pings come over UDP only.
      Peer& peer = PeerFor(address, now);
      peer.path.OnPingFrom(*from, now);
      peer.last_active = now;
      std::array<uint8_t, kPongSize> pong;
      WritePong(message.id, *from, pong);
      if (SendSealed(address, *from, pong)) ++counters_.pongs_sent;
      Wake();
      return;
    }
    case DiscoType::kPong: {
      const auto found = peers_.find(address);
      if (!from || found == peers_.end()) return;
      if (found->second.path.OnPong(*from, message.id, now)) {
        ++counters_.pongs_received;
        Observe(address, found->second);
      }
      return;
    }
    case DiscoType::kCallMeMaybe: {
      ++counters_.call_me_maybe_received;
      Peer& peer = PeerFor(address, now);
      peer.path.SetCandidates(std::span(message.candidates.data(), message.candidate_count), now);
      peer.last_active = now;
      if (now - peer.last_call_me_maybe >= kCallMeMaybeEvery) SendCallMeMaybe(address, peer, now);
      Wake();
      return;
    }
  }
}

void Direct::Observe(uint32_t address, Peer& peer) {
  const PathState& path = peer.path;
  if (path.direct() && !peer.was_direct) {
    ++counters_.went_direct;
    LOG(INFO) << "direct path to " << base::Ipv4ToString(address) << " via " << Text(*path.endpoint()) << " (rtt "
              << Milliseconds(path.rtt()) << " ms)";
  }
  if (path.fallbacks() != peer.fallbacks_seen) {
    counters_.fell_back += path.fallbacks() - peer.fallbacks_seen;
    peer.fallbacks_seen = path.fallbacks();
    LOG(WARNING) << "direct path to " << base::Ipv4ToString(address) << " went silent: back through the relay";
  }
  peer.was_direct = path.direct();
}

Direct::Clock::time_point Direct::Tick(Clock::time_point now) {
  Clock::time_point next = Clock::time_point::max();
  if (stun_server_) {
    if (now >= next_stun_) SendStunRequest(now);
    next = std::min(next, next_stun_);
  }
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& peer = it->second;
    if (now - peer.last_active > options_.idle_forget) {
      it = peers_.erase(it);  // Quiet for long: no more keepalives; found again when needed.
      continue;
    }
    due_.clear();
    peer.path.Due(now, &due_);
    for (const Endpoint& to : due_) SendPing(it->first, peer, to, now);
    if (peer.path.rounds() != peer.rounds_seen) {
      // A new round: the peer probes back if it hears of it (and learns
      // our candidates anew).
      peer.rounds_seen = peer.path.rounds();
      if (!peer.path.direct() && now - peer.last_call_me_maybe >= kCallMeMaybeEvery) {
        SendCallMeMaybe(it->first, peer, now);
      }
    }
    Observe(it->first, peer);
    next = std::min({next, peer.path.NextDue(), peer.last_active + options_.idle_forget});
    ++it;
  }
  return next;
}

asio::awaitable<void> Direct::TickLoop() {
  co_await base::NoThrowOnCancel();
  while (!closed_) {
    const auto now = Clock::now();
    const auto next = std::clamp(Tick(now), now + 5ms, now + 1s);
    timer_.expires_at(next);
    auto [ec] = co_await timer_.async_wait(base::kUse);
    (void)ec;  // Woken early (something changed), or closed.
  }
}

void Direct::Open(std::span<uint8_t> sealed, const Endpoint& from) {
  std::span<const uint8_t> body;
  packet::Gso gso;
  uint32_t source = 0;
  switch (sealing_.Open(sealed, &body, &gso, &source)) {
    case Sealing::Verdict::kOpened: {
      ++counters_.packets_in;
      if (const auto found = peers_.find(source); found != peers_.end()) {
        const auto now = Clock::now();
        found->second.path.OnHeard(from, now);
        found->second.last_active = now;
      }
      deliver_(body, gso);
      return;
    }
    case Sealing::Verdict::kDisco:
      OnDisco(source, body, from);
      return;
    case Sealing::Verdict::kDropped:
      ++counters_.unopened;
      return;
  }
}

void Direct::HandleDatagram(std::span<uint8_t> datagram, const Endpoint& from) {
  ++counters_.datagrams_in;
  if (datagram[0] == kDatagramMarker) {
    Open(datagram.subspan(1), from);
    return;
  }
  if (datagram[0] == kFragmentMarker) {
    ++counters_.fragments_in;
    const auto before = reassembly_.counters();
    const std::span<uint8_t> message = reassembly_.Add(from, datagram);
    const auto& after = reassembly_.counters();
    counters_.reassembly_drops += (after.incomplete - before.incomplete) + (after.malformed - before.malformed);
    if (!message.empty()) Open(message, from);
    return;
  }
  if (stun_server_ && from == *stun_server_) {
    Endpoint mapped;
    if (stun::ParseBindingResponse(datagram, stun_transaction_, &mapped) == stun::ResponseVerdict::kMapped) {
      ++counters_.stun_answers;
      next_stun_ = Clock::now() + options_.stun_refresh;
      if (outside_ != mapped) {
        LOG(INFO) << "the relay sees this device's UDP port as " << Text(mapped);
        outside_ = mapped;
        RefreshCandidates();
      }
      return;
    }
  }
  ++counters_.not_ours;
}

}  // namespace mnedc::client
