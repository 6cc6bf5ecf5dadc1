#include "mnedc/client/datagram_batch.h"

#include <netinet/udp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace mnedc::client {
namespace {

// One UDP GSO send: within an IPv4 datagram's 65,507 bytes, and within the
// segments every kernel with UDP_SEGMENT takes.
constexpr std::size_t kMaxGsoBytes = 65000;
constexpr std::size_t kMaxGsoSegments = 64;

bool SameAddress(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

bool Full(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS; }
bool GsoRefused(int error) {
  return error == EIO || error == EINVAL || error == EOPNOTSUPP || error == ENOPROTOOPT;
}

}  // namespace

struct DatagramBatch::Messages {
  std::array<mmsghdr, kMaxDatagrams> headers;
  std::array<iovec, kMaxDatagrams> iov;
  std::array<sockaddr_in, kMaxDatagrams> to;
  std::array<std::array<char, CMSG_SPACE(sizeof(uint16_t))>, kMaxDatagrams> control;
  std::array<uint32_t, kMaxDatagrams> datagrams;  // In each message.
  std::array<uint32_t, kMaxDatagrams> first;      // Its first queued datagram.
};

DatagramBatch::DatagramBatch()
    : buffer_(std::make_unique<uint8_t[]>(kBufferBytes)), messages_(std::make_unique<Messages>()) {}

DatagramBatch::~DatagramBatch() = default;

std::span<uint8_t> DatagramBatch::Reserve(std::size_t size, std::size_t datagrams) {
  if (datagrams > kMaxDatagrams - count_ || size > kBufferBytes - used_) return {};
  return {buffer_.get() + used_, size};
}

bool DatagramBatch::Commit(const sockaddr_in& to, std::size_t size) {
  if (count_ == kMaxDatagrams || size > kBufferBytes - used_) return false;  // Past what fits.
  queued_[count_++] = Queued{to, static_cast<uint32_t>(used_), static_cast<uint32_t>(size)};
  used_ += size;
  return true;
}

bool DatagramBatch::CommitRun(const sockaddr_in& to, std::size_t size, std::size_t segment) {
  if (segment == 0 || size <= segment) return segment != 0 && Commit(to, size);
  const std::size_t datagrams = (size + segment - 1) / segment;
  if (datagrams > kMaxDatagrams - count_ || size > kBufferBytes - used_) return false;  // Past what fits.
  for (std::size_t at = 0; at < size; at += segment) {
    const std::size_t length = std::min(segment, size - at);
    queued_[count_++] = Queued{to, static_cast<uint32_t>(used_ + at), static_cast<uint32_t>(length)};
  }
  used_ += size;
  return true;
}

DatagramBatch::Result DatagramBatch::Flush(int fd, bool* udp_gso) {
  Result result;
  Messages& m = *messages_;
  // Messages: runs of one size to one address (contiguous in the buffer, so
  // one iovec covers a run), or single datagrams.
  std::size_t messages = 0;
  for (std::size_t i = 0; i < count_;) {
    std::size_t end = i + 1;
    std::size_t bytes = queued_[i].size;
    if (*udp_gso) {
      // The last of a run may be shorter; nothing may follow it in the run.
      while (end < count_ && end - i < kMaxGsoSegments && SameAddress(queued_[end].to, queued_[i].to) &&
             queued_[end].size <= queued_[i].size && queued_[end - 1].size == queued_[i].size &&
             bytes + queued_[end].size <= kMaxGsoBytes) {
        bytes += queued_[end].size;
        ++end;
      }
    }
    const std::size_t k = messages++;
    m.to[k] = queued_[i].to;
    m.iov[k] = iovec{buffer_.get() + queued_[i].offset, bytes};
    msghdr& header = m.headers[k].msg_hdr;
    header = msghdr{};
    header.msg_name = &m.to[k];
    header.msg_namelen = sizeof(sockaddr_in);
    header.msg_iov = &m.iov[k];
    header.msg_iovlen = 1;
    m.datagrams[k] = static_cast<uint32_t>(end - i);
    m.first[k] = static_cast<uint32_t>(i);
    if (end - i > 1) {
      header.msg_control = m.control[k].data();
      header.msg_controllen = m.control[k].size();
      cmsghdr* c = CMSG_FIRSTHDR(&header);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      const uint16_t segment = static_cast<uint16_t>(queued_[i].size);
      std::memcpy(CMSG_DATA(c), &segment, sizeof segment);
    }
    i = end;
  }
  for (std::size_t at = 0; at < messages;) {
    ++result.calls;
    const int sent = sendmmsg(fd, m.headers.data() + at, static_cast<unsigned>(messages - at), 0);
    if (sent > 0) {
      for (int j = 0; j < sent; ++j) result.sent += m.datagrams[at + j];
      at += static_cast<std::size_t>(sent);
      continue;
    }
    const int error = errno;
    if (error == EINTR) continue;
    result.error = error;
    if (Full(error)) {
      // The rest would meet the same full buffer: dropped, as a full NIC queue would.
      for (std::size_t j = at; j < messages; ++j) result.dropped += m.datagrams[j];
      break;
    }
    if (m.datagrams[at] > 1 && GsoRefused(error)) {
      // This kernel takes no UDP_SEGMENT: the run one datagram at a time,
      // and no more runs.
      *udp_gso = false;
      for (uint32_t j = 0; j < m.datagrams[at]; ++j) {
        const Queued& one = queued_[m.first[at] + j];
        ++result.calls;
        if (sendto(fd, buffer_.get() + one.offset, one.size, 0, reinterpret_cast<const sockaddr*>(&one.to),
                   sizeof one.to) >= 0) {
          ++result.sent;
        } else {
          result.error = errno;
          ++(Full(errno) ? result.dropped : result.failed);
        }
      }
    } else {
      result.failed += m.datagrams[at];
    }
    ++at;
  }
  count_ = 0;
  used_ = 0;
  return result;
}

}  // namespace mnedc::client
