#include "mnedc/client/direct.h"

#include <arpa/inet.h>
#include <glog/logging.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cerrno>
#include <cstring>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/client/disco.h"
#include "mnedc/protocol/frame.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace mnedc::client {
namespace {
namespace asio = boost::asio;
namespace ip = asio::ip;
using namespace std::chrono_literals;

// One UDP GSO send: within an IPv4 datagram's 65,507 bytes, and within the
// segments every kernel with UDP_SEGMENT takes.
constexpr std::size_t kMaxGsoBytes = 65000;
constexpr std::size_t kMaxGsoSegments = 64;
// Receive batches: at most this many recvmsg calls before others get a turn.
constexpr int kReceivesPerWake = 64;
// CallMeMaybe to one peer at most this often (it answers one with its own).
constexpr auto kCallMeMaybeEvery = 2s;
constexpr int kSocketBuffer = 4 << 20;

double Milliseconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string Text(const ip::udp::endpoint& endpoint) {
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

void SetBuffer(int fd, int force, int plain) {
  // As root the larger size, past net.core.[rw]mem_max; else what is allowed.
  if (setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof kSocketBuffer) != 0) {
    setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
  }
}
}  // namespace

Direct::Direct(asio::any_io_executor executor, Sealing& sealing, DirectOptions options, RelaySender relay,
               Deliver deliver, std::function<void()> batch_end)
    : executor_(executor),
      sealing_(sealing),
      options_(options),
      relay_(std::move(relay)),
      deliver_(std::move(deliver)),
      batch_end_(std::move(batch_end)),
      socket_(executor),
      timer_(executor),
      reassembly_(protocol::kMaxSealedFramePayload) {}

Direct::~Direct() = default;

bool Direct::Open(std::string* error) {
  boost::system::error_code ec;
  socket_.open(ip::udp::v4(), ec);
  if (!ec) socket_.bind(ip::udp::endpoint(ip::address_v4::any(), options_.port), ec);
  if (!ec) socket_.non_blocking(true, ec);
  if (ec) {
    *error = "cannot open UDP port " + std::to_string(options_.port) + " for direct paths: " + ec.message();
    socket_.close(ec);
    return false;
  }
  const int fd = socket_.native_handle();
  SetBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF);
  SetBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF);
  const int on = 1;
  udp_gro_ = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  port_ = socket_.local_endpoint(ec).port();
  seal_buffer_.resize(protocol::kMaxSealedFramePayload);
  send_buffer_.resize(protocol::kMaxSealedFramePayload + kMaxFragments * kFragmentHeaderSize);
  receive_buffer_.resize(65536 + 2048);
  RefreshCandidates();
  LOG(INFO) << "direct paths on UDP port " << port_ << (udp_gro_ ? " (UDP GRO on)" : " (no UDP GRO)");
  return true;
}

void Direct::Close() {
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  timer_.cancel();
}

asio::awaitable<void> Direct::Run() {
  using namespace asio::experimental::awaitable_operators;
  if (!socket_.is_open()) co_return;
  co_await (ReceiveLoop() && TickLoop());
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

void Direct::RefreshCandidates() {
  std::vector<Endpoint> candidates;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (const ifaddrs* i = list; i && candidates.size() < kMaxCandidates; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
      const uint32_t address = ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr);
      if (overlay_mask_ && (address & overlay_mask_) == overlay_network_) continue;  // The TUN.
      if ((address >> 16) == 0xA9FE) continue;  // 169.254/16: link-local.
      const Endpoint candidate(ip::address_v4(address), port_);
      if (std::find(candidates.begin(), candidates.end(), candidate) == candidates.end()) {
        candidates.push_back(candidate);
      }
    }
    freeifaddrs(list);
  }
  if (outside_ && std::find(candidates.begin(), candidates.end(), *outside_) == candidates.end()) {
    // The outside address first: it is the one that works across NATs.
    if (candidates.size() >= kMaxCandidates) candidates.pop_back();
    candidates.insert(candidates.begin(), *outside_);
  }
  if (candidates == candidates_) return;
  candidates_ = std::move(candidates);
  std::string list_text;
  for (const auto& c : candidates_) list_text += (list_text.empty() ? "" : ", ") + Text(c);
  LOG(INFO) << "direct path candidates: " << (list_text.empty() ? "none" : list_text);
  // Peers looking for a path hear of the change.
  const auto now = Clock::now();
  for (auto& [address, peer] : peers_) {
    if (!peer.path.direct()) SendCallMeMaybe(address, peer, now);
  }
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
  if (!gso.super()) {
    const std::size_t size = 1 + Sealing::SealedSize(packet.size());
    if (size > send_buffer_.size()) return false;
    send_buffer_[0] = kDatagramMarker;
    if (!sealing_.Seal(peer, packet, {}, std::span(send_buffer_.data() + 1, size - 1))) return false;
    if (SendDatagrams(to, std::span(send_buffer_.data(), size), size)) ++counters_.packets_out;
    return true;
  }
  // A super-packet: sealed whole, sent in fragments (one GSO send or a few).
  const std::size_t sealed_size = Sealing::SealedSize(packet.size());
  if (sealed_size > seal_buffer_.size()) return false;
  const std::span<uint8_t> sealed(seal_buffer_.data(), sealed_size);
  if (!sealing_.Seal(peer, packet, gso, sealed)) return false;
  const std::size_t size = WriteFragments(sealed, datagram_size_, ++message_number_, send_buffer_);
  if (size == 0) return false;  // More fragments than a message may have (a tiny MTU): the relay takes it.
  if (SendBatch(to, std::span(send_buffer_.data(), size), FragmentDatagramSize(sealed, datagram_size_))) {
    ++counters_.packets_out;
  }
  return true;
}

