#include "mnedc/link/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace mnedc::link {

FrameReader::FrameReader(std::size_t small_capacity, uint32_t max_payload,
                         std::size_t large_capacity, Clock::duration release_after)
    : small_capacity_(std::max(small_capacity, protocol::kFrameHeaderSize)),
      large_capacity_(std::max(small_capacity_,
                               std::min(large_capacity, kMaxLargeCapacity))),
      max_payload_(max_payload),
      release_after_(release_after) {}

protocol::ParseResult FrameReader::Next() {
  const protocol::ParseResult frame = protocol::ParseFrame(
      std::span<const uint8_t>(buffer_.data() + begin_, end_ - begin_), max_payload_);
  if (frame.status == protocol::ParseStatus::kFrame ||
      frame.status == protocol::ParseStatus::kUnknownType) {
    begin_ += frame.consumed;
  }
  return frame;
}

std::size_t FrameReader::FrameRemaining() const {
  const std::size_t held = end_ - begin_;
  if (held == 0) return 0;
  if (held < protocol::kFrameHeaderSize) return protocol::kFrameHeaderSize - held;
  const std::size_t frame = protocol::kFrameHeaderSize + protocol::FramePayloadLength(buffer_.data() + begin_);
  return frame > held ? frame - held : 0;
}

std::span<uint8_t> FrameReader::Space(Clock::time_point now) {
  if (begin_ == end_) begin_ = end_ = 0;  // Nothing held: start at the front, nothing to move.
  if (end_ == 0 && buffer_.size() > small_capacity_ && now - last_large_use_ >= release_after_) {
    std::vector<uint8_t>().swap(buffer_);  // Idle: give the large buffer back.
  }
  // What the frame in progress needs in all, counted from begin_.
  std::size_t frame = protocol::kFrameHeaderSize;
  if (end_ - begin_ >= protocol::kFrameHeaderSize) {
    // Next() has checked this length against the maximum before we get here.
    const uint8_t* header = buffer_.data() + begin_;
    const std::size_t length = protocol::FramePayloadLength(header);
    if (length <= protocol::MaxPayloadOf(header[0], max_payload_)) frame = protocol::kFrameHeaderSize + length;
  }
  // A read that filled the buffer: more was waiting. Read in larger pieces.
  const std::size_t capacity = std::max({small_capacity_, frame, filled_ ? large_capacity_ : std::size_t{0}});
  if (capacity > small_capacity_) last_large_use_ = now;
  // The held bytes move to the front only when the frame in progress would
  // not fit where it is, or too little room is left behind them for a read
  // worth making: not after every read, which would copy a large frame's
  // first part each time.
  const std::size_t size = std::max(buffer_.size(), capacity);
  if (begin_ > 0 && (begin_ + frame > size || size - end_ < size / 4)) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    bytes_moved_ += end_ - begin_;
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < capacity) buffer_.resize(capacity);
  offered_ = buffer_.size() - end_;
  return std::span<uint8_t>(buffer_.data() + end_, offered_);
}

}  // namespace mnedc::link
