// Fragments of sealed super-packets off the wire, as the direct path's
// reassembly takes them before anything is authenticated: the input is a run
// of datagrams (a length byte pair, then that many bytes; the top bit of the
// first picks one of two senders). Whatever comes back is within the bounds
// it was given, and nothing crashes, hangs or leaks.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "mnedc/client/fragments.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using mnedc::client::Reassembly;
  namespace ip = boost::asio::ip;
  constexpr std::size_t kMax = 20000;
  static const Reassembly::Endpoint senders[] = {{ip::make_address("192.0.2.1"), 1}, {ip::make_address("192.0.2.2"), 2}};
  Reassembly reassembly(kMax);
  std::size_t at = 0;
  while (at + 2 <= size) {
    const std::size_t length = ((data[at] & 0x7F) << 8 | data[at + 1]);
    const auto& from = senders[data[at] >> 7];
    at += 2;
    const std::size_t take = std::min(length, size - at);
    const std::span<uint8_t> message = reassembly.Add(from, std::span(data + at, take));
    if (message.size() > kMax) std::abort();
    at += take;
  }
  const auto& c = reassembly.counters();
  if (c.messages + c.malformed > c.fragments) std::abort();
  return 0;
}
