#include "mnedc/client/fragments.h"

#include <algorithm>
#include <cstring>

namespace mnedc::client {
namespace {
std::size_t PayloadPer(std::size_t datagram_size) {
  return datagram_size > kFragmentHeaderSize ? datagram_size - kFragmentHeaderSize : 0;
}
}  // namespace

std::size_t FragmentDatagramSize(std::span<const uint8_t> message, std::size_t datagram_size) {
  return kFragmentHeaderSize + std::min(PayloadPer(datagram_size), message.size());
}

std::size_t FragmentCount(std::size_t message_size, std::size_t datagram_size) {
  const std::size_t per = PayloadPer(datagram_size);
  if (per == 0 || per > 0xFFFF || message_size == 0) return 0;
  const std::size_t count = (message_size + per - 1) / per;
  return count <= kMaxFragments ? count : 0;
}

std::size_t WriteFragments(std::span<const uint8_t> message, std::size_t datagram_size, uint32_t message_number,
                           std::span<uint8_t> out) {
  const std::size_t per = PayloadPer(datagram_size);
  const std::size_t count = FragmentCount(message.size(), datagram_size);
  if (count == 0 || out.size() < message.size() + count * kFragmentHeaderSize) return 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t size = std::min(per, message.size() - i * per);
    uint8_t* d = out.data() + at;
    d[0] = kFragmentMarker;
    d[1] = static_cast<uint8_t>(i);
    d[2] = static_cast<uint8_t>(count);
    d[3] = static_cast<uint8_t>(per >> 8);
    d[4] = static_cast<uint8_t>(per);
    d[5] = static_cast<uint8_t>(message_number >> 24);
    d[6] = static_cast<uint8_t>(message_number >> 16);
    d[7] = static_cast<uint8_t>(message_number >> 8);
    d[8] = static_cast<uint8_t>(message_number);
    std::memcpy(d + kFragmentHeaderSize, message.data() + i * per, size);
    at += kFragmentHeaderSize + size;
  }
  return at;
}

Reassembly::Reassembly(std::size_t max_message) : max_message_(max_message) {}
Reassembly::~Reassembly() = default;

Reassembly::Slot& Reassembly::SlotFor(const Endpoint& from) {
  Slot* oldest = &slots_[0];
  for (Slot& slot : slots_) {
    if (slot.in_use && slot.from == from) return slot;
    if (!slot.in_use || (oldest->in_use && slot.last_used < oldest->last_used)) oldest = &slot;
  }
  // A sender we hold nothing for: the least recently used slot (its message
  // in progress, if any, is given up).
  if (oldest->in_use && oldest->received != 0) ++counters_.incomplete;
  oldest->in_use = true;
  oldest->from = from;
  oldest->received = 0;
  return *oldest;
}

std::span<uint8_t> Reassembly::Add(const Endpoint& from, std::span<const uint8_t> datagram) {
  ++counters_.fragments;
  if (datagram.size() <= kFragmentHeaderSize || datagram[0] != kFragmentMarker) {
    ++counters_.malformed;
    return {};
  }
  const std::size_t index = datagram[1];
  const std::size_t count = datagram[2];
  const std::size_t per = static_cast<std::size_t>(datagram[3]) << 8 | datagram[4];
  const uint32_t message = static_cast<uint32_t>(datagram[5]) << 24 | static_cast<uint32_t>(datagram[6]) << 16 |
                           static_cast<uint32_t>(datagram[7]) << 8 | datagram[8];
  const std::size_t size = datagram.size() - kFragmentHeaderSize;
  const bool last = index + 1 == count;
  // Every fragment but the last is exactly `per` bytes, the last at most;
  // the whole no larger than a message may be.
  if (count == 0 || count > kMaxFragments || index >= count || per == 0 || (last ? size > per : size != per) ||
      (count - 1) * per + (last ? size : 1) > max_message_) {
    ++counters_.malformed;
    return {};
  }
  Slot& slot = SlotFor(from);
  slot.last_used = ++clock_;
  if (slot.received != 0 && (slot.message != message || slot.count != count || slot.fragment_size != per)) {
    ++counters_.incomplete;  // A newer message before this one was whole: a fragment was lost.
    slot.received = 0;
  }
  if (slot.received == 0) {
    slot.message = message;
    slot.count = static_cast<uint8_t>(count);
    slot.fragment_size = static_cast<uint16_t>(per);
    if (slot.buffer.size() < max_message_) slot.buffer.resize(max_message_);
  }
  const uint64_t bit = uint64_t{1} << index;
  if (slot.received & bit) return {};  // Twice: the first one counts.
  std::memcpy(slot.buffer.data() + index * per, datagram.data() + kFragmentHeaderSize, size);
  slot.received |= bit;
  if (last) slot.last_size = size;
  const uint64_t all = count == 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
  if (slot.received != all) return {};
  slot.received = 0;
  ++counters_.messages;
  return std::span(slot.buffer.data(), (count - 1) * per + slot.last_size);
}

}  // namespace mnedc::client
