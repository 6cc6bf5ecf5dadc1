#pragma once
// A bidirectional byte stream that carries mnedc frames: the one seam between the
// relay/client logic and the concrete transports: TCP, TLS, WebSocket and
// WebSocket over TLS (tcp_stream.h, tls_stream.h, websocket_stream.h).
// Over message-based transports each write is one message holding whole frames, so
// the reader can treat what it reads as the same byte stream of frames.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mnedc::transport {

class Stream {
 public:
  virtual ~Stream() = default;

  // Reads at least one byte into `buffer`. EOF and operation_aborted are normal ends.
  virtual boost::asio::awaitable<std::pair<boost::system::error_code, std::size_t>> ReadSome(
      boost::asio::mutable_buffer buffer) = 0;

  // Writes every byte of `buffers` in one gather write.
  virtual boost::asio::awaitable<boost::system::error_code> WriteAll(
      std::span<const boost::asio::const_buffer> buffers) = 0;

  // Sends at once what the connection takes without waiting, and returns how
  // many bytes that was: 0 if none, on any error (the next WriteAll reports
  // it), or for a stream that cannot (TLS, WebSocket). Lets a large frame go
  // from the caller's buffer to the kernel without a copy into a queue.
  // Never while a WriteAll is in progress.
  virtual std::size_t TrySendNow(std::span<const boost::asio::const_buffer> buffers) {
    (void)buffers;
    return 0;
  }

  // A plain TCP stream's socket, for passing frames from one stream's socket
  // to another's without copying them (Linux splice, the relay's
  // FramedLink); -1 for a stream whose bytes pass through user space (TLS,
  // WebSocket). Only WaitReady may wait on it; reads and writes on it must
  // not block.
  virtual int native_socket() const { return -1; }
  // Waits until native_socket() is readable (or writable); fails with
  // operation_not_supported where there is none.
  virtual boost::asio::awaitable<boost::system::error_code> WaitReady(bool write) {
    (void)write;
    co_return boost::system::errc::make_error_code(boost::system::errc::operation_not_supported);
  }

  // Tells the peer nothing more will be sent (TCP FIN), letting it read what was.
  virtual void ShutdownSend() = 0;
  // Ends the connection at once; pending reads and writes complete with an error.
  virtual void Close() = 0;

  // "ip:port" of the other end, for logs and peer announcements.
  virtual const std::string& peer() const = 0;
  // "tcp", "tls", "ws" or "wss".
  virtual std::string_view kind() const = 0;
  // Whether the TLS handshake was made with the relays' pre-shared key
  // (MakePskServerContext): the peer knows the cluster secret.
  virtual bool pre_shared_key() const { return false; }
  // Names in the peer's verified TLS certificate (subject CN, then DNS,
  // URI and email SANs); empty without one.
  virtual const std::vector<std::string>& certificate_names() const {
    static const std::vector<std::string> kNone;
    return kNone;
  }
};

}  // namespace mnedc::transport
