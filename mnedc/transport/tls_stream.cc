#include "mnedc/transport/tls_stream.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cstring>

#include "mnedc/base/coro.h"
#include "mnedc/transport/tcp_stream.h"
#include "mnedc/transport/tls_context.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using base::kUse;
using boost::system::error_code;

class TlsStream final : public Stream {
 public:
  TlsStream(TlsSocket socket, std::vector<uint8_t> already_read)
      : socket_(std::move(socket)),
        already_read_(std::move(already_read)),
        peer_(PeerText(socket_.next_layer())),
        certificate_names_(CertificateNames(socket_.native_handle())),
        pre_shared_key_(UsedPreSharedKey(socket_.native_handle())) {}

  asio::awaitable<std::pair<error_code, std::size_t>> ReadSome(asio::mutable_buffer buffer) override {
    if (offset_ < already_read_.size()) {
      const std::size_t n = std::min(buffer.size(), already_read_.size() - offset_);
      std::memcpy(buffer.data(), already_read_.data() + offset_, n);
      offset_ += n;
      if (offset_ == already_read_.size()) {  // Given back once read.
        std::vector<uint8_t>().swap(already_read_);
        offset_ = 0;
      }
      co_return std::pair{error_code{}, n};
    }
    auto [ec, n] = co_await socket_.async_read_some(buffer, kUse);
    if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
    co_return std::pair{ec, n};
  }

  asio::awaitable<error_code> WriteAll(std::span<const asio::const_buffer> buffers) override {
    auto [ec, n] = co_await asio::async_write(socket_, buffers, kUse);
    co_return ec;
  }

  void ShutdownSend() override { ShutdownSendOf(socket_); }
  void Close() override {
    error_code ignored;
    socket_.next_layer().close(ignored);
  }
  const std::string& peer() const override { return peer_; }
  std::string_view kind() const override { return "tls"; }
  const std::vector<std::string>& certificate_names() const override { return certificate_names_; }
  bool pre_shared_key() const override { return pre_shared_key_; }

 private:
  TlsSocket socket_;
  std::vector<uint8_t> already_read_;
  std::size_t offset_ = 0;
  std::string peer_;
  std::vector<std::string> certificate_names_;
  bool pre_shared_key_ = false;
};

}  // namespace

void ShutdownSendOf(TlsSocket& s) {
  s.SendCloseNotify();
  error_code ignored;
  s.next_layer().shutdown(tcp::socket::shutdown_send, ignored);
}

std::vector<std::string> CertificateNames(SSL* ssl) {
  std::vector<std::string> names;
  X509* certificate = SSL_get0_peer_certificate(ssl);
  if (certificate == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return names;
  char common_name[256];
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName,
                                               common_name, sizeof(common_name));
  if (length > 0 && static_cast<std::size_t>(length) < sizeof(common_name)) {
    names.emplace_back(common_name, static_cast<std::size_t>(length));
  }
  auto* alt_names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; alt_names && i < sk_GENERAL_NAME_num(alt_names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(alt_names, i);
    if (name->type != GEN_DNS && name->type != GEN_URI && name->type != GEN_EMAIL) continue;
    const ASN1_IA5STRING* text = name->d.ia5;
    names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                       static_cast<std::size_t>(ASN1_STRING_length(text)));
  }
  GENERAL_NAMES_free(alt_names);
  return names;
}

std::unique_ptr<Stream> MakeTlsStream(TlsSocket socket, std::vector<uint8_t> already_read) {
  return std::make_unique<TlsStream>(std::move(socket), std::move(already_read));
}

}  // namespace mnedc::transport
