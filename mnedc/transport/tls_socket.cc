#include "mnedc/transport/tls_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

namespace mnedc::transport {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// OpenSSL's own socket BIO writes with write(): a peer that has gone would
// raise SIGPIPE in the whole process. This one sends with MSG_NOSIGNAL.
int Descriptor(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

bool Retry(int error) { return error == EAGAIN || error == EWOULDBLOCK || error == EINTR; }

int SocketWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::send(Descriptor(bio), data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && Retry(errno)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int SocketRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const ssize_t n = ::recv(Descriptor(bio), data, static_cast<std::size_t>(size), 0);
  if (n < 0 && Retry(errno)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long SocketControl(BIO*, int command, long, void*) {
  return command == BIO_CTRL_FLUSH ? 1 : 0;  // Nothing is buffered here.
}

int SocketCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

BIO* NewSocketBio(int fd) {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "mnedc socket");
    if (m) {
      BIO_meth_set_write(m, SocketWrite);
      BIO_meth_set_read(m, SocketRead);
      BIO_meth_set_ctrl(m, SocketControl);
      BIO_meth_set_create(m, SocketCreate);
    }
    return m;
  }();
  BIO* bio = method ? BIO_new(method) : nullptr;
  if (bio) BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  return bio;
}
}  // namespace

TlsSocket::TlsSocket(asio::ip::tcp::socket socket, asio::ssl::context& context)
    : socket_(std::move(socket)), ssl_(SSL_new(context.native_handle())) {
  if (!ssl_) return;  // Every operation then fails with no_memory.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
  SSL_set_read_ahead(ssl_, 1);  // A recv takes what has come, not one record header at a time.
  error_code ignored;
  socket_.non_blocking(true, ignored);
  // The BIO does not own the descriptor: socket_ does.
  BIO* bio = NewSocketBio(socket_.native_handle());
  if (!bio) {
    SSL_free(std::exchange(ssl_, nullptr));
    return;
  }
  SSL_set_bio(ssl_, bio, bio);
}

TlsSocket::TlsSocket(TlsSocket&& other) noexcept
    : socket_(std::move(other.socket_)), ssl_(std::exchange(other.ssl_, nullptr)) {}

TlsSocket::~TlsSocket() {
  if (ssl_) SSL_free(ssl_);
}

void TlsSocket::SendCloseNotify() {
  if (!ssl_ || !socket_.is_open() || !SSL_is_init_finished(ssl_)) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // Non-blocking socket: sends it if it fits now.
  ERR_clear_error();
}

uint8_t* TlsSocket::Scratch() {
  static thread_local uint8_t scratch[kRecord];
  return scratch;
}

error_code TlsSocket::ErrorOf(int error) {
  const int saved_errno = errno;
  if (error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;  // close_notify.
  const unsigned long queued = ERR_get_error();
  ERR_clear_error();
  if (error == SSL_ERROR_SYSCALL && queued == 0) {
    if (saved_errno != 0) return error_code(saved_errno, boost::system::system_category());
    return asio::ssl::error::stream_truncated;  // TCP ended without close_notify.
  }
  if (ERR_GET_REASON(queued) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return asio::ssl::error::stream_truncated;
  if (queued == 0) return asio::ssl::error::unspecified_system_error;
  return error_code(static_cast<int>(queued), asio::error::get_ssl_category());
}

void teardown(boost::beast::role_type role, TlsSocket& socket, error_code& ec) {
  socket.SendCloseNotify();
  boost::beast::websocket::teardown(role, socket.next_layer(), ec);
}

}  // namespace mnedc::transport
