#pragma once
// A sealed super-packet on the direct path: sealed whole (one AEAD message,
// as through the relay, at the cipher's large-message speed), then carried
// in datagrams of a size the path takes, and put back together at the other
// end, which opens it once and hands the TUN the super-packet whole.
//
// A fragment: kFragmentMarker, index, count, the fragment size (big-endian
// 16 bits: every fragment but the last carries exactly that many bytes),
// the message number (big-endian 32 bits), then its bytes of the sealed
// message. Losing one fragment loses the message (TCP inside resends it);
// the kernel sizes super-packets to about a millisecond of a flow's rate, so
// on slow paths they are a few segments, and losses stay small.
//
// Reassembly trusts nothing it is given: sizes and indices are checked
// before anything is copied, memory is a fixed number of slots (one message
// in progress per sender, the least recently used slot reused), and what it
// hands back still has to open (the tag) before anything is believed.
#include <array>
#include <boost/asio/ip/udp.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace mnedc::client {

inline constexpr uint8_t kFragmentMarker = 0xD2;
inline constexpr std::size_t kFragmentHeaderSize = 9;
inline constexpr std::size_t kMaxFragments = 64;

// Writes `message` as fragments of at most `datagram_size` bytes each (header
// included) into `out`, back to back: every datagram but the last is exactly
// FragmentDatagramSize(datagram_size) bytes. Returns the bytes written, or 0
// if it would take more than kMaxFragments or `out` is too small.
std::size_t WriteFragments(std::span<const uint8_t> message, std::size_t datagram_size, uint32_t message_number,
                           std::span<uint8_t> out);
// How many datagrams WriteFragments makes of a message of `message_size`
// bytes; 0 if it cannot (more than kMaxFragments, an empty message, a
// datagram size with no room for payload).
std::size_t FragmentCount(std::size_t message_size, std::size_t datagram_size);
// How large the datagrams WriteFragments makes are (all but the last).
std::size_t FragmentDatagramSize(std::span<const uint8_t> message, std::size_t datagram_size);

struct ReassemblyCounters {
  uint64_t fragments = 0;
  uint64_t messages = 0;    // Complete messages handed back.
  uint64_t incomplete = 0;  // Messages given up on (a fragment lost, or a newer one came first).
  uint64_t malformed = 0;   // Fragments whose header does not hold together.
};

class Reassembly {
 public:
  using Endpoint = boost::asio::ip::udp::endpoint;
  static constexpr std::size_t kSlots = 8;
  explicit Reassembly(std::size_t max_message);
  ~Reassembly();

  // Takes one fragment from `from`. When it completes a message, returns the
  // message (valid until the next Add); empty otherwise.
  std::span<uint8_t> Add(const Endpoint& from, std::span<const uint8_t> datagram);
  const ReassemblyCounters& counters() const { return counters_; }

 private:
  struct Slot {
    Endpoint from;
    uint32_t message = 0;
    uint8_t count = 0;
    uint16_t fragment_size = 0;
    uint64_t received = 0;  // A bit per index.
    std::size_t last_size = 0;
    uint64_t last_used = 0;
    bool in_use = false;
    std::vector<uint8_t> buffer;
  };
  Slot& SlotFor(const Endpoint& from);

  std::size_t max_message_;
  std::array<Slot, kSlots> slots_;
  uint64_t clock_ = 0;
  ReassemblyCounters counters_;
};

}  // namespace mnedc::client
