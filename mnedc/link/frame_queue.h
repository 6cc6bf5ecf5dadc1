#pragma once
// A bounded queue of encoded frames whose slots keep their storage, so a warm
// queue moves packets without touching the heap.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "mnedc/protocol/frame.h"

namespace mnedc::link {

class FrameQueue {
 public:
  // Holds up to `capacity` frames. With `max_capacity` above it, the queue grows
  // (allocating, so only for control traffic) up to that many instead of being full.
  explicit FrameQueue(std::size_t capacity, std::size_t max_capacity = 0);

  std::size_t capacity() const { return slots_.size(); }
  std::size_t max_capacity() const { return max_capacity_; }
  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  bool full() const { return count_ == max_capacity_; }

  // Appends header + payload. When full, the oldest frame is dropped first (a
  // late packet is worth less than a fresh one); returns true if that happened.
  bool PushDropOldest(protocol::FrameType type, std::span<const uint8_t> payload);
  // Appends a frame of `payload_size` bytes whose payload the caller writes
  // into the returned span (valid until the next call), dropping the oldest
  // when full as PushDropOldest does (*dropped says so).
  std::span<uint8_t> AppendFrame(protocol::FrameType type, std::size_t payload_size, bool* dropped);
  std::size_t room() const { return max_capacity_ - count_; }

  // Moves every queued frame into out[first..first+n) by swapping storage with
  // it, and returns n. `out` must hold first + size() vectors; whatever they
  // held becomes the queue's spare storage.
  std::size_t TakeAll(std::vector<std::vector<uint8_t>>& out, std::size_t first = 0);

  void Clear() { head_ = count_ = 0; }
  // Gives back the slots' storage (an idle link), keeping `slots` empty ones.
  // Only while empty.
  void ReleaseStorage(std::size_t slots);

 private:
  std::vector<uint8_t>& AppendSlot(bool* dropped);
  void Grow();

  std::vector<std::vector<uint8_t>> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  std::size_t max_capacity_;
};

}  // namespace mnedc::link
