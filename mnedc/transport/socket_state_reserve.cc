#include "mnedc/transport/socket_state_reserve.h"

#include <algorithm>
#include <boost/asio/ip/udp.hpp>
#include <vector>

namespace mnedc::transport {

std::size_t SocketStateReserve::Ensure(std::size_t open, std::size_t limit) {
  constexpr std::size_t kSmallest = 64, kLargest = 1024;
  const std::size_t block = std::clamp(open, kSmallest, kLargest);
  if (reserved_ >= open + block / 2 || open >= limit) return 0;
  const std::size_t wanted = std::min(block, limit - open);
  std::vector<boost::asio::ip::udp::socket> sockets;
  sockets.reserve(wanted);  // Before the states, so nothing else comes between them.
  for (std::size_t i = 0; i < wanted; ++i) {
    boost::system::error_code ec;
    sockets.emplace_back(executor_).open(boost::asio::ip::udp::v4(), ec);
    if (ec) {  // Out of descriptors (or socket buffers): make do with fewer.
      sockets.pop_back();
      break;
    }
  }
  const std::size_t made = sockets.size();
  reserved_ = std::max(reserved_, open + made);
  return made;  // Closing them puts their states on asio's free list.
}

}  // namespace mnedc::transport
