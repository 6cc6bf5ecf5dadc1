#pragma once
// Keeps asio's per-socket state together in memory, so a relay gives memory
// back after a mass leave.
//
// asio's reactor makes one state object per open socket (about 170 bytes) and
// never frees it: a closed socket's state goes to a free list for the next
// socket. Made one at a time as connections arrive, these survivors sit among
// the memory of the sessions served meanwhile, nearly one on every page, and
// when those sessions end the pages cannot be returned (measured: a relay that
// held 19,000 members kept 78 MiB after they all left, 9 MiB at start).
//
// A reserve makes them ahead of need, a block at a time, by opening that many
// sockets in a row and closing them: their states are allocated back to back
// and wait on asio's free list, and the sockets the relay accepts next take
// them instead of allocating. This relies only on what asio does with a closed
// socket's state; if asio ever frees them instead, the reserve costs a burst of
// socket() calls per block and nothing else.
#include <boost/asio/any_io_executor.hpp>
#include <cstddef>

namespace mnedc::transport {

class SocketStateReserve {
 public:
  explicit SocketStateReserve(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  // `open`: the sockets open now. When fewer than half a block of states are
  // left, makes a block: as many as are open (64 at least, 1024 at most), never
  // beyond `limit` in all, fewer if the process runs out of descriptors.
  // Returns how many states it made room for (0 when enough were left).
  std::size_t Ensure(std::size_t open, std::size_t limit);

  // States reserved so far: the most sockets open at once that need none made.
  std::size_t reserved() const { return reserved_; }

 private:
  boost::asio::any_io_executor executor_;
  std::size_t reserved_ = 0;
};

}  // namespace mnedc::transport
