#pragma once
// Turns the bytes of one connection into frames, without coroutines and
// without copying: bytes are read into Space(), Commit(n) says how many came,
// and Next() hands back each complete frame in turn, pointing into the
// buffer. A frame's announced length is checked before room is made for it,
// so a peer cannot make the buffer grow past the largest allowed frame.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mnedc/protocol/frame.h"

namespace mnedc::link {

class FrameReader {
 public:
  explicit FrameReader(std::size_t initial_capacity,
                       uint32_t max_payload = protocol::kMaxFramePayload);

  // The next buffered frame: kFrame (its payload stays valid until the next
  // Space()), kUnknownType (skip it and call again), kOversize (the peer
  // announced too much: end the connection), or kNeedMore.
  protocol::ParseResult Next();
  // Where the next read goes: the partial frame is moved to the front and,
  // once its header is in, there is room for all of it.
  std::span<uint8_t> Space();
  void Commit(std::size_t bytes) { end_ += bytes; }

  // Bytes of an unfinished frame are buffered (an EOF now cuts a frame).
  bool mid_frame() const { return end_ > begin_; }
  std::size_t capacity() const { return buffer_.size(); }

 private:
  std::vector<uint8_t> buffer_;
  std::size_t begin_ = 0;  // First byte not yet handed out.
  std::size_t end_ = 0;    // One past the last byte read.
  uint32_t max_payload_;
};

}  // namespace mnedc::link
