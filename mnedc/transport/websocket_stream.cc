#include "mnedc/transport/websocket_stream.h"

#include <boost/beast/websocket/ssl.hpp>

#include "mnedc/base/coro.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
namespace websocket = boost::beast::websocket;
using asio::ip::tcp;
using base::kUse;
using boost::system::error_code;
// One WebSocket message carries at most this much (whole frames); a larger
// gather write, such as the peer snapshot of a big network, becomes several.
constexpr std::size_t kMaxMessageBytes = 1 << 20;
constexpr std::size_t kMaskBufferBytes = 64 * 1024;

tcp::socket& Lowest(tcp::socket& s) { return s; }
tcp::socket& Lowest(TlsSocket& s) { return s.next_layer(); }

void ShutdownSendOf(tcp::socket& s) {
  error_code ignored;
  s.shutdown(tcp::socket::shutdown_send, ignored);
}
using transport::ShutdownSendOf;

template <class NextLayer>
class WebSocketStream final : public Stream {
 public:
  explicit WebSocketStream(websocket::stream<NextLayer> socket)
      : socket_(std::move(socket)), peer_(PeerText(Lowest(socket_.next_layer()))) {
    if constexpr (std::is_same_v<NextLayer, TlsSocket>) {
      certificate_names_ = CertificateNames(socket_.next_layer().native_handle());
    }
    socket_.binary(true);
    socket_.auto_fragment(false);
    // A client masks what it sends, through a buffer of this size, and each
    // buffer-full is one write to the layer below (one TLS record and send
    // each, with wss): 4 KiB by default, which cut every 64 KiB super-packet
    // into 16 writes. One is enough.
    socket_.write_buffer_bytes(kMaskBufferBytes);
  }

  asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(asio::mutable_buffer buffer) override {
    auto [ec, n] = co_await socket_.async_read_some(buffer, kUse);
    if (ec == websocket::error::closed || ec == asio::ssl::error::stream_truncated) {
      ec = asio::error::eof;
    }
    co_return std::pair{ec, n};
  }

  asio::awaitable<error_code> WriteAll(std::span<const asio::const_buffer> buffers) override {
    // Cut into messages at frame boundaries (every buffer here is whole frames).
    while (!buffers.empty()) {
      std::size_t count = 0;
      std::size_t bytes = 0;
      while (count < buffers.size() &&
             (count == 0 || bytes + buffers[count].size() <= kMaxMessageBytes)) {
        bytes += buffers[count].size();
        ++count;
      }
      auto [ec, n] = co_await socket_.async_write(buffers.first(count), kUse);
      if (ec) co_return ec;
      buffers = buffers.subspan(count);
    }
    co_return error_code{};
  }

  void ShutdownSend() override { ShutdownSendOf(socket_.next_layer()); }
  void Close() override {
    error_code ignored;
    Lowest(socket_.next_layer()).close(ignored);
  }
  const std::string& peer() const override { return peer_; }
  std::string_view kind() const override {
    return std::is_same_v<NextLayer, TlsSocket> ? "wss" : "ws";
  }
  const std::vector<std::string>& certificate_names() const override { return certificate_names_; }

 private:
  websocket::stream<NextLayer> socket_;
  std::string peer_;
  std::vector<std::string> certificate_names_;
};

}  // namespace

std::unique_ptr<Stream> MakeWebSocketStream(websocket::stream<tcp::socket> socket) {
  return std::make_unique<WebSocketStream<tcp::socket>>(std::move(socket));
}

std::unique_ptr<Stream> MakeWebSocketStream(websocket::stream<TlsSocket> socket) {
  return std::make_unique<WebSocketStream<TlsSocket>>(std::move(socket));
}

}  // namespace mnedc::transport
