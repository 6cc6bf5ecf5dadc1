// The direct path's socket: opening it, sending datagrams (one UDP GSO send
// for many), receiving GRO batches, and this device's candidates (its
// interfaces and the outside address STUN gave). The paths are direct.cc's.
#include <arpa/inet.h>
#include <glog/logging.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mnedc/base/coro.h"
#include "mnedc/client/datagram_batch.h"
#include "mnedc/client/direct.h"
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

// Receive batches: at most this many recvmsg calls before others get a turn.
constexpr int kReceivesPerWake = 64;
constexpr int kSocketBuffer = 4 << 20;

// The direct path's underlay is IPv4 for now: false for anything else.
bool ToSockaddr(const ip::udp::endpoint& endpoint, sockaddr_in* out) {
  if (!endpoint.address().is_v4()) return false;
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = htons(endpoint.port());
  out->sin_addr.s_addr = htonl(endpoint.address().to_v4().to_uint());
  return true;
}

void SetBuffer(int fd, int force, int plain) {
  // As root the larger size, past net.core.[rw]mem_max; else what is allowed.
  if (setsockopt(fd, SOL_SOCKET, force, &kSocketBuffer, sizeof kSocketBuffer) != 0) {
    setsockopt(fd, SOL_SOCKET, plain, &kSocketBuffer, sizeof kSocketBuffer);
  }
}
}  // namespace

std::string Direct::Text(const Endpoint& endpoint) {
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

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
  flush_timer_.cancel();
}

bool Direct::BatchAddress(const Endpoint& to, sockaddr_in* address) {
  if (ToSockaddr(to, address)) return true;
  ++counters_.send_errors;
  return false;
}

std::span<uint8_t> Direct::BatchRoom(std::size_t size, std::size_t datagrams) {
  const std::span<uint8_t> room = batch_->Reserve(size, datagrams);
  if (!room.empty() || batch_->empty()) return room;
  FlushBatch();  // Full: what is queued goes now.
  return batch_->Reserve(size, datagrams);
}

bool Direct::CommitFailed() {
  // More than was reserved: a bug here, not the network's doing. Counted and
  // logged, never written past the batch.
  ++counters_.send_errors;
  LOG_EVERY_N(ERROR, 1000) << "direct path: a message did not fit the room reserved for it (dropped)";
  return false;
}

void Direct::Queued(bool batch_was_empty) {
  if (batch_was_empty) flush_timer_.cancel();  // FlushLoop sends it when this turn is over.
}

bool Direct::QueueDatagram(uint32_t peer, const Endpoint& to, std::span<const uint8_t> body) {
  const std::size_t size = 1 + Sealing::SealedSize(body.size());
  sockaddr_in address;
  if (!BatchAddress(to, &address)) return false;
  const std::span<uint8_t> room = BatchRoom(size, 1);
  if (room.empty()) return false;  // Larger than a batch.
  room[0] = kDatagramMarker;
  if (!sealing_.Seal(peer, body, {}, room.subspan(1))) return false;
  const bool was_empty = batch_->empty();
  if (!batch_->Commit(address, size)) return CommitFailed();
  Queued(was_empty);
  return true;
}

static_assert(protocol::kMaxSealedFramePayload + kMaxFragments * kFragmentHeaderSize <= DatagramBatch::kBufferBytes &&
                  kMaxFragments <= DatagramBatch::kMaxDatagrams,
              "an empty batch holds the fragments of the largest sealed super-packet");

bool Direct::QueueFragments(const Endpoint& to, std::span<const uint8_t> sealed) {
  // False for more fragments than a message may have (a tiny MTU).
  const std::size_t count = FragmentCount(sealed.size(), datagram_size_);
  sockaddr_in address;
  if (count == 0 || !BatchAddress(to, &address)) return false;
  // Exactly its datagrams: behind what the turn queued before it, if they fit.
  const std::span<uint8_t> room = BatchRoom(sealed.size() + count * kFragmentHeaderSize, count);
  if (room.empty()) return false;
  const std::size_t size = WriteFragments(sealed, datagram_size_, ++message_number_, room);
  if (size == 0) return false;
  const bool was_empty = batch_->empty();
  if (!batch_->CommitRun(address, size, FragmentDatagramSize(sealed, datagram_size_))) return CommitFailed();
  Queued(was_empty);
  return true;
}

uint64_t Direct::FlushBatch() {
  if (batch_->empty()) return 0;
  const bool had_gso = udp_gso_;
  const DatagramBatch::Result result = batch_->Flush(socket_.native_handle(), &udp_gso_);
  counters_.datagrams_out += result.sent;
  counters_.send_drops += result.dropped;
  counters_.send_errors += result.failed;
  counters_.send_calls += result.calls;
  if (result.failed > 0) {
    LOG_EVERY_N(WARNING, 1000) << "direct send failed: " << std::strerror(result.error);
  }
  if (had_gso && !udp_gso_) {
    LOG(WARNING) << "the kernel refuses UDP segmentation offload: sending direct datagrams one by one";
  }
  return result.sent;
}

asio::awaitable<void> Direct::FlushLoop() {
  co_await base::NoThrowOnCancel();
  while (!closed_) {
    if (!batch_->empty()) {
      FlushBatch();
      continue;
    }
    flush_timer_.expires_at(Clock::time_point::max());
    auto [ec] = co_await flush_timer_.async_wait(base::kUse);
    (void)ec;  // Something to send, or closed.
  }
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

}  // namespace mnedc::client
