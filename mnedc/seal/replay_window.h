#pragma once
// Which packet counters a receiver has already taken (RFC 6479's sliding
// window, as WireGuard keeps it): a counter is new if it is above every one
// seen, or within the last kWindow below the highest and not seen yet.
// Packets may come out of order (over UDP) but never twice.
//
// Check before opening a packet, Accept only after its tag checked out: a
// forged packet must not move the window.
#include <array>
#include <cstdint>

namespace mnedc::seal {

class ReplayWindow {
 public:
  // How far below the highest counter seen a late packet is still taken.
  static constexpr uint64_t kWindow = 8192 - 64;
  // Counters from here on are refused: the sender must have new keys first.
  static constexpr uint64_t kLimit = ~uint64_t{0} - 8192;

  bool Check(uint64_t counter) const;
  // Marks `counter` taken; false if it was not new (Check said no).
  bool Accept(uint64_t counter);
  uint64_t highest() const { return highest_; }

 private:
  static constexpr std::size_t kWords = 8192 / 64;
  std::array<uint64_t, kWords> bits_{};
  uint64_t highest_ = 0;  // One past the highest counter taken (0: none yet).
};

}  // namespace mnedc::seal
