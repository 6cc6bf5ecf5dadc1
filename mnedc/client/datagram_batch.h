#pragma once
// Datagrams queued during one turn of the event loop and sent together: a run
// of datagrams of one size to one address (the last may be shorter) as one
// UDP GSO send, every run and single datagram of the batch in one sendmmsg.
// Packets a TUN read batch hands the direct path cost one system call, not
// one each. Fixed buffers: nothing is allocated once constructed.
#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace mnedc::client {

class DatagramBatch {
 public:
  static constexpr std::size_t kMaxDatagrams = 64;
  static constexpr std::size_t kBufferBytes = 128 * 1024;

  struct Result {
    uint64_t sent = 0;     // Datagrams the kernel took.
    uint64_t dropped = 0;  // The socket's buffer was full.
    uint64_t failed = 0;   // Other errors (no route, ...).
    uint64_t calls = 0;    // System calls made.
    int error = 0;         // The last errno of a failure, for the log.
  };

  DatagramBatch();
  ~DatagramBatch();
  DatagramBatch(const DatagramBatch&) = delete;
  DatagramBatch& operator=(const DatagramBatch&) = delete;

  // Room for `size` bytes in up to `datagrams` datagrams, to fill and then
  // Commit (or CommitRun); empty if the batch has no room for them (Flush
  // first; more than kBufferBytes or kMaxDatagrams never fits).
  std::span<uint8_t> Reserve(std::size_t size, std::size_t datagrams = 1);
  // The first `size` bytes reserved, filled, are a datagram to `to`.
  [[nodiscard]] bool Commit(const sockaddr_in& to, std::size_t size);
  // The first `size` bytes reserved are datagrams of `segment` bytes (the
  // last may be shorter) to `to`: the fragments of one message.
  // Both commit all or nothing: false (nothing queued) for more datagrams or
  // bytes than the batch has room for, which a Reserve for them refused.
  [[nodiscard]] bool CommitRun(const sockaddr_in& to, std::size_t size, std::size_t segment);
  bool empty() const { return count_ == 0; }
  std::size_t size() const { return count_; }

  // Sends every datagram queued, in order, and empties the batch. With
  // `*udp_gso`, runs go as GSO sends; a kernel that refuses them turns it off
  // (`*udp_gso` = false) and the run goes datagram by datagram.
  Result Flush(int fd, bool* udp_gso);

 private:
  struct Queued {
    sockaddr_in to;
    uint32_t offset;
    uint32_t size;
  };
  struct Messages;  // The sendmmsg arrays, apart: this header stays free of them.

  std::unique_ptr<uint8_t[]> buffer_;
  std::size_t used_ = 0;
  std::array<Queued, kMaxDatagrams> queued_{};
  std::size_t count_ = 0;
  std::unique_ptr<Messages> messages_;
};

}  // namespace mnedc::client
