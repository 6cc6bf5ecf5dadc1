#include "mnedc/link/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace mnedc::link {

FrameReader::FrameReader(std::size_t small_capacity, uint32_t max_payload,
                         std::size_t large_capacity, Clock::duration release_after)
    : small_capacity_(std::max(small_capacity, protocol::kFrameHeaderSize)),
      large_capacity_(std::max(small_capacity_,
                               std::min(large_capacity, protocol::kFrameHeaderSize +
                                                            std::max(max_payload, protocol::kMaxSuperFramePayload)))),
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

std::span<uint8_t> FrameReader::Space(Clock::time_point now) {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == 0 && buffer_.size() > small_capacity_ && now - last_large_use_ >= release_after_) {
    std::vector<uint8_t>().swap(buffer_);  // Idle: give the large buffer back.
  }
  if (buffer_.size() < small_capacity_) buffer_.resize(small_capacity_);
  std::size_t want = small_capacity_;
  if (end_ >= protocol::kFrameHeaderSize) {
    // Next() has checked this length against the maximum before we get here.
    const std::size_t length = (std::size_t{buffer_[1]} << 24) | (std::size_t{buffer_[2]} << 16) |
                               (std::size_t{buffer_[3]} << 8) | buffer_[4];
    if (length <= protocol::MaxPayloadOf(buffer_[0], max_payload_)) want = std::max(want, protocol::kFrameHeaderSize + length);
  }
  // A read that filled the buffer: more was waiting. Read in larger pieces.
  if (filled_) want = std::max(want, large_capacity_);
  if (want > small_capacity_) last_large_use_ = now;
  if (want > buffer_.size()) buffer_.resize(want);
  offered_ = buffer_.size() - end_;
  return std::span<uint8_t>(buffer_.data() + end_, offered_);
}

}  // namespace mnedc::link
