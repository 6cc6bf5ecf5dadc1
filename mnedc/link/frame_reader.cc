#include "mnedc/link/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace mnedc::link {

FrameReader::FrameReader(std::size_t initial_capacity, uint32_t max_payload)
    : buffer_(std::max(initial_capacity, protocol::kFrameHeaderSize)), max_payload_(max_payload) {}

protocol::ParseResult FrameReader::Next() {
  const protocol::ParseResult frame = protocol::ParseFrame(
      std::span<const uint8_t>(buffer_.data() + begin_, end_ - begin_), max_payload_);
  if (frame.status == protocol::ParseStatus::kFrame ||
      frame.status == protocol::ParseStatus::kUnknownType) {
    begin_ += frame.consumed;
  }
  return frame;
}

std::span<uint8_t> FrameReader::Space() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ >= protocol::kFrameHeaderSize) {
    // Next() has checked this length against the maximum before we get here.
    const std::size_t length = (std::size_t{buffer_[1]} << 24) | (std::size_t{buffer_[2]} << 16) |
                               (std::size_t{buffer_[3]} << 8) | buffer_[4];
    const std::size_t frame_size = protocol::kFrameHeaderSize + length;
    if (frame_size > buffer_.size() && length <= max_payload_) buffer_.resize(frame_size);
  }
  return std::span<uint8_t>(buffer_.data() + end_, buffer_.size() - end_);
}

}  // namespace mnedc::link
