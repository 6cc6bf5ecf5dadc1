// TlsSocket against itself on loopback: a gather write is one record, a peer
// that has gone is an error, never SIGPIPE, and the cipher is the fastest for
// the CPU.
#include "mnedc/transport/tls_socket.h"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <vector>

#include "mnedc/transport/tls_context.h"
#include "testing/test_pki.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using boost::system::error_code;
using namespace std::chrono_literals;

// Counts the application-data records a side receives.
void CountRecords(int write_p, int, int content_type, const void*, size_t, SSL*, void* arg) {
  if (!write_p && content_type == SSL3_RT_INNER_CONTENT_TYPE) ++*static_cast<int*>(arg);
}

// A client and a server TlsSocket on loopback, after their handshake.
struct TlsPair {
  TlsPair(asio::io_context& io, asio::ssl::context& client_context, asio::ssl::context& server_context)
      : acceptor(io, {asio::ip::make_address("127.0.0.1"), 0}),
        client(Connected(io, acceptor), client_context),
        server(acceptor.accept(), server_context) {
    client.async_handshake(asio::ssl::stream_base::client, [this](error_code ec) { client_error = ec; });
    server.async_handshake(asio::ssl::stream_base::server, [this](error_code ec) { server_error = ec; });
    io.run_for(3s);
    io.restart();
  }
  static tcp::socket Connected(asio::io_context& io, tcp::acceptor& acceptor) {
    tcp::socket socket(io);
    socket.connect(acceptor.local_endpoint());
    return socket;
  }
  tcp::acceptor acceptor;
  TlsSocket client;
  TlsSocket server;
  error_code client_error = asio::error::would_block;
  error_code server_error = asio::error::would_block;
};

TEST(TlsSocket, AGatherWriteIsOneRecordAndAGonePeerIsAnError) {
  asio::io_context io;
  const char* dir = std::getenv("TEST_TMPDIR");
  const testing::TestPki pki = testing::MakeTestPki(dir ? dir : "/tmp");
  std::string error;
  auto server_context = MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(server_context) << error;
  auto client_context = MakeTlsClientContext({pki.ca_cert, "", "", ""}, &error);
  ASSERT_TRUE(client_context) << error;

  TlsPair pair(io, *client_context, *server_context);
  ASSERT_FALSE(pair.client_error) << pair.client_error.message();
  ASSERT_FALSE(pair.server_error) << pair.server_error.message();
  TlsSocket& client = pair.client;
  TlsSocket& server = pair.server;

  // A 4-byte header and a 1,000-byte payload, as a frame or a WebSocket message goes out.
  int records = 0;
  SSL_set_msg_callback(server.native_handle(), CountRecords);
  SSL_set_msg_callback_arg(server.native_handle(), &records);
  const std::array<uint8_t, 4> header{1, 2, 3, 4};
  const std::vector<uint8_t> payload(1000, 7);
  const std::array<asio::const_buffer, 2> gather{asio::buffer(header), asio::buffer(payload)};
  std::size_t written = 0;
  asio::async_write(client, gather, [&](error_code ec, std::size_t n) {
    ASSERT_FALSE(ec) << ec.message();
    written = n;
  });
  std::vector<uint8_t> received(1004);
  std::size_t read = 0;
  asio::async_read(server, asio::buffer(received), [&](error_code ec, std::size_t n) {
    ASSERT_FALSE(ec) << ec.message();
    read = n;
  });
  io.run_for(2s);
  io.restart();
  EXPECT_EQ(written, 1004u);
  ASSERT_EQ(read, 1004u);
  EXPECT_EQ(received[0], 1);
  EXPECT_EQ(received[1003], 7);
  EXPECT_EQ(records, 1) << "the header and the payload went in separate records";

  // The server goes away; the client writes until it learns so, without a
  // signal ending the process (the default action of SIGPIPE).
  server.next_layer().close();
  error_code write_error;
  for (int i = 0; i < 100 && !write_error; ++i) {
    asio::async_write(client, asio::buffer(payload), [&](error_code ec, std::size_t) { write_error = ec; });
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_TRUE(write_error == asio::error::broken_pipe || write_error == asio::error::connection_reset)
      << write_error.message();
}

// The relay picks AES-128-GCM where the CPU has AES instructions (it lists
// it first and has server preference), ChaCha20 otherwise; a client that
// lists ChaCha20 first (as one without AES instructions does) gets ChaCha20.
TEST(TlsSocket, NegotiatesTheFastestCipherForTheCpu) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const testing::TestPki pki = testing::MakeTestPki(dir ? dir : "/tmp");
  std::string error;
  auto server_context = MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(server_context) << error;
  for (const bool client_prefers_chacha : {false, true}) {
    auto client_context = MakeTlsClientContext({pki.ca_cert, "", "", ""}, &error);
    ASSERT_TRUE(client_context) << error;
    if (client_prefers_chacha) {
      SSL_CTX_set_ciphersuites(client_context->native_handle(),
                               "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384");
    }
    asio::io_context io;
    TlsPair pair(io, *client_context, *server_context);
    ASSERT_FALSE(pair.client_error) << pair.client_error.message();
    ASSERT_FALSE(pair.server_error) << pair.server_error.message();
    const std::string cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(pair.client.native_handle()));
    const bool chacha = client_prefers_chacha || !CpuHasAesInstructions();
    EXPECT_EQ(cipher, chacha ? "TLS_CHACHA20_POLY1305_SHA256" : "TLS_AES_128_GCM_SHA256")
        << "client prefers ChaCha20: " << client_prefers_chacha << ", AES instructions: " << CpuHasAesInstructions();
  }
}

}  // namespace
}  // namespace mnedc::transport
