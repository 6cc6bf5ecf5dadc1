#pragma once
// TLS over a TCP socket, with OpenSSL reading and writing the socket itself
// (through a BIO that sends with MSG_NOSIGNAL) and asio only waiting for it to be ready.
//
// Why not asio::ssl::stream: it keeps two 17 KiB buffers of its own per
// connection, always allocated and zeroed, and feeds OpenSSL through a BIO
// pair with two more: about 70 KiB per TLS connection whether it carries
// anything or not, ten times what the rest of an idle member costs the relay
// (measured with tools/fleet-bench --tls). Here an idle connection holds the
// SSL object only: OpenSSL's record buffers are given back whenever they are
// empty (SSL_MODE_RELEASE_BUFFERS, as asio sets too), and nothing is copied
// through an intermediate buffer. The price, as with asio: on a busy link
// OpenSSL allocates a record buffer again about once per 16 KiB record; keeping
// them while data flows and freeing them on idle (SSL_free_buffers) is the
// better split, not done yet.
//
// It is an asio AsyncStream (async_read_some, async_write_some), so
// Beast's WebSocket runs over it; a write takes up to 16 KiB of a gather
// list at once, so a frame header and its payload go out in one TLS record.
// One read and one write may be outstanding at a time, as with any socket.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream_base.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>

namespace mnedc::transport {

class TlsSocket {
 public:
  using executor_type = boost::asio::ip::tcp::socket::executor_type;
  using next_layer_type = boost::asio::ip::tcp::socket;
  using lowest_layer_type = boost::asio::ip::tcp::socket;

  TlsSocket(boost::asio::ip::tcp::socket socket, boost::asio::ssl::context& context);
  TlsSocket(TlsSocket&& other) noexcept;
  TlsSocket& operator=(TlsSocket&&) = delete;
  ~TlsSocket();

  executor_type get_executor() { return socket_.get_executor(); }
  next_layer_type& next_layer() { return socket_; }
  const next_layer_type& next_layer() const { return socket_; }
  lowest_layer_type& lowest_layer() { return socket_; }
  SSL* native_handle() const { return ssl_; }

  // Completes with (error_code).
  template <class Token>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Token&& token) {
    if (ssl_) {
      type == boost::asio::ssl::stream_base::client ? SSL_set_connect_state(ssl_) : SSL_set_accept_state(ssl_);
    }
    return boost::asio::async_compose<Token, void(boost::system::error_code)>(
        Op<Handshake, false>{this, {}}, token, socket_);
  }
  // Complete with (error_code, bytes).
  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    boost::asio::mutable_buffer first;
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers); ++it) {
      first = *it;
      if (first.size() > 0) break;
    }
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        Op<Read, true>{this, Read{first}}, token, socket_);
  }
  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_compose<Token, void(boost::system::error_code, std::size_t)>(
        Op<Write<ConstBuffers>, true>{this, Write<ConstBuffers>{buffers}}, token, socket_);
  }

  // Sends close_notify if it can go out now (never waits).
  void SendCloseNotify();

 private:
  // One step of OpenSSL work: > 0 done (with *bytes), else SSL_get_error's input.
  struct Handshake {
    int operator()(SSL* ssl, std::size_t* bytes) const {
      *bytes = 0;
      return SSL_do_handshake(ssl);
    }
  };
  struct Read {
    boost::asio::mutable_buffer buffer;
    int operator()(SSL* ssl, std::size_t* bytes) const {
      if (buffer.size() == 0) return (*bytes = 0), 1;
      return SSL_read_ex(ssl, buffer.data(), buffer.size(), bytes);
    }
  };
  template <class ConstBuffers>
  struct Write {
    ConstBuffers buffers;
    int operator()(SSL* ssl, std::size_t* bytes) const {
      // The first buffer if it is large, else as much of the list as fits a
      // record, copied together: one record for a header and its payload.
      const auto begin = boost::asio::buffer_sequence_begin(buffers);
      const auto end = boost::asio::buffer_sequence_end(buffers);
      auto it = begin;
      while (it != end && boost::asio::const_buffer(*it).size() == 0) ++it;
      if (it == end) return (*bytes = 0), 1;
      const boost::asio::const_buffer first = *it;
      if (first.size() >= kRecord || std::next(it) == end) {
        return SSL_write_ex(ssl, first.data(), first.size(), bytes);
      }
      const std::size_t size = boost::asio::buffer_copy(boost::asio::buffer(Scratch(), kRecord), buffers);
      return SSL_write_ex(ssl, Scratch(), size, bytes);
    }
  };
  static constexpr std::size_t kRecord = 16384;
  // Shared by every TlsSocket of the thread. A write that must wait is retried
  // with the same bytes copied again, which OpenSSL allows
  // (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER): it sends what it already sealed.
  static uint8_t* Scratch();
  // The error for SSL_get_error's `error` (not WANT_*), read at once (errno).
  static boost::system::error_code ErrorOf(int error);

  template <class Step, bool kWithBytes>
  struct Op {
    TlsSocket* owner;
    Step step;
    bool waited = false;
    template <class Self>
    void operator()(Self& self, boost::system::error_code ec = {}) {
      if (!ec && !owner->ssl_) ec = boost::asio::error::no_memory;
      // Closed: its descriptor number may already belong to another socket.
      if (!ec && !owner->socket_.is_open()) ec = boost::asio::error::bad_descriptor;
      std::size_t bytes = 0;
      if (!ec) {
        ERR_clear_error();
        const int result = step(owner->ssl_, &bytes);
        if (result <= 0) {
          const int error = SSL_get_error(owner->ssl_, result);
          if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
            waited = true;
            return owner->socket_.async_wait(error == SSL_ERROR_WANT_READ
                                                 ? boost::asio::ip::tcp::socket::wait_read
                                                 : boost::asio::ip::tcp::socket::wait_write,
                                             std::move(self));
          }
          ec = ErrorOf(error);
          bytes = 0;
        }
      }
      if (!waited) {
        // Done without waiting: complete as an asynchronous operation must,
        // never from inside the call that started it.
        waited = true;
        auto executor = owner->socket_.get_executor();
        return boost::asio::post(executor, [self = std::move(self), ec, bytes]() mutable {
          Complete(self, ec, bytes);
        });
      }
      Complete(self, ec, bytes);
    }
    template <class Self>
    static void Complete(Self& self, boost::system::error_code ec, std::size_t bytes) {
      if constexpr (kWithBytes) {
        self.complete(ec, bytes);
      } else {
        self.complete(ec);
      }
    }
  };

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_;
};

// For Beast's WebSocket over TLS: close_notify, then the TCP teardown.
void teardown(boost::beast::role_type role, TlsSocket& socket, boost::system::error_code& ec);
template <class Handler>
void async_teardown(boost::beast::role_type role, TlsSocket& socket, Handler&& handler) {
  socket.SendCloseNotify();
  boost::beast::websocket::async_teardown(role, socket.next_layer(), std::forward<Handler>(handler));
}

}  // namespace mnedc::transport
