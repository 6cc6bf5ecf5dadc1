// STUN datagrams off the wire: what the relay's responder answers, and what
// a device takes as its outside address. An answer is never larger than the
// request's ceiling, and a response parsed as mapped has a usable address.
#include <array>
#include <cstdlib>
#include <span>

#include <boost/asio/io_context.hpp>

#include "mnedc/stun/message.h"
#include "mnedc/stun/responder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc::stun;
  namespace ip = boost::asio::ip;
  const std::span<const uint8_t> datagram(data, size);
  static boost::asio::io_context io;
  static ip::udp::socket socket(io);
  static Responder responder(socket, {.per_source_per_second = 1000000});
  std::array<uint8_t, kMaxResponseSize> answer;
  const ip::udp::endpoint from(ip::make_address(size % 2 ? "192.0.2.1" : "2001:db8::1"), 4242);
  const std::size_t answered = responder.Handle(datagram, from, 1, answer);
  if (answered > kMaxResponseSize) std::abort();
  if (answered) {
    // What it answers, a client takes back.
    TransactionId id;
    std::copy(data + 4, data + 20, id.begin());
    ip::udp::endpoint mapped;
    if (ParseBindingResponse(std::span(answer.data(), answered), id, &mapped) != ResponseVerdict::kMapped ||
        mapped != from) {
      std::abort();
    }
  }
  // As a response to the transaction it names (a device's side).
  if (size >= kHeaderSize) {
    TransactionId id;
    std::copy(data + 4, data + 20, id.begin());
    ip::udp::endpoint mapped;
    ParseBindingResponse(datagram, id, &mapped);
  }
  return 0;
}
