#include "mnedc/link/frame_queue.h"

#include <algorithm>
#include <utility>

namespace mnedc::link {

FrameQueue::FrameQueue(std::size_t capacity, std::size_t max_capacity)
    : slots_(std::max<std::size_t>(capacity, 1)),
      max_capacity_(std::max(max_capacity, slots_.size())) {}

void FrameQueue::Grow() {
  // Straighten the ring so the new slots land after the newest frame.
  std::rotate(slots_.begin(), slots_.begin() + head_, slots_.end());
  head_ = 0;
  slots_.resize(std::min(max_capacity_, slots_.size() * 2));
}

std::vector<uint8_t>& FrameQueue::AppendSlot(bool* dropped) {
  if (count_ == slots_.size() && slots_.size() < max_capacity_) Grow();
  *dropped = full();
  if (*dropped) {
    head_ = (head_ + 1) % slots_.size();
    --count_;
  }
  auto& slot = slots_[(head_ + count_) % slots_.size()];
  ++count_;
  return slot;
}

bool FrameQueue::PushDropOldest(protocol::FrameType type, std::span<const uint8_t> payload) {
  bool dropped = false;
  const std::span<uint8_t> out = AppendFrame(type, payload.size(), &dropped);
  std::copy(payload.begin(), payload.end(), out.begin());
  return dropped;
}

std::span<uint8_t> FrameQueue::AppendFrame(protocol::FrameType type, std::size_t payload_size,
                                           bool* dropped) {
  auto& slot = AppendSlot(dropped);
  // resize() within capacity does not allocate; only a larger packet than the
  // slot has seen grows it, once.
  slot.resize(protocol::kFrameHeaderSize + payload_size);
  protocol::WriteFrameHeader(type, static_cast<uint32_t>(payload_size), slot.data());
  return std::span<uint8_t>(slot).subspan(protocol::kFrameHeaderSize);
}

std::size_t FrameQueue::TakeAll(std::vector<std::vector<uint8_t>>& out, std::size_t first) {
  const std::size_t n = count_;
  for (std::size_t i = 0; i < n; ++i) {
    std::swap(slots_[(head_ + i) % slots_.size()], out[first + i]);
  }
  head_ = count_ = 0;
  return n;
}

void FrameQueue::ReleaseStorage(std::size_t slots) {
  if (count_ != 0) return;
  std::vector<std::vector<uint8_t>>(std::max<std::size_t>(slots, 1)).swap(slots_);
  head_ = 0;
}

}  // namespace mnedc::link
