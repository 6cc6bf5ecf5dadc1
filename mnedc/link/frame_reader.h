#pragma once
// Turns the bytes of one connection into frames, without coroutines and
// without copying: bytes are read into Space(), Commit(n) says how many came,
// and Next() hands back each complete frame in turn, pointing into the
// buffer. A frame's announced length is checked before room is made for it,
// so a peer cannot make the buffer grow past the largest allowed frame.
//
// The buffer follows the traffic: it starts small (an idle member costs
// little), grows to `large_capacity` when a read fills it (a burst: fewer,
// larger reads) or to the size of a frame that needs more, and goes back to
// small once nothing has needed more for `release_after`. So a busy link does
// not allocate per read, and an idle one gives its memory back. The bytes of
// a partial frame move to the front only when it would not fit where it is
// (or little room is left behind it), so a stream of 64 KiB super-packets is
// not copied once more inside the buffer.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mnedc/protocol/frame.h"

namespace mnedc::link {

class FrameReader {
 public:
  using Clock = std::chrono::steady_clock;
  // The most `large_capacity` may be: a few of the largest frames.
  static constexpr std::size_t kMaxLargeCapacity = 4 * protocol::kMaxFrameSize;

  explicit FrameReader(std::size_t small_capacity,
                       uint32_t max_payload = protocol::kMaxFramePayload,
                       std::size_t large_capacity = protocol::kMaxFrameSize,
                       Clock::duration release_after = std::chrono::seconds(10));

  // The next buffered frame: kFrame (its payload stays valid until the next
  // Space()), kUnknownType (skip it and call again), kOversize (the peer
  // announced too much: end the connection), or kNeedMore.
  protocol::ParseResult Next();
  // Where the next read goes: once a partial frame's header is in, there is
  // room for all of it (its bytes moved to the front if need be). `now` decides
  // whether a large buffer has been idle long enough to give back.
  std::span<uint8_t> Space(Clock::time_point now);
  std::span<uint8_t> Space() { return Space(Clock::now()); }
  void Commit(std::size_t bytes) {
    filled_ = bytes == offered_;
    end_ += bytes;
  }

  // Bytes of an unfinished frame are buffered (an EOF now cuts a frame).
  bool mid_frame() const { return end_ > begin_; }
  // Bytes still to come of the unfinished frame (of its header while that is
  // incomplete); 0 with none. Called once Next() said kNeedMore.
  std::size_t FrameRemaining() const;
  std::size_t capacity() const { return buffer_.size(); }
  // Bytes moved to the front of the buffer so far (the cost of partial frames).
  uint64_t bytes_moved() const { return bytes_moved_; }

 private:
  std::vector<uint8_t> buffer_;
  std::size_t begin_ = 0;  // First byte not yet handed out.
  std::size_t end_ = 0;    // One past the last byte read.
  std::size_t offered_ = 0;  // Size of the last Space().
  std::size_t small_capacity_;
  std::size_t large_capacity_;
  uint32_t max_payload_;
  Clock::duration release_after_;
  Clock::time_point last_large_use_{};
  bool filled_ = false;  // The last read took all the space it was given.
  uint64_t bytes_moved_ = 0;
};

}  // namespace mnedc::link