bool Direct::SendBatch(const Endpoint& to, std::span<const uint8_t> data, std::size_t segment) {
  const std::size_t per_send = std::min(kMaxGsoSegments, kMaxGsoBytes / segment) * segment;
  bool all = true;
  for (std::size_t at = 0; at < data.size(); at += per_send) {
    all = SendDatagrams(to, data.subspan(at, std::min(per_send, data.size() - at)), segment) && all;
  }
  return all;
}

bool Direct::SendDatagrams(const Endpoint& to, std::span<const uint8_t> data, std::size_t segment) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(to.port());
  if (!to.address().is_v4()) {
    ++counters_.send_errors;
    return false;
  }
  address.sin_addr.s_addr = htonl(to.address().to_v4().to_uint());
  const std::size_t count = (data.size() + segment - 1) / segment;
  const bool gso = udp_gso_ && count > 1;
  iovec iov{const_cast<uint8_t*>(data.data()), data.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(uint16_t))] = {};
  msghdr message{};
  message.msg_name = &address;
  message.msg_namelen = sizeof address;
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  if (gso) {
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&message);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    const uint16_t size = static_cast<uint16_t>(segment);
    std::memcpy(CMSG_DATA(c), &size, sizeof size);
  }
  if (gso || count == 1) {
    if (sendmsg(socket_.native_handle(), &message, 0) >= 0) {
      counters_.datagrams_out += count;
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      ++counters_.send_drops;
      return false;
    }
    if (!gso || (errno != EIO && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOPROTOOPT)) {
      ++counters_.send_errors;
      LOG_EVERY_N(WARNING, 1000) << "direct send to " << Text(to) << " failed: " << std::strerror(errno);
      return false;
    }
    LOG(WARNING) << "the kernel refuses UDP segmentation offload (" << std::strerror(errno)
                 << "): sending direct datagrams one by one";
    udp_gso_ = false;
  }
  // One by one (no UDP GSO here).
  bool all = true;
  for (std::size_t at = 0; at < data.size(); at += segment) {
    const std::size_t size = std::min(segment, data.size() - at);
    const ssize_t n = sendto(socket_.native_handle(), data.data() + at, size, 0,
                             reinterpret_cast<const sockaddr*>(&address), sizeof address);
    if (n >= 0) {
      ++counters_.datagrams_out;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
      ++counters_.send_drops;
      all = false;
    } else {
      ++counters_.send_errors;
      all = false;
    }
  }
  return all;
}

bool Direct::SendSealed(uint32_t peer, const Endpoint& to, std::span<const uint8_t> body) {
  std::array<uint8_t, 1 + protocol::kSealedHeaderSize + kMaxCallMeMaybeSize + protocol::kSealedTagSize> datagram;
  const std::size_t size = 1 + Sealing::SealedSize(body.size());
  if (size > datagram.size() || !sealing_.Prepare(peer)) return false;
  datagram[0] = kDatagramMarker;
  if (!sealing_.Seal(peer, body, {}, std::span(datagram.data() + 1, size - 1))) return false;
  return SendDatagrams(to, std::span(datagram.data(), size), size);
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
        Observe(address, found->second, now);
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

void Direct::Observe(uint32_t address, Peer& peer, Clock::time_point now) {
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
  (void)now;
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
    Observe(it->first, peer, now);
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

asio::awaitable<void> Direct::ReceiveLoop() {
  co_await base::NoThrowOnCancel();
  const int fd = socket_.native_handle();
  while (!closed_) {
    auto [ec] = co_await socket_.async_wait(ip::udp::socket::wait_read, base::kUse);
    if (ec || closed_) co_return;
    for (int i = 0; i < kReceivesPerWake; ++i) {
      sockaddr_storage from_storage{};
      iovec iov{receive_buffer_.data(), receive_buffer_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr message{};
      message.msg_name = &from_storage;
      message.msg_namelen = sizeof from_storage;
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      const ssize_t n = recvmsg(fd, &message, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EINTR || errno == ECONNREFUSED) continue;  // ICMP from an earlier send.
        break;  // EAGAIN: all read.
      }
      std::size_t segment = static_cast<std::size_t>(n);
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
          int size = 0;
          std::memcpy(&size, CMSG_DATA(c), sizeof size);
          if (size > 0) segment = static_cast<std::size_t>(size);
        }
      }
      if (from_storage.ss_family != AF_INET || n == 0) continue;
      const auto* sin = reinterpret_cast<const sockaddr_in*>(&from_storage);
      const Endpoint from(ip::address_v4(ntohl(sin->sin_addr.s_addr)), ntohs(sin->sin_port));
      for (std::size_t at = 0; at < static_cast<std::size_t>(n); at += segment) {
        HandleDatagram(std::span(receive_buffer_.data() + at, std::min(segment, static_cast<std::size_t>(n) - at)),
                       from);
      }
    }
    if (batch_end_) batch_end_();
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
