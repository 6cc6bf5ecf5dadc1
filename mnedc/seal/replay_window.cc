#include "mnedc/seal/replay_window.h"

namespace mnedc::seal {

bool ReplayWindow::Check(uint64_t counter) const {
  if (counter >= kLimit) return false;
  if (counter >= highest_) return true;
  if (highest_ - counter > kWindow) return false;
  const uint64_t word = (counter / 64) % kWords;
  return (bits_[word] & (uint64_t{1} << (counter % 64))) == 0;
}

bool ReplayWindow::Accept(uint64_t counter) {
  if (!Check(counter)) return false;
  if (counter >= highest_) {
    // Clear the words the window moves past: those between the highest
    // counter's word (exclusive) and this one's (inclusive), at most all.
    const uint64_t from = highest_ == 0 ? 0 : (highest_ - 1) / 64 + 1;
    const uint64_t to = counter / 64;
    if (highest_ == 0 || to - from + 1 >= kWords) {
      bits_.fill(0);
    } else {
      for (uint64_t w = from; w <= to; ++w) bits_[w % kWords] = 0;
    }
    highest_ = counter + 1;
  }
  bits_[(counter / 64) % kWords] |= uint64_t{1} << (counter % 64);
  return true;
}

}  // namespace mnedc::seal
